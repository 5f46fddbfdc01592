"""Execution-agent latency per stage: features, inference (fp32 vs INT8), risk, submission and total, p50/p99 in ms
against the budget (features < 10, inference < 20, risk < 5, submission < 100, total < 150 ms), with the feature cache
(TTL 1 s vs 0) and batching (all symbols' bars of a window in one policy call vs one call per bar) on and off.

The shipped example policy (ONNX Runtime, fp32 or dynamic INT8) runs in paper mode through AgentRunner →
Trader.decide_order (RiskGuard) → Executor → broker, with an on-disk ledger and an fsync'ed audit log like the bot's:
on the SimBroker (submission = the matching engine), then through alpaca-py against the Alpaca emulator (submission = an
HTTP round trip to 127.0.0.1; the emulator's clock moved bar by bar). features, inference and total are per batch (a
minute's bars of all symbols, or one bar when per-bar), risk and submission per decision. Besides the budgeted stages
it shows what they leave out: `reads` (broker round trips: quotes, the account view), `journal` (the decision written
ahead of the order: signal and risk-check audit records, the ledger's intent — fsync'ed files), `exits` (trailing-stop
exits sent before the agent decides) and, after the orders, `audit` (the batch's agent_action records).
Figures are printed, never asserted.
Usage: python bench/agent_latency.py [minutes] [symbols]"""
import sys, tempfile, threading, time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from swingtrader.agent_policy import OnnxPolicy, example_model_path, sample_observations
from swingtrader.agent_runner import BUDGET_MS, PARTS, STAGES, AgentRunner, agent_trader, drive_sim
from swingtrader.agent_policy import load_policy
from swingtrader.audit import AuditLog
from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.sim.broker import SimBroker


def counting(obj, name, counter):
    f = getattr(obj, name)
    def w(*a, **k):
        counter[name] += 1
        return f(*a, **k)
    setattr(obj, name, w)

def run_sim(minutes:int, symbols:int, tmp:Path, name:str, int8:bool=True, ttl:float=1.0, batch:bool=True):
    d = tmp / name; d.mkdir()
    s = Settings(_env_file=None, data_dir=d, position_cap=0.1)
    b = SimBroker.from_seed(seed=11, symbols=symbols)
    b.advance_to(b.clock.now() + timedelta(minutes=1))
    calls = Counter()
    for n in ("account", "positions", "latest_quote"): counting(b, n, calls)
    pol = load_policy(example_model_path(), int8=int8)
    tr = agent_trader(s, b, Ledger(d / "ledger.sqlite", clock=b.clock), audit=AuditLog(d / "audit", b.clock), policy=pol)
    r = AgentRunner(s, tr, b, pol, mode="paper", run_id=name, ramp=1.0, target_qty=100, feature_ttl=ttl)
    if not batch:                                    # one policy call per bar instead of one per window
        one = r.on_bars
        r.on_bars = lambda bars, quotes=None: [x for bar in bars for x in one([bar], quotes)]
    steps = drive_sim(b, r, b.symbols[:symbols], minutes)
    tr.ledger.close(); tr.audit.close()
    return r.latency_summary(), steps, calls

def run_alpaca(minutes:int, symbols:int, tmp:Path, int8:bool=True):
    "The runner on AlpacaBroker (alpaca-py) → the Alpaca emulator → SimBroker, the emulator's clock moved bar by bar."
    from swingtrader.alpaca.broker import AlpacaBroker
    from swingtrader.clock import UTC
    from swingtrader.models import Bar, OrderUpdate
    from swingtrader.session import emulated_alpaca
    d = tmp / "alpaca"; d.mkdir()
    day = date(2026, 3, 3)
    env = emulated_alpaca(Settings(_env_file=None, data_dir=d, sim_symbols=max(symbols, 1), position_cap=0.1), day, day, speed=1.0, history_days=1)
    env.clock.set_mode("manual")
    b = AlpacaBroker(env.settings, clock=env.clock, calendar=env.calendar, retry_wait=0.2)
    q, lock = [], threading.Lock()
    def listen(ev):
        if isinstance(ev, OrderUpdate):
            with lock: q.append(ev)
    remove = env.server.call(lambda: env.sim.add_listener(listen))
    try:
        pol = load_policy(example_model_path(), int8=int8)
        tr = agent_trader(env.settings, b, Ledger(d / "ledger.sqlite", clock=env.clock), audit=AuditLog(d / "audit", env.clock),
                          policy=pol, clock=env.clock)
        r = AgentRunner(env.settings, tr, b, pol, mode="paper", run_id="alpaca", ramp=1.0, target_qty=100)
        syms = list(env.sim.symbols[:symbols])
        o, c = env.calendar.session(day)
        r.warm_up({x: env.sim.market_bars[x][lambda df: df.index < o] for x in syms}, "1m")
        def drain():
            with lock: got, q[:] = list(q), []
            for u in got: r.on_update(u)
        t, steps = o + timedelta(minutes=1), []
        while t <= min(c, o + timedelta(minutes=minutes)):
            env.server.call(lambda t=t: env.sim.advance_to(t)); drain()
            bars = []
            for x in syms:
                start = (t - timedelta(minutes=1)).astimezone(UTC)
                row = env.sim.market_bars[x].loc[start]
                bars.append(Bar(x, start, float(row.open), float(row.high), float(row.low), float(row.close), float(row.volume), "1m"))
            steps += r.on_bars(bars); drain()
            t += timedelta(minutes=1)
        tr.ledger.close(); tr.audit.close()
    finally:
        env.server.call(remove); b.close(); env.close()
    return r.latency_summary(), steps, Counter()

def show(name:str, lat:dict, steps:list, calls:Counter, per:str):
    res = Counter(x.result for x in steps)
    print(f"\n{name}: {len(steps)} actions ({', '.join(f'{k} {v}' for k, v in res.most_common())}); {per}"
          + (f"; broker reads: {dict(calls)}" if calls else ""))
    for st in STAGES + PARTS:
        v, budget = lat[st], BUDGET_MS.get(st)
        ok = ("ok" if v["p99"] < budget else "OVER") if budget is not None else "(no budget: in total)" if st != "audit" else "(after the orders)"
        b = f"budget {budget:5.0f} ms" if budget is not None else " " * 15
        print(f"  {st:<10} p50 {v['p50']:8.3f} ms   p99 {v['p99']:8.3f} ms   max {v['max']:8.3f} ms   {b}  {ok}")

def inference(n:int=5000):
    "fp32 vs INT8 on the same observations: one at a time and as batches."
    obs = sample_observations(2000, seed=7)
    print("\ninference alone (ONNX Runtime, 1 thread), per call:")
    for name, p in (("fp32", OnnxPolicy(example_model_path())), ("int8", OnnxPolicy(example_model_path(int8=True)))):
        for o in obs[:50]: p.act(o)
        ts = []
        for i in range(n):
            t = time.perf_counter(); p.act(obs[i % len(obs)]); ts.append((time.perf_counter() - t) * 1000)
        tb = []
        for i in range(n // 10):
            t = time.perf_counter(); p.act_batch(obs[(i * 20) % 1980:(i * 20) % 1980 + 20]); tb.append((time.perf_counter() - t) * 1000)
        print(f"  {name}: one observation p50 {np.percentile(ts, 50) * 1000:6.1f} µs p99 {np.percentile(ts, 99) * 1000:6.1f} µs; "
              f"a batch of 20 p50 {np.percentile(tb, 50) * 1000:6.1f} µs ({np.percentile(tb, 50) * 1000 / 20:5.1f} µs per observation)")

def main(minutes:int=390, symbols:int=5):
    tmp = Path(tempfile.mkdtemp())
    print(f"agent latency: the example policy (ONNX), {minutes} minutes x {symbols} symbols, paper mode, on-disk ledger, fsync'ed audit")
    inference()
    per_b, per_1 = f"features/inference/total per batch of {symbols} bars", "features/inference/total per bar"
    for name, kw, per in (("sim fp32, cache 1 s, batched", dict(int8=False), per_b),
                          ("sim int8, cache 1 s, batched", dict(int8=True), per_b),
                          ("sim int8, no cache (TTL 0), batched", dict(int8=True, ttl=0.0), per_b),
                          ("sim int8, cache 1 s, one call per bar", dict(int8=True, batch=False), per_1)):
        lat, steps, calls = run_sim(minutes, symbols, tmp, name.replace(" ", "_").replace(",", ""), **kw)
        show(name, lat, steps, calls, per)
        k = 1 if "per bar" not in name else symbols
        print(f"  per minute of {symbols} symbols: inference {lat['inference']['p50'] * k:.3f} ms (p50 x {k} calls), "
              f"features {lat['features']['p50'] * k:.3f} ms, broker reads {lat['reads']['p50'] * k:.3f} ms")
    lat, steps, calls = run_alpaca(minutes, symbols, tmp)
    show("alpaca emulator (alpaca-py over HTTP), int8, cache 1 s, batched", lat, steps, calls, per_b)

if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
