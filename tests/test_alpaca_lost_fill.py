"""Every Alpaca fill reaches the ledger exactly once, whatever `trade_updates` messages were lost (the chaos week's "ledger
434 IIY, broker 0"): alpaca-py's TradingClient and TradingStream, unmodified, against the emulator, with exactly the messages
that caused it dropped, and the order updates applied to a real ledger across a restart.

The sequence the chaos week hit: an order fills in two executions; the trade update of the first is lost; the next message
of the order (its `fill`, or here its `canceled`) shows more filled than was reported. The order updates used to derive the
gap from the order's cumulative quantity, under a made-up id (`<order id>:<cumulative qty>`). The ledger recorded that. After
a restart the replay read the order's executions (`FILL` activities) under their own ids, which the ledger did not know: it
recorded them again — the entry counted twice, so after the exit the ledger still held what the broker no longer had."""
import asyncio
from datetime import date
from decimal import Decimal

import pytest

from swingtrader.ledger import Ledger
from swingtrader.alpaca.order_updates import AlpacaOrderUpdates
from swingtrader.models import OrderRequest, OrderStatus

DAY = date(2026, 3, 2)


from emu_support import alpaca_env, alpaca_broker, until   # noqa: F401  (the fixtures env and broker)


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


def executions(env, order_id, kind="fill") -> list:
    "The emulator's executions of Alpaca order `order_id` as (id, qty): `kind` fill = their execution ids, activity = their activities' own."
    from swingtrader.emulator.alpaca_orders import alpaca_state
    from swingtrader.emulator.alpaca_wire import alpaca_uuid
    st = alpaca_state(env.server.emu)
    def get():
        sid = st.find(order_id).id
        return [(alpaca_uuid(kind, f.fill_id), f.qty) for f in env.sim.engine.fills if f.order_id == sid]
    return env.server.call(get)


@pytest.fixture(params=[True, False], ids=["activity ids = execution ids", "activity ids of their own"])
def activity_ids(env, request):
    """Whether a FILL activity's id ends in its trade update's `execution_id`: Alpaca does not document it, so every test
    runs both ways (the emulator's `activity_execution_ids`)."""
    from swingtrader.emulator.alpaca_orders import alpaca_state
    alpaca_state(env.server.emu).activity_execution_ids = request.param
    return request.param


def held(ledger, sym) -> Decimal:
    p = ledger.position(sym)
    return p.qty if p is not None else Decimal(0)


def test_lost_partial_fill_reaches_the_ledger_once_across_a_restart(env, broker, dropped, activity_ids, tmp_path):
    sym = env.sim.symbols[0]
    ledger = Ledger(tmp_path / "ledger.sqlite")
    async def main():
        ou = wired(broker, ledger)
        await ou.start(connect_timeout=30)
        assert ou.streaming
        await until(lambda: ou.stats["reconnects"] >= 1)                  # the poller saw the stream up (its catch-up poll is due now,
                                                                           # not later): from here on the stream tells first
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
    # once, under the id its FILL activity gives the execution (not derived from the order under a made-up id)
    assert [(f.fill_id, f.qty) for f in fills] == (ex if activity_ids else executions(env, o.id, "activity"))
    assert ledger.order(o.client_key).filled_qty == 2


def test_fills_by_stream_are_not_recorded_again_by_the_replay(env, broker, activity_ids, tmp_path):
    """A buy and a sell the stream reported (under their execution ids), then a restart: the replay reads both orders and
    their FILL activities again. Whether or not the activity ids match the execution ids, nothing is recorded twice."""
    sym = env.sim.symbols[1]
    ledger = Ledger(tmp_path / "ledger.sqlite")
    async def main():
        ou = wired(broker, ledger)
        await ou.start(connect_timeout=30)
        task = applying(ou, ledger)
        keys, ids = [], []
        for side in ("buy", "sell"):
            o = await asyncio.to_thread(broker.submit, OrderRequest(sym, side, qty=3))
            ou.expect(o); keys.append(o.client_key); ids.append(o.id)
            await until(lambda: (lo := ledger.order(o.client_key)) is not None and lo.status == OrderStatus.FILLED.value)
        await settle(ou, task)
        streamed = ou.stats["stream_events"]
        ou2 = wired(broker, ledger)
        await ou2.start(connect_timeout=30)
        task = applying(ou2, ledger)
        await settle(ou2, task)
        return keys, ids, streamed, ou2
    keys, ids, streamed, ou2 = asyncio.run(main())
    assert held(ledger, sym) == 0 and sym not in {p.symbol for p in broker.positions()}
    for k in keys: assert [f.qty for f in ledger.fills(client_key=k)] == [3]
    assert streamed >= 2                                            # the fills came by the stream ...
    assert set(ids) <= set(ou2.tracker.seen) and ou2.stats["events"] == 0   # ... the replay read both orders again, and added nothing


def test_a_fill_while_the_stream_is_connected_but_silent_is_polled(env, broker, activity_ids, tmp_path):
    """The trading stream stays connected but sends no trade update (`trading_stream_silent`): the order is still tracked,
    so the safety poll finds its fill — at the broker already terminal (filled) — once, and the ledger agrees with the broker."""
    sym = env.sim.symbols[2]
    ledger = Ledger(tmp_path / "ledger.sqlite")
    async def main():
        ou = AlpacaOrderUpdates(broker, poll_interval=0.2, safety_poll=0.5).use_ledger(ledger)
        await ou.start(connect_timeout=30)
        task = applying(ou, ledger)
        env.server.call(lambda: env.server.emu.faults.update(trading_stream_silent=1))
        ids = []
        for side in ("buy", "sell"):
            o = await asyncio.to_thread(broker.submit, OrderRequest(sym, side, qty=5))
            ou.expect(o); ids.append(o)
            await until(lambda: (lo := ledger.order(o.client_key)) is not None and lo.status == OrderStatus.FILLED.value)
            assert ou.streaming                                      # connected all along
        await settle(ou, task)
        env.server.call(lambda: env.server.emu.faults.update(trading_stream_silent=0))
        return ids, ou.stats
    orders, stats = asyncio.run(main())
    assert stats["stream_events"] == 0 and stats["poll_events"] >= 2
    assert held(ledger, sym) == 0 and sym not in {p.symbol for p in broker.positions()}
    for o in orders:
        assert [(f.fill_id, f.qty) for f in ledger.fills(client_key=o.client_key)] == executions(env, o.id, "fill" if activity_ids else "activity")


def test_fill_activity_ids_as_alpaca_writes_them():
    """Alpaca's `FILL` activity (its documented example, tests/fixtures/alpaca/trading_activity_fill.json): `id` is
    `<YYYYMMDDHHMMSSmmm>::<uuid>`; a fill found through it is recorded under that UUID. The emulator writes the same shape
    (plus `account_id`, which alpaca-py's model wants), with the UUID equal to the trade update's `execution_id` or not."""
    import json, re
    from pathlib import Path
    from swingtrader.alpaca.wire import fill_from_activity
    from swingtrader.alpaca.order_updates import execution_id
    from swingtrader.emulator.alpaca_wire import activity_json, alpaca_uuid
    from swingtrader.models import Fill, Side
    from datetime import datetime, timezone
    real = json.loads((Path(__file__).parent / "fixtures" / "alpaca" / "trading_activity_fill.json").read_text())[0]
    form = re.compile(r"^\d{17}::[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    assert form.match(real["id"])
    f = fill_from_activity(real)
    assert (execution_id(f.fill_id), f.order_id, f.qty, f.price) == ("2d7be4ff-d1f3-43e9-856a-0f5cf5c5088e", real["order_id"], 2, Decimal("174.78"))
    sim_fill = Fill("simf-7", "sim-7", "AAPL", Side.BUY, Decimal(2), Decimal("174.78"), datetime(2022, 2, 2, 18, 55, 9, 981482, tzinfo=timezone.utc))
    for same in (True, False):
        emu = activity_json(sim_fill, alpaca_uuid("order", "sim-7"), alpaca_uuid("account", "A"), Decimal(2), Decimal(0), "filled", execution_ids=same)
        assert set(emu) == set(real) | {"account_id"} and form.match(emu["id"]) and emu["id"][:17] == real["id"][:17]   # New York time, as Alpaca writes it
        assert (execution_id(emu["id"]) == alpaca_uuid("fill", "simf-7")) is same
