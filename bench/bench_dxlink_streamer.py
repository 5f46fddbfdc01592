"""DXLinkStreamer throughput and memory: 500,000 Quote events, 100 symbols packed 100 per frame, over loopback.

Each client runs in its own process (peak RSS is per process). Prints events/s and peak RSS for:
bare websockets + json.loads, bare websockets + ujson.loads, and DXLinkStreamer (lossless and conflating)."""
import asyncio, json, math, multiprocessing as mp, resource, time

N_EVENTS, N_SYMS = 500_000, 100
N_FRAMES = N_EVENTS // N_SYMS


def frames():
    from swingtrader.dxlink import wire
    f = wire.EVENT_FIELDS["Quote"]
    out = []
    for k in range(N_FRAMES):
        evs = [dict(eventSymbol=f"S{i:03d}", eventTime=0, sequence=k, timeNanoPart=0, bidTime=1772461800000 + k, bidExchangeCode="Q",
                    askTime=1772461800000 + k, askExchangeCode="Q", bidPrice=100 + i + k * 0.01, askPrice=100.01 + i + k * 0.01,
                    bidSize=100.0, askSize=math.nan if i == 0 else 200.0) for i in range(N_SYMS)]
        out.append(wire.dumps(wire.feed_data(1, wire.encode_compact("Quote", evs, f))))
    return out


def serve(port_q):
    import websockets
    from swingtrader.dxlink import wire
    data = frames()
    async def handler(ws, path=None):
        async for raw in ws:
            m = json.loads(raw); t = m["type"]
            if t == "SETUP": await ws.send(wire.dumps(wire.setup("1.0-bench", 60, 60))); await ws.send(wire.dumps(wire.auth_state("UNAUTHORIZED")))
            elif t == "AUTH": await ws.send(wire.dumps(wire.auth_state("AUTHORIZED", "u")))
            elif t == "CHANNEL_REQUEST": await ws.send(wire.dumps(wire.channel_opened(m["channel"])))
            elif t == "FEED_SETUP": await ws.send(wire.dumps(wire.feed_config(m["channel"], "COMPACT", 0.1, {"Quote": wire.EVENT_FIELDS["Quote"]})))
            elif t == "FEED_SUBSCRIPTION" or t == "BARE":
                for d in data: await ws.send(d)
                await ws.send('{"type":"BENCH_END","channel":0}')
    async def main():
        srv = await websockets.serve(handler, "127.0.0.1", 0, compression=None, max_size=None)
        port_q.put(srv.sockets[0].getsockname()[1])
        await asyncio.Future()
    asyncio.run(main())


def bare(port, loader, out):
    import websockets
    loads = {"json": json.loads, "ujson": __import__("ujson").loads}[loader]
    async def main():
        n = 0
        async with websockets.connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=None) as ws:
            await ws.send('{"type":"BARE","channel":0}')
            t0 = time.perf_counter()
            async for raw in ws:
                m = loads(raw)
                if m["type"] != "FEED_DATA": break
                n += len(m["data"][1]) // 12
            return n, time.perf_counter() - t0
    n, dt = asyncio.run(main())
    out.put((f"bare websockets + {loader}.loads", n, dt, 0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def ours(port, conflate, out):
    from swingtrader.dxlink.streamer import DXLinkStreamer
    async def main():
        st = DXLinkStreamer(lambda: ("t", f"ws://127.0.0.1:{port}/"))
        ev = st.events(conflate=conflate)
        await st.start()
        await st.subscribe("Quote", [f"S{i:03d}" for i in range(N_SYMS)])
        n, t0 = 0, None
        async for r in ev:   # typed namedtuple records, one by one
            if t0 is None: t0 = time.perf_counter()
            n += 1
            if r.sequence == N_FRAMES - 1 and r.eventSymbol == f"S{N_SYMS-1:03d}": break
        dt = time.perf_counter() - t0
        decoded = st.stats.events
        await st.close()
        return n, dt, decoded, ev
    n, dt, decoded, _ = asyncio.run(main())
    out.put((f"DXLinkStreamer events() conflate={conflate}", n, dt, decoded, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    pq, out = ctx.Queue(), ctx.Queue()
    srv = ctx.Process(target=serve, args=(pq,), daemon=True); srv.start()
    port = pq.get(timeout=60)
    runs = [(bare, ("json",)), (bare, ("ujson",)), (ours, (False,)), (ours, (True,))]
    print(f"{N_EVENTS:,} Quote events, {N_SYMS} symbols, {N_SYMS} per frame, loopback websocket")
    print(f"{'client':45s} {'delivered':>10s} {'events/s':>12s} {'decoded/s':>12s} {'peak RSS':>9s}")
    for fn, args in runs:
        p = ctx.Process(target=fn, args=(port, *args, out)); p.start(); p.join(120)
        name, n, dt, decoded, rss = out.get(timeout=5)
        dec = f"{decoded / dt:12,.0f}" if decoded else f"{'':12s}"
        print(f"{name:45s} {n:10,d} {n / dt:12,.0f} {dec} {rss:7.0f}MB")
    srv.terminate()
