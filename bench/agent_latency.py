"""Execution-agent latency per stage on the SimBroker: features, inference, risk, submission and total, p50/p99 in ms
against the budget (features < 10, inference < 20, risk < 5, submission < 100, total < 150 ms).

The example linear policy runs in paper mode through AgentRunner → Trader.decide_order (RiskGuard) → Executor →
SimBroker, with an on-disk ledger and an fsync'ed audit log like the bot's. It runs three times to show the options:
the feature/account cache (TTL 1 s vs 0) and batching (all symbols' bars of a minute in one policy call vs one call per
bar). Figures are printed, never asserted. On Alpaca: point the same runner at `broker_parts(settings)` (see
`agent_runner.run_parts`) — submission then includes the HTTP round trip.
A fourth run trades through the tastytrade client against the emulator (HTTPS on 127.0.0.1, the same SimBroker
behind it): submission then includes a real HTTP round trip, as it will on Alpaca.
Usage: python bench/agent_latency.py [minutes] [symbols]"""
import sys, tempfile
from datetime import timedelta
from pathlib import Path

from swingtrader.agent_runner import (BUDGET_MS, STAGES, AgentRunner, agent_trader, drive_sim, example_policy, load_policy,
                                      save_linear_policy)
from swingtrader.audit import AuditLog
from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.sim.broker import SimBroker

def run(minutes:int, symbols:int, ttl:float, batch:bool, tmp:Path, name:str):
    d = tmp / name; d.mkdir()
    s = Settings(_env_file=None, data_dir=d)
    b = SimBroker.from_seed(seed=11, symbols=symbols)
    b.advance_to(b.clock.now() + timedelta(minutes=1))
    pol = load_policy(save_linear_policy(d / "demo.json", *example_policy(), model_id="demo"))
    tr = agent_trader(s, b, Ledger(d / "ledger.sqlite", clock=b.clock), audit=AuditLog(d / "audit", b.clock), policy=pol)
    r = AgentRunner(s, tr, b, pol, mode="paper", run_id=name, ramp=1.0, feature_ttl=ttl)
    if not batch:                                    # one policy call per bar instead of one per minute
        one = r.on_bars
        r.on_bars = lambda bars, quotes=None: [x for bar in bars for x in one([bar], quotes)]
    steps = drive_sim(b, r, b.symbols[:symbols], minutes)
    tr.ledger.close(); tr.audit.close()
    return r.latency_summary(), len(steps), sum(1 for x in steps if x.result == "placed")

def run_emulator(minutes:int, symbols:int, tmp:Path):
    "The runner on TastytradeBroker → emulator → SimBroker; bars and order updates from the SimBroker behind it."
    from datetime import date
    from swingtrader.session import emulated_tastytrade
    from swingtrader.tastytrade.broker import TastytradeBroker
    d = tmp / "emulator"; d.mkdir()
    s = Settings(_env_file=None, data_dir=d, sim_symbols=max(symbols, 1))
    env = emulated_tastytrade(s, date(2026, 3, 2), date(2026, 3, 2), 1.0, history_days=1)
    env.clock.set_mode("manual")
    sim = env.sim
    sim.advance_to(env.calendar.session(date(2026, 3, 2))[0] + timedelta(minutes=1))
    b = TastytradeBroker(env.settings, clock=env.clock, verify=env.server.ca_file)
    b.quotes = sim.latest_quote                      # DXLink quotes in the bot
    try:
        pol = load_policy(save_linear_policy(d / "demo.json", *example_policy(), model_id="demo"))
        tr = agent_trader(env.settings, b, Ledger(d / "ledger.sqlite", clock=env.clock), audit=AuditLog(d / "audit", env.clock),
                          policy=pol, clock=env.clock)
        r = AgentRunner(env.settings, tr, b, pol, mode="paper", run_id="emu", ramp=1.0)
        steps = drive_sim(sim, r, sim.symbols[:symbols], minutes)
        tr.ledger.close(); tr.audit.close()
    finally: b.close(); env.close()
    return r.latency_summary(), len(steps), sum(1 for x in steps if x.result == "placed")

def main(minutes:int=390, symbols:int=5):
    tmp = Path(tempfile.mkdtemp())
    print(f"agent latency on the SimBroker: {minutes} minutes x {symbols} symbols, paper mode, on-disk ledger, fsync'ed audit")
    for name, ttl, batch in (("cache1s_batched", 1.0, True), ("nocache_batched", 0.0, True), ("cache1s_per_bar", 1.0, False),
                             ("tastytrade_emulator_batched", 1.0, True)):
        lat, n, placed = run_emulator(minutes, symbols, tmp) if "emulator" in name else run(minutes, symbols, ttl, batch, tmp, name)
        per = f"one sample = a minute's batch of {symbols} bars (stages summed over them)" if batch else "one sample = one bar"
        print(f"\n{name}: {n} actions, {placed} orders placed; {per}")
        for st in STAGES:
            v = lat[st]
            ok = "ok" if v["p99"] < BUDGET_MS[st] else "OVER"
            print(f"  {st:<10} p50 {v['p50']:8.3f} ms   p99 {v['p99']:8.3f} ms   max {v['max']:8.3f} ms   budget {BUDGET_MS[st]:5.0f} ms  {ok}")
    print("\nINT8: not measured (the linear .json policy has no quantised form; an ONNX model with onnxruntime's "
          "quantize_dynamic would be timed in the inference stage the same way).")

if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
