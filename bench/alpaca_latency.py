"""Alpaca on the emulator: submit latency and fill-detection latency through alpaca-py, unmodified.

Submit latency: wall time of `AlpacaBroker.submit` (alpaca-py's POST /v2/orders plus our wrapping) for resting
limit orders. Fill detection: from the call of `submit` for a market order to its FILL event out of
`AlpacaOrderUpdates` (the `trade_updates` stream; REST polling only while the stream is down). Order events are counted by
source: the stream, polls while running (stream down, safety polls, fill gaps: 0 with a healthy stream), and the start's
replay of orders that changed while no listener ran (here the resting limit orders, cancelled before the updates start).
Run: .venv/bin/python bench/alpaca_latency.py [orders, default 100]
"""
import asyncio, sys, time
from datetime import date, timedelta
from decimal import Decimal
from importlib.metadata import version

from swingtrader.config import Settings
from swingtrader.clock import MarketCalendar
from swingtrader.models import OrderEvent, OrderRequest
from swingtrader.session import emulated_alpaca
from swingtrader.alpaca.broker import AlpacaBroker
from swingtrader.alpaca.order_updates import AlpacaOrderUpdates

DAY = date(2026, 3, 2)

def pct(xs, q): xs = sorted(xs); return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000

def line(name, xs): return f"{name:<34} n={len(xs):>4}  p50 {pct(xs, .5):7.2f} ms  p99 {pct(xs, .99):7.2f} ms  max {max(xs) * 1000:7.2f} ms"

async def fills(broker, sym, n):
    ou = AlpacaOrderUpdates(broker, poll_interval=0.5)
    await ou.start(connect_timeout=30)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        o = await asyncio.to_thread(broker.submit, OrderRequest(sym, "buy" if i % 2 == 0 else "sell", qty=1))
        ou.expect(o)
        while True:
            ev = await ou.next(30)
            if ev is None: raise SystemExit(f"no fill for {o.id} within 30 s")
            if ev.order.id == o.id and ev.event is OrderEvent.FILL: out.append(time.perf_counter() - t0); break
    await ou.close()
    return out, ou.stats

def main(n:int=100):
    cal = MarketCalendar()
    env = emulated_alpaca(Settings(_env_file=None, sim_symbols=3), DAY, DAY, speed=1.0, start=cal.session(DAY)[0] + timedelta(hours=1))
    try:
        b = AlpacaBroker(env.settings, clock=env.clock, calendar=env.calendar)
        sym = env.sim.symbols[0]
        price = Decimal(str(round(b.latest_quote(sym).bid / 2, 2)))
        sub = []
        for _ in range(n):
            t0 = time.perf_counter(); b.submit(OrderRequest(sym, "buy", qty=1, type="limit", limit_price=price)); sub.append(time.perf_counter() - t0)
        b.cancel_all()
        det, stats = asyncio.run(fills(b, sym, max(10, n // 2)))
        print(f"Alpaca adapter on the emulator (alpaca-py {version('alpaca-py')}), {sym}")
        print(line("submit (limit, resting)", sub))
        print(line("fill detection (submit -> FILL)", det))
        print(f"order events: {stats['stream_events']} by stream, {stats['poll_events']} by polling while running "
              f"({stats['polls']} polls), {stats['replay_events']} replayed at start (the {n} limit orders above, placed and "
              "cancelled before the order updates started: accepted + cancelled each)")
        http = b.transport.latency.summary().get("POST /orders", {})
        print(f"POST /v2/orders alone: p50 {http.get('p50_ms')} ms, p99 {http.get('p99_ms')} ms (n={http.get('n')})")
        b.close()
    finally: env.close()

if __name__ == "__main__": main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
