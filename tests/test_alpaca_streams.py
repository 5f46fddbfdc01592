"""Alpaca's two streams through alpaca-py, unmodified, against the emulator: market data (minute bars folded into 5m,
a silent socket replaced with a health alert, a dropped one backfilled, never a second connection per key) and
order updates (trade_updates, and REST polling while the stream is down)."""
import asyncio, time
from datetime import date, timedelta

import pytest

from swingtrader.broker import BrokerError
from swingtrader.alpaca.market_data import AlpacaMarketData
from swingtrader.alpaca.order_updates import AlpacaOrderUpdates
from swingtrader.models import OrderEvent, OrderRequest

DAY = date(2026, 3, 2)


from emu_support import alpaca_env, alpaca_broker, until   # noqa: F401  (the fixtures env and broker)


def data_server(env):
    from swingtrader.emulator.alpaca_data_stream import ALPACA_DATA_KEY
    return env.server.app[ALPACA_DATA_KEY]


@pytest.fixture
def refusals(monkeypatch):
    "Every error code the emulator's data stream sends (406 = a second connection with the same key)."
    from swingtrader.emulator import alpaca_data_stream as ds
    codes, orig = [], ds.AlpacaDataSession.error
    def error(self, code):
        codes.append(code); return orig(self, code)
    monkeypatch.setattr(ds.AlpacaDataSession, "error", error)
    return codes


def test_bars_fold_minutes_into_5m_each_once(env, broker, refusals):
    sym = env.sim.symbols[0]
    async def main():
        md = AlpacaMarketData(broker, check_every=0.2)
        now = env.clock.now()
        hist = (await md.backfill([sym], now - timedelta(hours=1), "5m"))[sym]
        it = md.bars([sym], "5m")
        got = [await asyncio.wait_for(it.__anext__(), 60) for _ in range(3)]
        await md.close()
        return hist, got
    hist, got = asyncio.run(main())
    starts = [b.start for b in got]
    assert len(hist) >= 5 and starts[0] == hist.index[-1] + timedelta(minutes=5)   # the stream carries on where REST ended
    assert starts == [starts[0] + timedelta(minutes=5 * i) for i in range(3)]      # consecutive, none twice
    assert all(b.timeframe == "5m" and b.symbol == sym and b.low <= b.close <= b.high for b in got)
    rest = broker.bars(sym, "5m", starts[0], starts[-1] + timedelta(minutes=5))
    assert [round(b.close, 4) for b in got] == [round(c, 4) for c in rest["close"]]   # same bars as the REST history
    assert 406 not in refusals


def test_silent_socket_is_replaced_with_a_health_alert(env, broker, refusals):
    sym = env.sim.symbols[0]
    server = data_server(env)
    alerts, most = [], [0]
    async def main():
        md = AlpacaMarketData(broker, silence=3.0, check_every=0.2)
        md.on_health = lambda level, message: alerts.append((level, message))
        it = md.bars([sym], "5m")
        first = await asyncio.wait_for(it.__anext__(), 60)
        async def watch():
            while True:
                most[0] = max(most[0], len(server.authed)); await asyncio.sleep(0.02)
        w = asyncio.create_task(watch())
        assert server.mute() == 1                     # connected, and from now on silent
        await until(lambda: md.stats["silent_reconnects"] >= 1)
        later = await asyncio.wait_for(it.__anext__(), 60)   # bars flow again on the new connection
        await until(lambda: ("ok", "Alpaca market data flows again") in alerts)
        w.cancel(); await md.close()
        return first, later, md.stats
    first, later, stats = asyncio.run(main())
    assert later.start > first.start
    assert alerts[0][0] == "warning" and "silent" in alerts[0][1]
    assert stats["reconnects"] >= 2
    assert most[0] == 1 and 406 not in refusals     # never two connections with the key


def test_a_dropped_socket_is_backfilled_without_gaps(env, broker, refusals):
    sym = env.sim.symbols[0]
    server = data_server(env)
    async def main():
        md = AlpacaMarketData(broker, check_every=0.2)
        it = md.bars([sym], "5m")
        got = [await asyncio.wait_for(it.__anext__(), 60)]
        await until(lambda: md.connected)
        server.drop()                                  # a network drop: no close frame
        while len(got) < 5: got.append(await asyncio.wait_for(it.__anext__(), 60))
        await md.close()
        return got, md.stats
    got, stats = asyncio.run(main())
    starts = [b.start for b in got]
    assert starts == [starts[0] + timedelta(minutes=5 * i) for i in range(len(starts))], starts   # no gap, no repeat
    assert stats["reconnects"] >= 2 and 406 not in refusals


def test_a_second_stream_with_the_same_key_is_refused_here(env, broker):
    sym = env.sim.symbols[0]
    async def main():
        md = AlpacaMarketData(broker)
        it = md.bars([sym], "5m")
        await asyncio.wait_for(it.__anext__(), 60)
        md2 = AlpacaMarketData(broker)
        with pytest.raises(BrokerError, match="already open"):
            await md2.bars([sym], "5m").__anext__()
        await md.close()
        md3 = AlpacaMarketData(broker)                 # once closed, the key is free again
        b = await asyncio.wait_for(md3.bars([sym], "5m").__anext__(), 60)
        await md3.close()
        return b
    assert asyncio.run(main()).symbol == sym


async def next_fill(ou, order_id, timeout=60.0):
    "The FILL event of `order_id` (other events skipped)."
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ev = await ou.next(1.0)
        if ev is not None and ev.order.id == order_id and ev.event is OrderEvent.FILL: return ev
    raise AssertionError(f"no fill of {order_id} within {timeout} s")


@pytest.fixture
def stream_gate(monkeypatch):
    "gate['open'] = False: the emulator's /stream refuses every authentication (REST keeps working)."
    alpaca_stream = pytest.importorskip("swingtrader.emulator.alpaca_stream")
    gate, orig = {"open": True}, alpaca_stream.handle
    def handle(st, s, raw):
        replies, close = orig(st, s, raw)
        if not gate["open"] and s.authorized:
            s.authorized = False
            return [{"stream": "authorization", "data": {"status": "unauthorized", "action": "authenticate"}}], True
        return replies, close
    monkeypatch.setattr(alpaca_stream, "handle", handle)
    return gate


def test_order_updates_by_stream_and_by_polling_while_it_is_down(env, broker, stream_gate):
    pytest.importorskip("swingtrader.emulator.alpaca_trading", reason="the emulator's Alpaca trading side (h-alpemu) is not merged here")
    sym = env.sim.symbols[0]
    health = []
    async def main():
        ou = AlpacaOrderUpdates(broker, poll_interval=0.2, down_alert=0.5)
        ou.on_health = lambda level, message: health.append(level)
        await ou.start(connect_timeout=30)
        assert ou.streaming
        o1 = await asyncio.to_thread(broker.submit, OrderRequest(sym, "buy", qty=2))
        ou.expect(o1)
        f1 = await next_fill(ou, o1.id)
        by_stream = ou.stats["stream_events"]
        stream_gate["open"] = False                          # the stream cannot come back ...
        await ou.stream.drop()                               # ... after this drop
        await until(lambda: not ou.streaming)
        o2 = await asyncio.to_thread(broker.submit, OrderRequest(sym, "sell", qty=2))
        ou.expect(o2)
        f2 = await next_fill(ou, o2.id)
        polled = ou.stats["poll_events"]
        await until(lambda: health[-1:] == ["warning"])      # down long enough: a health warning
        stream_gate["open"] = True                           # the stream reconnects (alpaca-py's backoff)
        await until(lambda: ou.streaming)
        o3 = await asyncio.to_thread(broker.submit, OrderRequest(sym, "buy", qty=1))
        ou.expect(o3)
        f3 = await next_fill(ou, o3.id)
        extra = [e async for e in _drain(ou)]
        await until(lambda: health[-1:] == ["ok"])           # and all clear once it is back
        await ou.close()
        return f1, f2, f3, by_stream, polled, extra, ou.stats
    f1, f2, f3, by_stream, polled, extra, stats = asyncio.run(main())
    assert (f1.fill.qty, f2.fill.qty, f3.fill.qty) == (2, 2, 1) and all(f.fill.price > 0 for f in (f1, f2, f3))
    assert by_stream >= 1 and polled >= 1                     # the first fill came by the stream, the second by polling
    assert stats["reconnects"] >= 2
    fills = [e for e in extra if e.fill is not None]
    assert fills == []                                        # each fill exactly once, whichever source saw it first


async def _drain(ou, quiet=1.5):
    "Events still arriving within `quiet` seconds."
    while (ev := await ou.next(quiet)) is not None: yield ev
