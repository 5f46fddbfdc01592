"""The backtest's fast order path (`backtest_fast`: close fills booked straight into the simulator's account, one ledger
transaction for an in-memory run) decides and books exactly what the full path (executor + matching engine, a transaction
per bar time) does: the same trades, fills, skipped signals, equity curve, ledger orders and final equity, for the default
settings (kill switch and stops on), with binding caps, and for the canonical preset."""
import re
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
    return dict(trades=res.trades.astype(str).to_dict("records"), skipped=res.skipped.astype(str).to_dict("records"),
                fills=res.fills.drop(columns=["recorded_at", "client_key"]).astype(str).to_dict("records"),
                equity=res.equity.round(8).to_dict("records"), final=res.summary()["final_equity"],
                orders=[(o.client_key if o.signal_id else "random", o.symbol, o.side, o.qty, o.status, o.filled_qty, o.avg_fill_price, o.broker_order_id)
                        for o in bt.ledger.orders()],
                positions=bt.ledger.positions(), halt=res.info["halt"], halts=res.info["halts"])


def tables(led) -> dict:
    "Every row of the ledger's book and state tables, in rowid order."
    led.db.execute("SELECT COUNT(*) FROM orders")                         # writes held in memory (the book, the connection) land first
    raw = getattr(led.db, "raw", led.db)
    out = {t: [tuple(r) for r in raw.execute(f"SELECT * FROM {t} ORDER BY rowid")]
           for t in ("orders", "fills", "positions", "trades", "stops", "halt", "halt_history", "events", "marks")}
    # a liquidation order's client key is random (uuid4) in every run: named by its place instead
    rnd = {r[0]: f"random-{i}" for i, r in enumerate(raw.execute("SELECT client_key FROM orders WHERE signal_id IS NULL ORDER BY rowid"))}
    name = lambda v: rnd.get(v, v) if isinstance(v, str) else v
    out["orders"] = [tuple(map(name, r)) for r in out["orders"]]
    out["fills"] = [tuple(map(name, r)) for r in out["fills"]]
    out["events"] = [tuple(r[:-1]) + (re.sub("|".join(rnd), "random", r[-1] or "") if rnd else r[-1],) for r in out["events"]]
    return out


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
    "liquidate": (dict(liquidate_on_halt=True), dict(symbols=8, seed=7)),                    # the trip sells through the engine
    "caps": (dict(position_cap=0.02, sector_cap=0.03, correlated_cap=0.04, risk_per_trade=0.05), dict(symbols=12, seed=3, kill_switch=False)),
    "cash_account": (dict(account_type="cash"), dict(symbols=8, seed=11, kill_switch=False)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_equals_full_path(case):
    limits, kw = CASES[case]
    def make(fast):
        bt = Backtest.from_seed(Settings(warmup_bars=30, **limits), start="2026-03-02", end="2026-03-13", fill_at="close", fast=fast, **kw)
        bt.ledger.clock = bt.clock                                              # record times from the run's clock: comparable
        return bt
    (fa, ra), (fu, ru) = both(make)
    assert len(ra.trades) > 20 and fa.broker.fast_fills > 40                     # a real test: the shortcut carried the orders
    assert outcome(fa, ra) == outcome(fu, ru)
    assert tables(fa.ledger) == tables(fu.ledger)                               # the ledger row for row
    assert fa.ledger.check() == [] and fu.ledger.check() == []


def test_fast_path_equals_full_path_canonical():
    u = make_universe(10, 42)
    bars = {s: resample_bars(df, "5m") for s, df in sorted(generate_bars(u, date(2025, 1, 2), date(2025, 1, 31), 42).items())}
    (fa, ra), (fu, ru) = both(lambda fast: CanonicalBacktest(bars, universe=u, fast=fast))
    assert len(ra.trades) > 100
    assert outcome(fa, ra) == outcome(fu, ru)
    assert tables(fa.ledger) == tables(fu.ledger)
    pd.testing.assert_frame_equal(fa.open_positions(), fu.open_positions())


def test_quote_fills_take_the_full_path():
    "Fills at the quote (spread, volume) are the matching engine's: no shortcut."
    bt = Backtest.from_seed(Settings(warmup_bars=30), symbols=3, start="2026-03-02", end="2026-03-03", fill_at="quote")
    assert type(bt.broker) is SimBroker


def test_a_run_in_parts_writes_the_same_ledger():
    "Runs continued with `run(until=...)` flush the book at each stop; a reader in between sees every row; the end is the same."
    def make(fast):
        bt = Backtest.from_seed(Settings(warmup_bars=30), start="2026-03-02", end="2026-03-13", fill_at="close", symbols=8, seed=7,
                                kill_switch=False, fast=fast)
        bt.ledger.clock = bt.clock
        return bt
    fa, fu = make(True), make(False)
    mid = pd.Timestamp("2026-03-06 18:00", tz="UTC")
    part = fa.run(until=mid)
    assert len(fa.ledger.orders()) > 10 and len(part.fills) == len(fa.ledger.fills())      # written at the stop
    assert fa.book is not None and not fa.book._rows
    ra, ru = fa.run(), fu.run()
    assert outcome(fa, ra) == outcome(fu, ru)
    assert tables(fa.ledger) == tables(fu.ledger)


def test_the_book_hands_what_it_cannot_book_to_the_ledger():
    "An update for an order the book did not record goes to the ledger (after the book's rows), and the symbol stays the ledger's."
    from datetime import datetime, timezone
    from decimal import Decimal
    from swingtrader.backtest import RunLedger
    from swingtrader.backtest_fast import BacktestBook
    from swingtrader.clock import SimClock
    from swingtrader.models import Fill, Order, OrderEvent, OrderRequest, OrderStatus, OrderUpdate, Side
    t = datetime(2026, 3, 2, 15, 30, tzinfo=timezone.utc)
    led = RunLedger(clock=SimClock(t, mode="manual"))
    book = BacktestBook(led)
    def fill(key, oid, qty, intent=True):
        req = OrderRequest("AAA", Side.BUY, qty=Decimal(qty), client_key=key)
        if intent: book.record_intent(None, req)
        o = Order(oid, key, "AAA", Side.BUY, req.type, req.tif, OrderStatus.FILLED, req.qty, None, None, None, req.qty, Decimal("10"), t, t, "filled")
        return book.record_update(OrderUpdate(OrderEvent.FILL, o, t, Fill("f" + oid, oid, "AAA", Side.BUY, req.qty, Decimal("10"), t, key)))
    assert fill("k1", "1", 3) and book._rows                                       # booked in memory
    assert fill("k2", "2", 4, intent=False)                                         # an order nobody recorded: the ledger adopts it
    assert not book._rows and "AAA" in book._ledger_syms
    assert fill("k3", "3", 5)                                                       # the symbol is the ledger's now
    book.flush()
    assert [o.client_key for o in led.orders()] == ["k1", "k2", "k3"]
    assert led.order("k2").adopted and led.position("AAA").qty == 12 and led.check() == []


def test_a_file_ledger_is_written_bar_time_by_bar_time(tmp_path):
    "A file ledger gets no in-memory book (its rows stay durable per bar time); the close-fill shortcut still runs; same results."
    kw = dict(start="2026-03-02", end="2026-03-06", fill_at="close", symbols=6, seed=7, kill_switch=False)
    f = Backtest.from_seed(Settings(warmup_bars=30), ledger=tmp_path / "run.db", **kw)
    m = Backtest.from_seed(Settings(warmup_bars=30), **kw)
    assert f.book is None and m.book is not None and isinstance(f.broker, CloseFillBroker)
    rf, rm = f.run(), m.run()
    assert f.broker.fast_fills > 10
    assert rf.trades.drop(columns=["return"]).equals(rm.trades.drop(columns=["return"])) and len(rf.fills) == len(rm.fills)
    assert f.ledger.check() == []
