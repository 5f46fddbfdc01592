"Throughput of the simulator's market-data generator (swingtrader.sim.data): 1 year x 40 symbols of 1-minute bars."
import time
from datetime import date

from swingtrader.clock import MarketCalendar
from swingtrader.sim.data import make_universe, generate_bars, resample_bars, quotes_from_bars, iter_bars

def timed(f, *a, **kw):
    t = time.perf_counter(); out = f(*a, **kw); return out, time.perf_counter() - t

def main(n:int=40, start=date(2025, 1, 1), end=date(2025, 12, 31), seed:int=42):
    cal = MarketCalendar()
    uni = make_universe(n, seed)
    generate_bars(uni.iloc[:1], date(2025, 1, 2), date(2025, 1, 3), seed, cal)   # warm-up (imports, caches)
    bars, t_gen = timed(generate_bars, uni, start, end, seed, cal)
    rows = sum(len(f) for f in bars.values())
    print(f"generate_bars: {n} symbols x {start}..{end}: {rows:,} 1-minute rows in {t_gen:.2f} s = {rows / t_gen:,.0f} rows/s")
    for tf in ("5m", "1h", "1d"):
        out, t = timed(lambda: {s: resample_bars(f, tf, cal) for s, f in bars.items()})
        print(f"resample_bars {tf:>3}: {rows:,} rows -> {sum(len(f) for f in out.values()):,} bars in {t:.2f} s = {rows / t:,.0f} rows/s")
    _, t = timed(lambda: {s: quotes_from_bars(f, uni.spread_bps[s]) for s, f in bars.items()})
    print(f"quotes_from_bars: {rows:,} rows in {t:.2f} s = {rows / t:,.0f} rows/s")
    day = {s: f.iloc[:390] for s, f in bars.items()}
    it, t = timed(lambda: sum(1 for _ in iter_bars(day)))
    print(f"iter_bars: {it:,} Bar objects in {t:.2f} s = {it / t:,.0f} bars/s")

if __name__ == "__main__": main()
