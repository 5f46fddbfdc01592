"The ledger's fast path (write-through caches, journal=False, long transactions) writes exactly what the plain path writes."
from __future__ import annotations
import random
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from swingtrader.clock import SimClock
from swingtrader.ledger import Ledger
from swingtrader.models import Fill, Order, OrderEvent, OrderRequest, OrderStatus, OrderUpdate, Side

SYMS = ["AAPL", "MSFT", "NVDA"]

def _ops(seed:int, n:int=400) -> list[tuple]:
    "A random but plausible stream of ledger calls: intents, submits, acks, partial/duplicate/out-of-order fills, failures, halts."
    rng, ops, live, k = random.Random(seed), [], [], 0
    saved = []                                       # `live` at the last commit: a rollback forgets what came after
    for _ in range(n):
        r = rng.random()
        if r < 0.25 or not live:
            k += 1
            key, sym = f"k{k}", rng.choice(SYMS)
            req = OrderRequest(sym, rng.choice([Side.BUY, Side.SELL]), qty=Decimal(rng.randint(1, 9)), client_key=key)
            ops.append(("intent", req))
            if rng.random() < 0.1: ops.append(("intent", req))                       # the same key twice: a no-op
            live.append([req, f"B{k}", Decimal(0), 0])
        elif r < 0.35:
            req, oid, filled, _ = rng.choice(live)
            ops.append(("submitted", req.client_key, Order.from_request(req, oid, OrderStatus.ACCEPTED, None)))
        elif r < 0.75:
            entry = rng.choice(live)
            req, oid, filled, nf = entry
            q = min(req.qty - filled, Decimal(rng.randint(1, 4)))
            if q <= 0:
                ops.append(("update", OrderUpdate(OrderEvent.FILL, Order.from_request(req, oid, OrderStatus.FILLED, None, filled_qty=filled), None)))
                continue
            entry[2] = filled = filled + q; entry[3] = nf = nf + 1
            fid = f"F{req.client_key}-{nf}"
            f = Fill(fid, oid, req.symbol, req.side, q, Decimal(rng.randint(900, 1100)) / 10, datetime(2025, 3, 3, 15, tzinfo=timezone.utc),
                     req.client_key, Decimal(rng.choice(["0", "0.35"])))
            st = OrderStatus.FILLED if filled == req.qty else OrderStatus.PARTIALLY_FILLED
            o = Order.from_request(req, oid, st, None, filled_qty=filled, avg_fill_price=f.price)
            how = rng.random()
            if how < 0.6: ops.append(("update", OrderUpdate(OrderEvent.FILL if st is OrderStatus.FILLED else OrderEvent.PARTIAL_FILL, o, None, f)))
            elif how < 0.8: ops.append(("fill", f))
            else:                                   # the broker's status runs ahead of its fill, then the fill arrives twice
                ops.append(("update", OrderUpdate(OrderEvent.PARTIAL_FILL, o, None)))
                ops.append(("fill", f)); ops.append(("fill", f))
            if rng.random() < 0.15: ops.append(("update", OrderUpdate(OrderEvent.FILL, o, None, f)))   # a duplicate fill event
        elif r < 0.80:
            req, oid, *_ = rng.choice(live)
            ops.append(("submit_failed", req.client_key, rng.random() < 0.5))
        elif r < 0.84:                               # a fill for an order the ledger never saw (adopted)
            k += 1
            sym = rng.choice(SYMS)
            ops.append(("fill", Fill(f"X{k}", f"BX{k}", sym, Side.BUY, Decimal(2), Decimal("50"), datetime(2025, 3, 3, tzinfo=timezone.utc), None)))
        elif r < 0.88:
            req, oid, *_ = rng.choice(live)
            ops.append(("update", OrderUpdate(OrderEvent.CANCELLED, Order.from_request(req, oid, OrderStatus.CANCELLED, None), None)))
        elif r < 0.91: ops.append(("halt", rng.choice(["active", "halted", "reducing"])))
        elif r < 0.94: ops.append(("stop", rng.choice(SYMS), {"stop": rng.randint(1, 99)}))
        elif r < 0.97: ops.append(("rollback",)); live = [list(e) for e in saved]
        else: ops.append(("commit",)); saved = [list(e) for e in live]
    return ops

def _apply(led:Ledger, op:tuple):
    kind = op[0]
    if kind == "intent": return led.record_intent(None, op[1])
    if kind == "submitted": return led.record_submitted(op[1], op[2])
    if kind == "update": return led.record_update(op[1])
    if kind == "fill": return led.record_fill(op[1])
    if kind == "submit_failed": return led.record_submit_failed(op[1], "timeout", definite=op[2])
    if kind == "halt": return (led.set_halt(op[1], "test", "why"), led.halt_state())
    if kind == "stop": return led.save_stop(op[1], op[2])
    raise AssertionError(kind)

class _Rollback(Exception): pass

def _run(led:Ledger, ops:list[tuple], batched:bool) -> list:
    "Apply `ops`; `batched`: inside transactions of several ops, some rolled back (the plain ledger replays only the kept ones)."
    out = []
    groups, cur = [], []
    for op in ops:
        if op[0] in ("rollback", "commit"): groups.append((cur, op[0] == "rollback")); cur = []
        else: cur.append(op)
    groups.append((cur, False))
    for g, rolled in groups:
        if batched:
            try:
                with led.transaction():
                    res = [_apply(led, op) for op in g]
                    if rolled: raise _Rollback()
                out += res
            except _Rollback: pass
        elif not rolled: out += [_apply(led, op) for op in g]
    return out

def _state(led:Ledger) -> dict:
    q = lambda sql: [tuple(r) for r in led.db.execute(sql).fetchall()]
    return {"orders": q("SELECT * FROM orders ORDER BY rowid"), "fills": q("SELECT * FROM fills ORDER BY rowid"),
            "positions": q("SELECT * FROM positions ORDER BY symbol"), "trades": q("SELECT * FROM trades ORDER BY id"),
            "stops": q("SELECT * FROM stops ORDER BY symbol"), "halt": q("SELECT * FROM halt"), "halt_history": q("SELECT * FROM halt_history ORDER BY id"),
            "events": q("SELECT at, kind, symbol, detail FROM events ORDER BY id"), "check": led.check(), "streak": led.losing_streak()}

@pytest.mark.parametrize("seed", range(6))
def test_fast_ledger_writes_what_the_plain_ledger_writes(tmp_path, seed):
    ops = _ops(seed)
    clock = SimClock(datetime(2025, 3, 3, 15, tzinfo=timezone.utc))
    plain = Ledger(tmp_path / "plain.db", clock, synchronous="OFF")                         # journal, cache cleared per transaction
    fast = Ledger(":memory:", clock, journal=False)                                          # no journal, cache kept across transactions
    fastfile = Ledger(tmp_path / "fast.db", clock, journal=False, synchronous="OFF")
    a = _run(plain, ops, batched=False)
    b, c = _run(fast, ops, batched=True), _run(fastfile, ops, batched=True)
    assert a == b == c                                                                       # every return value, LedgerOrders included
    sa, sb, sc = _state(plain), _state(fast), _state(fastfile)
    assert sa["check"] == [] and len(sa["fills"]) > 20 and len(sa["trades"]) > 0             # the stream did real work
    assert sa == sb == sc
    assert plain.db.execute("SELECT COUNT(*) FROM order_events").fetchone()[0] > 0
    assert fast.db.execute("SELECT COUNT(*) FROM order_events").fetchone()[0] == 0
    assert fast.db.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0] == 0

def test_file_ledger_cache_sees_writes_from_another_connection(tmp_path):
    "A second writer (another process, here another connection) changes rows between two transactions: nothing stale is used."
    clock = SimClock(datetime(2025, 3, 3, 15, tzinfo=timezone.utc))
    a, b = Ledger(tmp_path / "l.db", clock), Ledger(tmp_path / "l.db", clock)
    req = OrderRequest("AAPL", Side.BUY, qty=Decimal(5), client_key="k1")
    a.record_intent(None, req)
    a.record_submitted("k1", Order.from_request(req, "B1", OrderStatus.ACCEPTED, None))
    b.record_fill(Fill("F1", "B1", "AAPL", Side.BUY, Decimal(2), Decimal(10), clock.now(), "k1"))
    b.set_halt("halted", "other", "x")
    assert a.record_fill(Fill("F1", "B1", "AAPL", Side.BUY, Decimal(2), Decimal(10), clock.now(), "k1")) is False
    assert a.record_update(OrderUpdate(OrderEvent.PARTIAL_FILL, Order.from_request(req, "B1", OrderStatus.PARTIALLY_FILLED, None, filled_qty=Decimal(3)),
                                       None, Fill("F2", "B1", "AAPL", Side.BUY, Decimal(1), Decimal(13), clock.now(), "k1"))) is True
    assert (a.order("k1").filled_qty, a.position("AAPL").qty, a.position("AAPL").avg_entry_price) == (3, 3, 11)
    assert a.halt_state().state == "halted" and a.check() == []

def test_bounded_cache_still_writes_the_same(tmp_path, monkeypatch):
    "With a tiny order cache (evicted every few intents) the fast ledger still writes what the plain one writes."
    import swingtrader.ledger.book as L
    monkeypatch.setattr(L, "_CACHE_ORDERS", 3)
    ops, clock = _ops(11), SimClock(datetime(2025, 3, 3, 15, tzinfo=timezone.utc))
    plain, fast = Ledger(tmp_path / "plain.db", clock, synchronous="OFF"), Ledger(":memory:", clock, journal=False)
    assert _run(plain, ops, batched=False) == _run(fast, ops, batched=True)
    assert _state(plain) == _state(fast) and _state(fast)["check"] == []
