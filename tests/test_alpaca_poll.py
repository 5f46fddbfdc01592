"""Alpaca's safety polls (REST, while the `trade_updates` stream is up and orders are pending) never re-emit what the stream
delivered: with the stream healthy and polls every 50 ms, each order's events reach the listener once — one acceptance, one
end, each fill once — whichever of stream and poll told first. alpaca-py's TradingClient and TradingStream, unmodified,
against the emulator. A restart's replay (orders closed while no bot listened) tells the ledger only what it lacks."""
import asyncio
from collections import Counter
from decimal import Decimal

from swingtrader.alpaca.order_updates import AlpacaOrderUpdates
from swingtrader.ledger import Ledger
from swingtrader.models import OrderEvent, OrderRequest

from emu_support import alpaca_env, alpaca_broker, until   # noqa: F401  (the fixtures env and broker)

ONCE = {OrderEvent.ACCEPTED, OrderEvent.FILL, OrderEvent.CANCELLED, OrderEvent.EXPIRED, OrderEvent.REJECTED, OrderEvent.PENDING_CANCEL}


def _limit_below(broker, sym):
    return Decimal(str(round(broker.latest_quote(sym).bid / 2, 2)))


async def _collect(ou, out:list):
    while True: out.append(await ou.next(3600))


async def _quiet(ou, secs=1.0):
    "Wait until no event arrived for `secs` (the queue drained and stays so)."
    await until(lambda: ou.queue.empty())
    n = -1
    while n != ou.stats["events"]:
        n = ou.stats["events"]; await asyncio.sleep(secs)


def _per_order(events) -> dict[str, Counter]:
    per = {}
    for u in events: per.setdefault(u.order.id, Counter())[u.event] += 1
    return per


def test_safety_polls_with_a_healthy_stream_emit_each_event_once(env, broker):
    sym = env.sim.symbols[0]
    async def go():
        ou = AlpacaOrderUpdates(broker, poll_interval=0.05, safety_poll=0.05, replay=False)
        await ou.start(connect_timeout=30)
        assert ou.streaming
        events = []
        task = asyncio.create_task(_collect(ou, events))
        price = _limit_below(broker, sym)
        limits = [await asyncio.to_thread(broker.submit, OrderRequest(sym, "buy", qty=1, type="limit", limit_price=price)) for _ in range(5)]
        for o in limits: ou.expect(o)
        markets = []
        for i in range(6):      # buys of another symbol (a sell against the resting buys would be refused as a wash trade)
            o = await asyncio.to_thread(broker.submit, OrderRequest(env.sim.symbols[1], "buy", qty=2))
            ou.expect(o); markets.append(o)
        polls = p0 = ou.stats["polls"]
        await until(lambda: ou.stats["polls"] >= polls + 20)             # safety polls ran while the limits rested
        await until(lambda: all(any(u.order.id == o.id and u.event is OrderEvent.FILL for u in events) for o in markets))
        for o in limits: await asyncio.to_thread(broker.cancel, o.id)
        await until(lambda: all(any(u.order.id == o.id and u.event is OrderEvent.CANCELLED for u in events) for o in limits))
        polls = ou.stats["polls"]
        for o in limits[:2]: ou.expect(o)                                 # a caller re-expecting a finished order: polled again
        await until(lambda: ou.stats["polls"] > polls and not ou.tracker.pending)   # polled, found finished, dropped
        await _quiet(ou)
        task.cancel()
        await ou.close()
        return ou, events, limits, markets, p0
    ou, events, limits, markets, p0 = asyncio.run(go())
    per = _per_order(events)
    for o in limits: assert per[o.id] == Counter({OrderEvent.ACCEPTED: 1, OrderEvent.CANCELLED: 1}), per[o.id]
    for o in markets:
        c = per[o.id]
        assert c[OrderEvent.FILL] == 1 and c[OrderEvent.ACCEPTED] <= 1 and all(c[e] <= 1 for e in ONCE), c
        fills = [u.fill for u in events if u.order.id == o.id and u.fill is not None]
        assert sum(f.qty for f in fills) == Decimal(2) == broker.order(o.id).filled_qty
    ids = [u.fill.fill_id for u in events if u.fill is not None]
    assert len(ids) == len(set(ids))                                      # no fill twice
    assert ou.stats["events"] == len(events) == ou.stats["stream_events"] + ou.stats["poll_events"]
    assert ou.stats["polls"] >= p0 + 21                                  # the 20 waited for while the limits rested, and the one after


def test_a_restart_replays_only_what_the_ledger_lacks(env, broker, tmp_path):
    "Orders closed while no bot listened are replayed; orders the ledger already holds as finished, fills and all, are not."
    sym = env.sim.symbols[0]
    ledger = Ledger(tmp_path / "ledger.sqlite", clock=env.clock)
    async def run_once(replay_known:int):
        ou = AlpacaOrderUpdates(broker, poll_interval=0.05, safety_poll=0.05)
        ou.use_ledger(ledger)
        await ou.start(connect_timeout=30)
        events = []
        task = asyncio.create_task(_collect(ou, events))
        await _quiet(ou, 0.5)
        replayed = list(events)
        new = []
        if replay_known == 0:
            price = _limit_below(broker, sym)
            for i in range(3):
                req = OrderRequest(sym, "buy", qty=1, type="limit", limit_price=price, client_key=f"limit-{i}")
                o = await asyncio.to_thread(broker.submit, req); ou.expect(o); new.append(o)
            m = await asyncio.to_thread(broker.submit, OrderRequest(sym, "buy", qty=3, client_key="market-0")); ou.expect(m); new.append(m)
            await until(lambda: any(u.order.id == m.id and u.event is OrderEvent.FILL for u in events))
            for o in new[:3]: await asyncio.to_thread(broker.cancel, o.id)
            await until(lambda: sum(1 for u in events if u.event is OrderEvent.CANCELLED) >= 3)
            await _quiet(ou, 0.5)
        task.cancel(); await ou.close()
        return replayed, events, new
    try:
        _, events, new = asyncio.run(run_once(0))
        for u in events: ledger.record_update(u)
        assert {ledger.order_by_broker_id(o.id).status for o in new} == {"cancelled", "filled"}
        replayed, _, _ = asyncio.run(run_once(1))                         # a restart: everything is in the ledger already
        assert [u for u in replayed if u.order.id in {o.id for o in new}] == []
    finally: ledger.close()
