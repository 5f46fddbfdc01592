"""The example policy (the shipped ONNX model, INT8 as in production) on the Alpaca emulator through AlpacaBroker for
simulated days at an accelerated clock: a full session in shadow mode, then a full session in paper mode. Every action
has an audit record with the model's id and hash; the RiskGuard resizes and rejects; a halted kill switch stops the
agent's entries; at the end the ledger equals the broker (positions, cash, every order's status and fills).

The emulator's clock is manual: the test moves it bar by bar (as bench/agent_latency.py does), so a 390-minute
session takes seconds, and nothing waits on wall time. Bars come from the simulator behind the emulator, order updates
from its event stream (the same events Alpaca's trade updates carry); quotes, orders, cancels, positions and the
account go through alpaca-py to the emulator's REST API."""
import threading
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

from swingtrader.agent_policy import example_model_path
from swingtrader.agent_runner import AgentRunner, agent_trader
from swingtrader.agent_policy import load_policy
from swingtrader.alpaca.broker import AlpacaBroker
from swingtrader.audit import AuditLog
from swingtrader.clock import UTC
from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.models import Bar, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce
from swingtrader.risk import KillSwitch, halt
from swingtrader.stops import is_protective_key

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)
ONE = timedelta(minutes=1)


class Day:
    "Drive an emulator session minute by minute: bars to the runner, the simulator's order updates to it as they come."
    def __init__(self, env, runner, symbols):
        self.env, self.runner, self.symbols = env, runner, symbols
        self.q, self.lock = [], threading.Lock()
        def listen(ev):
            if isinstance(ev, OrderUpdate):
                with self.lock: self.q.append(ev)
        self.remove = env.server.call(lambda: env.sim.add_listener(listen))
    def drain(self):
        with self.lock: got, self.q[:] = list(self.q), []
        for u in got: self.runner.on_update(u)
    def bar(self, sym, start):
        start = start.astimezone(UTC)
        r = self.env.sim.market_bars[sym].loc[start]
        return Bar(sym, start, float(r.open), float(r.high), float(r.low), float(r.close), float(r.volume), "1m")
    def run(self, day, on_minute=None):
        sim = self.env.sim
        o, c = self.env.calendar.session(day)
        t, steps = o + ONE, []
        while t <= c:
            self.env.server.call(lambda t=t: sim.advance_to(t))
            self.drain()
            if on_minute is not None: on_minute(t)
            steps += self.runner.on_bars([self.bar(s, t - ONE) for s in self.symbols])
            self.drain()
            t += ONE
        return steps
    def close(self): self.env.server.call(self.remove)


def test_example_policy_shadow_day_then_paper_day_on_the_alpaca_emulator(tmp_path, capsys):
    from swingtrader.session import emulated_alpaca
    s = Settings(_env_file=None, sim_symbols=3, sim_cash=Decimal(100_000), position_cap=0.1)
    env = emulated_alpaca(s, DAY1, DAY2, speed=1.0, history_days=1)
    env.clock.set_mode("manual")
    b = AlpacaBroker(env.settings, clock=env.clock, calendar=env.calendar, retry_wait=0.2)
    audit = AuditLog(tmp_path / "audit", env.clock, fsync=False)
    ledger = Ledger(tmp_path / "ledger.sqlite", clock=env.clock)
    day = None
    try:
        pol = load_policy(example_model_path(), int8=True)                      # the production path: ONNX Runtime, INT8 (checked)
        syms = list(env.sim.symbols[:3])
        tr = agent_trader(env.settings, b, ledger, audit=audit, policy=pol, clock=env.clock,
                          kill_switch=KillSwitch(ledger, env.clock, env.settings, audit=audit))
        start_cash = b.account().cash
        hist = {x: env.sim.market_bars[x] for x in syms}
        kw = dict(target_qty=100, ramp=1.0)                                     # a full-size buy is past the 10 % cap: resized
        # -- day 1: shadow
        shadow = AgentRunner(env.settings, tr, b, pol, mode="shadow", run_id="day-shadow", **kw)
        o1 = env.calendar.session(DAY1)[0]
        shadow.warm_up({x: df[df.index < o1] for x, df in hist.items()}, "1m")
        day = Day(env, shadow, syms)
        s1 = day.run(DAY1)
        assert len(s1) == 390 * len(syms)
        assert b.orders() == [] and ledger.orders() == []                      # shadow: audited, nothing sent, nothing recorded
        r1 = Counter(x.result for x in s1)
        assert r1["shadow"] > 0, r1
        # -- day 2: paper, the kill switch halted at 14:00 New York
        day.close()
        paper = AgentRunner(env.settings, tr, b, pol, mode="paper", run_id="day-paper", **kw)
        day = Day(env, paper, syms)
        o2, c2 = env.calendar.session(DAY2)
        halt_at = o2 + timedelta(minutes=270)
        def at(t):
            if t == halt_at: halt(ledger, "test: kill switch")
        s2 = day.run(DAY2, at)
        env.server.call(lambda: env.sim.advance_to(c2 + timedelta(minutes=5)))    # the close: day orders expire
        day.drain()
        assert len(s2) == 390 * len(syms)
        r2 = Counter(x.result for x in s2)
        decisions = Counter(x.decision for x in s2 if x.decision)
        assert r2["placed"] >= 3 and decisions["resize"] >= 1 and decisions["reject"] >= 1, (r2, decisions)
        # the halted kill switch: no entry is sent after it, buys are refused with 'halt'
        after = [x for x in s2 if x.time > halt_at]
        assert not [x for x in after if x.result == "placed" and x.action.side is Side.BUY]
        assert any(x.decision == "halt" for x in after if x.action.side is Side.BUY), Counter((x.result, x.decision) for x in after)
        # every action: one agent_action audit record with the model's id and hash; every order record carries them too
        acts = [r for d in (DAY1, DAY2) for r in audit.read("health", d) if r["details"].get("what") == "agent_action"]
        assert len(acts) == len(shadow.steps) + len(paper.steps) >= len(s1) + len(s2)   # + the cancels of working orders at the halt
        assert {r["model_id"] for r in acts} == {pol.audit_id} and {r["details"]["model_sha256"] for r in acts} == {pol.sha256}
        assert Counter(r["details"]["mode"] for r in acts) == {"shadow": len(shadow.steps), "paper": len(paper.steps)}
        orecs = [r for r in audit.read("order", DAY2)]
        assert orecs and all(r["model_id"] == pol.audit_id for r in orecs if r.get("model_id"))
        # the ledger equals the broker: every order the broker has, with its status and fills; the ones it refused at
        # submit (no broker id) are 'rejected' with the broker's reason; positions; cash
        mine = {o.client_key: o for o in ledger.orders()}
        theirs = {o.client_key: o for o in b.orders(since=env.calendar.session(DAY1)[0] - timedelta(days=1))}   # all of them, via alpaca-py
        assert theirs and set(theirs) <= set(mine)
        # broker stops on (the default): what is open at the end is one GTC stop per held position, for all of it, at the
        # trailing stop's level; the agent's day orders are gone
        held = {p.symbol: p.qty for p in b.positions() if p.qty}
        stops = b.orders("open")
        assert all(o.type is OrderType.STOP and o.side is Side.SELL and o.tif is TimeInForce.GTC and is_protective_key(o.client_key) for o in stops)
        assert {o.symbol: o.qty for o in stops} == held and len(stops) == len(held), (stops, held)
        assert any(is_protective_key(k) and o.status is OrderStatus.FILLED for k, o in theirs.items()) or held   # stops were kept
        for k, o in theirs.items():
            assert (mine[k].status, mine[k].filled_qty, mine[k].broker_order_id) == (o.status.value, o.filled_qty, o.id), (k, mine[k], o)
        refused = [mine[k] for k in set(mine) - set(theirs)]             # a stop opposite a working buy is held back: never written
        assert all(o.status == "rejected" and o.broker_order_id is None and o.error for o in refused), refused
        assert not refused, Counter(o.error[:80] for o in refused)             # nothing refused: no wash trade against the agent's orders
        assert {p.symbol: p.qty for p in ledger.positions() if p.qty} == {p.symbol: p.qty for p in b.positions() if p.qty}
        flows = sum((-1 if f.side is Side.BUY else 1) * f.qty * f.price - f.commission for f in ledger.fills())
        assert b.account().cash == start_cash + flows
        assert OrderStatus.FILLED in {o.status for o in theirs.values()} and sum(f.side is Side.SELL for f in ledger.fills()) >= 1
        with capsys.disabled():
            print(f"\nshadow day: {dict(r1)}\npaper day: {dict(r2)}; decisions {dict(decisions)}; {len(theirs)} orders at the broker "
                  f"({dict(Counter(o.status.value for o in theirs.values()))}), {len(ledger.fills())} fills; broker stops "
                  f"{dict(Counter(o.status.value for k, o in theirs.items() if is_protective_key(k)))}")
    finally:
        if day is not None: day.close()
        b.close(); ledger.close(); audit.close(); env.close()
