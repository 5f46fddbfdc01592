"""Signal ids: fresh, 32 hex digits, unique in a process and across processes — a forked child draws a new prefix."""
import multiprocessing as mp
import os

import pytest

from swingtrader.models import Signal, SignalAction, new_signal_id


def _ids(q): q.put([new_signal_id() for _ in range(3)])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_children_never_repeat_the_parents_ids():
    parent = [new_signal_id() for _ in range(3)]
    ctx, got = mp.get_context("fork"), []
    for _ in range(2):
        q = ctx.Queue(); p = ctx.Process(target=_ids, args=(q,)); p.start(); got.append(q.get(timeout=60)); p.join(60)
    every = parent + got[0] + got[1]
    assert len(set(every)) == 9 and all(len(i) == 32 and int(i, 16) >= 0 for i in every)
    assert len({i[:16] for i in every}) == 3                    # one prefix per process


def test_a_signal_gets_a_fresh_id_unless_given_one():
    from datetime import datetime, timezone
    t = datetime(2026, 3, 2, 15, tzinfo=timezone.utc)
    a, b = (Signal("AAPL", SignalAction.ENTER_LONG, t, 10.0) for _ in range(2))
    assert a.id != b.id and Signal("AAPL", SignalAction.ENTER_LONG, t, 10.0, id="mine").id == "mine"
