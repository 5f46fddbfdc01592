"""A backtest's in-memory book is lazy: a run writes nothing to SQLite until somebody reads the ledger's rows, then every row
is there, the same as the result's; an error in a later run discards only that run's rows."""
from datetime import datetime, timezone

import pytest

from swingtrader.config import Settings
from swingtrader.backtest import Backtest

KW = dict(start="2026-03-02", end="2026-03-13", fill_at="close", symbols=8, seed=7)


def raw_count(bt, table:str) -> int:
    "Rows SQLite holds now (the raw connection: no hook writes the book first)."
    return bt.ledger.db.raw.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_a_run_writes_nothing_until_the_ledger_is_read():
    bt = Backtest.from_seed(Settings(warmup_bars=30), **KW)
    res = bt.run()
    assert bt.book is not None and bt.book.lazy and len(res.fills) > 20
    assert raw_count(bt, "fills") == raw_count(bt, "orders") == 0         # the result came from the book's memory
    led = bt.ledger.fill_history()                                         # the first read writes every row first
    assert raw_count(bt, "fills") == len(res.fills) == len(led) and raw_count(bt, "orders") >= len(res.fills)
    assert res.fills.fill_id.tolist() == [f["fill_id"] for f in led]
    assert res.fills.qty.tolist() == [f["qty"] for f in led] and res.fills.price.tolist() == [f["price"] for f in led]
    assert bt.ledger.check() == []


def test_an_error_in_a_later_run_keeps_the_earlier_runs_rows():
    bt = Backtest.from_seed(Settings(warmup_bars=30), **KW)
    first = bt.run(until=datetime(2026, 3, 9, 21, tzinfo=timezone.utc))
    n = len(first.fills)
    assert n > 0 and raw_count(bt, "fills") == 0
    step, calls = bt.trader.step, []
    def failing(*a, **k):
        calls.append(1)
        if len(calls) > 50: raise RuntimeError("boom")
        return step(*a, **k)
    bt.trader.step = failing
    with pytest.raises(RuntimeError, match="boom"): bt.run()
    assert [f["fill_id"] for f in bt.ledger.fill_history()] == first.fills.fill_id.tolist()   # the first run's fills, all of them
    assert bt.ledger.check() == []


def test_fills_written_past_the_book_are_in_the_result():
    "A writer holding the ledger itself (an agent runner does) adds fills the book never saw: the result reads the ledger then."
    from decimal import Decimal
    from swingtrader.models import Fill, Order, OrderEvent, OrderRequest, OrderStatus, OrderUpdate, Side
    bt = Backtest.from_seed(Settings(warmup_bars=30), **KW)
    res = bt.run()
    t, sym = bt.clock.now(), bt.names[0]
    req = OrderRequest(sym, Side.BUY, qty=Decimal(1), client_key="outside-1")
    bt.ledger.record_intent(None, req)
    o = Order("x1", req.client_key, sym, Side.BUY, req.type, req.tif, OrderStatus.FILLED, req.qty, None, None, None, req.qty,
              Decimal("10"), t, t, "filled")
    bt.ledger.record_update(OrderUpdate(OrderEvent.FILL, o, t, Fill("xf1", "x1", sym, Side.BUY, req.qty, Decimal("10"), t, req.client_key)))
    again = bt.result().fills
    assert again.fill_id.tolist() == res.fills.fill_id.tolist() + ["xf1"]
