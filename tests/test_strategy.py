"The streaming MacdSwing and the vectorised signals_frame produce identical signals; the rule's edge cases."
import json
from datetime import timedelta
import numpy as np
from hypothesis import given, settings, strategies as st

from swingtrader.models import Bar, SignalAction
from swingtrader.strategy import timeframe_delta, MacdSwing, MacdParams, signals_frame, frame_signals, synthetic_bars, Strategy

def key(s): return (s.symbol, s.action, s.time, s.price, s.atr, s.reason)

def stream(df, params=None, symbol="XYZ"):
    strat = MacdSwing(params)
    out = []
    for t, o, h, l, c, v in zip(df.index, df.open, df.high, df.low, df.close, df.volume):
        s = strat.on_bar(Bar(symbol, t.to_pydatetime(), o, h, l, c, v, strat.params.timeframe))
        if s: out.append(s)
    return strat, out

@settings(deadline=None, max_examples=25)
@given(st.integers(0, 10_000), st.integers(200, 3000), st.sampled_from([0.0005, 0.002, 0.01]),
       st.sampled_from([MacdParams(), MacdParams(fast=5, slow=13, signal=4, trend=20, atr_period=7, atr_mult=1.0, warmup=30),
                        MacdParams(atr_mult=3.5, warmup=26, timeframe="1h")]))
def test_stream_equals_vectorised(seed, n, vol, params):
    df = synthetic_bars(n, seed=seed, vol=vol, freq=timeframe_delta(params.timeframe))
    _, sigs = stream(df, params)
    fr = signals_frame(df, params)
    assert [key(s) for s in frame_signals(fr, "XYZ", params)] == [key(s) for s in sigs]
    # alternation, warm-up, close times
    acts = [s.action for s in sigs]
    assert all(a is (SignalAction.ENTER_LONG if i % 2 == 0 else SignalAction.EXIT_LONG) for i, a in enumerate(acts))
    if sigs: assert fr.index.get_loc(sigs[0].time - timeframe_delta(params.timeframe)) + 1 > params.warmup

def test_rounded_prices_and_flat_stretches():
    "Ticks of one cent and long flat stretches (ties between MACD and signal) still agree."
    df = synthetic_bars(4000, seed=11)
    for c in ("open", "high", "low", "close"): df[c] = df[c].round(2)
    df.iloc[1000:1300, :4] = df.iloc[1000]["close"]
    _, sigs = stream(df)
    assert [key(s) for s in frame_signals(signals_frame(df), "XYZ")] == [key(s) for s in sigs]
    assert len(sigs) > 4

def test_warmup_boundary():
    df = synthetic_bars(3000, seed=2)
    fr = signals_frame(df, MacdParams(warmup=26))
    e = int(np.flatnonzero(fr.action.eq("enter_long").to_numpy())[3])   # 0-based index of a later entry
    # bar number e+1 may enter when warmup = e, not when warmup = e+1
    assert fr.action.iloc[e] == "enter_long"
    assert signals_frame(df, MacdParams(warmup=e)).action.iloc[e] == "enter_long"
    assert signals_frame(df, MacdParams(warmup=e + 1)).action.iloc[e] != "enter_long"
    _, s = stream(df, MacdParams(warmup=e + 1))
    assert all(x.time > df.index[e] + timedelta(minutes=5) for x in s)

def test_exit_rules_and_entry_bar_counts_as_highest():
    df = synthetic_bars(6000, seed=4)
    fr = signals_frame(df, MacdParams(atr_mult=1.0))
    ent = np.flatnonzero(fr.action.eq("enter_long").to_numpy()); ex = np.flatnonzero(fr.action.eq("exit_long").to_numpy())
    assert len(ent) > 3 and set(fr.reason.dropna()) >= {"macd_cross_up", "macd_cross_down", "trailing_stop"}
    for e, x in zip(ent, ex):
        seg = fr.iloc[e:x + 1]
        hi = seg.close.cummax().to_numpy()                      # entry close included
        stop = seg.close.to_numpy() <= hi - 1.0 * seg.atr.to_numpy()
        cross = (seg.macd.shift(1) >= seg.signal.shift(1)) & (seg.macd < seg.signal)
        first = next(i for i in range(1, len(seg)) if stop[i] or cross.iloc[i])
        assert first == len(seg) - 1
        assert fr.reason.iloc[x] == ("macd_cross_down" if cross.iloc[-1] else "trailing_stop")
        entry = fr.iloc[e]
        assert entry.close > entry.ema_trend and entry.macd > entry.signal

def test_symbols_are_independent_and_state_roundtrip():
    a, b = synthetic_bars(1500, seed=1), synthetic_bars(1500, seed=2)
    strat = MacdSwing()
    mixed = {"A": [], "B": []}
    for (ta, ra), (tb, rb) in zip(a.iterrows(), b.iterrows()):
        for sym, t, r in (("A", ta, ra), ("B", tb, rb)):
            s = strat.on_bar(Bar(sym, t.to_pydatetime(), r.open, r.high, r.low, r.close, r.volume))
            if s: mixed[sym].append(s)
        if ta == a.index[700]: strat = MacdSwing.from_state(json.loads(json.dumps(strat.state())))
    assert [key(s)[1:] for s in mixed["A"]] == [key(s)[1:] for s in stream(a)[1]]
    assert [key(s)[1:] for s in mixed["B"]] == [key(s)[1:] for s in stream(b)[1]]
    assert isinstance(strat, Strategy)

def test_rejected_entry_does_not_leave_strategy_long():
    df = synthetic_bars(3000, seed=9)
    strat = MacdSwing(); rejected = None; after = []
    for t, r in df.iterrows():
        s = strat.on_bar(Bar("X", t.to_pydatetime(), r.open, r.high, r.low, r.close, r.volume))
        if s and rejected is None:
            assert s.action is SignalAction.ENTER_LONG
            rejected = s; strat.mark_position("X", False)
            assert not strat.is_long("X")
        elif s: after.append(s)
    # the next signal is a fresh entry, never an exit of the rejected position
    assert after and after[0].action is SignalAction.ENTER_LONG and after[0].time > rejected.time

def test_mark_position_adopts_position_and_exits_it():
    df = synthetic_bars(600, seed=3)
    strat = MacdSwing(MacdParams(warmup=10_000))   # never enters by itself
    for i, (t, r) in enumerate(df.iterrows()):
        if i == 50: strat.mark_position("X", True, r.close)
        s = strat.on_bar(Bar("X", t.to_pydatetime(), r.open, r.high, r.low, r.close, r.volume))
        if s: break
    assert s is not None and s.action is SignalAction.EXIT_LONG and not strat.is_long("X")
