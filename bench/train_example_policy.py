"""Train the example execution policy: a small PPO agent (stable-baselines3, two hidden layers of 32) on the simulator's
environment (`swingtrader/Execution-v0`: one symbol of a seeded market, 1-minute bars, the four execution actions x a
size grid, reward = change of marked equity net of spread and commissions), then export it to ONNX (fp32 and dynamic
INT8) as the example model shipped in swingtrader/assets/.

Needs the `[rl]` extra (pip install 'swingtrader[rl]': stable-baselines3, torch). 150,000 steps take about 3 minutes on an idle core
(~900 steps/s; 6 minutes on a loaded one).
Prints the training figures: timesteps, wall time, the mean episode reward (bps of equity) of the trained policy
against holding and random actions on held-out sessions, the fp32 export's agreement with the torch policy and the
INT8 model's agreement with the fp32 one.
Usage: python bench/train_example_policy.py [--timesteps N] [--seed S] [--out DIR]"""
import argparse, logging, time
from datetime import date
from pathlib import Path

import numpy as np

from swingtrader.agent import ActionGrid
from swingtrader.agent_env import ExecutionEnv
from swingtrader.agent_policy import (EXAMPLE_MODEL, EXAMPLE_MODEL_INT8, INT8_MIN_AGREEMENT, OnnxPolicy, Sb3Policy,
                                      action_agreement, quantize_int8, sb3_to_onnx)
from swingtrader.sim.engine import LimitFillModel

TRAIN = dict(data_seed=7, symbols=4, start=date(2026, 3, 2), end=date(2026, 3, 13))       # two weeks of sessions
HELD_OUT = dict(data_seed=7, symbols=4, start=date(2026, 3, 16), end=date(2026, 3, 20))   # the week after
ENV = dict(episode_bars=120, target_qty=50, sim_options={"commission_per_share": "0.005"}, limit_model=LimitFillModel(seed=1))

def make_env(i:int, **market):
    return lambda: ExecutionEnv(symbol=i % market.get("symbols", 4), **market, **ENV)

def evaluate(act, n:int=40, seed:int=1000) -> float:
    "Mean episode reward (bps of equity) of `act(obs)` on held-out sessions."
    envs = [make_env(i, **HELD_OUT)() for i in range(4)]
    tot = []
    for k in range(n):
        env = envs[k % 4]
        obs, _ = env.reset(seed=seed + k)
        r, done = 0.0, False
        while not done:
            obs, rew, done, trunc, _ = env.step(act(obs)); r += rew
        tot.append(r)
    return float(np.mean(tot))

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timesteps", type=int, default=150_000)   # the shipped model: 150,000 steps, seed 0
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ent-coef", type=float, default=0.01)
    ap.add_argument("--gamma", type=float, default=0.99)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "swingtrader" / "assets")
    a = ap.parse_args()
    logging.getLogger().setLevel(logging.ERROR)      # onnxruntime's quantizer advises pre-processing (not needed for an MLP)
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
    torch.set_num_threads(1)
    raw = DummyVecEnv([make_env(i, **TRAIN) for i in range(4)])
    raw.seed(a.seed)
    venv = VecNormalize(raw, norm_obs=True, norm_reward=True, clip_obs=10.0, gamma=a.gamma)   # features on one scale; baked into the ONNX model
    model = PPO("MlpPolicy", venv, n_steps=512, batch_size=256, n_epochs=5, learning_rate=a.lr, gamma=a.gamma, ent_coef=a.ent_coef,
                policy_kwargs={"net_arch": [32, 32]}, seed=a.seed, device="cpu", verbose=0)
    t0 = time.perf_counter()
    model.learn(total_timesteps=a.timesteps)
    took = time.perf_counter() - t0
    print(f"PPO: {a.timesteps:,} timesteps in {took:.0f} s ({a.timesteps / took:,.0f} steps/s), 4 envs x {ENV['episode_bars']}-bar episodes, "
          f"{len(ActionGrid())} actions, net 32x32")
    a.out.mkdir(parents=True, exist_ok=True)
    venv.training = False
    fp32 = sb3_to_onnx(model, a.out / EXAMPLE_MODEL, "example_ppo", normalize=venv)
    int8 = quantize_int8(fp32, a.out / EXAMPLE_MODEL_INT8)
    onnx32, onnx8 = OnnxPolicy(fp32), OnnxPolicy(int8)
    sb = type("Normalised", (), {"act_batch": lambda self, o: Sb3Policy(model).act_batch(venv.normalize_obs(o))})()
    from swingtrader.agent_policy import sample_observations
    obs = sample_observations(2000, seed=5, **HELD_OUT, episode_bars=120)
    print(f"ONNX fp32 vs torch: {action_agreement(onnx32, sb, obs):.2%} of 2000 held-out observations pick the same action")
    ag = action_agreement(onnx32, onnx8, obs)
    print(f"ONNX INT8 vs fp32: {ag:.2%} agreement (threshold {INT8_MIN_AGREEMENT:.0%}); files {fp32.stat().st_size:,} / {int8.stat().st_size:,} bytes")
    rng = np.random.default_rng(0)
    acts = np.asarray(onnx32.act_batch(obs))
    print("actions on held-out observations:", {str(ActionGrid().actions[i]): int((acts == i).sum()) for i in np.unique(acts)})
    print(f"held-out mean episode reward (bps of equity, 40 episodes): trained {evaluate(onnx32.act):+.2f}, "
          f"hold {evaluate(lambda o: 0):+.2f}, random {evaluate(lambda o: int(rng.integers(len(ActionGrid())))):+.2f}")

if __name__ == "__main__":
    main()
