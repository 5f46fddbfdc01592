"The canonical slice's account from `start_values`, and exits that do not ask for it: the same run as with a broker snapshot at every slice."
import sys
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_backtest_fast import tables                  # noqa: E402

from swingtrader.canonical import CanonicalBacktest    # noqa: E402
from swingtrader.sizer import Sizer                    # noqa: E402
from swingtrader.risk import RiskGuard                 # noqa: E402
from swingtrader.models import SignalAction            # noqa: E402
from swingtrader.sim.data import make_universe, generate_bars, resample_bars   # noqa: E402


@pytest.fixture(scope="module")
def market():
    u = make_universe(12, 7)
    bars = {s: resample_bars(df, "5m") for s, df in sorted(generate_bars(u, date(2025, 1, 2), date(2025, 2, 14), 7).items())}
    return u, bars


def _run(market, monkeypatch, slow:bool, events:bool=True):
    "A canonical run; every account the sizer got, every entry context and decision; `slow`: a broker snapshot per slice, exits ask too."
    u, bars = market
    seen = []
    size, evaluate = Sizer.size, RiskGuard.evaluate
    def spy_size(self, sig, acct, *a, **k):
        seen.append(("size", sig.symbol, sig.time, repr(acct)))
        return size(self, sig, acct, *a, **k)
    def spy_evaluate(self, sig, ctx, qty=None, notional=None):
        d = evaluate(self, sig, ctx, qty, notional)
        entry = sig.action is SignalAction.ENTER_LONG
        seen.append(("entry" if entry else "exit", sig.symbol, sig.time, repr(d),
                     repr((ctx.account, ctx.day_pl, ctx.week_pl, ctx.positions, ctx.prices)) if entry else None))
        return d
    monkeypatch.setattr(Sizer, "size", spy_size)
    monkeypatch.setattr(RiskGuard, "evaluate", spy_evaluate)
    bt = CanonicalBacktest(bars, universe=u, events=events)
    if slow: bt._starts, bt.trader.exit_hook = False, None    # as before: the broker's snapshot at the slice's first decision
    else: assert bt._starts and bt.trader.exit_hook is not None
    r = bt.run()
    monkeypatch.undo()
    return bt, r, seen


@pytest.mark.parametrize("events", [True, False])
def test_slice_account_without_snapshots_is_the_same(market, monkeypatch, events):
    fa, ra, a = _run(market, monkeypatch, slow=False, events=events)
    fu, ru, b = _run(market, monkeypatch, slow=True, events=events)
    assert len(ra.trades) > 50
    # the case `start_values` exists for: a slice whose first decision is an exit that filled, then an entry
    first, late = {}, 0
    for kind, _, t, *_ in a:
        if kind == "size" and first.get(t) == "exit": late += 1
        first.setdefault(t, kind)
    assert late > 5
    assert a == b                                                        # same accounts (to the Decimal's digits), contexts, decisions
    assert ra.trades.equals(ru.trades) and ra.fills.equals(ru.fills) and ra.equity.equals(ru.equity)
    assert tables(fa.ledger) == tables(fu.ledger)                       # the ledger row for row, times included
    assert fa.trader.state() == fu.trader.state()                       # P&L marks too
    assert fa.broker.account() == fu.broker.account()
