"""Execution agents: action → order mapping, the RiskGuard on an agent's orders, shadow / paper / live modes, the size
ramp, replays that never send twice, model id and hash in the audit — on the SimBroker."""
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest

from swingtrader.agent import (FEATURES, ActionGrid, AgentAction, AgentError, ExecutionAction, agent_client_key,
                               limit_price, order_request)
from swingtrader.agent_runner import AgentRunner, Mode, agent_trader, check_mode, drive_sim
from swingtrader.agent_policy import example_policy, load_policy, save_linear_policy
from swingtrader.audit import AuditLog
from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.models import Asset, Bar, OrderType, Quote, Side, TimeInForce
from swingtrader.risk import halt
from swingtrader.sim.broker import SimBroker
from swingtrader.stops import is_protective_key

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)

# -- action -> request ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,size,bid,ask,tick,price,tif", [
    ("limit_aggressive", 1, 99.994, 100.016, "0.01", "100.02", TimeInForce.DAY),    # buy at the far touch (ask), rounded up
    ("limit_passive", 1, 99.994, 100.016, "0.01", "99.99", TimeInForce.GTC),        # buy at the near touch (bid), rounded down
    ("limit_aggressive", -1, 99.994, 100.016, "0.01", "99.99", TimeInForce.DAY),    # sell at the far touch (bid), rounded down
    ("limit_passive", -1, 99.994, 100.016, "0.01", "100.02", TimeInForce.GTC),      # sell at the near touch (ask), rounded up
    ("limit_aggressive", 0.5, 0.51234, 0.5131, "0.0001", "0.5131", TimeInForce.DAY),
    ("limit_passive", 0.5, 0.51234, 0.5131, "0.0001", "0.5123", TimeInForce.GTC),
    ("limit_aggressive", 1, 100.0, 100.05, "0.05", "100.05", TimeInForce.DAY),       # already on the tick: unchanged
])
def test_limit_prices_on_the_tick(kind, size, bid, ask, tick, price, tif):
    a = AgentAction(kind, size)
    r = order_request(a, "AAA", Decimal(7), Quote("AAA", T0, bid, ask), Asset("AAA", tick_size=Decimal(tick)), client_key="k" * 32)
    assert (r.type, r.tif, r.limit_price, r.qty, r.client_key) == (OrderType.LIMIT, tif, Decimal(price), Decimal(7), "k" * 32)
    assert r.side is (Side.BUY if size > 0 else Side.SELL)
    # a passive limit never crosses the spread, an aggressive one always reaches the far touch
    if kind == "limit_passive": assert (r.limit_price <= Decimal(repr(bid))) if size > 0 else (r.limit_price >= Decimal(repr(ask)))
    else: assert (r.limit_price >= Decimal(repr(ask))) if size > 0 else (r.limit_price <= Decimal(repr(bid)))

def test_market_cancel_and_bad_quotes():
    r = order_request(AgentAction("market", -0.25), "AAA", Decimal(3), None)
    assert (r.type, r.side, r.tif, r.limit_price) == (OrderType.MARKET, Side.SELL, TimeInForce.DAY, None)
    with pytest.raises(AgentError, match="CANCEL sends no order"): order_request(AgentAction("cancel"), "AAA", Decimal(1), None)
    with pytest.raises(AgentError, match="needs a live quote"): order_request(AgentAction("limit_passive", 1), "AAA", Decimal(1), None)
    with pytest.raises(AgentError, match="cannot price"): limit_price(ExecutionAction.LIMIT_PASSIVE, Side.BUY, Quote("AAA", T0, 10.2, 10.1))
    with pytest.raises(AgentError, match="comes to 0 shares"): order_request(AgentAction("market", 1), "AAA", Decimal(0), None)
    with pytest.raises(AgentError, match="outside"): AgentAction("market", 1.5)

def test_action_grid_and_keys():
    g = ActionGrid((0.5, 1.0))
    assert len(g) == 13 and g.decode(0).kind is ExecutionAction.CANCEL
    assert [g.decode(i) for i in range(len(g))] == list(g.actions) and len(set(g.actions)) == len(g)
    with pytest.raises(AgentError): g.decode(-1)
    with pytest.raises(AgentError): ActionGrid((0, 1))
    a = AgentAction("market", 1)
    k = agent_client_key("r", T0, "AAA", a)
    assert k == agent_client_key("r", T0.astimezone(timezone(timedelta(hours=-5))), "AAA", a)   # the same instant
    assert len({k, agent_client_key("r", T0 + timedelta(minutes=1), "AAA", a), agent_client_key("r", T0, "BBB", a),
                agent_client_key("r", T0, "AAA", AgentAction("market", 0.5))}) == 4

# -- the runner on the simulator --------------------------------------------------------------------------------

def _policy(tmp_path, name="demo"):
    return load_policy(save_linear_policy(tmp_path / f"{name}.json", *example_policy(), model_id=name))

def _setup(tmp_path, mode="paper", seed=3, settings=None, audit=True, **kw):
    s = settings or Settings()
    b = SimBroker.from_seed(seed=seed, symbols=2, start=date(2026, 3, 2), end=date(2026, 3, 2))
    b.advance_to(b.clock.now() + timedelta(minutes=30))
    pol = _policy(tmp_path)
    a = AuditLog(tmp_path / "audit", b.clock, fsync=False) if audit else None
    led = Ledger(tmp_path / "ledger.sqlite", clock=b.clock)
    tr = agent_trader(s, b, led, audit=a, policy=pol)
    r = AgentRunner(s, tr, b, pol, mode=mode, run_id="t", **kw)
    b.add_listener(lambda ev: r.on_update(ev) if hasattr(ev, "event") and hasattr(ev, "order") else None)
    for sym in b.symbols: r.update_features(_bar(b, sym))                  # an ATR: a stop level for a new position
    return b, tr, r, pol, a

def _agents(b):
    "The broker's orders the agent sent (not its protective stops)."
    return [o for o in b.orders() if not is_protective_key(o.client_key)]

def _bar(b, sym):
    "The last closed 1-minute bar of `sym`."
    df = b.bars(sym, "1m", b.clock.now() - timedelta(minutes=10), b.clock.now())
    row = df.iloc[-1]
    return Bar(sym, df.index[-1].to_pydatetime(), float(row.open), float(row.high), float(row.low), float(row.close), float(row.volume), "1m")

def _records(a, stream):
    return a.read(stream, date(2026, 3, 2))

def test_resize_and_reject_apply_to_an_agent_order(tmp_path):
    b, tr, r, pol, a = _setup(tmp_path, target_qty=100_000, ramp=1.0)
    sym = b.symbols[0]
    st = r.act(sym, b.clock.now(), AgentAction("market", 1.0), b.latest_quote(sym), 100.0)
    assert st.decision == "resize" and st.result == "placed" and 0 < st.qty < 100_000
    (o,) = b.orders()
    assert o.qty == st.qty and o.client_key == st.client_key
    risk = [x for x in _records(a, "risk_check") if x["symbol"] == sym]
    assert [x["risk_check_result"]["action_taken"] for x in risk] == ["resize"] and risk[0]["quantity"] == float(st.qty)

def test_reject_applies_to_an_agent_order(tmp_path):
    b, tr, r, pol, a = _setup(tmp_path, settings=Settings(position_cap=0.00001), target_qty=10, ramp=1.0)   # $1 of room
    sym = b.symbols[0]
    q = b.latest_quote(sym)
    assert q.bid > 1
    st = r.act(sym, b.clock.now(), AgentAction("limit_aggressive", 1.0), q, q.mid)
    assert (st.result, st.decision) == ("refused", "reject") and b.orders() == [] and tr.ledger.orders() == []
    (rc,) = [x for x in _records(a, "risk_check") if x["symbol"] == sym]
    assert rc["risk_check_result"]["action_taken"] == "reject" and rc["model_id"] == pol.audit_id

def test_halted_kill_switch_stops_entries_not_exits(tmp_path):
    b, tr, r, pol, a = _setup(tmp_path, ramp=1.0, target_qty=10)
    sym = b.symbols[0]
    assert r.act(sym, b.clock.now(), AgentAction("market", 1.0), b.latest_quote(sym), 100.0).result == "placed"
    halt(tr.ledger, "test")
    st = r.act(sym, b.clock.now() + timedelta(minutes=1), AgentAction("market", 1.0), b.latest_quote(sym), 100.0)
    assert (st.result, st.decision) == ("refused", "halt")
    st = r.act(sym, b.clock.now() + timedelta(minutes=2), AgentAction("market", -1.0), b.latest_quote(sym), 100.0)
    assert st.result == "placed" and {p.symbol: p.qty for p in b.positions()} == {}

def test_shadow_sends_nothing_but_audits_every_action(tmp_path):
    b, tr, r, pol, a = _setup(tmp_path, mode="shadow", ramp=1.0)
    steps = drive_sim(b, r, b.symbols, 60)
    assert len(steps) == 120 and any(x.result == "shadow" for x in steps)
    assert b.orders() == [] and tr.ledger.orders() == [] and b.positions() == []
    acts = [x for x in _records(a, "health") if x["details"]["what"] == "agent_action"]
    assert len(acts) == len(steps) and all(x["details"]["mode"] == "shadow" for x in acts)
    for stream in ("health", "signal", "risk_check"):
        recs = [x for x in _records(a, stream) if stream != "health" or x["details"]["what"] == "agent_action"]
        assert recs and all(x["model_id"] == pol.audit_id for x in recs), stream
    assert _records(a, "order") == []

def test_paper_places_through_the_executor_with_the_model_hash(tmp_path):
    b, tr, r, pol, a = _setup(tmp_path, mode="paper")
    steps = drive_sim(b, r, b.symbols, 90)
    placed = [x for x in steps if x.result == "placed"]
    assert placed and all(x.qty <= 25 for x in placed)                          # ramp 0.25 of 100
    assert {x.order_id for x in placed} <= {o.id for o in b.orders()}
    # the ledger equals the broker: every broker order is in the ledger with the same status and filled qty
    for o in b.orders():
        lo = tr.ledger.order(o.client_key)
        assert lo is not None and lo.status == o.status.value and lo.broker_order_id == o.id
    held = {p.symbol: p.qty for p in b.positions()}
    assert {s: tr.held(s) for s in held} == held
    orders = _records(a, "order")
    assert len(orders) >= len(placed) and all(x["model_id"] == pol.audit_id for x in orders)
    assert pol.audit_id.endswith(pol.sha256) and len(pol.sha256) == 64
    acts = [x for x in _records(a, "health") if x["details"]["what"] == "agent_action"]
    assert len(acts) == len(r.steps) >= len(steps) and all(x["details"]["model_sha256"] == pol.sha256 for x in acts)   # + the runner's own cancels

def test_size_ramp(tmp_path):
    b, tr, r, pol, a = _setup(tmp_path, audit=False)
    assert r.ramp == 0.25 and r.qty_for(AgentAction("market", 1.0)) == 25 and r.qty_for(AgentAction("market", -0.5)) == 12
    r.set_ramp(1.0)
    assert r.qty_for(AgentAction("market", 1.0)) == 100
    with pytest.raises(AgentError, match="outside"): r.set_ramp(0)
    r2 = AgentRunner(Settings(agent_size_ramp=0.5, agent_target_qty=40), tr, b, pol, mode="paper")
    assert r2.qty_for(AgentAction("market", 1.0)) == 20
    sym = b.symbols[0]
    r.set_ramp(0.25)
    st = r.act(sym, b.clock.now(), AgentAction("market", 1.0), b.latest_quote(sym), 1.0)
    assert st.result == "placed" and b.orders()[0].qty == 25

def test_replaying_a_bar_sends_nothing_twice(tmp_path):
    b, tr, r, pol, a = _setup(tmp_path, ramp=1.0, target_qty=5)
    sym = b.symbols[0]
    r.policy = type(r.policy)(lambda obs: 1, "always_buy", "0" * 64)       # grid index 1: MARKET buy 0.25
    bar, q = _bar(b, sym), b.latest_quote(sym)
    first = r.on_bar(bar, q)
    assert first.result == "placed" and len(_agents(b)) == 1
    again = r.on_bar(bar, q)
    assert again.result == "replayed" and again.client_key == first.client_key and len(_agents(b)) == 1
    # a restarted runner with the same run id and ledger replays the bar without sending
    r2 = AgentRunner(Settings(), tr, b, r.policy, mode="paper", run_id="t", ramp=1.0, target_qty=5)
    assert r2.on_bar(bar, q).result == "replayed" and len(_agents(b)) == 1
    # another action for a bar already decided: by this runner (its memory), by a run before a restart (the ledger)
    other = AgentAction("limit_aggressive", 0.5)
    st = r.act(sym, first.time, other, q, bar.close)
    assert (st.result, st.client_key, st.why) == ("replayed", first.client_key, "this bar's order was market:+0.25 already")
    r4 = AgentRunner(Settings(), tr, b, r.policy, mode="paper", run_id="t", ramp=1.0, target_qty=5)
    st = r4.act(sym, first.time, other, q, bar.close)
    assert (st.result, st.client_key) == ("replayed", first.client_key) and len(_agents(b)) == 1
    # another run id is another decision
    r3 = AgentRunner(Settings(), tr, b, r.policy, mode="paper", run_id="t2", ramp=1.0, target_qty=5)
    assert r3.on_bar(bar, q).result == "placed" and len(_agents(b)) == 2

def test_passive_limit_then_cancel(tmp_path):
    b, tr, r, pol, a = _setup(tmp_path, ramp=1.0, target_qty=10)
    sym = b.symbols[0]
    q = b.latest_quote(sym)
    st = r.act(sym, b.clock.now(), AgentAction("limit_passive", 1.0), q, q.mid)
    o = b.order(st.order_id)
    assert st.result == "placed" and o.type is OrderType.LIMIT and o.tif is TimeInForce.GTC and o.limit_price <= Decimal(repr(q.bid))
    if o.is_open:
        assert r.working[sym][0] == o.id
        busy = r.act(sym, b.clock.now(), AgentAction("market", 1.0), q, q.mid)
        assert busy.result == "refused" and "working" in busy.why
        c = r.act(sym, b.clock.now(), AgentAction("cancel"), q, q.mid)
        assert c.result == "cancelled" and not b.order(o.id).is_open and sym not in r.working
    assert r.act(sym, b.clock.now(), AgentAction("cancel"), q, q.mid).result == "hold"

def test_modes_and_policy_files(tmp_path):
    assert check_mode(Settings(), "paper") is Mode.PAPER
    with pytest.raises(AgentError, match="not one of"): check_mode(Settings(), "both")
    with pytest.raises(AgentError, match="LIVE_CONFIRM=yes"): check_mode(Settings(), "live")
    live = Settings(broker="alpaca", environment="live", live_confirm="yes")
    assert check_mode(live, "live") is Mode.LIVE
    with pytest.raises(AgentError, match="real money"): check_mode(live, "paper")
    with pytest.raises(AgentError, match="does not exist"): load_policy(tmp_path / "nope.json")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(AgentError, match="is not .json, .onnx or .zip"): load_policy(tmp_path / "x.txt")
    (tmp_path / "y.json").write_text("{not json")
    with pytest.raises(AgentError, match="not valid JSON"): load_policy(tmp_path / "y.json")
    (tmp_path / "z.json").write_text(json.dumps({"kind": "linear", "weights": np.zeros((19, len(FEATURES) + 1)).tolist()}))
    with pytest.raises(AgentError, match="shape"): load_policy(tmp_path / "z.json")

# -- any broker's parts, the CLI ---------------------------------------------------------------------------------

def test_run_parts_on_the_simulators_streams(tmp_path):
    "The async loop over `BrokerParts` (what Alpaca / tastytrade use): bars in batches, order updates to the trader."
    import asyncio
    from swingtrader.agent_runner import run_parts
    from swingtrader.clock import SimClock
    from swingtrader.registry import sim_parts
    from swingtrader.models import OrderStatus
    s = Settings()
    b = SimBroker.from_seed(seed=5, symbols=2, start=date(2026, 3, 2), end=date(2026, 3, 2))
    b.advance_to(b.clock.now() + timedelta(minutes=10))
    b.clock = SimClock(b.clock.now(), mode="scaled", speed=300.0)           # 5 simulated minutes per second
    pol = _policy(tmp_path)
    tr = agent_trader(s, b, Ledger(tmp_path / "l.sqlite", clock=b.clock), audit=AuditLog(tmp_path / "audit", b.clock, fsync=False), policy=pol)
    r = AgentRunner(s, tr, b, pol, mode="paper", run_id="parts", ramp=1.0, target_qty=4)
    r.policy = type(r.policy)(lambda obs: 1, "always_buy", "1" * 64)     # MARKET buy 0.25 of 4: one share a bar
    async def go():
        stop = asyncio.Event()
        drv = asyncio.create_task(b.run(stop))
        try: return await asyncio.wait_for(run_parts(r, sim_parts(s, broker=b), b.symbols, "1m", max_bars=8, warmup=5, batch_window=0.05), 120)
        finally: stop.set(); await drv
    steps = asyncio.run(go())
    assert len(steps) >= 8 and {x.symbol for x in steps} == set(b.symbols)
    placed = [x for x in steps if x.result == "placed"]
    assert placed and all(b.order(x.order_id).status is OrderStatus.FILLED for x in placed)
    assert all(r.features[x].n >= 5 for x in b.symbols)                      # warmed up from the backfill
    # every fill reached the trader through the order-update stream
    assert {k: p.qty for k, p in tr.positions.items() if p.qty} == {p.symbol: p.qty for p in b.positions()}
    assert {o.client_key: (o.status, o.filled_qty) for o in tr.ledger.orders()} == {o.client_key: (o.status.value, o.filled_qty) for o in b.orders()}
    # broker stops on (the default): every position is left with one GTC stop at the broker, for the whole shares held
    stops = [o for o in b.orders("open") if is_protective_key(o.client_key)]
    assert stops and len(stops) == len({o.symbol for o in stops}) and all(o.type is OrderType.STOP for o in stops)
    assert {o.symbol: o.qty for o in stops} == {p.symbol: p.qty for p in b.positions() if p.qty}

def test_cli_agent(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from swingtrader.cli import main
    for k in list(__import__("os").environ):
        if k.startswith("SWINGTRADER_"): monkeypatch.delenv(k)
    monkeypatch.setenv("SWINGTRADER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SWINGTRADER_SIM_SYMBOLS", "3")
    pf = save_linear_policy(tmp_path / "p.json", *example_policy(), model_id="demo")
    run = CliRunner().invoke
    r = run(main, ["agent", "run", "--model", str(pf), "--mode", "shadow", "--minutes", "15"])
    assert r.exit_code == 0 and "shadow on" in r.output and "0 orders" in r.output and "budget 150 ms" in r.output, r.output
    for args, start in [(["--mode", "paperish"], "error: agent mode 'paperish' is not one of shadow, paper, live."),
                        (["--mode", "live"], "error: live mode trades real money"),
                        (["--ramp", "0"], "error: ")]:
        r = run(main, ["agent", "run", "--model", str(pf), *args])
        assert r.exit_code == 2 and r.output.startswith(start) and len(r.output.strip().splitlines()) == 1, r.output
    r = run(main, ["agent", "run", "--model", str(tmp_path / "missing.json")])
    assert r.exit_code == 2 and r.output.startswith("error: model file ") and "does not exist" in r.output, r.output

def test_a_halt_of_the_bots_ledger_stops_the_agent(tmp_path):
    b, tr, r, pol, a = _setup(tmp_path, ramp=1.0, target_qty=10)
    bot = Ledger(tmp_path / "bot.sqlite", clock=b.clock)
    r.halt_from = [Ledger(tmp_path / "bot.sqlite", readonly=True)]
    sym = b.symbols[0]
    r.policy = type(r.policy)(lambda obs: ActionGrid().index(AgentAction("limit_passive", 1.0)), "bidder", "2" * 64)
    first = r.on_bar(_bar(b, sym))
    assert first.result == "placed" and r.working                                   # a resting bid
    halt(bot, "operator says stop")
    bar = _bar(b, sym)
    st = r.on_bar(Bar(sym, bar.start + timedelta(minutes=1), bar.open, bar.high, bar.low, bar.close, bar.volume, "1m"))   # the next decision
    assert tr.ledger.halt_state().state == "halted" and "operator says stop" in tr.ledger.halt_state().reason
    assert (st.result, st.decision) == ("refused", "halt") and not r.working             # no entry; its working bid cancelled
    assert [o.status.value for o in b.orders()] == ["cancelled"]
    cancels = [x for x in _records(a, "health") if x["details"]["what"] == "agent_action" and x["details"]["result"] == "cancelled"]
    assert len(cancels) == 1 and cancels[0]["model_id"] == "bidder@sha256:" + "2" * 64


def test_a_recount_makes_the_runner_read_the_broker_again(tmp_path):
    """A sale the last account read may already have counted arrived (`Trader.recount`): the runner reads the broker again on
    its next refresh even inside its cache time, and the held count is the broker's again (was: low until the cache ran out)."""
    b, tr, r, pol, a = _setup(tmp_path, mode="paper")
    r._refresh_account()
    reads = []
    account = b.account
    b.account = lambda: (reads.append(1), account())[1]
    r._refresh_account()
    assert reads == []                                            # cached: no broker call inside the cache time
    sym = b.symbols[0]
    tr.recount = {sym}
    r._refresh_account()
    assert reads == [1] and not tr.recount                         # read again, and the fresh read clears it
