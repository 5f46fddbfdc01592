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
    rec = Reconciler(ledger, book, ks, clock, audit=audit, tolerance=0.001, notifier=alerts.append, sleep=lambda s: None)
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
    # the broker reports a fill the ledger has not recorded: pending (it may be on its way), not yet a mismatch
    assert (r.pending, r.tripped, r.adopted_positions) == (("AAPL",), False, ()) and ks.state is KillState.ACTIVE
    clock.advance(31)                                           # still missing after the grace: a mismatch
    r = rec.reconcile_once()
    assert r.tripped and r.adopted_positions == () and "position AAPL: ledger 0, broker 10" in r.mismatches[0]
    assert "unsettled for 31 s" in r.mismatches[0]

# --- the race between reading the ledger and reading the broker ---------------------------------
class RacyBook(Book):
    "A broker whose positions() call lets a fill land (at the broker, then in the ledger) while it is being read."
    def __init__(self, ledger):
        super().__init__(); self.ledger, self.on_read, self.land_first = ledger, [], False
    def positions(self):
        if self.land_first:                                      # the fill lands, then the broker answers (with it)
            while self.on_read: self.on_read.pop(0)()
        out = super().positions()
        while self.on_read: self.on_read.pop(0)()                # the broker answered, then the fill lands
        return out

def racy_env(tmp_path, **kw):
    clock = SimClock(T0)
    ledger = Ledger(tmp_path / "race.db", clock); book = RacyBook(ledger)
    ks = KillSwitch(ledger, clock, Settings(), broker=book)
    naps = []
    rec = Reconciler(ledger, book, ks, clock, sleep=naps.append, **kw)
    return clock, ledger, book, ks, rec, naps

def test_fill_between_the_two_reads_is_not_a_mismatch(tmp_path):
    clock, ledger, book, ks, rec, naps = racy_env(tmp_path)
    o = send(ledger, book, "AAPL", Side.BUY, 10)
    # the fill happens at the broker just after its positions were read, and the ledger records it before it is read:
    # read ledger-first this was "ledger 10, broker 0"; read broker-first it is a fill recorded during the read (pending)
    book.on_read.append(lambda: ledger.record_fill(book.fill(o.id, Decimal(10), 100)))
    r = rec.reconcile_once()
    assert (r.mismatches, r.tripped, r.pending) == ((), False, ()) and ks.state is KillState.ACTIVE
    assert naps == [rec.settle]                                 # it read both sides again after the settle pause
    assert rec.reconcile_once().ok and naps == [rec.settle]     # in sync: no pause

def test_fill_reported_but_not_yet_recorded_settles(tmp_path):
    clock, ledger, book, ks, rec, naps = racy_env(tmp_path)
    o = send(ledger, book, "AAPL", Side.BUY, 10)
    f = book.fill(o.id, Decimal(10), 100)                        # at the broker; the ledger's stream is a moment behind
    rec.sleep = lambda s: (naps.append(s), ledger.record_fill(f))   # ... and delivers it during the settle pause
    r = rec.reconcile_once()
    assert (r.ok, r.tripped, r.pending, naps) == (True, False, (), [rec.settle])
    assert ledger.position("AAPL").qty == 10

def test_real_mismatch_still_trips_at_once(tmp_path):
    clock, ledger, book, ks, rec, naps = racy_env(tmp_path)
    o = send(ledger, book, "AAPL", Side.BUY, 10)
    ledger.record_fill(book.fill(o.id, Decimal(10), 100))
    book.pos["AAPL"] = Position("AAPL", Decimal(7), Decimal(100))   # nothing in flight explains 3 shares gone
    r = rec.reconcile_once()
    assert r.tripped and ks.state is KillState.HALTED and naps == [] and "position AAPL: ledger 10, broker 7" in r.mismatches[0]

def test_pending_that_never_settles_trips_after_grace(tmp_path):
    clock, ledger, book, ks, rec, naps = racy_env(tmp_path, pending_grace=45)
    o = send(ledger, book, "AAPL", Side.BUY, 10)
    book.fill(o.id, Decimal(4), 100)                             # a partial fill the ledger never hears about
    r1 = rec.reconcile_once()
    clock.advance(30); r2 = rec.reconcile_once()
    assert (r1.pending, r2.pending, r1.tripped, r2.tripped) == (("AAPL",), ("AAPL",), False, False)
    clock.advance(30); r3 = rec.reconcile_once()
    assert r3.tripped and "unsettled for 60 s" in r3.mismatches[0] and ks.state is KillState.HALTED

def test_broker_first_fill_landing_before_the_broker_answers(tmp_path):
    "The race of `test_ledger_first_read_order_would_trip`, read broker first: no trip."
    clock, ledger, book, ks, rec, naps = racy_env(tmp_path)
    first = send(ledger, book, "AAPL", Side.BUY, 10)
    ledger.record_fill(book.fill(first.id, Decimal(10), 100))
    o = send(ledger, book, "AAPL", Side.BUY, 5)
    book.land_first = True
    book.on_read.append(lambda: ledger.record_fill(book.fill(o.id, Decimal(5), 100)))
    r = rec.reconcile_once()
    assert (r.ok, r.tripped, naps) == (True, False, [])          # both reads see the fill: nothing to re-check
    assert ledger.position("AAPL").qty == 15

def test_ledger_first_read_order_would_trip(tmp_path):
    "The race is real: reading the ledger before the broker (the old order), a fill landing in between trips the kill switch."
    clock, ledger, book, ks, rec, naps = racy_env(tmp_path, settle=0)
    first = send(ledger, book, "AAPL", Side.BUY, 10)
    ledger.record_fill(book.fill(first.id, Decimal(10), 100))
    o = send(ledger, book, "AAPL", Side.BUY, 5)
    def ledger_first(self=rec):
        mine = {p.symbol: p for p in self.ledger.positions()}
        theirs = {p.symbol: p for p in self.broker.positions() if p.qty != 0}
        return theirs, mine, set()
    rec._read_positions = ledger_first
    rec._in_flight = lambda: set()                               # the old code did not excuse differences by work in flight
    book.land_first = True
    book.on_read.append(lambda: ledger.record_fill(book.fill(o.id, Decimal(5), 100)))
    r = rec.reconcile_once()
    assert r.tripped and "position AAPL: ledger 10, broker 15" in r.mismatches[0]

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

def test_health_records_say_their_level_and_what_happened(env):
    "Each reconciliation record has a level and a one-line message, so the day's report and the dashboard can show it as it is."
    from types import SimpleNamespace
    from swingtrader.report import health_section
    clock, ledger, book, ks, rec, audit, alerts = env
    book.submit(OrderRequest("TSLA", Side.BUY, qty=Decimal(2), client_key="manual-1"))
    book.pos["NVDA"] = Position("NVDA", Decimal(3), Decimal(120))
    rec.reconcile_once()
    recs = {x["details"]["what"]: x["details"] for x in audit.read("health", T0.date())}
    assert recs["adopt_position"]["level"] == recs["adopt_order"]["level"] == "warning"
    assert recs["adopt_position"]["message"] == "adopted a position at the broker, unknown to the ledger: 3 NVDA at 120"
    assert "unknown to the ledger: buy 2 TSLA" in recs["adopt_order"]["message"]
    pending = {"what": "reconcile_pending", "level": "info", "symbol": "BNK", "ledger_qty": 334.0, "broker_qty": 0.0, "message": "in flight"}
    old_style = {"what": "adopt_position", "symbol": "X", "qty": 1.0}          # a record written before levels: shown, with its details
    html = health_section(SimpleNamespace(health=[{"timestamp": "2026-03-02T15:48:08Z", "details": d}
                                                  for d in (recs["adopt_position"], pending, old_style)])).text()
    assert "unknown to the ledger: 3 NVDA at 120" in html and "warning" in html
    assert "reconcile_pending" not in html                       # a difference in flight is information, not an alert
    assert "symbol=X, qty=1.0" in html                           # no message: its details, never an empty cell

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
    rec = Reconciler(ledger, b, ks, clock, notifier=alerts.append, settle=0)
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
    assert r.pending == (s3,) and not r.tripped and r.adopted_positions == ()         # a missed fill is never adopted ...
    b.advance_to(clock.now() + timedelta(seconds=31))
    r = rec.reconcile_once()                                                          # ... and trips once the grace is over
    assert r.tripped and ks.state is KillState.HALTED and r.adopted_positions == ()
    assert any(f"position {s3}: ledger 0, broker 5" in m for m in r.mismatches)
    ledger.close()


def _stop(ledger, book, sym, qty, px):
    req = OrderRequest(sym, Side.SELL, qty=Decimal(qty), type="stop", tif="gtc", stop_price=Decimal(px))
    ledger.record_intent(None, req)
    o = book.submit(req); ledger.record_submitted(req.client_key, o)
    return o

def test_a_resting_stop_does_not_hide_a_mismatch(env):
    "A GTC stop working untouched at the broker cannot explain a position difference: it is a mismatch at once, not 'pending'."
    clock, ledger, book, ks, rec, audit, alerts = env
    o = send(ledger, book, "AAPL", Side.BUY, 10)
    ledger.record_fill(book.fill(o.id, Decimal(10), 100))
    _stop(ledger, book, "AAPL", 10, 95)
    book.pos["AAPL"] = Position("AAPL", Decimal(7), Decimal(100))        # someone sold 3 outside the bot
    r = rec.reconcile_once()
    assert r.tripped and r.pending == () and any("AAPL" in m for m in r.mismatches)

def test_a_stop_that_filled_at_the_broker_is_in_flight(env):
    "A stop the broker filled before the ledger heard of it explains the difference: pending, not a mismatch."
    clock, ledger, book, ks, rec, audit, alerts = env
    o = send(ledger, book, "AAPL", Side.BUY, 10)
    ledger.record_fill(book.fill(o.id, Decimal(10), 100))
    st = _stop(ledger, book, "AAPL", 10, 95)
    book.fill(st.id, Decimal(10), 95)                                    # filled at the broker; the fill is on its way
    r = rec.reconcile_once()
    assert not r.tripped and r.pending == ("AAPL",) and r.mismatches == ()
