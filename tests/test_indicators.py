"Incremental indicators agree with the vectorised ones (hypothesis)."
import math
import numpy as np
import pandas as pd
from hypothesis import given, settings, strategies as st, HealthCheck

from swingtrader.indicators import EMA, MACD, ATR, SMA, Returns, RollingCorr, ema, macd, atr, sma, returns, rolling_corr, true_range

SET = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
prices = st.lists(st.floats(1.0, 5_000.0, allow_nan=False, allow_infinity=False), min_size=1, max_size=300)

def close_enough(a, b, tol=1e-9):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b)), (a, b)
    m = ~np.isnan(a)
    assert np.all(np.abs(a[m] - b[m]) <= tol * np.maximum(1.0, np.abs(b[m]))), np.max(np.abs(a[m] - b[m]))

@SET
@given(prices, st.integers(1, 60))
def test_ema_matches(xs, n):
    e = EMA(n)
    inc = [e.update(v) for v in xs]
    close_enough(inc, ema(xs, n))
    assert inc[0] == xs[0]                                   # seeded with the first value
    # the stated rule e = a*v + (1-a)*e, to 1e-9
    r, a = xs[0], 2 / (n + 1)
    for v in xs[1:]: r = a * v + (1 - a) * r
    close_enough([inc[-1]], [r])

@SET
@given(prices)
def test_ema_matches_pandas_exactly(xs):
    e = EMA(12)
    assert [e.update(v) for v in xs] == pd.Series(xs).ewm(alpha=2 / 13, adjust=False).mean().tolist()

@SET
@given(prices, st.integers(2, 20), st.integers(1, 10), st.integers(2, 12))
def test_macd_matches(xs, slow, fast_off, sig):
    fast = max(1, slow - fast_off)
    m = MACD(fast, slow, sig)
    rows = [(m.update(v), m.signal, m.hist) for v in xs]
    ref = macd(xs, fast, slow, sig)
    close_enough([r[0] for r in rows], ref["macd"]); close_enough([r[1] for r in rows], ref["signal"]); close_enough([r[2] for r in rows], ref["hist"])

bars = st.lists(st.tuples(st.floats(1.0, 1000.0), st.floats(0, 0.2), st.floats(0, 0.2), st.floats(0, 1)), min_size=1, max_size=300)

@SET
@given(bars, st.integers(1, 30))
def test_atr_matches(rows, n):
    c = np.array([r[0] for r in rows]); hi = c * (1 + np.array([r[1] for r in rows])); lo = c * (1 - np.array([r[2] for r in rows]))
    a = ATR(n)
    inc = [a.update(h, l, x) for h, l, x in zip(hi, lo, c)]
    close_enough(inc, atr(hi, lo, c, n))
    assert inc[0] == hi[0] - lo[0]
    # stated rule with explicit previous closes
    pc = np.r_[c[0], c[:-1]]
    tr = np.maximum(pc, hi) - np.minimum(pc, lo)
    close_enough(true_range(hi, lo, c), tr)
    r = tr[0]
    for v in tr[1:]: r = v / n + (1 - 1 / n) * r
    close_enough([inc[-1]], [r])

@SET
@given(prices, st.integers(1, 40))
def test_sma_matches(xs, n):
    s = SMA(n)
    inc = [s.update(v) for v in xs]
    close_enough(inc, sma(xs, n))
    assert all(math.isnan(v) for v in inc[: n - 1])
    if len(xs) >= n: close_enough([inc[-1]], [math.fsum(xs[-n:]) / n])

@SET
@given(prices, st.integers(1, 20))
def test_returns_match(xs, n):
    r = Returns(n)
    close_enough([r.update(v) for v in xs], returns(xs, n))

grid = st.integers(-1000, 1000).map(lambda i: i / 10_000)   # return-like values on a 1e-4 grid

@settings(deadline=None, max_examples=80)
@given(st.lists(st.tuples(grid, grid), min_size=2, max_size=250), st.integers(2, 40))
def test_rolling_corr_matches(pairs, n):
    x, y = [p[0] for p in pairs], [p[1] for p in pairs]
    rc = RollingCorr(n)
    inc = np.array([rc.update(a, b) for a, b in pairs])
    ref = rolling_corr(x, y, n).to_numpy()
    close_enough(inc, ref, tol=1e-9)
    # and pandas where it is defined
    pdr = pd.Series(x).rolling(n).corr(pd.Series(y)).to_numpy()
    m = ~np.isnan(ref) & ~np.isnan(pdr)
    assert np.all(np.abs(ref[m] - pdr[m]) < 1e-6)

def test_rolling_corr_price_like_levels():
    "Shifted sums keep precision on large, slowly moving values where naive sums would not."
    rng = np.random.default_rng(5)
    x = 1e6 + np.cumsum(rng.normal(size=5000)); y = 0.5 * x + rng.normal(size=5000)
    rc = RollingCorr(50)
    close_enough([rc.update(a, b) for a, b in zip(x, y)], rolling_corr(x, y, 50), tol=1e-9)

def test_constant_window_is_nan():
    rc = RollingCorr(3)
    out = [rc.update(a, b) for a, b in [(1, 1), (2, 5), (3, 1), (3, 2), (3, 7), (3, 1)]]
    ref = rolling_corr([1, 2, 3, 3, 3, 3], [1, 5, 1, 2, 7, 1], 3).to_numpy()
    assert math.isnan(out[-1]) and math.isnan(ref[-1]) and not math.isnan(out[2])
