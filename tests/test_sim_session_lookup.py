"SessionTable answers from its last-session cache exactly what a fresh search answers, in any order of queries."
import random

import pytest

from swingtrader.config import SwingtraderError
from swingtrader.sim.account import SessionTable

def test_cached_session_lookups_match_a_search():
    ss, rng = SessionTable(), random.Random(3)
    o, c = ss.opens, ss.closes
    k = int(o.searchsorted(1_735_000_000 * 10**9))             # around 2025
    pts = [int(x) for i in range(k - 3, k + 40) for x in (o[i] - 1, o[i], o[i] + 1, c[i] - 1, c[i], c[i] + 1)]
    pts += [rng.randrange(int(o[k - 5]), int(o[k + 45])) for _ in range(3000)] + [int(o[0]) - 1, int(o[-1]) + 10**12, 0]
    for seq in (pts, sorted(pts), sorted(pts, reverse=True)):
        for t in seq:
            i = int(o.searchsorted(t, side="right")) - 1
            is_open = i >= 0 and t < c[i]
            assert (ss.index(t), ss.is_open(t)) == (i, bool(is_open)), t
            if t < ss.start_ns:                                 # before the calendar's first day: which session is unknown
                with pytest.raises(SwingtraderError): ss.working(t)
            else: assert ss.working(t) == (i if is_open else i + 1), t
