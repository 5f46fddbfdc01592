"""The event loop (`backtest_events`: only the bars where the trader can act are stepped) decides and books exactly what
stepping every bar does: the same trades, fills, skipped signals, equity, ledger rows and final state, for the default
settings (trailing stops and kill switch on), binding caps, a cash account, fills at the close, the next bar and the quote
(orders that rest and fill later), a file ledger, a run in parts, a checkpoint and resume, and the canonical preset."""
from datetime import date

import pandas as pd
import pytest

from swingtrader.config import Settings
from swingtrader.backtest import Backtest
from swingtrader.canonical import CanonicalBacktest
from swingtrader.sim.data import make_universe, generate_bars, resample_bars
from test_backtest_fast import outcome, tables


def state(bt) -> dict:
    "What the trader carries to the next bar: the strategy's indicators and positions, last closes, daily closes."
    t = bt.trader
    return dict(strategy=t.strategy.state(), last=dict(t.last), daily={k: list(v) for k, v in t.daily.items()}, last_time=t.last_time,
                positions=t.positions, stops=t.stops.to_dict() if t.stops is not None and hasattr(t.stops, "to_dict") else None)


def watch(bt):
    "Record every risk context the trader builds: the symbol, time, prices and positions each decision was judged on."
    seen, ctx = [], bt.trader.context
    def context(symbol, at, full=True):
        c = ctx(symbol, at, full)
        seen.append((symbol, at, full, sorted(c.prices.items()), sorted((p.symbol, p.qty, p.market_price) for p in c.positions),
                     c.day_pl, c.week_pl, {s: c.returns[s] for s in c.returns}))
        return c
    bt.trader.context = context
    bt.contexts = seen
    return bt


def pair(make):
    "Run `make(events)` with and without the event loop; both (backtest, result) pairs."
    out = []
    for events in (True, False):
        bt = watch(make(events))
        out.append((bt, bt.run()))
    return out


def same(a, b):
    (ea, ra), (eb, rb) = a, b
    assert outcome(ea, ra) == outcome(eb, rb)
    assert tables(ea.ledger) == tables(eb.ledger)
    assert state(ea) == state(eb)
    assert ea.contexts == eb.contexts and len(ea.contexts) > 20               # every decision judged on the same prices and returns
    assert ea.ledger.check() == [] and eb.ledger.check() == []


CASES = {
    "default": (dict(), dict(symbols=8, seed=7)),                                 # stops (every held bar) and kill switch on
    "no_stops": (dict(), dict(symbols=8, seed=7, stops=False)),
    "liquidate": (dict(liquidate_on_halt=True), dict(symbols=8, seed=7)),
    "caps": (dict(position_cap=0.02, sector_cap=0.03, correlated_cap=0.04, risk_per_trade=0.05), dict(symbols=12, seed=3, kill_switch=False)),
    "cash_account": (dict(account_type="cash"), dict(symbols=8, seed=11, kill_switch=False)),
}

@pytest.mark.parametrize("fill_at", ["close", "bar", "quote"])
@pytest.mark.parametrize("case", list(CASES))
def test_event_loop_equals_every_bar(case, fill_at):
    limits, kw = CASES[case]
    def make(events):
        bt = Backtest.from_seed(Settings(warmup_bars=30, **limits), start="2026-03-02", end="2026-03-13", fill_at=fill_at, events=events, **kw)
        bt.ledger.clock = bt.clock                                                  # record times from the run's clock: comparable
        return bt
    a, b = pair(make)
    assert len(a[1].trades) > 20
    same(a, b)


def test_the_event_loop_skips_most_bars():
    "A real test of the shortcut: far fewer strategy steps than bars."
    bt = Backtest.from_seed(Settings(warmup_bars=30), start="2026-03-02", end="2026-03-13", fill_at="close", symbols=8, seed=7, stops=False)
    calls = []
    step = bt.trader.strategy.step
    bt.trader._step = lambda *a: calls.append(a[0]) or step(*a)
    r = bt.run()
    assert len(r.trades) > 20 and 0 < len(calls) < len(bt.tape.sym) / 4


def test_a_run_in_parts_and_a_resume_equal_one_run(tmp_path):
    "run(until=…) twice, then a checkpoint and a resumed backtest: the same as one bar-by-bar run."
    kw = dict(start="2026-03-02", end="2026-03-13", fill_at="close", symbols=8, seed=7, kill_switch=False)
    one = Backtest.from_seed(Settings(warmup_bars=30), events=False, ledger=tmp_path / "one.db", **kw)
    r_one = one.run()
    parts = Backtest.from_seed(Settings(warmup_bars=30), ledger=tmp_path / "parts.db", **kw)
    parts.run(until=pd.Timestamp("2026-03-04 17:00", tz="UTC"))
    parts.run(until=pd.Timestamp("2026-03-06 18:00", tz="UTC"))
    ck = parts.checkpoint(tmp_path / "sim.json")
    parts.ledger.close()
    resumed = Backtest.from_seed(Settings(warmup_bars=30), ledger=tmp_path / "parts.db", resume_from=ck, **kw)
    r = resumed.run()
    key = lambda df: df.drop(columns=["return"], errors="ignore").reset_index(drop=True)
    assert len(r_one.trades) > 20
    pd.testing.assert_frame_equal(key(r.trades), key(r_one.trades))
    assert resumed.trader.strategy.state() == one.trader.strategy.state()
    assert resumed.ledger.check() == []


def test_canonical_event_loop_equals_every_bar():
    u = make_universe(10, 42)
    bars = {s: resample_bars(df, "5m") for s, df in sorted(generate_bars(u, date(2025, 1, 2), date(2025, 1, 31), 42).items())}
    a, b = pair(lambda events: CanonicalBacktest(bars, universe=u, events=events))
    assert len(a[1].trades) > 100
    same(a, b)
    pd.testing.assert_frame_equal(a[0].open_positions(), b[0].open_positions())


def test_after_a_warm_up_the_event_loop_equals_every_bar():
    "History fed first (strategy indicators, last closes; no daily bookkeeping): the loop continues from that state."
    u = make_universe(6, 5)
    hist = {s: resample_bars(df, "5m") for s, df in generate_bars(u, date(2026, 2, 23), date(2026, 2, 27), 5).items()}
    bars = {s: resample_bars(df, "5m") for s, df in generate_bars(u, date(2026, 3, 2), date(2026, 3, 13), 5).items()}
    def make(events):
        bt = Backtest(bars, Settings(warmup_bars=60, correlated_cap=0.05), universe=u, events=events)
        assert bt.warm_up(hist) > 1000
        bt.ledger.clock = bt.clock
        return bt
    a, b = pair(make)
    assert len(a[1].trades) > 10
    same(a, b)
