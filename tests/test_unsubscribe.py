"""A symbol that leaves the watchlist is dropped from the market data: DXLink sends `FEED_SUBSCRIPTION` `remove`, the
emulator stops that symbol's candles on that channel (even those already queued), nothing of it is kept (candle series,
subscription, the bars waiting for a consumer, the mark of the last bar handed out), a reconnect does not bring it back,
and a symbol that comes back is backfilled and streamed gap-free. Alpaca's market data has the same `drop` (the stream's
`unsubscribe`). The bot drops what leaves its watchlist. All over real websockets to the emulator, on a manual clock."""
import asyncio
from collections import Counter
from datetime import date, datetime, timedelta

import aiohttp
import pytest

from swingtrader.audit import AuditLog
from swingtrader.clock import NY, MarketCalendar
from swingtrader.config import Settings
from swingtrader.dxlink import wire as W
from swingtrader.dxlink.events import candle_symbol
from swingtrader.emulator.dxlink import DXLINK_KEY
from swingtrader.ledger import Ledger
from swingtrader.registry import broker_parts
from swingtrader.session import build_bot, emulated_alpaca, emulated_tastytrade

from dxlink_harness import live
from emu_support import alpaca_data_state, until
from test_bar_gap import TF, Consumer, advance, assert_exact

DAY = date(2026, 3, 2)
CF = ["eventFlags", "eventSymbol", "time", "index", "open", "high", "low", "close", "volume", "count"]
pytestmark = pytest.mark.timeout(300)


def start(broker:str):
    "The emulator over a seeded 3-symbol market for `broker`, its clock stopped at 10:02 New York time of `DAY`."
    open_t = MarketCalendar().session(DAY)[0]
    env = (emulated_alpaca if broker == "alpaca" else emulated_tastytrade)(
        Settings(_env_file=None, sim_symbols=3), DAY, DAY, speed=60.0, start=open_t + timedelta(minutes=30))
    env.clock.set_mode("manual")
    env.server.call(lambda: env.sim.advance_to(open_t + timedelta(minutes=32)))
    env.open_t = open_t
    return env


@pytest.fixture(params=["tastytrade", "alpaca"])
def env(request):
    e = start(request.param)
    yield e
    e.close()


@pytest.fixture
def tt():
    e = start("tastytrade")
    yield e
    e.close()


def dx_subscriptions(env) -> list[set]:
    "Per DXLink session of the emulator: the (type, symbol) subscriptions of all its channels."
    def read():
        return [{k for ch in s.channels.values() for k in ch.subs} for s in env.server.app[DXLINK_KEY].sessions]
    return env.server.call(read)


def alpaca_bars_subscribed(env) -> set:
    "The symbols the emulator's Alpaca data sessions stream bars of."
    return {s for sub in alpaca_data_state(env.server)["subscriptions"] for s in sub.get("bars", [])}


# -- the emulator honours `remove` -------------------------------------------------------------------------------------

def test_emulator_sends_nothing_of_a_removed_candle_not_even_what_was_queued():
    "Candle updates queued for A when its remove arrives are not sent; B's go on; a remove without fromTime works too."
    async def go():
        with live() as srv:
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(srv.url)
                async def send(m): await ws.send_str(W.dumps(m))
                async def recv():
                    while True:
                        m = W.loads((await ws.receive(timeout=10)).data)
                        if m["type"] != "KEEPALIVE": return m
                await send(W.setup()); await send(W.auth(srv.token()))
                while (await recv()).get("state") != "AUTHORIZED": pass
                await send(W.channel_request(1, "AUTO")); await recv()
                await send(W.feed_setup(1, {"Candle": CF}, "COMPACT", 0.1)); await recv()
                a, b, c = srv.broker.symbols
                ca, cb, cc = (f"{x}{{=1m}}" for x in (a, b, c))
                frm = int((srv.clock.now() - timedelta(minutes=5)).timestamp() * 1000)
                await send(W.feed_subscription(1, add=[{"type": "Candle", "symbol": x, "fromTime": frm} for x in (ca, cb, cc)]))
                ended = set()
                while len(ended) < 3:                                   # the three snapshots
                    m = await recv()
                    if m["type"] == "FEED_DATA":
                        ended |= {e.eventSymbol for e in W.decode_compact(m["data"], {"Candle": CF}) if e.eventFlags & W.SNAPSHOT_END}
                sess = next(iter(srv.dx.sessions))
                remove = W.dumps(W.feed_subscription(1, remove=[{"type": "Candle", "symbol": ca, "fromTime": frm}]))
                def burst_then_remove():                                # one turn of the server loop: the writer has not run
                    sub_a, n0 = sess.channels[1].subs[("Candle", ca)], sess.q.qsize()
                    bar0 = sub_a.last_bar                               # the start of A's last bar handed to the session
                    srv.broker.advance_to(srv.clock.now() + timedelta(minutes=3))
                    grown, moved = sess.q.qsize() - n0, sub_a.last_bar - bar0
                    sess.handle_text(remove)
                    return grown, moved, sub_a.live
                # A's three updates were queued (a candle update per minute for each of the three symbols, none written
                # yet; A's three of them: its session advanced three bars) and A's subscription died with the remove ...
                assert srv.srv.call(burst_then_remove) == (9, timedelta(minutes=3), False)
                await send(W.feed_subscription(1, remove=[{"type": "Candle", "symbol": cc}]))   # tastyware's shape: no fromTime
                await send(W.keepalive())
                while ("Candle", cc) in srv.srv.call(lambda: set(sess.channels[1].subs)): await asyncio.sleep(0.01)
                srv.step(2)
                seen, last_b = Counter(), 0
                target = int(srv.clock.now().timestamp() * 1000) - 60_000    # B's newest candle after the two minutes
                while last_b < target:
                    m = await recv()
                    if m["type"] != "FEED_DATA": continue
                    for e in W.decode_compact(m["data"], {"Candle": CF}):
                        seen[e.eventSymbol] += 1
                        if e.eventSymbol == cb: last_b = max(last_b, e.time)
                assert seen[ca] == 0 and seen[cb] >= 5, seen              # ... and none went out; B's five did
                assert seen[cc] <= 3, seen                                # C: at most what was in flight before its remove
                assert srv.srv.call(lambda: (set(sess.channels[1].subs), set(sess.by_base))) == ({("Candle", cb)}, {b})
                await ws.close()
    asyncio.run(asyncio.wait_for(go(), 120))


def test_a_released_symbol_added_again_counts_its_whole_day_volume():
    "Released after its remove, A is fed again on a new add: its live Trade's dayVolume is the whole session's, gap included."
    TRF = list(W.EVENT_FIELDS["Trade"])
    async def go():
        with live() as srv:
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(srv.url)
                async def send(m): await ws.send_str(W.dumps(m))
                async def trade_of(sym, after=-1):
                    while True:
                        m = W.loads((await ws.receive(timeout=10)).data)
                        if m["type"] == "FEED_DATA":
                            for e in W.decode_compact(m["data"], {"Trade": TRF}):
                                if e.eventSymbol == sym and e.time > after: return e
                await send(W.setup()); await send(W.auth(srv.token()))
                await send(W.channel_request(1, "AUTO"))
                await send(W.feed_setup(1, {"Trade": TRF}, "COMPACT", 0.1))
                a = srv.broker.symbols[0]
                fed = lambda: srv.srv.call(lambda: set(srv.dx.fed))
                await send(W.feed_subscription(1, add=[{"type": "Trade", "symbol": a}]))
                await trade_of(a)
                assert a in fed()
                await send(W.feed_subscription(1, remove=[{"type": "Trade", "symbol": a}]))
                while a in fed(): await asyncio.sleep(0.01)             # released: nobody streams it
                srv.step(3)                                            # its bars go on in the simulator, unsent
                await send(W.feed_subscription(1, add=[{"type": "Trade", "symbol": a}]))
                first = await trade_of(a)                              # the snapshot of its last trade
                srv.step(1)
                e = await trade_of(a, first.time)                      # the next live trade
                now = srv.clock.now()
                bars = srv.srv.call(lambda: srv.broker.bars(a, "1m", now - timedelta(hours=12), now))
                today = bars[[t.astimezone(NY).date() == now.astimezone(NY).date() for t in bars.index]]
                assert e.dayVolume == pytest.approx(float(today["volume"].sum())) and len(today) > 10
                await ws.close()
    asyncio.run(asyncio.wait_for(go(), 120))


# -- DXLink market data: drop ------------------------------------------------------------------------------------------

def test_dxlink_drop_stops_the_traffic_and_releases_the_symbol(tt):
    "After drop(A): no candle of A reaches the client, A's kept bars and state are gone, a reconnect does not restore it."
    env = tt
    syms = list(env.sim.symbols)
    a, kept = syms[0], syms[1:]
    ca = candle_symbol(a, TF)
    async def main():
        md = broker_parts(env.settings, env.clock, env.calendar).market_data
        try:
            hist = await md.backfill(syms, env.open_t, TF)
            raw = md.streamer.mailbox({"Candle"}, maxsize=10**6)   # every Candle record the client receives
            await advance(env, 15)                                 # nobody reads: bars of every symbol wait in the mailbox
            await until(lambda: all(sum(1 for b in md._mb.q if b.symbol == s) >= 3 for s in syms), 60)
            before = Counter(r.eventSymbol for r in raw.q)
            assert before[ca] > 0                                  # A's candles did flow until now
            await md.drop([a], TF)
            # released: the candle series, the subscription, A's waiting bars (the others' stay), the mark of its last bar
            assert ca not in md.streamer.series and ("Candle", ca) not in md.streamer.subs
            assert not [b for b in (*md._mb.q, *md._buf) if b.symbol == a]
            assert all(sum(1 for b in md._mb.q if b.symbol == s) >= 3 for s in kept)
            assert (a, TF) not in md.upto and all((s, TF) in md.upto for s in kept)
            await until(lambda: all(("Candle", ca) not in subs for subs in dx_subscriptions(env)), 60)   # the emulator forgot it
            # A's candles sent before the emulator read the remove may still be on the wire (a loaded machine): the others'
            # bars made after it forgot A come behind them on the one ordered stream, so once one is in, all of A's are
            ck = candle_symbol(kept[0], TF)
            n0 = Counter(r.eventSymbol for r in raw.q)[ck]
            await advance(env, 5)
            await until(lambda: Counter(r.eventSymbol for r in raw.q)[ck] > n0, 60)
            before = Counter(r.eventSymbol for r in raw.q)         # from here on, not one more candle of A may arrive
            # a reconnect restores the other subscriptions, not A's
            assert env.server.call(env.server.emu.disconnect_all) >= 1
            await until(lambda: not md.streamer.is_connected, 30)
            await until(lambda: md.streamer.is_connected, 60)
            await until(lambda: any(("Candle", candle_symbol(kept[0], TF)) in subs for subs in dx_subscriptions(env)), 60)
            assert all(("Candle", ca) not in subs for subs in dx_subscriptions(env))
            c = Consumer(md.bars(kept, TF))
            await c.until(env, kept, env.open_t + timedelta(minutes=65))   # the clock moves on: bars close for all three
            bars = await c.stop()
            after = Counter(r.eventSymbol for r in raw.q)
            assert after[ca] == before[ca], (before, after)        # not one more candle of A
            assert all(after[candle_symbol(s, TF)] > before[candle_symbol(s, TF)] for s in kept)
            return hist, bars
        finally: await md.close()
    hist, bars = asyncio.run(main())
    assert_exact(env, hist, bars, kept, env.open_t)               # the kept symbols lost nothing


def test_the_emulator_stops_making_a_symbol_no_client_streams(tt):
    """Two DXLink clients stream A. One removes it: the emulator goes on making A's bars and quotes for the other. The
    last removes it: the emulator no longer tracks A and makes none of its bars or quotes any more (it made them for
    nobody), while the others go on; not one more candle of A reaches that client."""
    env = tt
    syms = list(env.sim.symbols)
    a, kept = syms[0], syms[1:]
    ca, ck = candle_symbol(a, TF), candle_symbol(kept[0], TF)
    dx = env.server.app[DXLINK_KEY]
    made = []                                                    # the symbol of every bar and quote the simulator makes
    env.server.call(lambda: env.sim.add_listener(lambda ev: made.append(ev.symbol) if type(ev).__name__ in ("Bar", "Quote") else None))
    fed = lambda: env.server.call(lambda: set(dx.fed))
    holders = lambda: sum(("Candle", ca) in subs for subs in dx_subscriptions(env))
    async def main():
        md1 = broker_parts(env.settings, env.clock, env.calendar).market_data
        md2 = broker_parts(env.settings, env.clock, env.calendar).market_data
        try:
            await md1.backfill(syms, env.open_t, TF)
            await md2.backfill([a, kept[0]], env.open_t, TF)
            raw = md2.streamer.mailbox({"Candle"}, maxsize=10**6)   # every Candle record the second client receives
            await until(lambda: holders() == 2, 60)
            assert fed() == set(syms)
            await md1.drop([a], TF)
            await until(lambda: holders() == 1, 60)
            n = len(made)
            await advance(env, 5)
            assert a in fed() and made[n:].count(a) > 0              # the second client still streams A: still made
            await md2.drop([a], TF)
            await until(lambda: holders() == 0, 60)
            assert fed() == set(kept)                               # the emulator no longer tracks A
            count = lambda sym: sum(1 for r in raw.q if r.eventSymbol == sym)
            n, k0 = len(made), count(ck)
            await advance(env, 5)
            assert made[n:].count(a) == 0 and all(made[n:].count(s) > 0 for s in kept)   # A is not made any more
            await until(lambda: count(ck) > k0, 60)                  # the ordered stream: A's in-flight candles are in
            before, k1 = count(ca), count(ck)
            await advance(env, 5)
            await until(lambda: count(ck) > k1, 60)
            assert count(ca) == before and made.count(a) == made[:n].count(a)
        finally:
            await md1.close(); await md2.close()
    asyncio.run(main())


# -- a symbol comes back gap-free (both brokers) -------------------------------------------------------------------------

def test_a_dropped_symbol_that_comes_back_is_backfilled_gap_free(env):
    "Drop A, let bars close, take A back: its new backfill and the stream give every bar once; the others lost nothing."
    syms = list(env.sim.symbols)
    a, kept = syms[0], syms[1:]
    async def main():
        md = broker_parts(env.settings, env.clock, env.calendar).market_data
        try:
            hist = await md.backfill(syms, env.open_t, TF)
            c = Consumer(md.bars(syms, TF))
            await c.until(env, syms, env.open_t + timedelta(minutes=35))
            first = await c.stop()
            await md.drop([a], TF)
            if env.settings.broker == "tastytrade":
                await until(lambda: all(("Candle", candle_symbol(a, TF)) not in subs for subs in dx_subscriptions(env)), 60)
            else:
                assert a not in md.subscribed and not [b for b in md.held if b.symbol == a]
                await until(lambda: a not in alpaca_bars_subscribed(env), 60)
            c = Consumer(md.bars(kept, TF))
            await c.until(env, kept, env.open_t + timedelta(minutes=55))   # A's bars close too, while it is dropped
            second = await c.stop()
            assert not [b for b in second if b.symbol == a]
            back = await md.backfill([a], env.open_t, TF)                  # A is back (the bot backfills it again)
            c = Consumer(md.bars(syms, TF))
            await c.until(env, syms, env.open_t + timedelta(minutes=75))
            third = await c.stop()
            if env.settings.broker == "alpaca": assert a in alpaca_bars_subscribed(env)
            return hist, first + second + third, back
        finally: await md.close()
    hist, bars, back = asyncio.run(main())
    assert_exact(env, hist, bars, syms[1:], env.open_t)                   # the kept symbols: every bar once, in order
    assert back[a].index[-1].to_pydatetime() >= env.open_t + timedelta(minutes=50)   # the comeback's history reaches the gap's end
    assert_exact(env, back, [b for b in bars if b.start > back[a].index[-1].to_pydatetime()], [a], env.open_t)


# -- the bot drops what leaves its watchlist ---------------------------------------------------------------------------

def test_the_bot_drops_symbols_that_leave_its_watchlist(tt, tmp_path):
    "Two pre-opens: the second watchlist lacks A: the DXLink subscription of A goes (at the emulator too), the audit says so."
    env = tt
    syms = list(env.sim.symbols)
    a = syms[0]
    ledger = Ledger(tmp_path / "ledger.sqlite", clock=env.clock)
    audit = AuditLog(tmp_path / "audit", env.clock, env.settings.secret_values())
    bot = build_bot(env.settings, env.clock, ledger, audit, calendar=env.calendar, scan=False, universe=syms)
    md = bot.market_data
    async def main():
        try:
            await bot.pre_open(env.open_t)
            assert bot.watchlist == syms and ("Candle", candle_symbol(a, bot.timeframe)) in md.streamer.subs
            bot.universe = syms[1:]                                        # the next list lacks A
            await bot.pre_open(env.open_t)
            assert bot.watchlist == syms[1:]
            assert ("Candle", candle_symbol(a, bot.timeframe)) not in md.streamer.subs
            assert candle_symbol(a, bot.timeframe) not in md.streamer.series and (a, bot.timeframe) not in md.upto
            await until(lambda: all(("Candle", candle_symbol(a, bot.timeframe)) not in subs for subs in dx_subscriptions(env)), 60)
            assert all(("Candle", candle_symbol(s, bot.timeframe)) in md.streamer.subs for s in syms[1:])
            bot.universe = syms                                            # A comes back: subscribed again
            await bot.pre_open(env.open_t)
            assert ("Candle", candle_symbol(a, bot.timeframe)) in md.streamer.subs and (a, bot.timeframe) in md.upto
        finally:
            await md.close(); await bot.order_updates.close()
    try: asyncio.run(main())
    finally:
        bot.broker.close(); audit.close(); ledger.close()
    recs = [r["details"] for r in audit.read("health", DAY) if r["details"].get("what") == "watchlist"]
    assert [r.get("dropped") for r in recs] == [None, [a], None], recs   # the audit names what was dropped


def test_a_symbol_back_after_days_off_the_list_is_warmed_from_its_last_bar(tmp_path):
    "A leaves the list on Monday and is back on Thursday: the strategy gets every A bar since Monday's last one, not a gap."
    open_t = MarketCalendar().session(DAY)[0]
    s = Settings(_env_file=None, sim_symbols=3, macd_fast=6, macd_slow=13, macd_signal=5, trend_ema=20, warmup_bars=30)
    env = emulated_tastytrade(s, DAY, DAY + timedelta(days=3), speed=60.0, start=open_t + timedelta(minutes=30))
    env.clock.set_mode("manual")
    env.server.call(lambda: env.sim.advance_to(open_t + timedelta(minutes=32)))
    ledger = Ledger(tmp_path / "ledger.sqlite", clock=env.clock)
    bot = build_bot(env.settings, env.clock, ledger, calendar=env.calendar, scan=False, universe=list(env.sim.symbols))
    syms = list(env.sim.symbols)
    a = syms[0]
    warmed, warm = [], bot._warm
    def recorded(sym, t, *hlc):
        warmed.append((sym, t)); return warm(sym, t, *hlc)
    async def main():
        try:
            await bot.pre_open(open_t)
            bot.universe = syms[1:]
            await bot.pre_open(open_t)                                     # A is dropped on Monday
            left = datetime.fromisoformat(bot.fed[a])
            thursday = env.calendar.session(DAY + timedelta(days=3))[0]
            env.server.call(lambda: env.sim.advance_to(thursday + timedelta(minutes=32)))
            await until(lambda: env.clock.now() >= thursday + timedelta(minutes=32), 60)
            assert left < bot._since(env.clock.now())                      # older than the warm-up window
            bot.universe, bot._warm = syms, recorded
            warmed.clear()
            await bot.pre_open(thursday)                                   # A is back
            return left, env.clock.now()
        finally:
            await bot.market_data.close(); await bot.order_updates.close()
    try:
        left, now = asyncio.run(main())
        ref = env.server.call(lambda: env.sim.bars(a, TF, left, now))
    finally:
        bot.broker.close(); env.close(); ledger.close()
    got = [t for sym, t in warmed if sym == a]
    want = [t.to_pydatetime() + timedelta(minutes=5) for t in ref.index if t.to_pydatetime() + timedelta(minutes=5) <= now]
    assert len(want) > 2 * 78 and got == want                               # every bar of the days off, in order, once
    assert datetime.fromisoformat(bot.fed[a]) == want[-1]
