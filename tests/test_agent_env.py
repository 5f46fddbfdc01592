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
from swingtrader.agent_runner import AgentRunner, agent_trader, backtest_policy, drive_sim
from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.sim.broker import SimBroker
from swingtrader.sim.engine import LimitFillModel

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



def _coarse_market(tick=0.05):
    "The seeded market on a 0.05 grid (tick 0.05): bar lows and highs often equal the quote, so limits are touched, not only traded through."
    b = SimBroker.from_seed(seed=7, symbols=2, start=date(2026, 3, 2), end=date(2026, 3, 3))
    bars = {s: df.assign(**{c: (df[c] / tick).round() * tick for c in ("open", "high", "low", "close")}) for s, df in b.market_bars.items()}
    u = b.universe.copy(); u["tick_size"] = tick
    return {"bars": bars, "universe": u, "calendar": b.calendar}

_G = ActionGrid()
_SEQ = [_G.index(AgentAction(k, s)) for k, s in [("market", 1.0), ("limit_passive", -0.5), ("limit_passive", -0.5), ("cancel", 0),
                                                 ("limit_aggressive", -1.0), ("limit_passive", 1.0), ("limit_passive", 1.0),
                                                 ("limit_passive", 1.0), ("cancel", 0), ("limit_aggressive", 0.5),
                                                 ("limit_passive", -1.0), ("limit_passive", -1.0), ("market", -1.0)]] * 5

def _env_and_backtest(market, limit_model, costs):
    "The fills of the same actions in the environment and in `backtest_policy`: (time, side, qty, price, commission)."
    env = ExecutionEnv(episode_bars=len(_SEQ), target_qty=20, limit_model=limit_model, sim_options=costs, **market)
    env.reset(seed=3)
    first = env._i                                          # the bar of the day at whose close the env decides first
    for a in _SEQ: env.step(a)
    end = env.broker.clock.now()
    env_fills = [(t, side, q, p, f.commission) for (t, side, q, p), f in zip(fills(env), env.broker.engine.fills)]
    day = env._day_bars.index[0].tz_convert("America/New_York").date()
    acts = [0] * first + _SEQ                              # before the env's first decision: hold (CANCEL with nothing working)
    calls = iter(range(10**6))
    res, runner = backtest_policy(env.market, lambda obs: acts[i] if (i := next(calls)) < len(acts) else 0,
                                  Settings(_env_file=None, position_cap=1, sector_cap=1, correlated_cap=1),
                                  universe=env.universe, calendar=env.calendar, start=day, end=day, cash=env.cash,
                                  limit_model=limit_model, run_id="env", target_qty=20, **costs)
    f = res.fills[res.fills["time"] <= end]
    bt_fills = [(t.to_pydatetime(), side, q, p, c) for t, side, q, p, c in zip(f["time"], f["side"], f["qty"], f["price"], f["commission"])]
    assert [x.result for x in runner.steps if x.result != "hold"][:3] == ["placed"] * 3
    return env_fills, bt_fills

@pytest.mark.parametrize("coarse, limit_model, costs", [
    (False, None, {}),
    (False, LimitFillModel(seed=4), {"commission_per_share": "0.005", "slippage_bps": 1}),
    (True, None, {}),
    (True, LimitFillModel(seed=9, depth_share=0.05), {"commission_per_share": "0.005", "slippage_bps": 1}),
    (True, LimitFillModel(seed=4), {})])
def test_env_fills_equal_the_backtest(coarse, limit_model, costs):
    "The same actions give the same fills in the environment and in the backtest (same fill, cost and limit model)."
    env_fills, bt_fills = _env_and_backtest(_coarse_market() if coarse else {}, limit_model, costs)
    assert len(env_fills) >= 10 and {f[1] for f in env_fills} == {"buy", "sell"}
    assert bt_fills == env_fills
    if costs: assert all(f[4] > 0 for f in env_fills)

def test_the_limit_model_changes_fills_where_bars_touch_limits():
    "On a market whose bars touch the limits, the queue model fills differently from the trade-through rule, the same in both."
    m = _coarse_market()
    plain, _ = _env_and_backtest(m, None, {})
    queued, queued_bt = _env_and_backtest(m, LimitFillModel(seed=9, depth_share=0.0), {})
    assert queued != plain and queued == queued_bt

def test_queue_fills_do_not_depend_on_other_orders():
    "The model's draws are keyed on (seed, client key, bar): orders in another symbol leave a symbol's fills unchanged."
    from decimal import Decimal
    from swingtrader.clock import SimClock
    from swingtrader.models import OrderRequest
    m = _coarse_market()
    a, b2 = list(m["bars"])
    def run(both, model=True):
        t0 = m["bars"][a].index[400].to_pydatetime()
        sb = SimBroker(m["bars"], m["universe"], SimClock(t0, mode="manual"), calendar=m["calendar"])
        if model: sb.engine.set_limit_model(LimitFillModel(seed=2, depth_share=0.01))
        for i in range(60):
            t = t0 + timedelta(minutes=i + 1)
            sb.advance_to(t)
            for s in ((a, b2) if both else (a,)):
                if i % 5 == 0:
                    for o in sb.orders():
                        if o.symbol == s and o.is_open: sb.cancel(o.id)
                    q = sb.latest_quote(s)
                    side, px = ("buy", q.bid) if (i // 5) % 2 == 0 else ("sell", q.ask)
                    if side == "sell" and not any(p.symbol == s and p.qty > 0 for p in sb.positions()): side, px = "buy", q.bid
                    sb.submit(OrderRequest(s, side, qty=Decimal(5), type="limit", limit_price=Decimal(str(px)), tif="gtc", client_key=f"{s}-{i}"))
        return [(f.time, f.side, f.qty, f.price) for f in sb.engine.fills if f.symbol == a]
    alone, together = run(False), run(True)
    assert len(alone) >= 3 and alone == together
    assert alone != run(False, model=False)                   # touches filled by the queue model in this stretch
