"Reconciler against an in-test broker with real order/position bookkeeping; audit records validated against AUDIT_SCHEMA."
from __future__ import annotations
import asyncio
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from swingtrader.audit import AuditLog, validate_record
from swingtrader.broker import OrderNotFound
from swingtrader.clock import SimClock
from swingtrader.config import Settings
from swingtrader.ledger import Ledger, Reconciler
from swingtrader.models import Fill, Order, OrderRequest, OrderStatus, Position, Side
from swingtrader.risk import KillState, KillSwitch

T0 = datetime(2025, 3, 3, 15, 0, tzinfo=timezone.utc)

class Book:
    "The Broker methods the reconciler and kill switch use: orders by id and client key, positions, cancel_all."
    name = "book"
    def __init__(self):
        self.by_id: dict[str, Order] = {}
        self.pos: dict[str, Position] = {}
        self.n = 0
    def submit(self, req: OrderRequest) -> Order:
        self.n += 1
        o = Order.from_request(req, f"B{self.n}", OrderStatus.ACCEPTED, T0); self.by_id[o.id] = o
        return o
    def fill(self, oid, qty, price):
        o = self.by_id[oid]
        p = self.pos.get(o.symbol, Position(o.symbol, Decimal(0), Decimal(price)))
        self.pos[o.symbol] = Position(o.symbol, p.qty + qty * o.side.sign, Decimal(price))
        st = OrderStatus.FILLED if o.filled_qty + qty == o.qty else OrderStatus.PARTIALLY_FILLED
        self.by_id[oid] = Order.from_request(OrderRequest(o.symbol, o.side, qty=o.qty, client_key=o.client_key), oid, st, T0, filled_qty=o.filled_qty + qty)
        return Fill(f"F{oid}-{o.filled_qty + qty}", oid, o.symbol, o.side, Decimal(qty), Decimal(price), T0, o.client_key)
    def positions(self): return [p for p in self.pos.values() if p.qty != 0]
    def orders(self, status=None, since=None):
        return [o for o in self.by_id.values() if status != "open" or o.is_open]
    def order(self, order_id):
        if order_id not in self.by_id: raise OrderNotFound(f"no order {order_id}", "")
        return self.by_id[order_id]
    def order_by_client_key(self, key): return next((o for o in self.by_id.values() if o.client_key == key), None)
    def cancel_all(self):
        out = []
        for k, o in list(self.by_id.items()):
            if o.is_open:
                self.by_id[k] = Order.from_request(OrderRequest(o.symbol, o.side, qty=o.qty, client_key=o.client_key), k, OrderStatus.CANCELLED, T0)
                out.append(self.by_id[k])
        return out

@pytest.fixture
def env(tmp_path):
    clock = SimClock(T0)
    ledger, book, alerts = Ledger(tmp_path / "l.db", clock), Book(), []
    audit = AuditLog(tmp_path / "audit", clock)
    ks = KillSwitch(ledger, clock, Settings(), broker=book, audit=audit, notifier=alerts.append)
    rec = Reconciler(ledger, book, ks, clock, audit=audit, tolerance=0.001, notifier=alerts.append)
    yield clock, ledger, book, ks, rec, audit, alerts
    audit.close(); ledger.close()

def send(ledger, book, sym, side, qty):
    req = OrderRequest(sym, side, qty=Decimal(qty))
    ledger.record_intent(None, req)
    o = book.submit(req); ledger.record_submitted(req.client_key, o)
    return o

def test_in_sync_is_ok(env):
    clock, ledger, book, ks, rec, audit, alerts = env
    o = send(ledger, book, "AAPL", Side.BUY, 10)
    ledger.record_fill(book.fill(o.id, Decimal(10), 100))
    send(ledger, book, "MSFT", Side.BUY, 5)                      # still working at the broker
    r = rec.reconcile_once()
    assert r.ok and not r.tripped and ks.state is KillState.ACTIVE and alerts == []

def test_difference_within_tolerance_passes_above_trips(env):
    clock, ledger, book, ks, rec, audit, alerts = env
    o = send(ledger, book, "AAPL", Side.BUY, 10000)
    ledger.record_fill(book.fill(o.id, Decimal(10000), 100))
    book.pos["AAPL"] = Position("AAPL", Decimal(10010), Decimal(100))     # 0.0999 % off: within 0.1 %
    assert rec.reconcile_once().ok
    book.pos["AAPL"] = Position("AAPL", Decimal(10011), Decimal(100))     # 0.1099 %: mismatch
    r = rec.reconcile_once()
    assert not r.ok and r.tripped and ks.state is KillState.HALTED
    assert ledger.events("reconcile_mismatch") and any("disagree" in a for a in alerts)
    recs = audit.read("health", T0.date())
    assert {x["details"]["what"] for x in recs} >= {"reconcile_mismatch", "kill_switch"}
    for x in recs: validate_record(x)

def test_missed_fill_is_a_mismatch(env):
    clock, ledger, book, ks, rec, audit, alerts = env
    o = send(ledger, book, "AAPL", Side.BUY, 10)
    book.fill(o.id, Decimal(10), 100)                           # the fill never reached the ledger
    r = rec.reconcile_once()
    assert r.refreshed_orders == (o.client_key,) and ledger.order(o.client_key).status == "filled"
    assert r.tripped and r.adopted_positions == () and "position AAPL: ledger 0, broker 10" in r.mismatches[0]

def test_unknown_broker_order_and_position_are_adopted_explicitly(env):
    clock, ledger, book, ks, rec, audit, alerts = env
    manual = book.submit(OrderRequest("TSLA", Side.BUY, qty=Decimal(2), client_key="manual-1"))
    book.pos["NVDA"] = Position("NVDA", Decimal(3), Decimal(120))
    r = rec.reconcile_once()
    assert r.ok and r.adopted_orders == (manual.id,) and r.adopted_positions == ("NVDA",)
    assert ledger.order("manual-1").adopted and ledger.position("NVDA") == Position("NVDA", Decimal(3), Decimal(120))
    assert [e["kind"] for e in ledger.events()] == ["adopt_order", "adopt_order"]
    assert {x["details"]["what"] for x in audit.read("health", T0.date())} == {"adopt_order", "adopt_position"}
    assert len(alerts) == 2 and ledger.check() == []
    assert rec.reconcile_once().adopted_positions == ()         # adopted once, then in sync

def test_ledger_order_unknown_to_broker_trips(env):
    clock, ledger, book, ks, rec, audit, alerts = env
    o = send(ledger, book, "AAPL", Side.BUY, 10)
    del book.by_id[o.id]
    r = rec.reconcile_once()
    assert r.tripped and "unknown to the broker" in r.mismatches[0]

def test_unresolved_intents_resolved_after_grace(env):
    clock, ledger, book, ks, rec, audit, alerts = env
    lost = OrderRequest("AAPL", Side.BUY, qty=Decimal(1)); ledger.record_intent(None, lost)     # crashed before the call
    got = OrderRequest("MSFT", Side.BUY, qty=Decimal(1)); ledger.record_intent(None, got)
    book.submit(got)                                                                          # crashed after the call
    assert rec.reconcile_once().resolved_intents == ()                                        # within grace: left alone
    clock.advance(31)
    r = rec.reconcile_once()
    assert set(r.resolved_intents) == {lost.client_key, got.client_key} and r.ok
    assert ledger.order(lost.client_key).status == "not_submitted" and ledger.order(got.client_key).status == "accepted"
    assert ledger.unresolved_intents() == []

def test_run_loop_survives_errors(env):
    clock, ledger, book, ks, rec, audit, alerts = env
    calls = []
    def boom(): calls.append(1); raise ConnectionError("down")
    rec.reconcile_once = boom
    async def main():
        t = asyncio.create_task(rec.run(60))
        for _ in range(3):
            await asyncio.sleep(0.05); clock.advance(60)
        await asyncio.sleep(0.05); t.cancel()
    asyncio.run(main())
    assert len(calls) >= 3 and any(x["details"]["what"] == "reconcile_error" for x in audit.read("health", T0.date()))

# --- against the real simulator (swingtrader.sim.broker.SimBroker) -------------------------------
def test_reconcile_against_simbroker(tmp_path):
    from datetime import timedelta
    from swingtrader.models import OrderUpdate
    from swingtrader.sim.broker import SimBroker
    b = SimBroker.from_seed(seed=3, symbols=4)
    clock, ledger, alerts = b.clock, Ledger(tmp_path / "sim.db", b.clock), []
    drop = {"on": False}
    b.add_listener(lambda e: isinstance(e, OrderUpdate) and not drop["on"] and ledger.record_update(e))
    ks = KillSwitch(ledger, clock, Settings(), broker=b, notifier=alerts.append)
    rec = Reconciler(ledger, b, ks, clock, notifier=alerts.append)
    s1, s2, s3 = b.symbols[:3]
    for sym in (s1, s2):
        req = OrderRequest(sym, Side.BUY, qty=Decimal(10)); ledger.record_intent(None, req)
        ledger.record_submitted(req.client_key, b.submit(req))
    b.advance_to(clock.now() + timedelta(minutes=3))
    assert {p.symbol: p.qty for p in ledger.positions()} == {p.symbol: p.qty for p in b.positions()} == {s1: 10, s2: 10}
    r = rec.reconcile_once()
    assert r.ok and not r.tripped and ledger.check() == []
    drop["on"] = True                                               # the update stream drops the next fill
    req = OrderRequest(s3, Side.BUY, qty=Decimal(5)); ledger.record_intent(None, req)
    ledger.record_submitted(req.client_key, b.submit(req))
    b.advance_to(clock.now() + timedelta(minutes=3))
    r = rec.reconcile_once()
    assert ledger.order(req.client_key).status == "filled" and ledger.fills(client_key=req.client_key) == []
    assert r.tripped and ks.state is KillState.HALTED and r.adopted_positions == ()      # a missed fill is never adopted
    assert any(f"position {s3}: ledger 0, broker 5" in m for m in r.mismatches)
    ledger.close()
