"""Fill detection against the emulator: streamer, polling fallback, disconnects, lost messages; each fill exactly once."""
import asyncio, socket, time
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest, requests

from swingtrader.config import Settings
from swingtrader.clock import SimClock, WallClock
from swingtrader.models import OrderRequest, OrderEvent
from swingtrader.sim.broker import SimBroker
from swingtrader.tastytrade.broker import TastytradeBroker
from swingtrader.tastytrade.order_updates import TastytradeOrderUpdates

START = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)

@pytest.fixture
def env():
    from emu_support import serve
    clock = SimClock(START, mode="manual")
    sim = SimBroker.from_seed(seed=5, symbols=6, start=date(2026, 3, 2), end=date(2026, 3, 3), clock=clock)
    with serve(broker=sim) as srv:
        st = Settings(broker="tastytrade", TT_CLIENT_SECRET="s-1234", TT_REFRESH_TOKEN="r-1234",
                      TT_API_URL=srv.api_url, TT_STREAMER_URL=srv.streamer_url)
        b = TastytradeBroker(st, clock=WallClock())
        class E: pass
        e = E(); e.sim, e.srv, e.settings, e.broker, e.clock = sim, srv, st, b, clock
        e.faults = lambda **kw: requests.post(f"{srv.api_url}/_emulator/faults", json=kw, headers=srv.control_headers, timeout=5).raise_for_status()
        e.control = lambda path, **kw: requests.post(f"{srv.api_url}/_emulator/{path}", json=kw, headers=srv.control_headers, timeout=5).json()
        try: yield e
        finally: b.close()

async def collect(ups, want_fills:int, timeout:float=15.0):
    "Events until `want_fills` fill events arrived, plus a short quiet period to catch duplicates."
    evs, t_end = [], time.monotonic() + timeout
    while sum(1 for e in evs if e.fill) < want_fills and time.monotonic() < t_end:
        if (e := await ups.next(timeout=0.2)) is not None: evs.append(e)
    while (e := await ups.next(timeout=0.8)) is not None: evs.append(e)
    return evs

async def submit_all(b, reqs):
    return [await asyncio.to_thread(b.submit, r) for r in reqs]

def test_streamer_reports_each_fill_once(env):
    async def main():
        ups = await TastytradeOrderUpdates(env.broker, poll_interval=0.5).start()
        assert ups.streaming
        orders = await submit_all(env.broker, [OrderRequest(s, "buy", qty=i + 1) for i, s in enumerate(env.sim.symbols[:4])])
        evs = await collect(ups, 4)
        await ups.close(); return orders, evs, ups
    orders, evs, ups = asyncio.run(main())
    fills = [e for e in evs if e.fill]
    assert sorted(e.fill.order_id for e in fills) == sorted(o.id for o in orders)
    assert all(e.event is OrderEvent.FILL for e in fills)
    assert {e.fill.order_id: e.fill.qty for e in fills} == {o.id: o.qty for o in orders}
    assert ups.stats["streamer_msgs"] >= 4 and ups.streamer.connects == 1 and ups.stats["streamer_events"] >= 4

def test_streamer_refused_falls_back_to_polling(env):
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); dead = s.getsockname()[1]   # nothing listens here
    st = env.settings.model_copy(update={"tt_streamer_url": f"ws://127.0.0.1:{dead}/streamer"})
    b = TastytradeBroker(st, clock=WallClock())
    async def main():
        ups = await TastytradeOrderUpdates(b, poll_interval=0.3).start(connect_timeout=0.5)
        assert not ups.streaming
        orders = await submit_all(b, [OrderRequest(s, "buy", qty=2) for s in env.sim.symbols[:3]])
        for o in orders: ups.expect(o)
        evs = await collect(ups, 3)
        await ups.close(); return orders, evs, ups
    try: orders, evs, ups = asyncio.run(main())
    finally: b.close()
    fills = [e.fill for e in evs if e.fill]
    assert sorted(f.order_id for f in fills) == sorted(o.id for o in orders)
    assert len({f.fill_id for f in fills}) == len(fills)
    assert ups.streamer.connects == 0 and ups.streamer.failures >= 1 and ups.stats["polls"] >= 2
    assert ups.stats["streamer_events"] == 0

def test_forced_disconnects_lose_no_fill(env):
    async def main():
        ups = await TastytradeOrderUpdates(env.broker, poll_interval=0.3).start()
        orders = []
        for i, sym in enumerate(env.sim.symbols[:6]):
            await asyncio.to_thread(env.control, "disconnect")          # the fill happens while the socket is down
            orders += await submit_all(env.broker, [OrderRequest(sym, "buy", qty=i + 1)])
            await asyncio.sleep(0.3)
        evs = await collect(ups, len(orders))
        await ups.close(); return orders, evs, ups
    orders, evs, ups = asyncio.run(main())
    fills = [e.fill for e in evs if e.fill]
    assert sorted(f.order_id for f in fills) == sorted(o.id for o in orders)
    assert len({f.fill_id for f in fills}) == len(fills)
    assert ups.streamer.connects >= 2                                   # it reconnected (and re-sent connect)
    assert ups.stats["poll_events"] >= 1                                # some fills were only seen by polling

def test_lost_messages_on_live_socket_caught_by_safety_poll(env):
    async def main():
        ups = await TastytradeOrderUpdates(env.broker, poll_interval=0.3, safety_poll=0.5).start()
        await asyncio.to_thread(env.faults, ws_drop_rate=1.0)
        orders = await submit_all(env.broker, [OrderRequest(s, "buy", qty=1) for s in env.sim.symbols[:2]])
        for o in orders: ups.expect(o)
        evs = await collect(ups, 2)
        await ups.close(); return orders, evs, ups
    orders, evs, ups = asyncio.run(main())
    fills = [e.fill for e in evs if e.fill]
    assert sorted(f.order_id for f in fills) == sorted(o.id for o in orders)
    assert len({f.fill_id for f in fills}) == len(fills)
    assert ups.stats["streamer_msgs"] == 0 and ups.stats["streamer_events"] == 0   # nothing came through the socket
    assert ups.stats["poll_events"] >= 2

def test_partial_fill_then_cancel(env):
    sym = env.sim.symbols[1]
    async def main():
        ups = await TastytradeOrderUpdates(env.broker, poll_interval=0.3).start()
        req = OrderRequest(sym, "buy", qty=10)
        env.sim.set_fill_mode("partial:0.5", key=req.client_key)
        o = await asyncio.to_thread(env.broker.submit, req)
        evs = await collect(ups, 1)
        await asyncio.to_thread(env.broker.cancel, o.id)
        await asyncio.sleep(1.0)
        while (e := await ups.next(timeout=0.8)) is not None: evs.append(e)
        await ups._poll()                                               # a poll repeats what the streamer said: nothing new
        while (e := await ups.next(timeout=0.3)) is not None: evs.append(e)
        await ups.close(); return o, evs
    o, evs = asyncio.run(main())
    kinds = [e.event for e in evs]
    assert kinds.count(OrderEvent.PARTIAL_FILL) == 1 and OrderEvent.FILL not in kinds
    assert kinds.count(OrderEvent.CANCELLED) == 1
    assert [e.fill.qty for e in evs if e.fill] == [Decimal(5)]

def test_resting_order_fills_later(env):
    sym = env.sim.symbols[2]
    async def main():
        ups = await TastytradeOrderUpdates(env.broker, poll_interval=0.3).start()
        env.sim.set_fill_mode("delayed:2", key=sym)
        o = await asyncio.to_thread(env.broker.submit, OrderRequest(sym, "buy", qty=4))
        first = await ups.next(timeout=1.5)
        await asyncio.to_thread(env.control, "clock", seconds=180)     # three one-minute bars later
        evs = await collect(ups, 1)
        await ups.close(); return o, first, evs
    o, first, evs = asyncio.run(main())
    assert first is not None and first.event is OrderEvent.ACCEPTED and first.fill is None
    fills = [e for e in evs if e.fill]
    assert len(fills) == 1 and fills[0].event is OrderEvent.FILL and fills[0].fill.order_id == o.id

def test_stop_returns_after_a_busy_session():
    """Regression: stop() hung forever after a streamer session (a cancel lost inside wait_for(ws.receive())).
    Reproduced by the fill-latency bench's own session, which this runs once."""
    import importlib.util, pathlib
    spec = importlib.util.spec_from_file_location("bench_fills", pathlib.Path(__file__).parents[1]/"bench"/"bench_fills.py")
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    lat, stats = asyncio.run(bench.run("streamer", 1, 5.0))
    assert len(lat) == bench.N_SYMBOLS and stats["streamer_events"] >= bench.N_SYMBOLS
