"Table-driven RiskGuard scenarios (every rule at, just below and just above its limit) and every KillSwitch trigger."
from __future__ import annotations
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest

from swingtrader.config import Settings
from swingtrader.clock import SimClock
from swingtrader.broker import OrderNotFound
from swingtrader.ledger import Ledger, Reconciler
from swingtrader.models import (Account, Order, OrderRequest, OrderStatus, Position, Side, Signal, SignalAction)
from swingtrader.risk import KillState, KillSwitch, RiskAction, RiskContext, RiskGuard, correlation, halt, reset_halt

T0 = datetime(2025, 3, 3, 20, 0, tzinfo=timezone.utc)
EQ = Decimal(100000)
N = 60   # = correlation_lookback, so the sample correlation is exact

def returns_with_corr(r: float, seed: int = 1):
    "A base series and one whose sample correlation with it is exactly `r` (to float precision)."
    rng = np.random.default_rng(seed)
    z, w = rng.normal(size=N), rng.normal(size=N)
    z = (z - z.mean()) / z.std()
    w = w - w.mean(); w = w - (w @ z) / (z @ z) * z; w = w / w.std()
    return z * 0.01, (r * z + np.sqrt(1 - r * r) * w) * 0.01

BASE, C071 = returns_with_corr(0.71)
_, C069 = returns_with_corr(0.69)

def acct(equity=EQ, settled=None, kind="margin", dtc=None):
    return Account("A1", equity, equity, equity if settled is None else Decimal(settled), equity * 2, kind, dtc)

def pos(sym, qty, price=100): return Position(sym, Decimal(qty), Decimal(price))

def ctx(positions=(), sectors=None, returns=None, equity=EQ, **kw):
    prices = {p.symbol: Decimal(100) for p in positions} | {"NEW": Decimal(100)}
    return RiskContext(kw.pop("account", None) or acct(equity), tuple(positions), prices, sectors or {"NEW": "Tech"},
                       returns or {}, as_of=T0.date(), **kw)

def spread(n, value_each, sector=lambda i: f"sec{i}"):
    "n positions worth `value_each` USD (at $100), each in its own sector, uncorrelated (no returns)."
    ps = [pos(f"P{i}", Decimal(value_each) / 100) for i in range(n)]
    return ps, {p.symbol: sector(i) for i, p in enumerate(ps)} | {"NEW": "Tech"}

# --- scenario builders -------------------------------------------------------------------------
def sector_ctx(held_value):
    ps = [pos("T1", 50), pos("T2", 50), pos("T3", 50), pos("T4", Decimal(held_value - 15000) / 100)]
    return ctx(ps, {p.symbol: "Tech" for p in ps} | {"NEW": "Tech"})

def corr_ctx(held_value, series=C071):
    ps = [pos(f"C{i}", 50) for i in range(6)] + [pos("C6", Decimal(held_value - 30000) / 100)]
    rets = {p.symbol: series for p in ps} | {"NEW": BASE}
    return ctx(ps, {p.symbol: f"s{i}" for i, p in enumerate(ps)} | {"NEW": "Tech"}, rets)

def lev_ctx(gross, kind="margin"):
    n = int(gross // 4800)
    ps, secs = spread(n, 4800)
    rest = gross - n * 4800
    if rest: ps.append(pos("PX", Decimal(rest) / 100)); secs["PX"] = "secX"
    return ctx(ps, secs, account=acct(kind=kind))

def cash_ctx(settled): return ctx(account=acct(settled=settled, kind="cash"))
def day_ctx(day_pl): return ctx(account=acct(EQ + Decimal(day_pl)), day_pl=Decimal(day_pl))
def dt_ctx(equity, trades): return ctx(account=acct(Decimal(equity)), day_trades=trades)

E, X = SignalAction.ENTER_LONG, SignalAction.EXIT_LONG
S = Settings()
S_CASH, S_EXP, S_DT = S.model_copy(update={"account_type": "cash"}), S.model_copy(update={"account_type": "experienced"}), \
                      S.model_copy(update={"day_trade_guard": True})

# id, settings, context, action, qty, notional, expected action, expected size, failing rules
SCENARIOS = [
    # position cap: 5 % of 100k = 5,000 = 50 shares at $100
    ("position_at_limit", S, ctx(), E, 50, None, "pass", 50, []),
    ("position_just_below", S, ctx(), E, 49, None, "pass", 49, []),
    ("position_just_above", S, ctx(), E, 51, None, "resize", 50, ["position_cap"]),
    ("position_full_reject", S, ctx([pos("NEW", 50)]), E, 1, None, "reject", None, ["position_cap"]),
    ("position_partial_held", S, ctx([pos("NEW", 30)]), E, 30, None, "resize", 20, ["position_cap"]),
    ("position_notional_at", S, ctx(), E, None, "5000", "pass", Decimal("5000"), []),
    ("position_notional_above", S, ctx(), E, None, "5000.01", "resize", Decimal("5000.00"), ["position_cap"]),
    ("position_notional_below_min", S, ctx([pos("NEW", "49.995")]), E, None, "10", "reject", None, ["position_cap"]),
    ("position_fractional_resize", S, ctx(), E, "60.5", None, "resize", Decimal("50.000000"), ["position_cap"]),
    # sector cap: 25 % = 25,000; candidate 5,000
    ("sector_at_limit", S, sector_ctx(20000), E, 50, None, "pass", 50, []),
    ("sector_just_below", S, sector_ctx(19900), E, 50, None, "pass", 50, []),
    ("sector_just_above", S, sector_ctx(20100), E, 50, None, "resize", 49, ["sector_cap"]),
    ("sector_full_reject", S, sector_ctx(25000), E, 1, None, "reject", None, ["sector_cap"]),
    # correlated cap: 40 % = 40,000; 7 positions correlated 0.71 with the candidate
    ("correlated_at_limit", S, corr_ctx(35000), E, 50, None, "pass", 50, []),
    ("correlated_just_below", S, corr_ctx(34900), E, 50, None, "pass", 50, []),
    ("correlated_just_above", S, corr_ctx(35100), E, 50, None, "resize", 49, ["correlated_cap"]),
    ("correlated_threshold_below", S, corr_ctx(40000, C069), E, 50, None, "pass", 50, []),   # corr 0.69 < 0.7: not counted
    ("correlated_threshold_above", S, corr_ctx(40000, C071), E, 50, None, "reject", None, ["correlated_cap"]),
    # daily loss halt: 3 % of the day's start equity (100k)
    ("daily_loss_at_limit", S, day_ctx(-3000), E, 10, None, "halt", None, ["daily_loss"]),
    ("daily_loss_just_below", S, day_ctx(-2999), E, 10, None, "pass", 10, []),
    ("daily_loss_just_above", S, day_ctx(-3001), E, 10, None, "halt", None, ["daily_loss"]),
    # leverage: margin 1x, experienced 2x of equity (gross exposure after the entry)
    ("leverage_margin_at", S, lev_ctx(96000), E, 40, None, "pass", 40, []),
    ("leverage_margin_below", S, lev_ctx(96000), E, 39, None, "pass", 39, []),
    ("leverage_margin_above", S, lev_ctx(96000), E, 41, None, "resize", 40, ["leverage"]),
    ("leverage_experienced_at", S_EXP, lev_ctx(196000, "experienced"), E, 40, None, "pass", 40, []),
    ("leverage_experienced_above", S_EXP, lev_ctx(196000, "experienced"), E, 41, None, "resize", 40, ["leverage"]),
    ("leverage_margin_full", S, lev_ctx(100000), E, 1, None, "reject", None, ["leverage"]),
    # cash account: cost ≤ settled cash (no good-faith violations)
    ("settled_at_limit", S_CASH, cash_ctx(3000), E, 30, None, "pass", 30, []),
    ("settled_just_below", S_CASH, cash_ctx(3000), E, 29, None, "pass", 29, []),
    ("settled_just_above", S_CASH, cash_ctx(3000), E, 31, None, "resize", 30, ["settled_cash"]),
    ("settled_nothing", S_CASH, cash_ctx(50), E, 1, None, "reject", None, ["settled_cash"]),
    ("margin_ignores_settlement", S, ctx(account=acct(settled=0)), E, 50, None, "pass", 50, []),
    # day-trade guard (optional; 3 day trades in 5 days below 25k equity)
    ("daytrade_below_limit", S_DT, dt_ctx(20000, 2), E, 5, None, "pass", 5, []),
    ("daytrade_at_limit", S_DT, dt_ctx(20000, 3), E, 5, None, "reject", None, ["day_trade_guard"]),
    ("daytrade_above_limit", S_DT, dt_ctx(20000, 4), E, 5, None, "reject", None, ["day_trade_guard"]),
    ("daytrade_equity_exempt", S_DT, dt_ctx(25000, 5), E, 5, None, "pass", 5, []),
    ("daytrade_guard_off", S, dt_ctx(20000, 5), E, 5, None, "pass", 5, []),
    ("daytrade_unknown_count", S_DT, dt_ctx(20000, None), E, 5, None, "reject", None, ["day_trade_guard"]),
    # kill-switch state and exits
    ("halted_blocks_entry", S, ctx(kill_state="halted"), E, 1, None, "halt", None, ["kill_switch"]),
    ("reducing_blocks_entry", S, ctx(kill_state="reducing"), E, 1, None, "reject", None, ["kill_switch"]),
    ("exit_passes_when_halted", S, ctx([pos("NEW", 20)], kill_state="halted"), X, 20, None, "pass", 20, []),
    ("exit_passes_when_reducing", S, ctx([pos("NEW", 20)], kill_state="reducing"), X, 10, None, "pass", 10, []),
    ("exit_passes_after_daily_loss", S, replace(day_ctx(-5000), positions=(pos("NEW", 20),)), X, 20, None, "pass", 20, []),
    ("exit_capped_at_holding", S, ctx([pos("NEW", 20)]), X, 25, None, "resize", 20, ["exit_within_position"]),
    ("exit_without_position", S, ctx(), X, 5, None, "reject", None, ["exit_within_position"]),
]

@pytest.mark.parametrize("name,settings,context,action,qty,notional,expected,size,failing", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_risk_scenario(name, settings, context, action, qty, notional, expected, size, failing):
    guard = RiskGuard(settings)
    sig = Signal("NEW", action, T0, 100.0)
    d = guard.evaluate(sig, context, qty=None if qty is None else Decimal(str(qty)), notional=None if notional is None else Decimal(notional))
    assert d.action is RiskAction(expected), (d.reason, d.rules_evaluated)
    got = d.qty if d.qty is not None else d.notional
    assert got == (None if size is None else Decimal(size)), d
    assert [r.rule for r in d.rules_evaluated if not r.passed] == failing, d.rules_evaluated
    assert all(r.detail for r in d.rules_evaluated)
    audit = d.to_audit()
    assert audit["action_taken"] == expected and audit["passed"] == (expected in ("pass", "resize"))

def test_scenario_count():
    assert len(SCENARIOS) >= 30

def test_rules_evaluated_lists_every_sizing_rule():
    d = RiskGuard(S_CASH).evaluate(Signal("NEW", E, T0, 100.0), cash_ctx(100000), qty=Decimal(1))
    assert [r.rule for r in d.rules_evaluated] == ["kill_switch", "daily_loss", "position_cap", "sector_cap", "correlated_cap", "leverage", "settled_cash"]

def test_correlation_cache_is_per_day():
    g = RiskGuard(S)
    c1 = corr_ctx(35100)
    g.evaluate(Signal("NEW", E, T0, 100.0), c1, qty=Decimal(1))
    assert g._corr_day == T0.date() and len(g._corr) == 7
    g.evaluate(Signal("NEW", E, T0, 100.0), replace(c1, as_of=(T0 + timedelta(days=1)).date(), returns={}), qty=Decimal(1))
    assert len(g._corr) == 7 and all(v is None for v in g._corr.values())
    assert correlation(BASE, C071) == pytest.approx(0.71, abs=1e-12)

# --- kill switch -------------------------------------------------------------------------------
class Broker:
    "The Broker methods the kill switch uses, with real bookkeeping."
    name = "fake"
    def __init__(self, positions=(), open_orders=0, fail_cancel=False):
        self._positions, self.open, self.fail_cancel, self.submitted, self.n = list(positions), open_orders, fail_cancel, [], 0
    def cancel_all(self):
        if self.fail_cancel: raise ConnectionError("broker down")
        n, self.open = self.open, 0
        return [object()] * n
    def positions(self): return list(self._positions)
    def orders(self, status=None, since=None): return []
    def order(self, order_id): raise OrderNotFound(f"no order {order_id}")
    def order_by_client_key(self, client_key): return None
    def submit(self, req: OrderRequest):
        self.n += 1; self.submitted.append(req)
        return Order.from_request(req, f"B{self.n}", OrderStatus.ACCEPTED, T0)

@pytest.fixture
def ks_env():
    clock = SimClock(T0)
    ledger, alerts, broker = Ledger(":memory:", clock), [], Broker([pos("AAPL", 10), pos("MSFT", 5)], open_orders=3)
    return clock, ledger, alerts, broker, KillSwitch(ledger, clock, S, broker=broker, notifier=alerts.append)

@pytest.mark.parametrize("kw,trigger", [
    (dict(equity=Decimal(97001), day_pl=Decimal(-2999)), None),
    (dict(equity=Decimal(97000), day_pl=Decimal(-3000)), "daily_loss"),
    (dict(equity=Decimal(96999), day_pl=Decimal(-3001)), "daily_loss"),
    (dict(equity=Decimal(95001), week_pl=Decimal(-4999)), None),
    (dict(equity=Decimal(95000), week_pl=Decimal(-5000)), "weekly_loss"),
    (dict(equity=Decimal(94999), week_pl=Decimal(-5001)), "weekly_loss"),
    (dict(equity=EQ, losing_streak=5), None),
    (dict(equity=EQ, losing_streak=6), "losing_streak"),
])
def test_kill_switch_loss_and_streak_triggers(ks_env, kw, trigger):
    clock, ledger, alerts, broker, ks = ks_env
    assert ks.check(**kw) == trigger
    assert ks.state is (KillState.HALTED if trigger else KillState.ACTIVE)
    if trigger:
        assert ledger.halt_state().who == f"kill_switch:{trigger}"
        assert broker.open == 0 and len(alerts) == 1 and trigger in alerts[0]
        assert broker.submitted == []                      # liquidate_on_halt is off by default
    else: assert broker.open == 3 and alerts == []

def test_kill_switch_connectivity(ks_env):
    clock, ledger, alerts, broker, ks = ks_env
    assert ks.broker_lost() is None
    clock.advance(30); assert ks.broker_lost() is None and ks.state is KillState.ACTIVE
    ks.broker_ok(); clock.advance(25); assert ks.broker_lost() is None       # recovered: the timer restarts
    clock.advance(30.001); assert ks.broker_lost() == "connectivity"
    assert ks.state is KillState.HALTED and "unreachable" in ledger.halt_state().reason

def test_kill_switch_reconciliation_mismatch_via_reconciler(ks_env):
    clock, ledger, alerts, broker, ks = ks_env
    ledger.record_fill(__import__("swingtrader.models", fromlist=["Fill"]).Fill("F1", "X1", "AAPL", Side.BUY, Decimal(9), Decimal(100), T0))
    r = Reconciler(ledger, broker, ks, clock).reconcile_once()
    assert r.tripped and ks.state is KillState.HALTED and ledger.halt_state().who == "kill_switch:reconciliation_mismatch"
    assert r.mismatches == ("position AAPL: ledger 9, broker 10 (difference 100.00 USD)",) and r.adopted_positions == ("MSFT",)

def test_trip_liquidates_with_intents_first(ks_env):
    clock, ledger, alerts, broker, ks = ks_env
    rep = ks.trip("manual", "test", liquidate=True)
    assert rep.cancelled == 3 and len(rep.liquidation_orders) == 2
    assert {(r.symbol, r.side, r.qty) for r in broker.submitted} == {("AAPL", Side.SELL, 10), ("MSFT", Side.SELL, 5)}
    assert all(ledger.order(k).status == "accepted" for k in rep.liquidation_orders)

def test_trip_survives_broker_failure_and_halt_persists(tmp_path):
    clock = SimClock(T0)
    ledger = Ledger(tmp_path / "l.db", clock)
    ks = KillSwitch(ledger, clock, S, broker=Broker(fail_cancel=True))
    rep = ks.trip("manual", "test")
    assert rep.errors and "broker down" in rep.errors[0]
    ledger.close()
    assert KillSwitch(Ledger(tmp_path / "l.db", clock), clock, S).state is KillState.HALTED   # survives restart

def test_halt_and_reset_cli_api(ks_env):
    clock, ledger, alerts, broker, ks = ks_env
    halt(ledger, "news", who="bob")
    assert ks.state is KillState.HALTED and not ks.allows_entries
    cmds = ledger.take_pending_commands()
    assert [c.kind for c in cmds] == ["halt"]
    assert ks.apply(cmds[0]).startswith("halted; cancelled 3")
    with pytest.raises(Exception, match="needs who and why"): reset_halt(ledger, "", who="bob")
    reset_halt(ledger, "reviewed", who="bob")
    assert ks.state is KillState.ACTIVE
    assert [(h.state, h.who) for h in ledger.halt_history()][-3:] == [("halted", "bob"), ("halted", "kill_switch:manual"), ("active", "bob")]

# -- alerts to a person (the Notifier, 62_notify) -------------------------------------------------------

@pytest.mark.parametrize("trigger,call,limit", [
    ("daily_loss", lambda ks: ks.check(Decimal(97000), day_pl=Decimal(-3000)), "halts at a 3.00% loss of the day's start equity"),
    ("weekly_loss", lambda ks: ks.check(Decimal(95000), week_pl=Decimal(-5000)), "halts at a 5.00% loss of the week's start equity"),
    ("losing_streak", lambda ks: ks.check(EQ, losing_streak=6), "more than 5 losing trades in a row"),
    ("connectivity", lambda ks: (ks.broker_lost(), ks.clock.advance(31), ks.broker_lost()), "unreachable for more than 30 s"),
    ("manual", lambda ks: ks.trip("manual", "news"), "a person or a control surface asked for a halt"),
])
def test_trip_alert_names_rule_limit_exits_and_resume_command(trigger, call, limit):
    from swingtrader.notify import Notifier
    clock, n = SimClock(T0), Notifier(tag="")
    ks = KillSwitch(Ledger(":memory:", clock), clock, S, broker=Broker([pos("AAPL", 10)], open_orders=2), notifier=n)
    call(ks)
    assert ks.state is KillState.HALTED and len(n.history) == 1
    a = n.history[0]
    assert (a.title, a.level, a.status) == (f"HALTED ({trigger})", "critical", "recorded")
    lines = a.body.splitlines()
    assert lines[0] == f"Rule: {trigger}: {ks.threshold(trigger)}." and limit in lines[0]
    assert lines[2] == "No new entries. Exits continue (stops and exit signals still trade); cancelled 2 open orders."
    assert lines[-1] == "To resume after checking: swingtrader reset-halt --who <your name> --reason '<why it is safe to resume>'"

def test_resume_command_names_a_non_default_data_dir(tmp_path):
    clock = SimClock(T0)
    ks = KillSwitch(Ledger(":memory:", clock), clock, Settings(_env_file=None, data_dir=tmp_path / "my data"))
    assert ks.resume_command.startswith(f"SWINGTRADER_DATA_DIR='{tmp_path / 'my data'}' swingtrader reset-halt --who")

def test_reset_and_reduce_alerts_say_who_and_why():
    from swingtrader.notify import Notifier
    clock, n = SimClock(T0), Notifier(tag="")
    ks = KillSwitch(Ledger(":memory:", clock), clock, S, notifier=n)
    ks.reduce("health_monitor", "11 errors in 300 s")
    ks.reset("alice", "errors fixed")
    assert [(a.title, a.level) for a in n.history] == [("REDUCING (exits only)", "warning"), ("Trading resumed (ACTIVE)", "warning")]
    assert n.history[0].body.startswith("By health_monitor: 11 errors in 300 s.\nNo new entries; exits continue.")
    assert n.history[1].body == "Manual reset by alice: errors fixed."

def test_a_failing_notifier_never_stops_a_trip(caplog):
    def broken(msg): raise RuntimeError("chat service down")
    clock = SimClock(T0)
    broker = Broker([pos("AAPL", 10)], open_orders=3)
    ks = KillSwitch(Ledger(":memory:", clock), clock, S, broker=broker, notifier=broken)
    rep = ks.trip("manual", "test")
    assert ks.state is KillState.HALTED and rep.cancelled == 3 and broker.open == 0
    assert "kill switch notifier failed: RuntimeError" in caplog.text

def test_plain_callables_still_get_one_message_with_everything():
    clock, got = SimClock(T0), []
    ks = KillSwitch(Ledger(":memory:", clock), clock, S, notifier=got.append)
    ks.check(Decimal(97000), day_pl=Decimal(-3000))
    assert len(got) == 1 and got[0].startswith("HALTED (daily_loss)\nRule: daily_loss") and "reset-halt" in got[0]


def test_flatten_cancels_a_resting_stop_before_selling(tmp_path):
    "A protective stop left at the broker after a flatten would sell the same shares again (a short): flatten cancels it first."
    from datetime import date
    from swingtrader.models import OrderType
    from swingtrader.sim.broker import SimBroker
    sim = SimBroker.from_seed(seed=3, symbols=2, start=date(2026, 3, 2), end=date(2026, 3, 2))
    sim.advance_to(datetime(2026, 3, 2, 14, 45, tzinfo=timezone.utc))
    sym = sim.symbols[0]
    sim.submit(OrderRequest(sym, Side.BUY, qty=10))
    q = sim.latest_quote(sym)
    stop = sim.submit(OrderRequest(sym, Side.SELL, qty=10, type=OrderType.STOP, tif="gtc",
                                   stop_price=Decimal(str(round(q.bid * 0.9, 2)))))
    ks = KillSwitch(Ledger(tmp_path/"l.sqlite", clock=sim.clock), sim.clock, Settings(_env_file=None), broker=sim)
    keys, errors = ks.flatten()
    assert errors == [] and len(keys) == 1
    assert sim.order(stop.id).status is OrderStatus.CANCELLED
    assert [o for o in sim.orders("open") if o.symbol == sym] == [] and not [p for p in sim.positions() if p.qty]
