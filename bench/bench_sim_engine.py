"""Matching-engine throughput: bar events per second with 0, 100 and 1,000 resting orders (gtc limits and stops that never fill).

Run: .venv/bin/python bench/bench_sim_engine.py
"""
import gc, time
from datetime import date
from decimal import Decimal

from swingtrader.models import OrderRequest
from swingtrader.sim.account import SimAccount, SessionTable, to_ns
from swingtrader.sim.engine import MatchingEngine, EngineConfig
from swingtrader.sim.book import BarTape
from swingtrader.sim.data import make_universe, generate_bars, asset_for
from swingtrader.sim.broker import SimBroker
from swingtrader.clock import SimClock

SYMBOLS, START, END = 20, date(2026, 3, 2), date(2026, 3, 13)   # 10 sessions


def main():
    t0 = time.perf_counter()
    universe = make_universe(SYMBOLS, 1)
    market = generate_bars(universe, START, END, 1)
    n_bars = sum(len(df) for df in market.values())
    print(f"data: {SYMBOLS} symbols x 10 sessions = {n_bars:,} one-minute bars (generated in {time.perf_counter() - t0:.1f} s)")
    sessions = SessionTable()
    assets = {s: asset_for(universe, s) for s in universe.index}
    first = market[universe.index[0]].index[0].to_pydatetime()
    for n_orders in (0, 100, 1_000):
        best = float("inf")
        for _ in range(5):
            eng = MatchingEngine(assets, SimAccount(cash=Decimal("100000000")), EngineConfig(), sessions,
                                 spread_bps=dict(universe.spread_bps), ref_prices=dict(universe.price))
            syms = list(universe.index)
            for i in range(n_orders):               # gtc buy limits far below and buy stops far above: they never fill
                s = syms[i % len(syms)]
                px = float(universe.price[s])
                kw = dict(type="limit", limit_price=Decimal(str(round(px * 0.3, 2)))) if i % 2 == 0 else \
                     dict(type="stop", stop_price=Decimal(str(round(px * 3, 2))))
                eng.submit(OrderRequest(s, "buy", qty=1, tif="gtc", **kw), to_ns(first))
            tape = BarTape(market)
            gc.collect()
            t = time.perf_counter()
            fed = tape.feed(eng, int(tape.close[-1]))
            best = min(best, time.perf_counter() - t)
            assert fed == n_bars and len(eng.working) == n_orders and not eng.fills
        print(f"engine, {n_orders:>5} open orders: {n_bars / best:>12,.0f} bar events/s  ({best * 1e3:.0f} ms for {n_bars:,} bars)")

    # the whole broker in a fast backtest: sync() once per simulated minute, one market order every 30 minutes
    b = SimBroker(market, universe, SimClock(first, mode="fast"))
    t = time.perf_counter()
    steps = 0
    while (nxt := b.next_event_time()) is not None:
        b.clock.set(nxt); b.sync(); steps += 1
        if steps % 30 == 0:
            b.submit(OrderRequest(universe.index[steps % SYMBOLS], "buy" if steps % 60 else "sell", qty=1, type="limit",
                                  limit_price=Decimal("1.00")))
    dt = time.perf_counter() - t
    print(f"SimBroker fast run, sync per minute: {n_bars / dt:>12,.0f} bar events/s ({steps:,} syncs, {dt:.2f} s)")


if __name__ == "__main__":
    main()
