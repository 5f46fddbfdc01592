"""The agent on the Alpaca emulator through AlpacaBroker (alpaca-py, unmodified): shadow mode sends nothing but audits, paper
mode places through the RiskGuard and the executor under a deterministic key and the broker fills it, every record carries the
model's id and hash, and a halted kill switch stops the agent's entries."""
import time
from datetime import date, timedelta

from swingtrader.agent import ActionGrid, AgentAction
from swingtrader.agent_runner import AgentRunner, agent_trader
from swingtrader.agent_policy import example_policy, load_policy, save_linear_policy
from swingtrader.alpaca.broker import AlpacaBroker
from swingtrader.audit import AuditLog
from swingtrader.clock import MarketCalendar
from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.models import Bar, OrderStatus
from swingtrader.risk import KillSwitch, halt
from swingtrader.session import emulated_alpaca

DAY = date(2026, 3, 2)


def _bar(sim, sym):
    df = sim.bars(sym, "1m", sim.clock.now() - timedelta(minutes=10), sim.clock.now())
    r = df.iloc[-1]
    return Bar(sym, df.index[-1].to_pydatetime(), float(r.open), float(r.high), float(r.low), float(r.close), float(r.volume), "1m")


def test_shadow_then_paper_on_the_alpaca_emulator(tmp_path):
    env = emulated_alpaca(Settings(_env_file=None, sim_symbols=3), DAY, DAY, speed=60.0,
                          start=MarketCalendar().session(DAY)[0] + timedelta(minutes=60))
    b = AlpacaBroker(env.settings, clock=env.clock, calendar=env.calendar, retry_wait=0.2)
    audit = AuditLog(tmp_path / "audit", env.clock, fsync=False)
    ledger = Ledger(tmp_path / "l.sqlite", clock=env.clock)
    try:
        pol = load_policy(save_linear_policy(tmp_path / "demo.json", *example_policy(), model_id="demo"))
        tr = agent_trader(env.settings, b, ledger, audit=audit, policy=pol, clock=env.clock,
                          kill_switch=KillSwitch(ledger, env.clock, env.settings, audit=audit))
        market = ActionGrid().index(AgentAction("market", 1.0))
        s1, s2 = env.sim.symbols[:2]
        bar = lambda s: env.server.call(lambda: _bar(env.sim, s))
        orders = lambda: env.server.call(lambda: env.sim.orders())
        st = AgentRunner(env.settings, tr, b, lambda obs: market, mode="shadow", run_id="alpaca-shadow", ramp=1.0, target_qty=3).on_bar(bar(s1))
        assert st.result == "shadow" and orders() == []                                  # audited, never sent
        paper = AgentRunner(env.settings, tr, b, lambda obs: market, mode="paper", run_id="alpaca-paper", ramp=1.0, target_qty=3)
        b1 = bar(s1)
        st = paper.on_bar(b1)
        assert st.result == "placed", st
        end = time.monotonic() + 30
        while (o := env.server.call(lambda: env.sim.order_by_client_key(st.client_key))) is None or o.status is not OrderStatus.FILLED:
            assert time.monotonic() < end, o
            time.sleep(0.05)
        assert o.filled_qty == 3                                                          # Alpaca's order carries our client key
        again = paper.on_bar(b1)                                                          # the same bar again: nothing sent twice
        assert again.result == "replayed" and len([x for x in orders() if x.client_key == st.client_key]) == 1
        halt(ledger, "test")                                                              # a halted kill switch: no new entries
        st2 = paper.on_bar(bar(s2))
        assert (st2.result, st2.decision) == ("refused", "halt")
        recs = [r for k in ("signal", "risk_check", "order") for r in audit.read(k, DAY)]
        assert recs and all("@sha256:" in (r.get("model_id") or "") for r in recs if r.get("model_id"))
        assert any(r["details"].get("client_key") == st.client_key for r in audit.read("order", DAY))
    finally:
        b.close(); ledger.close(); audit.close(); env.close()
