"""Every Alpaca fill reaches the ledger exactly once, whatever `trade_updates` messages were lost (the chaos week's "ledger
434 IIY, broker 0"): alpaca-py's TradingClient and TradingStream, unmodified, against the emulator, with exactly the messages
that caused it dropped, and the order updates applied to a real ledger across a restart.

The sequence the chaos week hit: an order fills in two executions; the trade update of the first is lost; the next message
of the order (its `fill`, or here its `canceled`) shows more filled than was reported. The order updates used to derive the
gap from the order's cumulative quantity, under a made-up id (`<order id>:<cumulative qty>`). The ledger recorded that. After
a restart the replay read the order's executions (`FILL` activities) under their own ids, which the ledger did not know: it
recorded them again — the entry counted twice, so after the exit the ledger still held what the broker no longer had."""
import asyncio, time
from datetime import date, timedelta
from decimal import Decimal

import pytest

from swingtrader.config import Settings
from swingtrader.clock import MarketCalendar
from swingtrader.ledger import Ledger
from swingtrader.session import emulated_alpaca
from swingtrader.alpaca.broker import AlpacaBroker
from swingtrader.alpaca.order_updates import AlpacaOrderUpdates
from swingtrader.models import OrderRequest, OrderStatus

DAY = date(2026, 3, 2)


@pytest.fixture
def env():
    cal = MarketCalendar()
    e = emulated_alpaca(Settings(_env_file=None, sim_symbols=3), DAY, DAY, speed=60.0, start=cal.session(DAY)[0] + timedelta(minutes=30))
    yield e
    e.close()


@pytest.fixture
def broker(env):
    b = AlpacaBroker(env.settings, clock=env.clock, calendar=env.calendar)
    yield b
    b.close()


@pytest.fixture
def dropped(env, monkeypatch):
    """`dropped["events"]`: the trade-update events (e.g. {"partial_fill"}) the emulator loses from now on, as a dropped
    message is lost on Alpaca (REST still tells the truth); `dropped["lost"]` the messages lost so far."""
    from swingtrader.emulator.alpaca_orders import alpaca_state
    st = alpaca_state(env.server.emu)
    box, publish = {"events": set(), "lost": []}, st.publish
    def dropping(msg):
        if msg.get("stream") == "trade_updates" and msg["data"].get("event") in box["events"]:
            box["lost"].append(msg); return
        return publish(msg)
    monkeypatch.setattr(st, "publish", dropping)
    return box


def wired(broker, ledger, **kw) -> AlpacaOrderUpdates:
    "The order updates as the session wires them (`build_bot`): told what the ledger holds."
    ou = AlpacaOrderUpdates(broker, poll_interval=0.2, **kw)     # safety poll 30 s: the stream is up, so it tells first
    ou.use_ledger(ledger)
    return ou


async def until(pred, timeout=60.0, step=0.05):
    "Wait for `pred()` (generous bound; never a fixed sleep as synchronisation)."
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end: raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


def applying(ou, ledger) -> asyncio.Task:
    "Apply every update to the ledger as it arrives (as the Trader does), until cancelled."
    async def run():
        while True: ledger.record_update(await ou.next(3600))
    return asyncio.create_task(run())


async def settle(ou, task, quiet=1.5):
    "Stop once no update arrived for `quiet` seconds (the queue is empty and stays so), then close."
    await until(lambda: ou.queue.empty())
    n = -1
    while n != ou.stats["events"]:
        n = ou.stats["events"]; await asyncio.sleep(quiet)
    await until(lambda: ou.queue.empty())
    task.cancel()
    await ou.close()


def executions(env, order_id) -> list:
    "The emulator's executions of Alpaca order `order_id` as (execution id, qty)."
    from swingtrader.emulator.alpaca_orders import alpaca_state
    from swingtrader.emulator.alpaca_wire import alpaca_uuid
    st = alpaca_state(env.server.emu)
    def get():
        sid = st.find(order_id).id
        return [(alpaca_uuid("fill", f.fill_id), f.qty) for f in env.sim.engine.fills if f.order_id == sid]
    return env.server.call(get)


def held(ledger, sym) -> Decimal:
    p = ledger.position(sym)
    return p.qty if p is not None else Decimal(0)


def test_lost_partial_fill_reaches_the_ledger_once_across_a_restart(env, broker, dropped, tmp_path):
    sym = env.sim.symbols[0]
    ledger = Ledger(tmp_path / "ledger.sqlite")
    async def main():
        ou = wired(broker, ledger)
        await ou.start(connect_timeout=30)
        assert ou.streaming
        task = applying(ou, ledger)
        env.server.call(lambda: env.sim.set_fill_mode("partial:0.5"))     # half at once, the rest never
        dropped["events"] = {"partial_fill"}                               # ... and the trade update of that half is lost
        o = await asyncio.to_thread(broker.submit, OrderRequest(sym, "buy", qty=4))
        ou.expect(o)
        await until(lambda: broker.order(o.id).filled_qty == 2)
        await asyncio.to_thread(broker.cancel, o.id)                       # `canceled`: the order shows 2 filled, none reported
        await until(lambda: (lo := ledger.order(o.client_key)) is not None and lo.status == OrderStatus.CANCELLED.value)
        await settle(ou, task)
        first = held(ledger, sym)
        ou2 = wired(broker, ledger)                                        # a restart: the replay reads the last days again
        await ou2.start(connect_timeout=30)
        task = applying(ou2, ledger)
        await settle(ou2, task)
        return o, first
    o, first = asyncio.run(main())
    assert len(dropped["lost"]) == 1                                        # exactly the partial fill's message was lost
    ex = executions(env, o.id)
    assert [q for _, q in ex] == [2]
    assert first == 2 and held(ledger, sym) == 2 == {p.symbol: p.qty for p in broker.positions()}[sym]
    fills = ledger.fills(client_key=o.client_key)
    assert [(f.fill_id, f.qty) for f in fills] == ex                       # once, under the execution's own id (not derived)
    assert ledger.order(o.client_key).filled_qty == 2
