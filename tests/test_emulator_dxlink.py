"DXLink emulator: a raw websocket client against the real Emulator + SimBroker (EmulatorServer on loopback)."
import asyncio, contextlib, json, math, sys, pathlib
import aiohttp, pytest
from hypothesis import given, settings, strategies as st, HealthCheck

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from dxlink_harness import live
from swingtrader.dxlink import wire as W

pytestmark = pytest.mark.timeout(60)
QF = ["eventSymbol", "bidPrice", "askPrice", "bidSize", "askSize"]
CF = ["eventFlags", "eventSymbol", "time", "index", "open", "high", "low", "close", "volume", "count"]

class Client:
    def __init__(self, ws): self.ws = ws
    async def send(self, m): await self.ws.send_str(m if isinstance(m, str) else W.dumps(m))
    async def recv(self, timeout=3):
        msg = await self.ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT: return msg
        return W.loads(msg.data)
    async def until(self, pred, timeout=3, keep=None):
        loop = asyncio.get_running_loop(); end = loop.time() + timeout
        while True:
            m = await self.recv(max(end - loop.time(), 0.01))
            if not isinstance(m, dict): raise AssertionError(f"socket ended: {m}")
            if keep is not None: keep.append(m)
            if m.get("type") != "KEEPALIVE" and pred(m): return m
    async def handshake(self, token, channel=1, fmt="COMPACT", fields=None, contract="AUTO"):
        await self.send(W.setup()); await self.send(W.auth(token))
        await self.until(lambda m: m["type"] == "AUTH_STATE" and m["state"] == "AUTHORIZED")
        await self.send(W.channel_request(channel, contract))
        await self.until(lambda m: m["type"] == "CHANNEL_OPENED")
        await self.send(W.feed_setup(channel, fields or {"Quote": QF, "Candle": CF}, fmt, 0.1))
        return await self.until(lambda m: m["type"] == "FEED_CONFIG")

async def connect(srv, session, **q):
    url = srv.url + ("?" + "&".join(f"{k}={v}" for k, v in q.items()) if q else "")
    return Client(await session.ws_connect(url, autoping=True))

async def wait_no_sessions(srv, timeout=3.0):
    loop = asyncio.get_running_loop(); end = loop.time() + timeout
    while srv.sessions() and loop.time() < end: await asyncio.sleep(0.02)
    return not srv.sessions()

def run(coro): return asyncio.run(asyncio.wait_for(coro, 50))

@contextlib.asynccontextmanager
async def served(**live_kw):
    "A live emulator and an HTTP session to open DXLink clients with."
    with live(**live_kw) as srv:
        async with aiohttp.ClientSession() as s: yield srv, s

def test_full_handshake_and_quotes_flat():
    async def go():
        async with served() as (srv, s):
            c = await connect(srv, s)
            await c.send(W.setup("0.1-DXF-JS/0.3.0", 60, 60))
            setup = await c.recv()
            assert setup["type"] == "SETUP" and setup["keepaliveTimeout"] == 60 and setup["version"].startswith("1.0-")
            assert (await c.recv()) == W.auth_state("UNAUTHORIZED")
            await c.send(W.auth(srv.token()))
            a = await c.recv()
            assert a["state"] == "AUTHORIZED" and a["userId"]
            await c.send(W.channel_request(7))
            op = await c.recv()
            assert op["type"] == "CHANNEL_OPENED" and op["channel"] == 7 and op["parameters"]["contract"] == "AUTO"
            await c.send(W.feed_setup(7, {"Quote": QF}, "COMPACT", 0.1))
            cfg = await c.recv()
            assert cfg["type"] == "FEED_CONFIG" and cfg["dataFormat"] == "COMPACT" and cfg["eventFields"] == {"Quote": QF}
            syms = srv.broker.symbols
            await c.send(W.feed_subscription(7, add=[{"type": "Quote", "symbol": x} for x in syms] + [{"type": "Quote", "symbol": "NOPE"}]))
            first = await c.until(lambda m: m["type"] == "FEED_DATA")
            evs = W.decode_compact(first["data"], {"Quote": QF})
            assert sorted(e.eventSymbol for e in evs) == sorted(syms)   # latest quote per symbol; unknown one ignored
            srv.step(1)
            lv = await c.until(lambda m: m["type"] == "FEED_DATA")
            assert lv["data"][0] == "Quote" and len(lv["data"]) == 2 and len(lv["data"][1]) == len(QF) * len(syms)  # flat
            for e in W.decode_compact(lv["data"], {"Quote": QF}):
                q = srv.broker.latest_quote(e.eventSymbol)
                assert (e.bidPrice, e.askPrice) == (q.bid, q.ask) and e.bidPrice < e.askPrice
    run(go())

def test_per_event_packing_and_subscription_remove_reset():
    async def go():
        async with served() as (srv, s):
            c = await connect(srv, s, packing="per_event")
            await c.handshake(srv.token())
            a, b, d = srv.broker.symbols
            await c.send(W.feed_subscription(1, add=[{"type": "Quote", "symbol": a}, {"type": "Quote", "symbol": b}]))
            await c.until(lambda m: m["type"] == "FEED_DATA")
            srv.step(1)
            m = await c.until(lambda m: m["type"] == "FEED_DATA")
            assert m["data"][0::2] == ["Quote", "Quote"] and all(len(x) == len(QF) for x in m["data"][1::2])
            await c.send(W.feed_subscription(1, remove=[{"type": "Quote", "symbol": a}]))
            await c.send(W.keepalive()); await asyncio.sleep(0.1)
            srv.step(1)
            m = await c.until(lambda m: m["type"] == "FEED_DATA")
            assert {e.eventSymbol for e in W.decode_compact(m["data"], {"Quote": QF})} == {b}
            await c.send(W.feed_subscription(1, reset=True, add=[{"type": "Quote", "symbol": d}]))
            await c.until(lambda m: m["type"] == "FEED_DATA")  # d's initial quote
            srv.step(1)
            m = await c.until(lambda m: m["type"] == "FEED_DATA")
            assert {e.eventSymbol for e in W.decode_compact(m["data"], {"Quote": QF})} == {d}
            await c.send(W.channel_cancel(1))
            assert (await c.until(lambda m: m["type"] == "CHANNEL_CLOSED"))["channel"] == 1
    run(go())

def test_full_format():
    async def go():
        async with served() as (srv, s):
            c = await connect(srv, s)
            cfg = await c.handshake(srv.token(), channel=3, fmt="FULL", fields={})
            assert cfg["dataFormat"] == "FULL"
            sym = srv.broker.symbols[0]
            await c.send(W.feed_subscription(3, add=[{"type": "Quote", "symbol": sym}, {"type": "Trade", "symbol": sym}]))
            got = {}
            while len(got) < 2:
                m = await c.until(lambda m: m["type"] == "FEED_DATA")
                for e in m["data"]: got[e["eventType"]] = e
            assert got["Quote"]["eventSymbol"] == sym and got["Quote"]["bidPrice"] > 0
            assert got["Trade"]["price"] > 0 and got["Trade"]["dayVolume"] > 0
    run(go())

def test_bad_token_even_channel_and_unauthorized():
    async def go():
        async with served() as (srv, s):
            c = await connect(srv, s)
            await c.send(W.setup()); await c.send(W.auth("not-a-token"))
            await c.until(lambda m: m["type"] == "AUTH_STATE")          # initial UNAUTHORIZED
            m = await c.until(lambda m: m["type"] == "AUTH_STATE")
            assert m["state"] == "UNAUTHORIZED"
            await c.send(W.channel_request(1))
            e = await c.until(lambda m: m["type"] == "ERROR")
            assert e["error"] == "UNAUTHORIZED"
            await c.send(W.auth(srv.token()))
            await c.until(lambda m: m.get("state") == "AUTHORIZED")
            await c.send(W.channel_request(2))
            e = await c.until(lambda m: m["type"] == "ERROR")
            assert e == json.loads((pathlib.Path(__file__).parent/"fixtures"/"tastytrade"/"dxlink_error_bad_action.json").read_text())
            await c.send(W.feed_setup(5, {"Quote": QF}))      # channel never opened
            assert (await c.until(lambda m: m["type"] == "ERROR"))["error"] == "BAD_ACTION"
            await c.send(W.channel_request(1))                 # connection still usable
            assert (await c.until(lambda m: m["type"] == "CHANNEL_OPENED"))["channel"] == 1
    run(go())

def test_keepalive_timeout_enforced_and_server_keepalives():
    async def go():
        async with served(keepalive_timeout=0.6) as (srv, s):
            c = await connect(srv, s)
            await c.send(W.setup(keepalive_timeout=0.4))
            assert (await c.recv())["keepaliveTimeout"] == 0.6
            seen = []
            for _ in range(3):          # keep the connection alive past the timeout with client keepalives
                await asyncio.sleep(0.3); await c.send(W.keepalive())
            await c.until(lambda m: False if m["type"] != "ERROR" else True, timeout=3, keep=seen)
            assert any(m["type"] == "KEEPALIVE" for m in seen)          # the server sent keepalives (every 0.2 s)
            err = [m for m in seen if m["type"] == "ERROR"][0]
            assert err["error"] == "TIMEOUT" and "timeout has been reached" in err["message"]
            end = await c.ws.receive(timeout=3)
            assert end.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert await wait_no_sessions(srv)
    run(go())

def test_candles_snapshot_then_live_forming_updates():
    async def go():
        async with served() as (srv, s):
            c = await connect(srv, s)
            await c.handshake(srv.token(), contract="HISTORY")
            sym = srv.broker.symbols[0]
            now = srv.clock.now()
            frm = int((now.timestamp() - 3 * 86400) * 1000)
            await c.send(W.feed_subscription(1, add=[{"type": "Candle", "symbol": f"{sym}{{=5m}}", "fromTime": frm}]))
            evs = []
            while not evs or not evs[-1].eventFlags & W.SNAPSHOT_END:
                m = await c.until(lambda m: m["type"] == "FEED_DATA")
                evs += W.decode_compact(m["data"], {"Candle": CF})
            assert evs[0].eventFlags == W.SNAPSHOT_BEGIN and all(e.eventFlags == 0 for e in evs[1:-1])
            assert evs[-1].eventFlags == W.REMOVE_EVENT | W.SNAPSHOT_END and math.isnan(evs[-1].close)
            times = [e.time for e in evs]
            assert times == sorted(times, reverse=True) and len(set(times)) == len(times)
            assert all(e.index == W.candle_index(e.time) for e in evs)
            ref = srv.broker.bars(sym, "5m", now.replace(hour=0, minute=0), now)
            newest = evs[0]
            assert newest.time == int(ref.index[-1].timestamp() * 1000)
            assert (newest.open, newest.high, newest.low, newest.close, newest.volume) == tuple(ref.iloc[-1][["open", "high", "low", "close", "volume"]])
            # live: the forming candle updates with flags 0 and the same index until the period rolls
            upd = []
            for _ in range(6):
                srv.step(1)
                m = await c.until(lambda m: m["type"] == "FEED_DATA" and m["data"][0] == "Candle")
                upd += W.decode_compact(m["data"], {"Candle": CF})
            assert all(u.eventFlags == 0 for u in upd)
            idx = [u.index for u in upd]
            rolls = sum(1 for a, b in zip(idx, idx[1:]) if a != b)
            assert rolls == 1 and all(b >= a for a, b in zip(idx, idx[1:]))   # 6 minutes of 5-minute candles: one roll
            run_len = idx.count(idx[-1])
            vols = [u.volume for u in upd if u.index == idx[-1]]
            assert vols == sorted(vols) and upd[-1].count == run_len
    run(go())

def test_candles_daily_on_auto_and_empty_snapshot():
    async def go():
        async with served() as (srv, s):
            c = await connect(srv, s)
            await c.handshake(srv.token())   # AUTO contract: history is served too
            sym = srv.broker.symbols[1]
            srv.jump(days=2)                     # day 3, 10:30 New York
            now = srv.clock.now()
            await c.send(W.feed_subscription(1, add=[{"type": "Candle", "symbol": f"{sym}{{=1d}}", "fromTime": 0},
                                                     {"type": "Candle", "symbol": f"{sym}{{=1h}}", "fromTime": int(now.timestamp() * 1000) + 86400_000}]))
            evs = []
            while sum(1 for e in evs if e.eventFlags & W.SNAPSHOT_END) < 2:
                m = await c.until(lambda m: m["type"] == "FEED_DATA")
                evs += W.decode_compact(m["data"], {"Candle": CF})
            daily = [e for e in evs if e.eventSymbol.endswith("{=1d}")]
            assert [e.eventFlags for e in daily] == [4, 0, 0, 10]
            days = srv.broker.market_bars[sym]
            today = days[days.index.normalize() == days.index[days.index <= now][-1].normalize()]
            today = today[today.index + __import__("pandas").Timedelta(minutes=1) <= now]
            assert daily[0].open == today["open"].iloc[0] and daily[0].volume == today["volume"].sum()
            assert daily[0].time % 86_400_000 == 0 and daily[0].time - daily[1].time == 86_400_000
            ref = srv.broker.bars(sym, "1d", now.replace(day=1), now)
            ref = ref[ref.index < today.index[0]]         # complete sessions only
            assert daily[1].close == ref["close"].iloc[-1] and daily[2].close == ref["close"].iloc[-2]
            empty = [e for e in evs if e.eventSymbol.endswith("{=1h}")]
            assert [e.eventFlags for e in empty] == [W.SNAPSHOT_BEGIN | W.SNAPSHOT_END | W.REMOVE_EVENT]
    run(go())

def test_faults_drop_delay_disconnect():
    async def go():
        async with served() as (srv, s):
            c = await connect(srv, s)
            await c.handshake(srv.token())
            sym = srv.broker.symbols[0]
            await c.send(W.feed_subscription(1, add=[{"type": "Quote", "symbol": sym}]))
            await c.until(lambda m: m["type"] == "FEED_DATA")
            srv.faults.ws_drop_rate = 1.0
            srv.step(3)
            with pytest.raises(asyncio.TimeoutError):
                await c.until(lambda m: m["type"] == "FEED_DATA", timeout=0.5)
            srv.faults.ws_drop_rate, srv.faults.ws_delay_ms = 0.0, 300
            loop = asyncio.get_running_loop(); t0 = loop.time()
            srv.step(1)
            await c.until(lambda m: m["type"] == "FEED_DATA")
            assert loop.time() - t0 >= 0.25
            srv.faults.ws_delay_ms = 0
            srv.disconnect()
            end = await c.ws.receive(timeout=3)
            assert end.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and c.ws.close_code == 1012
            assert await wait_no_sessions(srv)
    run(go())

# ---- malformed frames never take the handler (or other clients) down ----------------------------------
json_vals = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                         lambda ch: st.lists(ch, max_size=4) | st.dictionaries(st.text(max_size=6), ch, max_size=4), max_leaves=12)
frames = st.one_of(
    st.text(max_size=40),
    json_vals.map(json.dumps),
    st.fixed_dictionaries({"type": st.sampled_from(W.MESSAGE_TYPES + ("X",)), "channel": json_vals},
                          optional={"add": json_vals, "remove": json_vals, "reset": json_vals, "token": json_vals,
                                    "acceptEventFields": json_vals, "acceptDataFormat": json_vals,
                                    "parameters": json_vals, "service": json_vals, "keepaliveTimeout": json_vals}).map(json.dumps),
    st.lists(st.fixed_dictionaries({"type": st.sampled_from(["Candle", "Quote", "Nope"]),
                                    "symbol": st.sampled_from(["AAA{=5x}", "{=}", "X{=0m}", "", "AAPL{=5m", "Z{=m}"]),
                                    "fromTime": st.integers(-2**70, 2**70) | st.floats()}), max_size=3)
      .map(lambda a: json.dumps({"type": "FEED_SUBSCRIPTION", "channel": 1, "add": a})))

def test_malformed_frames_never_crash_the_handler():
    async def go():
        async with served() as (srv, s):
            good = await connect(srv, s)
            await good.handshake(srv.token())
            sym = srv.broker.symbols[0]
            await good.send(W.feed_subscription(1, add=[{"type": "Quote", "symbol": sym}]))
            await good.until(lambda m: m["type"] == "FEED_DATA")
            bad = await connect(srv, s)
            await bad.handshake(srv.token())
            sent = []
            @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(frames)
            def collect(f): sent.append(f)
            collect()
            for f in sent: await bad.send(f)
            await bad.send(W.channel_request(9))
            await bad.until(lambda m: m["type"] == "CHANNEL_OPENED" and m["channel"] == 9, timeout=10)   # still serving in order
            assert srv.dx.sessions and len(srv.dx.sessions) == 2
            srv.step(1)
            m = await good.until(lambda m: m["type"] == "FEED_DATA")                  # the other client is unaffected
            assert W.decode_compact(m["data"], {"Quote": QF})[0].eventSymbol == sym
    run(go())

# ---- bounded outbound queue: slow clients get conflated quotes, never lose candles; hopeless ones are cut ----
def test_backlog_conflates_quotes_keeps_every_candle():
    async def go():
        async with served(conflate_at=1) as (srv, s):
            c = await connect(srv, s)
            await c.handshake(srv.token())
            syms = srv.broker.symbols
            await c.send(W.feed_subscription(1, add=[{"type": "Quote", "symbol": x} for x in syms]
                                             + [{"type": "Candle", "symbol": f"{syms[0]}{{=1m}}"}]))
            await c.until(lambda m: m["type"] == "FEED_DATA")            # initial quotes
            srv.jump(minutes=10)                                           # one sync: 10 minutes arrive in one burst
            quotes, candles = [], []
            while len(candles) < 10:
                m = await c.until(lambda m: m["type"] == "FEED_DATA")
                evs = W.decode_compact(m["data"], {"Quote": QF, "Candle": CF})
                quotes += [e for e in evs if type(e).__name__ == "Quote"]; candles += [e for e in evs if type(e).__name__ == "Candle"]
            await c.send(W.keepalive())
            while len({q.eventSymbol for q in quotes}) < len(syms):
                m = await c.until(lambda m: m["type"] == "FEED_DATA")
                quotes += [e for e in W.decode_compact(m["data"], {"Quote": QF}) if type(e).__name__ == "Quote"]
            sess = next(iter(srv.dx.sessions))
            assert sess.conflated > 0 and len(quotes) < 10 * len(syms)   # stale quotes were replaced, not queued
            for x in syms:                                                 # ... and what arrived is the latest
                last = [q for q in quotes if q.eventSymbol == x][-1]
                lq = srv.broker.latest_quote(x)
                assert (last.bidPrice, last.askPrice) == (lq.bid, lq.ask)
            ref = srv.broker.bars(syms[0], "1m", srv.clock.now() - __import__("datetime").timedelta(minutes=10), srv.clock.now())
            assert [c_.time for c_ in candles] == [int(t.timestamp() * 1000) for t in ref.index]   # every candle, in order
            assert [c_.close for c_ in candles] == ref["close"].tolist()
    run(go())

def test_hopeless_client_is_disconnected_not_buffered_forever():
    async def go():
        async with served(conflate_at=1, max_pending=5) as (srv, s):
            c = await connect(srv, s)
            await c.handshake(srv.token())
            await c.send(W.feed_subscription(1, add=[{"type": "Candle", "symbol": f"{x}{{=1m}}"} for x in srv.broker.symbols]))
            await c.send(W.keepalive()); await asyncio.sleep(0.1)
            srv.jump(minutes=10)                                            # 30 candle updates > max_pending
            err = await c.until(lambda m: m["type"] == "ERROR")
            assert err["error"] == "TIMEOUT" and "behind" in err["message"]
            end = await c.ws.receive(timeout=3)
            assert end.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and c.ws.close_code == 1013
            assert await wait_no_sessions(srv)
    run(go())
