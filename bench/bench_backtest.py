"""Backtest speed: swingtrader's canonical backtest against the plain-Python reference, interleaved, in one run.

Timed for swingtrader: building the backtest, running every bar, the result (trades, fills, equity curve): the reference's
outputs are its trades and final equity, so the summary statistics (Sharpe, Sortino … through empyrical, whose first import
alone takes ~0.5 s) are computed after the clock stops and printed apart.
The data is the issue's: 20 generated symbols x 252 trading days of 5-minute bars (2025, seed 42; `--symbols/--days`
for a quicker run), generated once and handed to every child through a pickle. Each round runs the reference and then
swingtrader (`CanonicalBacktest`, strategy, sizer, RiskGuard and the rest as the canonical preset sets them; with `--full`
also its full order path, `fast=False`), each in a fresh process; a child times its engine end to end (building it, running every bar, producing the trades) and reports
bars/s (wall clock, and CPU time of the process, which other load on the machine disturbs less), trades, final equity and its peak RSS (`resource.getrusage`). Prints each round, then the medians and the ratio,
and whether both produced the same trades.
Run: python bench/bench_backtest.py [--rounds 3] [--symbols 20] [--days 252] [--full] [--every-bar] [--baseline DIR]
"""
import argparse
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BAR_NS = 5 * 60 * 10**9


def make_data(symbols:int, days:int, path:Path):
    from datetime import date
    import pandas as pd
    from swingtrader.sim.data import make_universe, generate_bars, resample_bars
    u = make_universe(symbols, 42)
    bars = {s: resample_bars(df, "5m") for s, df in sorted(generate_bars(u, date(2025, 1, 2), date(2025, 12, 31), 42).items())}
    if days < 252:
        keep = sorted({d for df in bars.values() for d in df.index.tz_convert("America/New_York").date})[:days]
        last = pd.Timestamp(keep[-1]) + pd.Timedelta(days=1)
        bars = {s: df[df.index.tz_convert("America/New_York").tz_localize(None) < last] for s, df in bars.items()}
    path.write_bytes(pickle.dumps((u, bars)))
    return sum(map(len, bars.values()))


def trade_keys(trades):
    return sorted((d["symbol"], d["entry_time"], d["entry_price"], d["exit_time"], d["exit_price"], float(d["qty"])) for d in trades)


def child(which:str, path:str):
    u, bars = pickle.loads(Path(path).read_bytes())
    extra = {}
    n = sum(map(len, bars.values()))
    if which == "reference":
        sys.path.insert(0, str(HERE))
        from reference_backtest import run_reference
        t0, c0 = time.perf_counter(), time.process_time()
        trades, equity = run_reference(bars, BAR_NS)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        keys = trade_keys(trades)
    else:
        import pandas as pd
        from swingtrader.canonical import CanonicalBacktest
        t0, c0 = time.perf_counter(), time.process_time()
        kw = {} if which == "baseline" else dict(events=False) if which == "every_bar" else dict(fast=which == "swingtrader")   # "full": executor + matching engine per order
        bt = CanonicalBacktest(bars, universe=u, **kw)
        r = bt.run()
        eq = r.equity["equity"]
        equity = float(eq.iloc[-1]) if len(eq) else float(bt.initial_cash)   # the reference's outputs: trades and final equity
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        t1 = time.perf_counter()
        assert round(r.summary()["final_equity"], 2) == round(equity, 2)
        extra["summary_s"] = time.perf_counter() - t1
        keys = sorted([(t.symbol, t.entry_signal_time.value, float(t.entry_price), t.exit_signal_time.value, float(t.exit_price), float(t.qty))
                       for t in r.trades.itertuples()] +
                      [(t.symbol, pd.Timestamp(t.entry_signal_time).value, t.entry_price, None, None, t.qty) for t in bt.open_positions().itertuples()],
                      key=lambda x: (x[1], x[0]))
        keys = sorted(keys)
    import hashlib
    print(json.dumps(dict(bars=n, seconds=dt, cpu=cpu, trades=len(keys), equity=round(float(equity), 2),
                          digest=hashlib.sha256(repr(keys).encode()).hexdigest()[:16],
                          rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **extra)))


def run_child(which:str, path:Path, baseline:str|None=None) -> dict:
    src = baseline if which == "baseline" else str(HERE.parent)       # "baseline": swingtrader from another checkout
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, __file__, "--child", which, str(path)], capture_output=True, text=True, env=env)
    if out.returncode: sys.exit(f"error: the {which} child failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--symbols", type=int, default=20)
    ap.add_argument("--days", type=int, default=252)
    ap.add_argument("--full", action="store_true", help="also run swingtrader's full order path (executor, matching engine, ledger per order) each round")
    ap.add_argument("--every-bar", action="store_true", help="also run swingtrader stepping every bar (events=False) each round")
    ap.add_argument("--baseline", metavar="DIR", help="also run swingtrader from another checkout (e.g. `git worktree` or `git archive` of an older commit) each round")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child: return child(*a.child)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bars.pkl"
        t0 = time.perf_counter()
        n = make_data(a.symbols, a.days, path)
        print(f"data: {a.symbols} symbols x {a.days} days of 5-minute bars = {n:,} bars ({time.perf_counter() - t0:.1f} s to generate)")
        engines = ("reference", "swingtrader") + (("full",) if a.full else ()) + (("every_bar",) if a.every_bar else ()) + (("baseline",) if a.baseline else ())
        res = {k: [] for k in engines}
        for i in range(a.rounds):
            for which in engines:
                r = run_child(which, path, a.baseline)
                res[which].append(r)
                print(f"round {i + 1} {which:12} {r['bars'] / r['seconds']:>10,.0f} bars/s  {r['seconds']:6.2f} s  "
                      f"(CPU {r['bars'] / r['cpu']:>9,.0f} bars/s)  {r['trades']:,} trades  final equity {r['equity']:,.2f}  peak RSS {r['rss_mb']:.0f} MB"
                      + (f"  (+ summary statistics {r['summary_s']:.2f} s, untimed)" if "summary_s" in r else ""), flush=True)
    med = {k: dict(rate=statistics.median(x["bars"] / x["seconds"] for x in v), cpu=statistics.median(x["bars"] / x["cpu"] for x in v),
                   rss=statistics.median(x["rss_mb"] for x in v)) for k, v in res.items()}
    ref, ours = res["reference"][0], res["swingtrader"][0]
    print(f"median of {a.rounds}: reference {med['reference']['rate']:,.0f} bars/s, swingtrader {med['swingtrader']['rate']:,.0f} bars/s"
          f" -> ratio {med['swingtrader']['rate'] / med['reference']['rate']:.3f}")
    print(f"median CPU time: reference {med['reference']['cpu']:,.0f} bars/s, swingtrader {med['swingtrader']['cpu']:,.0f} bars/s"
          f" -> ratio {med['swingtrader']['cpu'] / med['reference']['cpu']:.3f} (less sensitive to other load on the machine)")
    if a.full:
        print(f"swingtrader's full order path: {med['full']['rate']:,.0f} bars/s (CPU {med['full']['cpu']:,.0f}) -> ratio {med['full']['rate'] / med['reference']['rate']:.3f}"
              f" (CPU {med['full']['cpu'] / med['reference']['cpu']:.3f}); the fast path is {med['swingtrader']['cpu'] / med['full']['cpu']:.2f}x its CPU speed"
              f"; trades {'IDENTICAL' if res['full'][0]['digest'] == ours['digest'] else 'DIFFERENT'}")
    if a.every_bar:
        e = med["every_bar"]
        print(f"swingtrader stepping every bar (events=False): {e['rate']:,.0f} bars/s (CPU {e['cpu']:,.0f}) -> ratio {e['rate'] / med['reference']['rate']:.3f}"
              f"; the event loop is {med['swingtrader']['cpu'] / e['cpu']:.2f}x its CPU speed"
              f"; trades {'IDENTICAL' if res['every_bar'][0]['digest'] == ours['digest'] else 'DIFFERENT'}")
    if a.baseline:
        b = med["baseline"]
        print(f"baseline ({a.baseline}): {b['rate']:,.0f} bars/s (CPU {b['cpu']:,.0f}) -> ratio {b['rate'] / med['reference']['rate']:.3f}"
              f" (CPU {b['cpu'] / med['reference']['cpu']:.3f}), peak RSS {b['rss']:.0f} MB; swingtrader is {med['swingtrader']['cpu'] / b['cpu']:.2f}x its CPU speed"
              f"; trades {'IDENTICAL' if res['baseline'][0]['digest'] == ours['digest'] else 'DIFFERENT'}")
    print(f"peak RSS: reference {med['reference']['rss']:.0f} MB, swingtrader {med['swingtrader']['rss']:.0f} MB"
          f" -> ratio {med['swingtrader']['rss'] / med['reference']['rss']:.2f}")
    same = ref["digest"] == ours["digest"] and ref["trades"] == ours["trades"]
    print(f"trades: reference {ref['trades']:,}, swingtrader {ours['trades']:,}; final equity: reference {ref['equity']:,.2f}, "
          f"swingtrader {ours['equity']:,.2f} -> trades {'IDENTICAL' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
