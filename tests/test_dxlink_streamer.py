"""DXLinkStreamer against the REAL emulator (Emulator + SimBroker via EmulatorServer on loopback).
The SimBroker runs on a manual SimClock that the tests advance on the server loop (`Live.step`/`jump`); every
expectation is compared with the simulator's own history (`SimBroker.bars`, `latest_quote`)."""
import asyncio, pathlib, sys
from datetime import timedelta

import pandas as pd
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from dxlink_harness import live, make_broker, until
from swingtrader.dxlink import wire
from swingtrader.dxlink.connection import DXLinkAuthError
from swingtrader.dxlink.events import CandleSeries
from swingtrader.dxlink.streamer import DXLinkStreamer
from swingtrader.models import Bar

pytestmark = pytest.mark.timeout(90)
P = 300_000  # 5 minutes in ms
COLS = ["open", "high", "low", "close", "volume"]


def aio(f):
    "Run an async test on a fresh event loop with a hard limit."
    import functools
    @functools.wraps(f)
    def run(*a, **kw): return asyncio.run(asyncio.wait_for(f(*a, **kw), 60))
    return run


def mk(L, **kw):
    "A streamer on the emulator: its token comes from GET /api-quote-tokens (REST, OAuth), its clock is the simulator's."
    kw.setdefault("backoff_base", 0.01); kw.setdefault("flush_interval", 0.02)
    kw.setdefault("flush_grace", 30)  # sim seconds: a period's final minute always arrives before the clock flush
    return DXLinkStreamer(L.quote_token_body, clock=L.clock, **kw)


def session_open(L): return L.clock.now().replace(hour=14, minute=30, second=0, microsecond=0)


def ref_frame(L, sym, since, period="5m"):
    "The simulator's own closed bars for the span."
    return L.broker.bars(sym, period, since, L.clock.now())[COLS].astype("float64")


def tuples(df): return [(int(t.timestamp() * 1000), *map(float, r)) for t, r in zip(df.index, df[COLS].itertuples(index=False))]


@aio
async def test_quotes_match_the_simulator(dx_live):
    L = dx_live
    syms = L.broker.symbols
    async with mk(L, keepalive_timeout=5) as st:
        qs = st.quotes(conflate=False)                                    # before subscribing: catches the first quotes
        await st.subscribe("Quote", syms + ["NOPE"])
        await st.wait_connected()
        first = [await asyncio.wait_for(anext(qs), 5) for _ in syms]        # the latest quote on subscribe
        L.step(1)
        live_q = [await asyncio.wait_for(anext(qs), 5) for _ in syms]      # one per symbol per simulated minute
    assert sorted(q.symbol for q in first) == sorted(syms) and sorted(q.symbol for q in live_q) == sorted(syms)
    for q in live_q:
        ref = L.broker.latest_quote(q.symbol)
        assert (q.bid, q.ask, q.bid_size, q.ask_size) == (ref.bid, ref.ask, ref.bid_size, ref.ask_size) and q.bid < q.ask
    assert st.stats.connects == 1 and st.stats.events >= 2 * len(syms)


@aio
async def test_backfill_frame_equals_broker_bars():
    with live(make_broker(minutes=47)) as L:          # 9 closed 5m bars and a forming one
        syms = L.broker.symbols[:2]; t0 = session_open(L)
        async with mk(L) as st:
            await st.wait_connected()
            hist = await st.backfill(syms, t0, "5m")
            bars = st.bars()
            L.step(4)                                  # the forming bar closes once the next candle starts (10:20 bar)
            nxt = [await asyncio.wait_for(anext(bars), 5) for _ in syms]
    for sym in syms:
        ref = L.broker.bars(sym, "5m", t0, t0 + timedelta(minutes=44))[COLS].astype("float64")
        assert len(ref) == 9
        pd.testing.assert_frame_equal(hist[sym], ref, check_names=False, check_freq=False)
        assert str(hist[sym].index.tz) == "UTC" and hist[sym].index.is_monotonic_increasing
    after = {b.symbol: b for b in nxt}
    for sym in syms:
        r = L.broker.bars(sym, "5m", t0 + timedelta(minutes=45), L.clock.now()).iloc[0]
        b = after[sym]
        assert b.start == t0 + timedelta(minutes=45) and (b.open, b.high, b.low, b.close, b.volume) == tuple(r[COLS])


@aio
async def test_forced_disconnects_lose_and_duplicate_no_closed_bar():
    with live(make_broker(minutes=7)) as L:
        syms = L.broker.symbols[:2]; t0 = session_open(L)
        async with mk(L) as st:
            await st.wait_connected()
            hist = await st.backfill(syms, t0, "5m")
            bars = st.bars(); got = []
            async def collect():
                async for b in bars: got.append(b)
            task = asyncio.create_task(collect())
            kicked = 0
            for minute in range(8, 72):
                L.step(1)
                if minute % 9 == 0:
                    kicked += L.disconnect()            # POST /_emulator/disconnect: bars close while we are away
                    L.step(1)
                if minute % 13 == 0: await until(lambda: st.is_connected, 10)
                await asyncio.sleep(0.01)
            await until(lambda: st.is_connected, 10)
            L.step(1)
            n_ref = {s: len(ref_frame(L, s, t0)) for s in syms}
            await until(lambda: all(len(hist[s]) + sum(b.symbol == s for b in got) >= n_ref[s] for s in syms), 10)
            await asyncio.sleep(0.2)
            task.cancel()
    assert kicked >= 5 and st.stats.disconnects >= 5 and st.stats.connects >= 6
    for sym in syms:
        mine = [b for b in got if b.symbol == sym]
        seen = tuples(hist[sym]) + [(int(b.start.timestamp() * 1000), b.open, b.high, b.low, b.close, b.volume) for b in mine]
        ref = tuples(ref_frame(L, sym, t0))
        assert [s[0] for s in seen] == [r[0] for r in ref]   # every closed bar, in order, exactly once
        assert seen == ref                                   # with the simulator's final values


@aio
async def test_keepalive_watchdog_replaces_a_silent_connection(dx_live):
    L = dx_live
    sym = L.broker.symbols[0]
    async with mk(L, keepalive_timeout=0.4) as st:
        await st.subscribe("Quote", [sym])
        await st.wait_connected()
        L.faults.ws_drop_rate = 1.0                 # the server goes silent: no data, no keepalives
        await until(lambda: st.stats.watchdog >= 1, 10)
        L.faults.ws_drop_rate = 0.0
        await until(lambda: st.stats.connects >= 2 and st.is_connected, 10)
        qs = st.quotes()
        await asyncio.sleep(0.1)
        L.step(1)
        q = await asyncio.wait_for(anext(qs), 5)
        while q.time < L.clock.now(): q = await asyncio.wait_for(anext(qs), 5)   # skip the re-subscribe snapshot
    ref = L.broker.latest_quote(sym)
    assert (q.symbol, q.bid, q.ask) == (sym, ref.bid, ref.ask) and st.stats.disconnects >= 1


@aio
async def test_slow_consumer_conflates_quotes_never_candles():
    with live(make_broker(symbols=20, minutes=7)) as L:
        syms = L.broker.symbols; t0 = session_open(L)
        async with mk(L) as st:
            ev = st.events(); mb = st.mailboxes[-1]      # registered first: the history snapshot counts too
            await st.subscribe("Quote", syms)
            await st.subscribe_candles(syms[0], "5m", since=t0)
            await st.wait_connected()
            first = await asyncio.wait_for(anext(ev), 5)  # the consumer starts, then stalls
            # step only once the snapshot is in: a snapshot taken later would fold several minute-updates into one record
            await until(lambda: all(x.snapshots >= 1 for x in st.series.values()), 10)
            peak = 0
            queued_candles = lambda: sum(1 for x in mb.q if type(x).__name__ == "Candle")
            for _ in range(32):
                n = queued_candles()
                L.step(1)
                # one minute's update reached the stalled consumer before the next minute (sent back to back, the server
                # may legitimately merge two updates of the same forming candle)
                await until(lambda: queued_candles() > n, 10)
                peak = max(peak, len(mb.latest))
            ref = ref_frame(L, syms[0], t0); last = ref.index[-1]
            L.step(1)                                     # the next candle starts: the last one is closed
            items = [first]
            while not (isinstance(items[-1], Bar) and items[-1].start == last):
                items.append(await asyncio.wait_for(anext(ev), 5))
            while True:   # drain the consumer itself: it may still hold the rest of a batch it took from the mailbox
                try: items.append(await asyncio.wait_for(anext(ev), 1.0))
                except (asyncio.TimeoutError, StopAsyncIteration): break
    assert peak <= len(syms)                          # memory bounded by the symbol count
    assert mb.conflated > 100                         # most quotes were conflated
    qts = [x for x in items if type(x).__name__ == "Quote"]
    s0 = [q for q in qts if q.eventSymbol == syms[0]][-1]
    assert s0.bidPrice == L.broker.latest_quote(syms[0]).bid  # the latest survived
    bars = [x for x in items if isinstance(x, Bar)]
    assert [b.start for b in bars] == list(ref.index)
    assert len([x for x in items if type(x).__name__ == "Candle"]) >= 33 + 1  # every candle record delivered: 33 minute updates + the snapshot


@aio
async def test_refused_token_ends_consumers_with_auth_error(dx_live):
    L = dx_live
    st = DXLinkStreamer(lambda: ("bad", L.url), clock=L.clock, backoff_base=0.01, max_auth_failures=2)
    ev = st.events()
    await st.start()
    with pytest.raises(DXLinkAuthError, match="refused"):
        await asyncio.wait_for(anext(ev), 10)
    await st.close()
    assert st.stats.connects == 0


def test_candle_series_late_correction_and_remove():
    s = CandleSeries("AAA{=5m}")
    C = wire.record_type("Candle", wire.EVENT_FIELDS["Candle"])
    def c(t, close, flags=0): return C("AAA{=5m}", 0, flags, 0, t, 0, 1, 10.0, 0, 0, 0, 0, 0, 1.0, 9.0, 0.5, close)
    assert s.update(c(0, 1.0, wire.SNAPSHOT_BEGIN | wire.SNAPSHOT_END), now_ms=10) == []
    assert s.forming.time == 0
    s.update(c(P, 2.0)); assert s.last_closed == 0
    assert s.update(c(P, 2.5, wire.REMOVE_EVENT)) == [] and s.forming is None
    assert s.update(c(0, 3.0)) == [] and s.duplicates == 1


# -- reconnect backoff against a server that completes the handshake, then fails ----------------------------------

def _bad_server(behaviour):
    "A local DXLink server: full handshake, then `behaviour(n, ws)` (n = 0-based connection number); returns (start, handshakes)."
    import websockets
    handshakes = []
    async def handler(ws, path=None):
        n = len(handshakes)
        async for raw in ws:
            m = wire.loads(raw); t = m.get("type")
            if t == "SETUP": await ws.send(wire.dumps(wire.setup("1.0-bad", 60, 60))); await ws.send(wire.dumps(wire.auth_state("UNAUTHORIZED")))
            elif t == "AUTH": await ws.send(wire.dumps(wire.auth_state("AUTHORIZED", "u")))
            elif t == "CHANNEL_REQUEST":
                await ws.send(wire.dumps(wire.channel_opened(m["channel"])))
                handshakes.append(asyncio.get_running_loop().time())
                await behaviour(n, ws)
                return
    async def start(): return await websockets.serve(handler, "127.0.0.1", 0, compression=None)
    return start, handshakes


async def _garbage(n, ws):
    await ws.send("}} this is not DXLink {{")
    await ws.wait_closed()                          # the client gives up on the session, not the server


@aio
async def test_garbage_after_handshake_backs_off_and_alerts():
    start, handshakes = _bad_server(lambda n, ws: _garbage(n, ws))
    server = await start(); port = server.sockets[0].getsockname()[1]
    health = []
    st = DXLinkStreamer(lambda: ("t", f"ws://127.0.0.1:{port}/"), on_health=lambda lvl, msg: health.append((lvl, msg)))  # default backoff: 0.5 s .. 30 s
    try:
        await st.start()
        await asyncio.sleep(10)                     # the window the issue measured (74 reconnects in 10 s before)
        in_window = len(handshakes)
        await until(lambda: health, 40)             # the alert comes after 5 failed sessions in a row
    finally:
        await st.close(); server.close(); await server.wait_closed()
    assert 2 <= in_window <= 6, in_window
    assert [lvl for lvl, _ in health] == ["critical"] and "5 sessions" in health[0][1] and st.stats.alerts == 1
    assert st.stats.failures >= 5 and st.stats.connects == len(handshakes)


@aio
async def test_a_session_that_lives_long_enough_resets_the_count():
    async def behaviour(n, ws):
        if n < 5: await _garbage(n, ws)             # five failed sessions: alert
        else: await asyncio.sleep(1.5)              # then sessions that live past healthy_after, closed by the server
    start, handshakes = _bad_server(behaviour)
    server = await start(); port = server.sockets[0].getsockname()[1]
    health = []
    st = DXLinkStreamer(lambda: ("t", f"ws://127.0.0.1:{port}/"), backoff_base=0.02, healthy_after=1.0,
                        on_health=lambda lvl, msg: health.append(lvl))
    try:
        await st.start()
        await until(lambda: len(health) >= 2, 40)
    finally:
        await st.close(); server.close(); await server.wait_closed()
    assert health == ["critical", "ok"] and st.stats.failures == 0 and len(handshakes) >= 6


# -- the client's rooms -------------------------------------------------------------------------------------------

def test_dxlink_rooms_import_downwards_and_keep_their_privates():
    "Each dxlink module imports only modules before it in `MODULES` (no circle), keeps to public names, stays small."
    import ast
    from swingtrader.dxlink import MODULES
    pkg = pathlib.Path(wire.__file__).parent
    src = {p.stem: p.read_text() for p in pkg.glob("*.py") if p.stem != "__init__"}
    assert sorted(src) == sorted(MODULES)
    for name, text in src.items():
        assert len(text.splitlines()) <= 350, f"dxlink.{name} has grown past ~300 lines: split it"
        for n in ast.walk(ast.parse(text)):
            if isinstance(n, ast.ImportFrom):
                assert not [a.name for a in n.names if a.name.startswith("_")], f"dxlink.{name}:{n.lineno} imports a private name"
                if n.level == 1:
                    deps = [n.module] if n.module else [a.name for a in n.names]
                    for d in deps:
                        assert MODULES.index(d) < MODULES.index(name), f"dxlink.{name} imports dxlink.{d}, which comes after it"
            if isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__"):
                assert isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"), \
                    f"dxlink.{name}:{n.lineno} uses {ast.unparse(n)}, another object's private name"


def test_the_bot_hears_the_streamers_health_alerts(tmp_path):
    "build_bot hooks each feed's health into the bot's monitor; the streamer must pass it on to the connection that raises it."
    from swingtrader.config import Settings
    from swingtrader.ledger import Ledger
    from swingtrader.registry import broker_parts
    from swingtrader.session import build_bot
    sim = make_broker()
    st = DXLinkStreamer(lambda: ("t", "ws://127.0.0.1:9/"))
    s = Settings(_env_file=None, data_dir=tmp_path)
    parts = broker_parts(s, sim.clock, sim.calendar, name="sim", broker=sim)
    parts.feeds["dxlink"] = st
    bot = build_bot(s, sim.clock, Ledger(tmp_path/"ledger.sqlite", clock=sim.clock), parts=parts, scan=False)
    st.connection.on_health("critical", "5 sessions in a row failed")     # what the connection calls after repeated failures
    assert bot.health.levels["dxlink"] == "critical"
