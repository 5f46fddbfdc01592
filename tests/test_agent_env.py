"""The gymnasium environment over the simulator: check_env, seeded determinism, vectorised copies, limit orders in
the matching engine, and the same fills as the AgentRunner on the simulator for the same actions."""
from datetime import date, datetime, timedelta

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import SyncVectorEnv

from swingtrader.agent import ActionGrid, AgentAction, AgentError, FEATURES
from swingtrader.agent_env import ENV_ID, ExecutionEnv, fills
from swingtrader.agent_runner import AgentRunner, agent_trader, drive_sim
from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.sim.broker import SimBroker

def _rollout(env, seed, actions):
    obs, info = env.reset(seed=seed)
    out = [(obs.tolist(), info["time"])]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs.tolist(), r, term, trunc, info["result"], info["equity"]))
        if term: break
    return out, fills(env)

def test_check_env_passes():
    check_env(ExecutionEnv(episode_bars=15), skip_render_check=True)
    env = gym.make(ENV_ID, episode_bars=5)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (len(FEATURES),) and obs.dtype == np.float32 and env.action_space.n == len(ActionGrid())

def test_same_seed_same_trajectory():
    env = ExecutionEnv(episode_bars=60, sim_options={"commission_per_share": "0.005", "slippage_bps": 1})
    acts = [int(a) for a in np.random.default_rng(11).integers(env.action_space.n, size=60)]
    a, fa = _rollout(env, 4, acts)
    b, fb = _rollout(ExecutionEnv(episode_bars=60, sim_options={"commission_per_share": "0.005", "slippage_bps": 1}), 4, acts)
    assert a == b and fa == fb and len(a) == 61 and a[-1][2] is True
    assert fa, "random actions should trade"
    c, _ = _rollout(env, 5, acts)
    assert c != a
    # costs are in the reward: the summed reward is the equity change in bps of the start
    eq0 = 100_000
    assert sum(x[1] for x in a[1:]) == pytest.approx((a[-1][5] - eq0) / eq0 * 10_000, abs=1e-6)

def test_vectorised_copies():
    v = SyncVectorEnv([lambda: ExecutionEnv(episode_bars=8) for _ in range(3)])
    obs, _ = v.reset(seed=[1, 2, 3])
    assert obs.shape == (3, len(FEATURES))
    ends = 0
    for _ in range(10):
        obs, r, term, trunc, info = v.step(np.array([1, 7, 13]))
        ends += int(term.sum())
        assert obs.shape == (3, len(FEATURES)) and np.isfinite(r).all()
    assert ends == 3
    v.close()

def test_limit_orders_rest_and_fill_in_the_matching_engine():
    g = ActionGrid()
    env = ExecutionEnv(episode_bars=120)
    env.reset(seed=2)
    t0, q = env.broker.clock.now(), env.broker.latest_quote(env.symbol)
    env.step(g.index(AgentAction("limit_passive", 1.0)))          # a bid at the near touch: never filled on arrival
    (o,) = env.broker.orders()
    assert (o.type.value, o.tif.value) == ("limit", "gtc") and float(o.limit_price) <= q.bid
    for _ in range(100):
        if not env.broker.order(o.id).is_open: break
        _, _, _, _, info = env.step(g.index(AgentAction("market", 1.0)))          # waits while the bid works
        assert info["result"] == "working"
    o = env.broker.order(o.id)
    (f,) = [f for f in fills(env)]
    assert o.status.value == "filled" and o.avg_fill_price <= o.limit_price and f[0] >= t0       # filled by the next bar, at no more than the bid
    env.reset(seed=2)
    env.step(g.index(AgentAction("limit_aggressive", 1.0)))       # at the far touch: fills at once
    (o,) = env.broker.orders()
    assert o.status.value == "filled" and o.avg_fill_price <= o.limit_price and float(o.limit_price) >= q.ask

def test_bad_env_arguments():
    with pytest.raises(AgentError, match="cannot make an episode"): ExecutionEnv(episode_bars=0)
    with pytest.raises(AgentError, match="is not in the market"): ExecutionEnv(symbol="NOPE")
    with pytest.raises(AgentError, match="has .* bars"): ExecutionEnv(episode_bars=5000)
    with pytest.raises(AgentError, match="step before reset"): ExecutionEnv(episode_bars=5).step(0)

def test_env_fills_equal_the_runner_on_the_simulator(tmp_path):
    "The same actions give the same fills in the environment and through AgentRunner (risk wide open, no stops)."
    g = ActionGrid()
    seq = [g.index(AgentAction(k, s)) for k, s in [("market", 1.0), ("cancel", 0), ("limit_passive", -0.5), ("cancel", 0),
                                                   ("limit_aggressive", -1.0), ("limit_passive", 1.0), ("cancel", 0),
                                                   ("limit_aggressive", 0.5), ("market", -1.0)]] * 4
    env = ExecutionEnv(episode_bars=len(seq), target_qty=20)
    env.reset(seed=9)
    start = env.broker.clock.now()
    for a in seq: env.step(a)
    env_fills = [(t, side, q, p) for t, side, q, p in fills(env)]
    assert env_fills
    s = Settings(position_cap=1, sector_cap=1, correlated_cap=1)
    b = SimBroker.from_seed(seed=7, symbols=2, start=date(2026, 3, 2), end=date(2026, 3, 3))
    b.advance_to(start - timedelta(minutes=1))
    it = iter(seq)
    tr = agent_trader(s, b, Ledger(tmp_path / "l.sqlite", clock=b.clock), stops=False)
    r = AgentRunner(s, tr, b, lambda obs: next(it), mode="paper", run_id="env", target_qty=20, ramp=1.0)
    drive_sim(b, r, [env.symbol], len(seq))
    run_fills = [(f.time, f.side.value, f.qty, f.price) for f in b.engine.fills if f.symbol == env.symbol]
    assert run_fills == env_fills
    assert isinstance(start, datetime)
