"""Fill-detection latency: time from the simulator creating a fill to the OrderUpdate reaching the consumer,
through the tastytrade account streamer and through /orders/live polling only (5 s interval).

    .venv/bin/python bench/bench_fills.py
"""
import asyncio, random, statistics, time
from datetime import date, datetime, timezone

import requests

from swingtrader.config import Settings
from swingtrader.clock import SimClock, WallClock
from swingtrader.models import OrderRequest, OrderUpdate
from swingtrader.sim.broker import SimBroker
from swingtrader.emulator.core import Emulator
from swingtrader.emulator.app import EmulatorServer
from swingtrader.tastytrade.broker import TastytradeBroker
from swingtrader.tastytrade.order_updates import TastytradeOrderUpdates

N_SYMBOLS, STEP_S = 16, 0.37     # one fill every ~0.37 s real time, uncorrelated with the poll phase

def pct(xs, p): xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

async def run(mode:str, rounds:int, poll_interval:float=5.0):
    clock = SimClock(datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc), mode="manual")
    sim = SimBroker.from_seed(seed=3, symbols=N_SYMBOLS, start=date(2026, 3, 2), end=date(2026, 3, 4), clock=clock)
    emu = Emulator(sim, clock)
    filled_at = {}
    emu.add_market_listener(lambda ev: isinstance(ev, OrderUpdate) and ev.fill and filled_at.setdefault(ev.fill.fill_id, time.perf_counter()))
    with EmulatorServer(emu) as srv:
        st = Settings(broker="tastytrade", TT_CLIENT_SECRET="bench", TT_REFRESH_TOKEN="bench", TT_API_URL=srv.api_url, TT_STREAMER_URL=srv.streamer_url)
        b = TastytradeBroker(st, clock=WallClock())
        ups = await TastytradeOrderUpdates(b, poll_interval=poll_interval, streamer=(mode == "streamer")).start()
        lat = []
        for _ in range(rounds):
            for i, sym in enumerate(sim.symbols): sim.set_fill_mode(f"delayed:{i + 1}", key=sym)
            orders = [await asyncio.to_thread(b.submit, OrderRequest(sym, "buy", qty=1)) for sym in sim.symbols]
            for o in orders: ups.expect(o)
            want = {o.id for o in orders}
            async def advance():
                for _ in range(N_SYMBOLS + 1):
                    await asyncio.sleep(STEP_S * (0.5 + random.random()))
                    await asyncio.to_thread(requests.post, f"{srv.api_url}/_emulator/clock", json={"seconds": 60}, headers=srv.control_headers, timeout=5)
            adv = asyncio.create_task(advance())
            t_end = time.monotonic() + N_SYMBOLS * STEP_S * 2 + poll_interval + 10
            while want and time.monotonic() < t_end:
                e = await ups.next(timeout=1)
                if e is None or e.fill is None: continue
                t = time.perf_counter()
                lat.append(t - filled_at.get(e.fill.fill_id, t)); want.discard(e.fill.order_id)
            await adv
            if want: print(f"  {mode}: {len(want)} fills not detected in time")
        await ups.close(); b.close()
        return lat, ups.stats

async def main():
    t0 = time.monotonic()
    for mode, rounds, every in (("streamer", 2, 5.0), ("polling", 2, 5.0), ("polling", 1, 2.0)):
        lat, stats = await run(mode, rounds, every)
        ms = [x * 1000 for x in lat]
        label = mode if mode == "streamer" else f"poll {every:g}s"
        print(f"{label:9s} n={len(ms):3d}  p50={pct(ms, 50):7.1f} ms  p99={pct(ms, 99):7.1f} ms  max={max(ms):7.1f} ms  "
              f"mean={statistics.mean(ms):7.1f} ms  (events: streamer {stats['streamer_events']}, poll {stats['poll_events']})")
    print(f"total {time.monotonic() - t0:.1f} s")

if __name__ == "__main__": asyncio.run(main())
