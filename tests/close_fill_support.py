"""A `SimBroker` and a `CloseFillBroker` over the same seeded market, for tests that compare the close-fill shortcut with the engine."""
from datetime import date, datetime

from swingtrader.backtest_fast import CloseFillBroker
from swingtrader.clock import SimClock
from swingtrader.sim.broker import SimBroker


def broker_pair(t0:datetime, **kw) -> list[tuple]:
    "[(SimBroker, its events), (CloseFillBroker, its events)] on 5 seeded symbols (4 days from 2026-03-02), run as a backtest runs them."
    out = []
    for cls in (SimBroker, CloseFillBroker):
        b = cls.from_seed(5, 4, start=date(2026, 3, 2), end=date(2026, 3, 6), clock=SimClock(t0, mode="manual"), fill_at="close", **kw)
        b.engine.quiet_accepts, b.account_updates = True, False
        seen = []
        b.add_listener(seen.append)
        out.append((b, seen))
    return out
