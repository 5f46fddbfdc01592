"""DXLink throughput: emulator push rate (COMPACT Quote, flat packing) to 1 and 10 clients, and the
dxlink.wire decode rate on 500,000 Quote events (100 symbols, 100 per message) beside bare json.loads."""
import asyncio, json, random, sys, time, pathlib
import aiohttp
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "tests"))
from swingtrader.dxlink import wire as W
from swingtrader.models import Quote
from dxlink_harness import live, make_broker

QF = list(W.EVENT_FIELDS["Quote"])  # tastyware's 12 Quote fields

def decode_bench(n_events=500_000, per_msg=100):
    rnd = random.Random(1); syms = [f"S{i:03d}" for i in range(100)]
    msgs = []
    for k in range(n_events // per_msg):
        vals = []
        for i in range(per_msg):
            p = 100 + rnd.random()
            vals += [syms[i], 0, 0, 0, 1750000000000 + k, "Q", 1750000000000 + k, "Q", round(p, 2), round(p + 0.01, 2),
                     float(rnd.randint(1, 9) * 100), "NaN" if i % 50 == 0 else 300.0]
        msgs.append(W.dumps(W.feed_data(1, ["Quote", vals])))
    t = time.perf_counter()
    for m in msgs: json.loads(m)
    base = time.perf_counter() - t
    t = time.perf_counter(); n = 0; fields = {"Quote": QF}
    for m in msgs: n += len(W.decode_compact(W.loads(m)["data"], fields))
    typed = time.perf_counter() - t
    assert n == n_events
    import ujson
    t = time.perf_counter()
    for m in msgs: ujson.loads(m)
    ub = time.perf_counter() - t
    print(f"decode: bare json.loads          {n_events / base:12,.0f} events/s ({base:.2f} s)")
    print(f"decode: bare ujson.loads         {n_events / ub:12,.0f} events/s ({ub:.2f} s)")
    print(f"decode: dxlink.wire typed records {n_events / typed:12,.0f} events/s ({typed:.2f} s)")

async def push_bench(n_clients, seconds=3.0):
    "Quotes injected on the real emulator's loop (its DXLink fan-out) and read by n clients on this loop."
    with live(make_broker(symbols=40)) as L:
      syms = L.broker.symbols
      async with aiohttp.ClientSession() as s:
        counts, wss = [0] * n_clients, []
        for i in range(n_clients):
            ws = await s.ws_connect(L.url, max_msg_size=0)
            for m in (W.setup(), W.auth(L.token()), W.channel_request(1), W.feed_setup(1, {"Quote": QF})): await ws.send_str(W.dumps(m))
            await ws.send_str(W.dumps(W.feed_subscription(1, add=[{"type": "Quote", "symbol": x} for x in syms])))
            wss.append(ws)
        async def reader(i, ws):
            async for msg in ws:
                m = W.loads(msg.data)
                if m["type"] == "FEED_DATA": counts[i] += len(m["data"][1]) // len(QF)
        readers = [asyncio.ensure_future(reader(i, ws)) for i, ws in enumerate(wss)]
        await asyncio.sleep(0.3)
        now = L.clock.now()
        q = [Quote(x, now, 10.0, 10.01, 100, 100) for x in syms]
        async def inject():
            t0 = time.perf_counter(); sent = 0
            while time.perf_counter() - t0 < seconds:
                for ev in q: L.dx.on_market_event(ev)
                sent += len(q)
                await asyncio.sleep(0)            # let the writers run
            while any(not ss.q.empty() for ss in L.dx.sessions): await asyncio.sleep(0.01)
            return sent, sum(ss.conflated for ss in L.dx.sessions)
        base = sum(counts); t0 = time.perf_counter()
        sent, conflated = await asyncio.to_thread(L.srv.call, inject, timeout=60)
        await asyncio.sleep(0.3)
        dt = time.perf_counter() - t0
        got = sum(counts) - base
        for r in readers: r.cancel()
        for ws in wss: await ws.close()
    print(f"push: {n_clients:2d} client(s): {got / dt:12,.0f} events/s delivered in total ({got / dt / n_clients:,.0f} per client); "
          f"{sent * n_clients / dt:,.0f}/s offered, {conflated:,} conflated under backlog")

if __name__ == "__main__":
    asyncio.run(push_bench(1)); asyncio.run(push_bench(10))
    decode_bench()
