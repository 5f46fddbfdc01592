"""The backtest's fast order path (`backtest_fast`: close fills booked straight into the simulator's account, one ledger
transaction for an in-memory run) decides and books exactly what the full path (executor + matching engine, a transaction
per bar time) does: the same trades, fills, skipped signals, equity curve, ledger orders and final equity, for the default
settings (kill switch and stops on), with binding caps, and for the canonical preset."""
from datetime import date

import pandas as pd
import pytest

from swingtrader.config import Settings
from swingtrader.backtest import Backtest
from swingtrader.backtest_fast import CloseFillBroker
from swingtrader.canonical import CanonicalBacktest
from swingtrader.sim.broker import SimBroker
from swingtrader.sim.data import make_universe, generate_bars, resample_bars


def outcome(bt, res) -> dict:
    "Everything a run produced that a user reads, ids of the simulator included."
    return dict(trades=res.trades.to_dict("records"), skipped=res.skipped.to_dict("records"),
                fills=res.fills.drop(columns=["recorded_at"]).astype(str).to_dict("records"),
                equity=res.equity.round(8).to_dict("records"), final=res.summary()["final_equity"],
                orders=[(o.client_key, o.symbol, o.side, o.qty, o.status, o.filled_qty, o.avg_fill_price, o.broker_order_id)
                        for o in bt.ledger.orders()],
                positions=bt.ledger.positions(), halt=res.info["halt"], halts=res.info["halts"])


def both(make):
    "Run `make(fast)` for the fast and the full path; the two (backtest, result) pairs."
    out = []
    for fast in (True, False):
        bt = make(fast)
        out.append((bt, bt.run()))
    (a, _), (b, _) = out
    assert isinstance(a.broker, CloseFillBroker) and type(b.broker) is SimBroker
    return out


CASES = {
    "default": (dict(), dict(symbols=8, seed=7)),                                 # kill switch and stops on
    "no_kill": (dict(), dict(symbols=8, seed=7, kill_switch=False)),
    "caps": (dict(position_cap=0.02, sector_cap=0.03, correlated_cap=0.04, risk_per_trade=0.05), dict(symbols=12, seed=3, kill_switch=False)),
    "cash_account": (dict(account_type="cash"), dict(symbols=8, seed=11, kill_switch=False)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_equals_full_path(case):
    limits, kw = CASES[case]
    (fa, ra), (fu, ru) = both(lambda fast: Backtest.from_seed(Settings(warmup_bars=30, **limits), start="2026-03-02", end="2026-03-13",
                                                            fill_at="close", fast=fast, **kw))
    assert len(ra.trades) > 20 and fa.broker.fast_fills > 40                     # a real test: the shortcut carried the orders
    assert outcome(fa, ra) == outcome(fu, ru)
    assert fa.ledger.check() == [] and fu.ledger.check() == []


def test_fast_path_equals_full_path_canonical():
    u = make_universe(10, 42)
    bars = {s: resample_bars(df, "5m") for s, df in sorted(generate_bars(u, date(2025, 1, 2), date(2025, 1, 31), 42).items())}
    (fa, ra), (fu, ru) = both(lambda fast: CanonicalBacktest(bars, universe=u, fast=fast))
    assert len(ra.trades) > 100
    assert outcome(fa, ra) == outcome(fu, ru)
    pd.testing.assert_frame_equal(fa.open_positions(), fu.open_positions())


def test_quote_fills_take_the_full_path():
    "Fills at the quote (spread, volume) are the matching engine's: no shortcut."
    bt = Backtest.from_seed(Settings(warmup_bars=30), symbols=3, start="2026-03-02", end="2026-03-03", fill_at="quote")
    assert type(bt.broker) is SimBroker
