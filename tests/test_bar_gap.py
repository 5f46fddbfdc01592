"""No closed bar is lost between the backfill and the live stream — a slow start, a laggy network —, across a reconnect,
or between two consumers (yesterday's session and today's): each symbol's bars reach the consumer in time order, exactly
once, with the emulator's values. For tastytrade (DXLink candles) and Alpaca (the bars stream, minutes folded into 5m),
through the real clients and the registry's market-data adapters against the emulator, on a manual clock: bars close
exactly when the test moves the clock, so what closes before anyone listens is certain."""
import asyncio
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta

import pytest

from swingtrader.clock import MarketCalendar
from swingtrader.config import Settings
from swingtrader.registry import broker_parts
from swingtrader.session import emulated_alpaca, emulated_tastytrade

from emu_support import until

DAY = date(2026, 3, 2)
TF, STEP = "5m", timedelta(minutes=5)
COLS = ["open", "high", "low", "close", "volume"]
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(params=["tastytrade", "alpaca"])
def env(request):
    "The emulator over a seeded 3-symbol market, its clock stopped at 10:02 New York time (mid-bar) of `DAY`."
    open_t = MarketCalendar().session(DAY)[0]
    start = emulated_alpaca if request.param == "alpaca" else emulated_tastytrade
    e = start(Settings(_env_file=None, sim_symbols=3), DAY, DAY, speed=60.0, start=open_t + timedelta(minutes=30))
    e.clock.set_mode("manual")
    e.server.call(lambda: e.sim.advance_to(open_t + timedelta(minutes=32)))
    e.open_t = open_t
    yield e
    e.close()


def step(env, minutes:int):
    "Move the simulated clock `minutes` minutes, one at a time (each: the simulator's bars, then the feeds)."
    for _ in range(minutes):
        env.server.call(lambda: env.sim.advance_to(env.clock.now() + timedelta(minutes=1)))


async def advance(env, minutes:int): await asyncio.to_thread(step, env, minutes)


def reference(env, sym:str, since:datetime):
    "The emulator's own closed 5m bars of `sym` from `since`, as (start, open, high, low, close, volume) rows."
    df = env.server.call(lambda: env.sim.bars(sym, TF, since, env.clock.now()))
    return [(t.to_pydatetime(), *map(float, r)) for t, r in zip(df.index, df[COLS].itertuples(index=False))]


def rows(hist, bars, sym):
    "What a consumer saw of `sym`: the backfill's rows, then the streamed bars, in the order they came."
    out = [(t.to_pydatetime(), *map(float, r)) for t, r in zip(hist[sym].index, hist[sym][COLS].itertuples(index=False))]
    return out + [(b.start, b.open, b.high, b.low, b.close, b.volume) for b in bars if b.symbol == sym]


def assert_exact(env, hist, bars, syms, since):
    for s in syms:
        seen, ref = rows(hist, bars, s), reference(env, s, since)
        assert [r[0] for r in seen] == [r[0] for r in ref[:len(seen)]], s     # every closed bar, in order, exactly once
        assert len(seen) >= len(ref) - 1, (s, len(seen), len(ref))             # (the newest may still be on its way)
        for a, b in zip(seen, ref):
            assert a[1:] == pytest.approx(b[1:], rel=1e-9, abs=1e-9), (s, a, b)  # with the emulator's values


async def closed_in_streamer(env, md, syms, upto:datetime):
    "tastytrade: wait until the DXLink streamer itself has closed the bars up to `upto` (they were emitted before anyone listened)."
    if env.settings.broker != "tastytrade": return         # Alpaca: no subscription yet, nothing arrives at all
    from swingtrader.dxlink.events import candle_symbol
    ms = upto.timestamp() * 1000
    await until(lambda: all(md.streamer.series[candle_symbol(s, TF)].last_closed >= ms for s in syms))


async def subscribed(env, syms):
    "Alpaca: wait until the emulator's one data session streams `syms` (minutes sent before that reach nobody, as for real)."
    if env.settings.broker != "alpaca": return      # DXLink: the candle subscriptions (and their snapshots) are the backfill's
    from emu_support import alpaca_data_state
    def ok():
        st = alpaca_data_state(env.server)
        return st["authenticated"] == 1 and any(set(syms) <= set(sub.get("bars", [])) for sub in st["subscriptions"])
    await until(ok, 60)


@asynccontextmanager
async def feed(env, syms):
    "The broker's market data (the adapter the bot uses) with its backfill from the open done; closed at the end."
    md = broker_parts(env.settings, env.clock, env.calendar).market_data
    try: yield md, await md.backfill(syms, env.open_t, TF)
    finally: await md.close()


class Consumer:
    "Iterates a `bars()` stream in a task, collecting into `bars`, until stopped."
    def __init__(self, it):
        self.it, self.bars = it, []
        async def collect():
            async for b in it: self.bars.append(b)
        self.task = asyncio.create_task(collect())

    def has(self, syms, upto:datetime) -> bool:
        return all(any(b.symbol == s and b.start >= upto for b in self.bars) for s in syms)

    async def until(self, env, syms, upto:datetime):
        "Move the clock a minute past the close of the bars starting at `upto`, then wait (generous bound) until all came."
        await subscribed(env, syms)
        minutes = int((upto + STEP + timedelta(minutes=1) - env.clock.now()).total_seconds() // 60)
        if minutes > 0: await advance(env, minutes)
        await until(lambda: self.task.done() or self.has(syms, upto), 60)
        assert not self.task.done() or not self.task.exception(), self.task.exception()
        assert self.has(syms, upto), [(b.symbol, b.start) for b in self.bars]

    async def stop(self):
        self.task.cancel()
        try: await self.task
        except (asyncio.CancelledError, Exception): pass
        await self.it.aclose()
        return self.bars


def test_bars_closing_between_backfill_and_subscription_are_delivered(env):
    "The backfill ends at 10:02; the consumer subscribes at 10:19: the 10:00, 10:05 and 10:10 bars come first, then the live ones."
    syms = list(env.sim.symbols)
    async def main():
        async with feed(env, syms) as (md, hist):
            await advance(env, 17)                                     # a slow start: three bars close, a fourth is half done
            await closed_in_streamer(env, md, syms, env.open_t + timedelta(minutes=40))
            c = Consumer(md.bars(syms, TF))
            await c.until(env, syms, env.open_t + timedelta(minutes=60))
            return hist, await c.stop()
    hist, bars = asyncio.run(main())
    for s in syms: assert hist[s].index[-1].to_pydatetime() == env.open_t + timedelta(minutes=25)   # 09:55, closed at 10:00
    assert_exact(env, hist, bars, syms, env.open_t)


def test_bars_closing_between_two_consumers_are_delivered(env):
    "Yesterday's session stopped reading; bars closed before today's began: the second consumer gets them, nothing twice."
    syms = list(env.sim.symbols)
    async def main():
        async with feed(env, syms) as (md, hist):
            c = Consumer(md.bars(syms, TF))
            await c.until(env, syms, env.open_t + timedelta(minutes=40))
            first = await c.stop()
            await advance(env, 16)                                     # nobody reads meanwhile
            await closed_in_streamer(env, md, syms, env.open_t + timedelta(minutes=50))
            c = Consumer(md.bars(syms, TF))
            await c.until(env, syms, env.open_t + timedelta(minutes=70))
            return hist, first, await c.stop()
    hist, first, second = asyncio.run(main())
    assert min(b.start for b in second) <= env.open_t + timedelta(minutes=50)   # the bars of the pause came to the second
    assert_exact(env, hist, first + second, syms, env.open_t)


def test_a_reconnect_loses_no_bar(env):
    "The feed's socket is closed while bars close: after the reconnect the consumer still gets every bar once, with full values."
    syms = list(env.sim.symbols)
    broker = env.settings.broker
    def connected(md): return md.streamer.is_connected if broker == "tastytrade" else md.connected
    def kick():
        if broker == "tastytrade": return env.server.call(env.server.emu.disconnect_all)
        from swingtrader.emulator.alpaca_data_stream import ALPACA_DATA_KEY
        return env.server.call(lambda: env.server.app[ALPACA_DATA_KEY].drop())
    async def main():
        async with feed(env, syms) as (md, hist):
            c = Consumer(md.bars(syms, TF))
            await c.until(env, syms, env.open_t + timedelta(minutes=35))
            await until(lambda: connected(md), 30)
            assert kick() >= 1
            await until(lambda: not connected(md), 30)
            await advance(env, 7)                                      # bars close (and one is begun) while it reconnects
            await until(lambda: connected(md), 60)
            await c.until(env, syms, env.open_t + timedelta(minutes=65))
            return hist, await c.stop()
    hist, bars = asyncio.run(main())
    assert_exact(env, hist, bars, syms, env.open_t)
