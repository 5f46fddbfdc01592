"`MacdSwing.next_exit` bounded by the series' first cross down gives the bar the plain bar-by-bar walk gives."
import math
from hypothesis import given, settings, strategies as st
from swingtrader.strategy import MacdSwing, SymbolState, synthetic_bars

def walk(hi, ser, i):
    "The reference: every bar from `i`, a cross down or the trailing stop."
    for j in range(i, len(ser.close)):
        c = ser.close[j]
        if c > hi: hi = c
        if ser.down[j] or c <= hi - ser.katr[j]: return j
    return None

@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(5, 400), st.floats(0.0005, 0.02), st.data())
def test_next_exit_equals_walk(seed, n, vol, data):
    df = synthetic_bars(n, seed=seed, vol=vol)
    m = MacdSwing()
    ser = m.series("XYZ", df["high"], df["low"], df["close"])
    i = data.draw(st.integers(0, n - 1))
    s = m.symbols["XYZ"] = SymbolState()
    s.long = True
    s.hi = data.draw(st.sampled_from([math.nan, float(df["close"].iloc[i]), float(df["close"].max()) + 1, 0.0]))
    assert m.next_exit("XYZ", ser, i) == walk(s.hi, ser, i)
