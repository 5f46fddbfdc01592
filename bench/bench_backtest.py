"""Backtest speed: 20 symbols x one year of 5-minute bars (~390k bars) through the Trader on the SimBroker.

Prints bars/s for: a bare Python loop (one EMA per bar), the same loop building a Bar event per bar (what
event-driven frameworks do), the strategy's float fast path alone, the full backtest when no order is placed
(Trader + broker fed every bar), and the full backtest with the default strategy trading (every order through
sizer, RiskGuard, ledger and matching engine), in `close` and `quote` fill modes; then the ledger's SQL statements per order.
For scale: established event-driven Python frameworks run such work at about 15,000-60,000 bars/s.
Run: .venv/bin/python bench/bench_backtest.py [months of trading to run, default 2 (Jan-Feb); 12 = the whole year]
"""
import sys
import time
from datetime import date, datetime, timezone

from swingtrader.config import Settings
from swingtrader.models import Bar
from swingtrader.strategy import MacdSwing
from swingtrader.backtest import Backtest
from swingtrader.sim.data import make_universe, generate_bars, resample_bars

SYMBOLS, START, END, SEED = 20, date(2025, 1, 2), date(2025, 12, 31), 42

def rate(n, s): return f"{n / s:>12,.0f} bars/s  ({n:,} bars in {s:.2f} s)"

def main():
    t0 = time.perf_counter()
    u = make_universe(SYMBOLS, SEED)
    bars5 = {s: resample_bars(df, "5m") for s, df in generate_bars(u, START, END, SEED).items()}
    n = sum(map(len, bars5.values()))
    print(f"data: {SYMBOLS} symbols x {START}..{END}, {n:,} 5-minute bars ({time.perf_counter() - t0:.1f} s to generate)")

    bt = Backtest(bars5, Settings(warmup_bars=10_000), universe=u, fill_at="close")   # no entry fires in a run shorter than 10,000 bars per symbol (the default 2 months)
    names, sym, hs, ls, cs, g, times = bt.names, bt._sym.tolist(), bt._h.tolist(), bt._l.tolist(), bt._c.tolist(), bt._g.tolist(), bt._times

    ema, a = {}, 2 / 13
    t0 = time.perf_counter()
    for i in range(n):
        s, c = names[sym[i]], cs[i]
        e = ema.get(s)
        ema[s] = c if e is None else e + a * (c - e)
    print("bare Python loop, one EMA per bar      ", rate(n, time.perf_counter() - t0))

    ema = {}
    t0 = time.perf_counter()
    for i in range(n):
        c = cs[i]
        b = Bar(names[sym[i]], times[g[i]], c, max(c, hs[i]), min(c, ls[i]), c, 0.0, "5m")
        e = ema.get(b.symbol)
        ema[b.symbol] = c if e is None else e + a * (c - e)
    print("bare loop + one Bar object per bar     ", rate(n, time.perf_counter() - t0))

    m = MacdSwing()
    t0 = time.perf_counter()
    for i in range(n): m.step(names[sym[i]], times[g[i]], hs[i], ls[i], cs[i])
    print("strategy fast path alone (MacdSwing)   ", rate(n, time.perf_counter() - t0))

    res = bt.run()
    print("backtest, no orders (Trader + broker)  ", rate(res.info["bars"], bt.elapsed))

    months = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    until = datetime(2025 + months // 12, months % 12 + 1, 1, tzinfo=timezone.utc)
    for fill_at in ("close", "quote"):
        bt2 = Backtest(bars5, Settings(), universe=u, fill_at=fill_at, kill_switch=False)   # trade the whole period (the kill switch, on by default, would stop the entries)
        r = bt2.run(until=until)
        orders = len(bt2.ledger.orders())
        print(f"backtest, trading ({fill_at:5}, {months:2d} mo)   ", rate(r.info["bars"], bt2.elapsed),
              f"{len(r.trades):,} round trips, {orders:,} orders, ~{bt2.elapsed / max(orders, 1) * 1e3:.2f} ms per order all-in")

    bt3 = Backtest(bars5, Settings(), universe=u, fill_at="close", kill_switch=False)   # not timed: how much SQL an order costs
    n_sql = [0]
    bt3.ledger.db.set_trace_callback(lambda _: n_sql.__setitem__(0, n_sql[0] + 1))
    bt3.run(until=datetime(2025, 2, 1, tzinfo=timezone.utc))
    orders = len(bt3.ledger.orders())
    print(f"ledger: {n_sql[0] / max(orders, 1):.1f} SQL statements per order (incl. one BEGIN/COMMIT per bar time), {orders:,} orders in Jan")

if __name__ == "__main__":
    main()
