"""Execution policies in production: the example PPO model shipped in the package (found through importlib.resources),
ONNX Runtime inference, dynamic INT8 with its accuracy check, the stable-baselines3 loader behind the [rl] extra
(a clear error without it), and the packaging of the model and the dependencies."""
import hashlib, sys, tomllib
from pathlib import Path

import numpy as np
import pytest

from swingtrader import agent_policy
from swingtrader.agent import FEATURES, ActionGrid, AgentError
from swingtrader.agent_policy import (INT8_MIN_AGREEMENT, OnnxPolicy, action_agreement, example_model_path, load_sb3,
                                      quantize_int8, sample_observations)
from swingtrader.agent_policy import load_policy

ROOT = Path(__file__).resolve().parents[1]


def _onnx_linear(path, w, b, features=",".join(FEATURES), model_id="lin", scale=None, mean=None):
    "A tiny ONNX network ((obs - mean) * scale) @ w + b written with onnx.helper (no torch)."
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    scale = np.ones(w.shape[0]) if scale is None else scale
    mean = np.zeros(w.shape[0]) if mean is None else mean
    g = helper.make_graph([helper.make_node("Sub", ["observation", "M"], ["c"]), helper.make_node("Mul", ["c", "S"], ["x"]), helper.make_node("MatMul", ["x", "W"], ["h"]),
                           helper.make_node("Add", ["h", "B"], ["scores"])], "lin",
                          [helper.make_tensor_value_info("observation", TensorProto.FLOAT, ["batch", w.shape[0]])],
                          [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", w.shape[1]])],
                          [numpy_helper.from_array(w.astype(np.float32), "W"), numpy_helper.from_array(b.astype(np.float32), "B"),
                           numpy_helper.from_array(np.asarray(scale, np.float32), "S"), numpy_helper.from_array(np.asarray(mean, np.float32), "M")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    for k, v in (("swingtrader.features", features), ("swingtrader.model_id", model_id)):
        e = m.metadata_props.add(); e.key, e.value = k, v
    onnx.save(m, str(path))
    return Path(path)


def test_the_example_model_ships_in_the_package():
    p = example_model_path()
    assert p.is_file() and p.parent.name == "assets" and p.stat().st_size < 100_000
    lp = load_policy(p)
    assert (lp.model_id, lp.sha256) == ("example_ppo", hashlib.sha256(p.read_bytes()).hexdigest())
    assert lp.audit_id.startswith("example_ppo@sha256:")
    obs = sample_observations(200, seed=3)
    acts = lp.act_batch(obs)
    assert acts == [lp.act(o) for o in obs] and all(0 <= a < len(ActionGrid()) for a in acts)
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "assets/*.onnx" in cfg["tool"]["setuptools"]["package-data"]["swingtrader"]
    deps = {d.split(">")[0].split("=")[0].split("[")[0].strip() for d in cfg["project"]["dependencies"]}
    assert {"onnxruntime", "onnx"} <= deps and not {"torch", "stable-baselines3"} & deps       # CI needs no torch
    assert {d.split(">")[0] for d in cfg["project"]["optional-dependencies"]["rl"]} == {"stable-baselines3", "torch"}


def test_int8_agrees_with_fp32_above_the_threshold(tmp_path, capsys):
    obs = sample_observations(2000, seed=11)
    fp32 = OnnxPolicy(example_model_path())
    shipped = action_agreement(fp32, OnnxPolicy(example_model_path(int8=True)), obs)
    fresh = action_agreement(fp32, OnnxPolicy(quantize_int8(example_model_path(), tmp_path / "q.int8.onnx")), obs)
    with capsys.disabled(): print(f"\nINT8 vs fp32 action agreement on {len(obs)} observations: shipped {shipped:.2%}, re-quantised {fresh:.2%} "
                                  f"(threshold {INT8_MIN_AGREEMENT:.0%})")
    assert shipped >= INT8_MIN_AGREEMENT and fresh >= INT8_MIN_AGREEMENT
    # a network whose actions vary with the observation: a random linear layer over the observations, scaled to unit size
    # first (what sb3_to_onnx bakes in from VecNormalize) — and without the scaling, where INT8 loses the small features
    rng = np.random.default_rng(0)
    w, b, scale = rng.normal(0, 1, (len(FEATURES), len(ActionGrid()))), rng.normal(0, 0.1, len(ActionGrid())), 1 / (obs.std(axis=0) + 1e-6)
    mean = obs.mean(axis=0)
    lin = _onnx_linear(tmp_path / "lin.onnx", w, b, scale=scale, mean=mean)
    a32, a8 = OnnxPolicy(lin), OnnxPolicy(quantize_int8(lin))
    assert len(set(a32.act_batch(obs))) > 5                      # not a constant policy
    ag = action_agreement(a32, a8, obs)
    raw = _onnx_linear(tmp_path / "raw.onnx", w * scale[:, None], b - (mean * scale) @ w)   # the same scores, the scaling folded into the weights
    assert action_agreement(a32, OnnxPolicy(raw), obs) >= 0.999
    ag_raw = action_agreement(OnnxPolicy(raw), OnnxPolicy(quantize_int8(raw)), obs)
    with capsys.disabled(): print(f"INT8 vs fp32 on a random linear network: {ag:.2%} with scaled inputs, {ag_raw:.2%} on raw features")
    assert ag >= 0.95 and ag_raw < ag


def test_load_policy_int8_is_checked(tmp_path, monkeypatch):
    lp = load_policy(example_model_path(), int8=True)
    assert lp.model_id == "example_ppo+int8" and lp.path.name.endswith(".int8.onnx")
    assert lp.sha256 == hashlib.sha256(lp.path.read_bytes()).hexdigest() != load_policy(example_model_path()).sha256
    monkeypatch.setattr(agent_policy, "INT8_MIN_AGREEMENT", 1.01)
    with pytest.raises(AgentError, match="INT8 model of example_ppo.onnx picks the fp32 model's action on only"):
        load_policy(example_model_path(), int8=True)


def test_onnx_models_for_other_features_or_grids_are_refused(tmp_path):
    w, b = np.zeros((len(FEATURES), len(ActionGrid()))), np.zeros(len(ActionGrid()))
    with pytest.raises(AgentError, match="trained on features a,b"):
        OnnxPolicy(_onnx_linear(tmp_path / "f.onnx", w, b, features="a,b"))
    with pytest.raises(AgentError, match="scores 5 actions, the action grid has 19"):
        OnnxPolicy(_onnx_linear(tmp_path / "g.onnx", np.zeros((len(FEATURES), 5)), np.zeros(5)))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(AgentError, match="not a usable ONNX model"):
        load_policy(tmp_path / "junk.onnx")
    ok = load_policy(_onnx_linear(tmp_path / "ok.onnx", w, b + np.eye(len(ActionGrid()))[3], model_id="three"))
    assert (ok.model_id, ok.act(np.zeros(len(FEATURES), np.float32))) == ("three", 3)


def test_stable_baselines3_without_the_extra_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)         # as if not installed
    (tmp_path / "m.zip").write_bytes(b"PK")
    with pytest.raises(AgentError) as e:
        load_policy(tmp_path / "m.zip")
    assert "needs stable-baselines3 and torch" in e.value.problem and "pip install 'swingtrader[rl]'" in e.value.fix


def test_stable_baselines3_loader_and_onnx_export(tmp_path):
    pytest.importorskip("torch"); sb3 = pytest.importorskip("stable_baselines3")
    from swingtrader.agent_env import ExecutionEnv
    from swingtrader.agent_policy import Sb3Policy, sb3_to_onnx
    m = sb3.PPO("MlpPolicy", ExecutionEnv(episode_bars=30), n_steps=64, batch_size=32, n_epochs=1, policy_kwargs={"net_arch": [8]},
                seed=0, device="cpu")
    m.learn(128)
    m.save(tmp_path / "ppo.zip")
    lp = load_policy(tmp_path / "ppo.zip")
    obs = sample_observations(300, seed=2)
    assert lp.model_id == "ppo" and lp.act_batch(obs) == Sb3Policy(m).act_batch(obs)
    onx = load_policy(sb3_to_onnx(m, tmp_path / "ppo.onnx", "ppo_test"))
    assert onx.model_id == "ppo_test" and action_agreement(onx, lp, obs) == 1.0
    (tmp_path / "other.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    with pytest.raises(AgentError, match="not a saved PPO, A2C or DQN model"):
        load_sb3(tmp_path / "other.zip")
