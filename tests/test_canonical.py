"The canonical backtest equals the plain-Python reference (bench/reference_backtest.py) trade for trade."
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/"bench"))
from reference_backtest import run_reference        # noqa: E402

from swingtrader.canonical import CanonicalBacktest  # noqa: E402
from swingtrader.datasets import load_dataset        # noqa: E402
from swingtrader.sim.data import make_universe, generate_bars, resample_bars   # noqa: E402

BAR_NS = 5 * 60 * 10**9


@pytest.fixture(scope="module")
def market():
    "20 generated symbols, two months of 5-minute bars (the bench runs the whole year)."
    u = make_universe(20, 42)
    bars = {s: resample_bars(df, "5m") for s, df in sorted(generate_bars(u, date(2025, 1, 2), date(2025, 2, 28), 42).items())}
    return u, bars


def ours(bt, result):
    "Closed and open trades as (symbol, entry time ns, entry price, exit time ns, exit price, qty), in entry order."
    rows = [(t.symbol, t.entry_signal_time.value, float(t.entry_price), t.exit_signal_time.value, float(t.exit_price), float(t.qty))
            for t in result.trades.itertuples()]
    rows += [(t.symbol, pd.Timestamp(t.entry_signal_time).value, t.entry_price, None, None, t.qty) for t in bt.open_positions().itertuples()]
    return sorted(rows, key=lambda r: (r[1], r[0]))


def reference(trades):
    return sorted(((d["symbol"], d["entry_time"], d["entry_price"], d["exit_time"], d["exit_price"], float(d["qty"])) for d in trades),
                  key=lambda r: (r[1], r[0]))


def assert_same(a, b):
    assert len(a) == len(b), (len(a), len(b))
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, f"trade {i} differs: ours {x}, reference {y}"


def test_canonical_equals_reference_trade_for_trade(market):
    u, bars = market
    trades, equity = run_reference(bars, BAR_NS)
    bt = CanonicalBacktest(bars, universe=u)
    r = bt.run()
    assert len(trades) > 500 and any(d["exit_time"] is None for d in trades)          # a real test: many trades, some left open
    assert_same(ours(bt, r), reference(trades))
    assert r.summary()["final_equity"] == pytest.approx(equity, abs=0.01)
    last = max(df.index[-1] for df in bars.values()) + pd.Timedelta(BAR_NS)
    assert not (r.trades["entry_signal_time"] == last).any() and r.skipped.empty


def test_the_cash_rules_agree_when_cash_binds(market):
    "With a 20 % position cap the book runs out of cash: equity and cash are the slice's, sales refund only after it."
    u, bars = market
    trades, equity = run_reference(bars, BAR_NS, cap=0.20)
    bt = CanonicalBacktest(bars, universe=u)
    bt.trader.sizer.cap = bt.trader.guard.position_cap = Decimal("0.20")
    r = bt.run()
    assert (r.skipped["why"] == "size is zero (funds)").sum() > 50                  # cash really bound
    assert_same(ours(bt, r), reference(trades))
    assert r.summary()["final_equity"] == pytest.approx(equity, abs=0.01)


def test_canonical_on_a_loaded_dataset(tmp_path, market):
    "Bars written to Parquet and read back through `load_dataset` give the same trades as the reference on them."
    _, bars = market
    d = tmp_path/"pq"; d.mkdir()
    for s in list(bars)[:8]:
        df = bars[s][bars[s].index < pd.Timestamp("2025-01-25", tz="UTC")]
        df.rename_axis("time").reset_index().to_parquet(d/f"{s}.parquet")
    ds = load_dataset(d)
    bt = CanonicalBacktest.from_dataset(ds)
    r = bt.run()
    trades, equity = run_reference(ds.bars, BAR_NS)
    assert len(trades) > 50
    assert_same(ours(bt, r), reference(trades))
    assert r.summary()["final_equity"] == pytest.approx(equity, abs=0.01)
