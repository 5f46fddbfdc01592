"The backtest's bar tape is the broker's `BarTape`, built once: the same arrays the two separate builds made before."
import numpy as np
import pandas as pd

from swingtrader.backtest import Backtest
from swingtrader.config import Settings
from swingtrader.sim.book import BarTape
from swingtrader.sim.data import generate_bars, make_universe

COLS = ["open", "high", "low", "close", "volume"]


def _bars(seed=3, n=5):
    u = make_universe(n, seed)
    bars = generate_bars(u, "2026-03-02", "2026-03-06", seed)
    names = list(bars)
    bars[names[1]] = bars[names[1]].iloc[np.arange(len(bars[names[1]])) % 40 >= 10]   # gaps: fewer bars than the others
    bars[names[2]] = bars[names[2]].iloc[40:]                     # starts later
    bars[names[3]] = bars[names[3]].assign(volume=bars[names[3]]["volume"].astype("int64"))   # an integer column
    return u, bars


def _old_tape(bars, bar_ns):
    "The tape as `BarTape` and `Backtest._tape` each built it before: (bars x 5) concatenation, lexsort, gathers, np.unique."
    parts = [(i, df) for i, df in enumerate(bars.values()) if len(df)]
    t = np.concatenate([df.index.as_unit("ns").asi8 for _, df in parts])
    sym = np.concatenate([np.full(len(df), i, dtype=np.int32) for i, df in parts])
    vals = np.concatenate([df[COLS].to_numpy(dtype=float) for _, df in parts])
    order = np.lexsort((sym, t))
    close = t[order] + bar_ns
    times, g = np.unique(close, return_inverse=True)
    return t[order], sym[order], vals[order], close, times, g


def test_bar_tape_same_arrays():
    _, bars = _bars()
    bars = {**bars, "EMPTY": bars[next(iter(bars))].iloc[:0]}     # an empty frame is skipped, its number kept
    tape = BarTape(bars, 300)
    t, sym, vals, close, _, _ = _old_tape(bars, 300 * 10**9)
    for a, b in ((tape.t, t), (tape.sym, sym), (tape.vals, vals), (tape.close, close)):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    assert np.array_equal(tape.vals[:, 3], vals[:, 3]) and tape.vals[7].tolist() == vals[7].tolist()
    assert [p.tolist() for p in tape.positions()] == [np.flatnonzero(sym == i).tolist() for i in range(len(bars))]
    by = tape.by_symbol()
    assert list(by) == list(bars) and list(by["EMPTY"][1]) == []
    for i, s in enumerate(bars):
        ks = np.flatnonzero(sym == i)
        assert list(by[s][1]) == ks.tolist() and list(by[s][0]) == close[ks].tolist()


def test_backtest_tape_is_the_brokers():
    u, bars = _bars()
    bt = Backtest(bars, Settings(warmup_bars=30), universe=u)
    t, sym, vals, close, times, g = _old_tape(bt.bars, bt.bar_ns)
    assert bt._t0 is bt.broker.tape.t and np.shares_memory(bt._c, bt.broker.tape.vals)   # one tape, not two
    for a, b in ((bt._t0, t), (bt._sym, sym), (bt._h, vals[:, 1]), (bt._l, vals[:, 2]), (bt._c, vals[:, 3]), (bt._close, close),
                 (bt._times_ns, times), (bt._g, g)):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    assert bt._times == list(pd.DatetimeIndex(times, tz="UTC").to_pydatetime())
    assert bt.clock.now() == pd.Timestamp(t[0], tz="UTC").to_pydatetime()
    r = bt.run()
    assert r.info["bars"] == len(t) and len(r.equity) == len(times)
