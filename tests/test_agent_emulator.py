"""AgentRunner on a real broker adapter: the tastytrade client against the emulator (HTTP, TLS), over the seeded
SimBroker — the path Alpaca takes once its adapter is registered. Orders go through the RiskGuard and the executor with
deterministic client keys; a replayed bar sends nothing; the audit carries the model's hash."""
from datetime import date, timedelta

import pytest

from swingtrader.agent import ActionGrid, AgentAction
from swingtrader.agent_runner import AgentRunner, agent_trader
from swingtrader.agent_policy import example_policy, load_policy, save_linear_policy
from swingtrader.audit import AuditLog
from swingtrader.ledger import Ledger
from swingtrader.models import Bar, OrderType


@pytest.fixture
def sim_spec():
    return dict(seed=13, symbols=3, start=date(2026, 3, 2), end=date(2026, 3, 3), minutes=60)

def _bar(sim, sym):
    df = sim.bars(sym, "1m", sim.clock.now() - timedelta(minutes=10), sim.clock.now())
    r = df.iloc[-1]
    return Bar(sym, df.index[-1].to_pydatetime(), float(r.open), float(r.high), float(r.low), float(r.close), float(r.volume), "1m")

def test_paper_on_the_tastytrade_emulator(tmp_path, sim_broker, tt_settings, tt_client):
    sim, b = sim_broker, tt_client
    b.quotes = sim.latest_quote                      # the quote source (DXLink in the bot); orders, account, assets over HTTP
    pol = load_policy(save_linear_policy(tmp_path / "demo.json", *example_policy(), model_id="demo"))
    audit = AuditLog(tmp_path / "audit", sim.clock, fsync=False)
    tr = agent_trader(tt_settings, b, Ledger(tmp_path / "l.sqlite", clock=sim.clock), audit=audit, policy=pol, clock=sim.clock)
    g = ActionGrid()
    acts = [g.index(AgentAction("limit_aggressive", 1.0)), g.index(AgentAction("limit_passive", 0.5)), g.index(AgentAction("market", 1.0))]
    def policy(obs): return acts.pop(0)
    r = AgentRunner(tt_settings, tr, b, policy, mode="paper", run_id="emu", ramp=1.0, target_qty=4)
    s1, s2 = sim.symbols[:2]
    st1 = r.on_bar(_bar(sim, s1))
    st2 = r.on_bar(_bar(sim, s2))
    assert (st1.result, st2.result) == ("placed", "placed"), (st1, st2)
    by_key = {o.client_key: o for o in sim.orders()}
    o1, o2 = by_key[st1.client_key], by_key[st2.client_key]          # the emulator's broker has them under our keys
    assert (o1.type, o1.qty, o1.tif.value) == (OrderType.LIMIT, 4, "day")
    assert (o2.type, o2.qty, o2.tif.value) == (OrderType.LIMIT, 2, "gtc")
    q = sim.latest_quote(s2)
    assert float(o2.limit_price) <= q.bid + 1e-9
    # a replay of the same bar sends nothing, even when the policy now answers differently
    n = len(sim.orders())
    again = r.on_bar(_bar(sim, s1))
    assert (again.result, again.client_key) == ("replayed", st1.client_key) and len(sim.orders()) == n
    recs = audit.read("order", date(2026, 3, 2))
    assert {x["details"]["client_key"] for x in recs} >= {st1.client_key, st2.client_key}
    assert all(x["model_id"] == r.policy.audit_id for x in recs) and "@sha256:" in r.policy.audit_id
    assert r.latency["submission"] and all(v >= 0 for v in r.latency["total"])
