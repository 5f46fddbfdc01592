"""Sweep throughput on Dask: the same grid of backtests on a private LocalCluster of 1 and of 2 worker processes,
interleaved (1, 2, 1, 2 …), each run from an empty results folder. Prints tasks/s for each and the speed-up.

Run: .venv/bin/python bench/bench_sweep.py [rounds, default 2] [symbols, default 5] [sessions, default 10]
"""
import statistics, sys, tempfile, time
from datetime import date

from swingtrader.config import Settings
from swingtrader.sim.data import make_universe, generate_bars
from swingtrader import sweep as sw


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    symbols = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    sessions = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    u = make_universe(symbols, 7)
    bars = generate_bars(u, date(2026, 3, 2), date(2026, 4, 30), 7)
    days = sw.sessions_of(bars)[:sessions]
    bars = {s: df[df.index.tz_convert("America/New_York").date <= days[-1]] for s, df in bars.items()}
    s = Settings(_env_file=None, macd_fast=6, macd_slow=13, macd_signal=5, trend_ema=20, warmup_bars=30)
    params = [sw.parse_param("atr_stop_mult=1.5,2,2.5,3"), sw.parse_param("macd_signal=4,5,6,7")]
    windows = sw.split(days, 0.7)
    n = len(sw.grid(params))
    nbars = sum(map(len, bars.values()))
    print(f"grid: {n} parameter sets x (in + out of sample) on {symbols} symbols x {len(days)} sessions ({nbars:,} 1-minute bars)")
    got = {1: [], 2: []}
    for r in range(rounds):
        for w in (1, 2):
            with tempfile.TemporaryDirectory() as d:
                client = sw.cluster(workers=w)          # cluster start-up is not counted: only the tasks
                try:
                    t0 = time.perf_counter()
                    res = sw.run_sweep(bars, u, s, params, windows, d, client=client)
                    dt = time.perf_counter() - t0
                finally: sw.close_cluster(client)
            assert res.computed == n and not res.failed
            got[w].append(dt)
            print(f"round {r + 1}, {w} worker{'s' if w > 1 else ' '}: {n / dt:6.2f} tasks/s ({dt:.1f} s)")
    m1, m2 = statistics.median(got[1]), statistics.median(got[2])
    print(f"median: 1 worker {n / m1:.2f} tasks/s, 2 workers {n / m2:.2f} tasks/s, speed-up {m1 / m2:.2f}x")


if __name__ == "__main__": main()
