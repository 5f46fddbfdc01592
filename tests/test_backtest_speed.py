"""Backtest fast paths change nothing (the pins were taken with the kill switch off, then the default; "kill" pins it on): a seed's trades, fills, skipped signals, equity curve and orders are pinned (digests
taken before any speed work), for the default backtest in close and quote fill modes, with binding caps and with the kill switch."""
import hashlib

import pytest

from swingtrader.config import Settings
from swingtrader.backtest import Backtest


def digest(bt, res) -> dict:
    "Short sha256 digests of what a backtest produced (the trades, fills, skipped signals, equity curve and orders)."
    parts = dict(trades=res.trades.drop(columns=["return"]).to_csv(index=False),
                 fills=res.fills[["symbol", "side", "qty", "price", "commission", "time"]].astype(str).to_csv(index=False),
                 skipped=res.skipped[["time", "symbol", "action", "why"]].astype(str).to_csv(index=False),
                 equity=res.equity.round(6).to_csv(),
                 orders="\n".join(f"{o.symbol} {o.side} {o.qty} {o.status}" for o in bt.ledger.orders()))
    return {k: hashlib.sha256(v.encode()).hexdigest()[:16] for k, v in parts.items()}


CAPS = dict(position_cap=0.02, sector_cap=0.03, correlated_cap=0.04, risk_per_trade=0.05)
CASES = {
    "close": (dict(), dict(symbols=8, seed=7, fill_at="close", kill_switch=False), 218, 437, 0, 100491.59,
              {'trades': '36c147f33bc62eb7', 'fills': 'ece4951b718542ae', 'skipped': '57e1603da4d06637', 'equity': '3fe11aac6af63de8', 'orders': '4c6feaa494dab50e'}),
    "quote": (dict(), dict(symbols=8, seed=7, fill_at="quote", kill_switch=False), 207, 415, 0, 99541.65,
              {'trades': '96d31aff8af30789', 'fills': '6de182a9903e8926', 'skipped': '57e1603da4d06637', 'equity': '355a02bc3666a18f', 'orders': '45ccc1309fa4e423'}),
    "caps": (CAPS, dict(symbols=12, seed=3, fill_at="quote", kill_switch=False), 281, 564, 2, 99068.34,
             {'trades': '66b657bddbeeffb2', 'fills': 'cce7d4bbdc2d2d89', 'skipped': '0dd5bd15cfb9b1a3', 'equity': '32ecbd14257d8fd8', 'orders': '9af2f0ef37673580'}),
    "kill": (dict(), dict(symbols=12, seed=3, kill_switch=True), 20, 40, 275, 99643.44,
             {'trades': 'a65409649730ba44', 'fills': 'da4ea5012f57f4cd', 'skipped': 'ccd8ebe0d510f32a', 'equity': 'faa4fb0754b29eda', 'orders': 'f65b2ad29ec0376d'}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_pinned_default_backtest(case):
    limits, kw, n_trades, n_fills, n_skipped, final, want = CASES[case]
    bt = Backtest.from_seed(Settings(warmup_bars=30, **limits), start="2026-03-02", end="2026-03-20", **kw)
    res = bt.run()
    assert (len(res.trades), len(res.fills), len(res.skipped)) == (n_trades, n_fills, n_skipped)
    assert res.summary()["final_equity"] == final
    assert digest(bt, res) == want
    assert bt.ledger.check() == []


def test_lazy_correlations_decide_the_same():
    "A guard that skips correlations when the correlated cap cannot bind decides exactly what the full guard decides."
    import random
    from datetime import date, datetime, timezone
    from decimal import Decimal
    from swingtrader.models import Account, Position, Signal, SignalAction
    from swingtrader.risk import RiskContext, RiskGuard
    rng = random.Random(3)
    syms = [f"S{i}" for i in range(8)]
    full, lazy = RiskGuard(Settings(correlated_cap=0.3, sector_cap=1.0)), RiskGuard(Settings(correlated_cap=0.3, sector_cap=1.0))
    lazy.lazy_correlations = True
    base = [rng.gauss(0, 0.01) for _ in range(60)]
    rets = {s: [b * rng.choice([1, 1, -1]) + rng.gauss(0, 0.004) for b in base] for s in syms}
    n_skipped = n_resized = 0
    for day in range(1, 200):
        held = rng.sample(syms[1:], rng.randint(0, 6))
        pos = [Position(s, Decimal(rng.randint(1, 150)), Decimal(100), Decimal(100)) for s in held]
        ctx = RiskContext(Account("A", Decimal(100000), Decimal(50000), Decimal(50000), Decimal(200000)), pos,
                          prices={s: Decimal(100) for s in syms}, returns=rets, as_of=date(2026, 1, 1) + (date(2026, 1, 2) - date(2026, 1, 1)) * day)
        sig = Signal("S0", SignalAction.ENTER_LONG, datetime(2026, 3, 2, 15, tzinfo=timezone.utc), 100.0, 1.0, "test", "m")
        q = Decimal(rng.randint(1, 400))
        a, b = full.evaluate(sig, ctx, qty=q), lazy.evaluate(sig, ctx, qty=q)
        assert (a.action, a.qty, a.notional) == (b.action, b.qty, b.notional)
        n_skipped += "not computed" in b.rules_evaluated[-2].detail
        n_resized += a.action.value == "resize" and "correlated_cap" in a.reason
    assert n_skipped > 20 and n_resized > 5, (n_skipped, n_resized)      # both paths were exercised


def _tables(led) -> dict:
    "Every row of the book's and state's tables, in rowid order."
    led.db.execute("SELECT COUNT(*) FROM orders")                         # writes held in memory (the book, the connection) land first
    raw = getattr(led.db, "raw", led.db)
    return {t: [tuple(r) for r in raw.execute(f"SELECT * FROM {t} ORDER BY rowid")]
            for t in ("orders", "fills", "positions", "trades", "stops", "halt", "halt_history", "events", "marks")}


@pytest.mark.parametrize("case", ["close", "kill", "caps"])
def test_deferred_writes_leave_the_same_ledger(case):
    "A backtest's in-memory ledger batches the book's writes; its tables end up row for row what direct writes give."
    from swingtrader.backtest import RunLedger
    limits, kw, *_ = CASES[case]
    runs = []
    for deferred in (True, False):
        led = RunLedger()
        if not deferred: led.db = led.db.raw                              # every statement at once, as a live ledger writes
        bt = Backtest.from_seed(Settings(warmup_bars=30, **limits), start="2026-03-02", end="2026-03-13", ledger=led, **kw)
        bt.ledger.clock = bt.clock
        res = bt.run()
        runs.append((res, _tables(bt.ledger), bt.ledger.db))
    (a, ta, db), (b, tb, _) = runs
    assert type(db).__name__ == "DeferredWrites" and len(ta["orders"]) > 20 and len(ta["fills"]) > 20
    assert ta == tb
    assert a.trades.equals(b.trades)
