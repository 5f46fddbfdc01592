"""The canonical rule set as a plain-Python backtest: the reference swingtrader's canonical preset is compared with.

Rules (issue 15, "Canonical comparability"):
- Indicators per symbol, never reset at day boundaries: EMA seeded with the first value (alpha = 2/(n+1)),
  MACD 12/26/9 on close (signal = EMA9 of MACD, seeded with the first MACD, i.e. 0), ATR 14 Wilder
  (alpha = 1/14) seeded with TR0 = high - low, TR = max(high, prev close) - min(low, prev close); EMA50 trend.
- Decisions per time slice (all bars closing at the same time), after all the slice's bars are known, symbols
  ascending. Equity E (cash + shares x last close) and available cash are measured before any order of the
  slice; an entry spends from the available cash, an exit's proceeds come back only after the slice.
- Exit the whole position on a MACD cross-down (prev macd >= prev signal and macd < signal) or when
  close <= highest close since entry (this bar included) - 2 x ATR.
- Entry after 100 bars (the bar's 1-based count > 100) on a MACD cross-up (prev macd <= prev signal and
  macd > signal) with close > EMA50; size = min(floor(1 % E / (2 ATR)), floor(5 % E / close), floor(cash / close)),
  whole shares, at least 1 (else no position and the strategy stays flat).
- Fill at the decision bar's close, no costs, long only, one position per symbol; no entry on the data's
  last bar (the last time slice); positions are not force-closed at the end.

`run_reference(bars, cash)` takes {symbol: DataFrame(high, low, close[, open, volume]) indexed by bar open time}
and the bar length, and returns (trades, final_equity); each trade is a dict with symbol, entry_time,
entry_price, exit_time, exit_price, qty (times are bar close times, None for an open position's exit).
Run it as a script to time it on the bench's generated year (20 symbols x 5-minute bars, seed 42), and with --compare
to check swingtrader's CanonicalBacktest against it trade for trade:  python bench/reference_backtest.py [months] [--compare]
"""
import math
import sys
import time


def run_reference(bars, bar_ns, cash=100_000.0, fast=12, slow=26, signal=9, trend=50, atr_n=14, k=2.0,
                  warmup=100, risk=0.01, cap=0.05):
    af, as_, ag, at, aa = 2 / (fast + 1), 2 / (slow + 1), 2 / (signal + 1), 2 / (trend + 1), 1 / atr_n
    rows = []                                                  # (close time ns, symbol, high, low, close)
    for sym, df in bars.items():
        t = df.index.as_unit("ns").asi8
        for ti, h, l, c in zip(t.tolist(), df["high"].tolist(), df["low"].tolist(), df["close"].tolist()):
            rows.append((ti + bar_ns, sym, h, l, c))
    rows.sort(key=lambda r: (r[0], r[1]))
    last_t = rows[-1][0] if rows else None
    st = {}                                                    # symbol -> [n, ef, es, eg, et, atr, pc, pm, ps]
    pos = {}                                                   # symbol -> [qty, entry_price, entry_time, highest close]
    last = {}                                                  # symbol -> last close
    trades, open_trades = [], {}
    i, n_rows = 0, len(rows)
    while i < n_rows:
        T = rows[i][0]
        j = i
        while j < n_rows and rows[j][0] == T: j += 1
        sl = rows[i:j]
        for _, sym, h, l, c in sl: last[sym] = c
        E = cash + sum(q[0] * last[s] for s, q in pos.items())   # before any order of the slice
        avail, refund = cash, 0.0
        for _, sym, h, l, c in sl:
            s = st.get(sym)
            if s is None:
                s = st[sym] = [1, c, c, 0.0, c, h - l, c, 0.0, 0.0]
                m = g = 0.0
                pm = ps = math.nan
            else:
                s[0] += 1
                s[1] += af * (c - s[1]); s[2] += as_ * (c - s[2])
                m = s[1] - s[2]
                s[3] += ag * (m - s[3]); g = s[3]
                s[4] += at * (c - s[4])
                pc = s[6]
                tr = max(h, pc) - min(l, pc)
                s[5] += aa * (tr - s[5])
                s[6] = c
                pm, ps = s[7], s[8]
                s[7], s[8] = m, g
            p = pos.get(sym)
            if p is not None:
                if c > p[3]: p[3] = c
                if (pm >= ps and m < g) or c <= p[3] - k * s[5]:
                    refund += p[0] * c
                    tr_ = open_trades.pop(sym)
                    tr_.update(exit_time=T, exit_price=c)
                    trades.append(tr_)
                    del pos[sym]
                continue
            if s[0] > warmup and pm <= ps and m > g and c > s[4] and T != last_t:
                atr = s[5]
                q = min(math.floor(risk * E / (k * atr)) if atr > 0 else 0, math.floor(cap * E / c), math.floor(avail / c))
                if q >= 1:
                    avail -= q * c
                    pos[sym] = [q, c, T, c]
                    open_trades[sym] = dict(symbol=sym, entry_time=T, entry_price=c, exit_time=None, exit_price=None, qty=q)
        cash = avail + refund
        i = j
    trades += sorted(open_trades.values(), key=lambda d: (d["entry_time"], d["symbol"]))
    equity = cash + sum(q[0] * last[s] for s, q in pos.items())
    return trades, equity


def main():
    from datetime import date
    from swingtrader.sim.data import make_universe, generate_bars, resample_bars
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    months = int(args[0]) if args else 12
    u = make_universe(20, 42)
    end = date(2025, 12, 31) if months >= 12 else date(2025, months + 1, 1)
    bars = {s: resample_bars(df, "5m") for s, df in sorted(generate_bars(u, date(2025, 1, 2), end, 42).items())}
    n = sum(map(len, bars.values()))
    t0 = time.perf_counter()
    trades, eq = run_reference(bars, 5 * 60 * 10**9)
    dt = time.perf_counter() - t0
    print(f"reference: {n:,} bars in {dt:.2f} s = {n / dt:,.0f} bars/s, {len(trades):,} trades, final equity {eq:,.2f}")
    if "--compare" not in sys.argv: return
    import pandas as pd
    from swingtrader.canonical import CanonicalBacktest
    bt = CanonicalBacktest(bars, universe=u)
    t0 = time.perf_counter()
    r = bt.run()
    dt2 = time.perf_counter() - t0
    ours = [(t.symbol, t.entry_signal_time.value, float(t.entry_price), t.exit_signal_time.value, float(t.exit_price), float(t.qty))
            for t in r.trades.itertuples()]
    ours += [(t.symbol, pd.Timestamp(t.entry_signal_time).value, t.entry_price, None, None, t.qty) for t in bt.open_positions().itertuples()]
    ref = [(d["symbol"], d["entry_time"], d["entry_price"], d["exit_time"], d["exit_price"], float(d["qty"])) for d in trades]
    key = lambda x: (x[1], x[0])
    ours.sort(key=key); ref.sort(key=key)
    same = sum(a == b for a, b in zip(ours, ref))
    print(f"canonical: {n:,} bars in {dt2:.2f} s = {n / dt2:,.0f} bars/s, {len(ours):,} trades, final equity {r.summary()['final_equity']:,.2f}")
    print(f"trade for trade: {same:,} of {len(ref):,} reference trades equal, counts {'equal' if len(ours) == len(ref) else 'DIFFER'}"
          f" -> {'IDENTICAL' if same == len(ref) == len(ours) else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
