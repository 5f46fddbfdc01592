"""Trader: order-update handling, committed funds, stops, audit records, replay safety (on the SimBroker)."""
from dataclasses import replace
from datetime import datetime, timezone, date
from decimal import Decimal

import pytest

from swingtrader.config import Settings
from swingtrader.models import Account, Asset, Signal, SignalAction, OrderStatus
from swingtrader.strategy import MacdSwing
from swingtrader.sizer import Sizer
from swingtrader.risk import RiskGuard
from swingtrader.ledger import Ledger
from swingtrader.audit import AuditLog
from swingtrader.clock import SimClock
from swingtrader.backtest import Backtest
from swingtrader.trader import Trader, decision_id, client_key_for

S = Settings(warmup_bars=30)

def _bt(**kw):
    return Backtest.from_seed(S, symbols=4, start="2026-03-02", end="2026-03-06", seed=3, kill_switch=False, **kw)

def test_rejected_entries_leave_the_strategy_flat():
    bt = _bt(fill_at="quote")
    bt.broker.set_fill_mode("reject")
    res = bt.run()
    orders = bt.ledger.orders()
    assert len(orders) > 3 and {o.status for o in orders} == {"rejected"}
    assert res.trades.empty and not bt.trader.positions and not bt.trader.pending
    assert not any(bt.trader.strategy.is_long(s) for s in bt.names)
    assert not bt.trader.stops.stops and bt.ledger.stops() == {}

def test_unfilled_entries_expire_and_release_committed_funds():
    bt = _bt(fill_at="quote")
    bt.broker.set_fill_mode("never")
    seen = []
    for day in (2, 3, 4):
        bt.run(until=datetime(2026, 3, day, 19, 0, tzinfo=timezone.utc))
        seen.append((len(bt.trader.pending), bt.trader.committed()))
    bt.run()
    assert any(n > 0 for n, _ in seen)                       # orders were working at some point …
    orders = bt.ledger.orders()
    assert {o.status for o in orders} <= {"expired", "accepted", "rejected"} and any(o.status == "expired" for o in orders)
    assert bt.trader.pending == {} or all(o.status == "accepted" for o in bt.ledger.orders("open"))
    assert not any(bt.trader.strategy.is_long(s) for s in bt.names if not bt.ledger.orders("open"))
    assert bt.trader.positions == {}

def test_partial_fill_entry_opens_stop_for_what_was_bought():
    bt = _bt(fill_at="quote")
    bt.broker.set_fill_mode("partial:0.5")
    bt.run()
    buys = bt.ledger.orders()
    assert any(o.status in ("cancelled", "expired", "partially_filled") and o.filled_qty > 0 for o in buys)
    for sym, p in bt.trader.positions.items():
        assert sym in bt.trader.stops.stops and bt.trader.strategy.is_long(sym)
    assert {p.symbol: p.qty for p in bt.broker.positions()} == {s: p.qty for s, p in bt.trader.positions.items()}
    assert bt.ledger.check() == []

def test_committed_funds_prevent_double_spending():
    clock = SimClock(datetime(2026, 3, 2, 15, tzinfo=timezone.utc))
    assets = {s: Asset(s, sector=s) for s in ("AAA", "BBB", "CCC")}
    tr = Trader(S, MacdSwing.from_settings(S), Sizer.from_settings(S), RiskGuard(S), None, Ledger(":memory:", clock), clock=clock, assets=assets)
    tr.set_account(Account("A", equity=Decimal(100000), cash=Decimal(7000), settled_cash=Decimal(7000), buying_power=Decimal(7000)), [])
    t = clock.now()
    made = []
    for s in ("AAA", "BBB", "CCC"):
        tr.last[s] = 100.0; tr.last_time = t
        made += tr._entry(Signal(s, SignalAction.ENTER_LONG, t, 100.0, 1.0))
    spent = [it.request.qty * Decimal(100) for it in made]
    assert sum(spent) <= Decimal(7000)
    assert spent[0] == Decimal(5000) and spent[1] == Decimal(2000) and len(made) == 2   # the third finds no funds
    assert tr.committed() == Decimal(7000)
    assert tr.skipped[-1]["symbol"] == "CCC" and "size is zero" in tr.skipped[-1]["why"]
    # every intent is in the ledger before it is returned, under its deterministic key
    for it in made:
        assert tr.ledger.order(it.client_key).status == "pending_submit"
        assert it.client_key == client_key_for(decision_id(it.signal))

def test_same_decision_twice_is_one_order():
    clock = SimClock(datetime(2026, 3, 2, 15, tzinfo=timezone.utc))
    led = Ledger(":memory:", clock)
    mk = lambda: Trader(S, MacdSwing.from_settings(S), Sizer.from_settings(S), RiskGuard(S), None, led, clock=clock, assets={"AAA": Asset("AAA")})
    acct = Account("A", equity=Decimal(100000), cash=Decimal(100000), settled_cash=Decimal(100000), buying_power=Decimal(100000))
    a, b = mk(), mk()
    sig = Signal("AAA", SignalAction.ENTER_LONG, clock.now(), 50.0, 1.0)
    for t in (a, b): t.set_account(acct, []); t.last["AAA"] = 50.0; t.last_time = clock.now()
    first = a._entry(sig)
    led.record_submitted(first[0].client_key, __import__("swingtrader.models", fromlist=["Order"]).Order.from_request(first[0].request, "X-1", OrderStatus.ACCEPTED))
    again = b._entry(replace(sig, id="ffffffffffffffffffffffffffffffff"))   # same decision, fresh random id
    assert first and again == []
    assert len(led.orders()) == 1

def test_stop_exits_and_persistence():
    bt = Backtest.from_seed(S, symbols=6, start="2026-03-02", end="2026-03-13", seed=5, kill_switch=False)
    for day in (3, 5, 9, 11):
        bt.run(until=datetime(2026, 3, day, 18, 0, tzinfo=timezone.utc))
        assert set(bt.ledger.stops()) == set(bt.trader.positions) == set(bt.trader.stops.stops)
        for sym, d in bt.ledger.stops().items():
            assert d["entry"] == pytest.approx(float(bt.trader.positions[sym].avg_entry_price))
    res = bt.run()
    assert res.trades["exit_reason"].str.contains("<= stop").any()           # the code-side stop fired …
    assert res.trades["exit_reason"].str.startswith("macd_cross_down").any()  # … and the strategy's own exit

def test_audit_records(tmp_path):
    bt = _bt(fill_at="quote", audit=None)
    audit = AuditLog(tmp_path, bt.clock, fsync=False)
    bt.trader.audit = audit
    res = bt.run()
    days = [date(2026, 3, d) for d in range(2, 7)]
    read = lambda st: [r for d in days for r in audit.read(st, d)]
    sig, rc, fills, orders = read("signal"), read("risk_check"), read("fill"), read("order")
    assert len(fills) == len(res.fills) > 0 and len(orders) == len(bt.ledger.orders())
    ids = {o.signal_id for o in bt.ledger.orders()}
    assert ids <= {r["signal_id"] for r in sig} and ids <= {r["signal_id"] for r in rc}
    assert all(r["risk_check_result"]["action_taken"] in ("pass", "resize", "reject", "halt") for r in rc)
    assert {r["broker_order_id"] for r in fills} <= {o.broker_order_id for o in bt.ledger.orders()}
