"""Indicator and strategy throughput: incremental updates/s, MacdSwing.on_bar/s, vectorised bars/s.

Run: .venv/bin/python bench/bench_indicators.py   (about 20 s)
"""
import time
from datetime import timedelta


from swingtrader.indicators import EMA, MACD, ATR, SMA, RollingCorr, ema, macd, atr, sma, rolling_corr
from swingtrader.models import Bar
from swingtrader.strategy import MacdSwing, signals_frame, synthetic_bars

def rate(n, f, repeat=3):
    best = min(_timed(f) for _ in range(repeat))
    return n / best

def _timed(f):
    t = time.perf_counter(); f(); return time.perf_counter() - t

def row(name, r, unit="updates/s"): print(f"{name:<48} {r:>14,.0f} {unit}")

N = 200_000
df = synthetic_bars(N, seed=1)
c, h, l = df.close.tolist(), df.high.tolist(), df.low.tolist()

print(f"incremental (one series of {N:,} bars, CPython, one core)")
def run_ema():
    e = EMA(12); u = e.update
    for v in c: u(v)
def run_macd():
    m = MACD(); u = m.update
    for v in c: u(v)
def run_atr():
    a = ATR(14); u = a.update
    for x, y, z in zip(h, l, c): u(x, y, z)
def run_sma():
    s = SMA(20); u = s.update
    for v in c: u(v)
def run_corr():
    r = RollingCorr(60); u = r.update
    for x, y in zip(c, h): u(x, y)
row("EMA(12).update", rate(N, run_ema))
row("MACD(12,26,9).update", rate(N, run_macd))
row("ATR(14).update", rate(N, run_atr))
row("SMA(20).update", rate(N, run_sma))
row("RollingCorr(60).update", rate(N, run_corr))

print("\nstrategy, one synthetic series")
times = [t.to_pydatetime() for t in df.index]
closes = [t + timedelta(minutes=5) for t in times]
bars = [Bar("XYZ", t, o, x, y, z, v) for t, o, x, y, z, v in zip(times, df.open.tolist(), h, l, c, df.volume.tolist())]
def run_on_bar():
    s = MacdSwing(); f = s.on_bar
    for b in bars: f(b)
def run_step():
    s = MacdSwing(); f = s.step
    for t, x, y, z in zip(closes, h, l, c): f("XYZ", t, x, y, z)
def run_bar_and_on_bar():
    s = MacdSwing(); f = s.on_bar
    for t, o, x, y, z in zip(times, df.open.tolist(), h, l, c): f(Bar("XYZ", t, o, x, y, z, 0.0))
row("MacdSwing.on_bar (Bar objects prebuilt)", rate(N, run_on_bar), "bars/s")
row("MacdSwing.step (floats)", rate(N, run_step), "bars/s")
row("Bar(...) + MacdSwing.on_bar", rate(N, run_bar_and_on_bar, 1), "bars/s")
n_sig = sum(1 for b in bars if MacdSwing().on_bar(b) is not None) if False else None

print(f"\nvectorised (one series of {N:,} bars)")
s = df.close
row("ema(close, 12)", rate(N, lambda: ema(s, 12)), "values/s")
row("macd(close)", rate(N, lambda: macd(s)), "values/s")
row("atr(high, low, close)", rate(N, lambda: atr(df.high, df.low, df.close)), "bars/s")
row("sma(close, 20)", rate(N, lambda: sma(s, 20)), "values/s")
row("rolling_corr(close, high, 60)", rate(N, lambda: rolling_corr(df.close, df.high, 60)), "values/s")
fr = signals_frame(df)
row(f"signals_frame ({int(fr.action.notna().sum())} signals)", rate(N, lambda: signals_frame(df)), "bars/s")

print("\n20 symbols x 1 year of 5-minute bars (252 x 78 = 19,656 bars each)")
frames = {f"S{i:02d}": synthetic_bars(252 * 78, seed=100 + i) for i in range(20)}
total = sum(len(f) for f in frames.values())
row("signals_frame over all symbols", rate(total, lambda: [signals_frame(f) for f in frames.values()], 1), "bars/s")
# streaming, interleaved by time as the bot sees them
cols = {k: (f.high.tolist(), f.low.tolist(), f.close.tolist()) for k, f in frames.items()}
ctimes = [t.to_pydatetime() + timedelta(minutes=5) for t in next(iter(frames.values())).index]
def run_stream():
    st = MacdSwing(); f = st.step
    syms = list(cols.items())
    for i, t in enumerate(ctimes):
        for sym, (hh, ll, cc) in syms: f(sym, t, hh[i], ll[i], cc[i])
row("MacdSwing.step interleaved over all symbols", rate(total, run_stream, 1), "bars/s")
