"""The stop keeper against a broker that is ahead of the bot: a working protective stop never exceeds what is held.

Found by the chaos week on tastytrade (a 206-share protective stop working while 0.85 share was held): the bot decides a
stop's quantity from its own view of the position, and that view lags the broker's whenever the stop itself has filled in
part and the fill's update is still on its way (a late or dropped account-streamer message, a slow broker call that held
the order gate meanwhile). The keeper then replaces the stop — the trail moved, or a resize — for the quantity it still
believes held. A cancel-replace sets the new order's quantity as given (the simulator, tastytrade), and a margin account
takes the part beyond the position as a short sale: a sell stop for more than is held, which can open a short.

Each test drives that interleaving deterministically: a simulated broker on a manual clock, the bot's order updates held
back (the stream is late) and delivered when the test says so. The invariant is checked after every step.

The sample that reported it, though, was the chaos week's own: it read the broker's open orders and then its positions,
each call syncing the simulator to its own "now" — a bar closing in between filled the stop after the orders were read,
so the stop still looked working next to the position it had just sold (206 shares of stop, the 0.85 share a whole-share
stop leaves). The last test pins the one-instant snapshot the week samples now."""
import asyncio
from types import SimpleNamespace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np, pandas as pd
import pytest

from swingtrader.clock import SimClock
from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.models import OrderRequest, OrderType, Side, Signal, SignalAction
from swingtrader.protective import StopCall, StopExceedsPosition
from swingtrader.session import sim_bot
from swingtrader.sim.broker import SimBroker
from swingtrader.sim.data import make_universe
from swingtrader.stops import PROTECTIVE, is_protective_key

UTC = timezone.utc
OPEN = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)          # Monday 9:30 New York
S = Settings(_env_file=None, warmup_bars=30, broker_stop_min_move=5, broker_stops=True)
DROP = 20                                                  # the minute the market gaps below the stop, on thin volume


def market(n=390, thin=True):
    "AAA at 100 on heavy volume; from minute DROP at 90 — on 200 shares a bar when `thin` (a triggered stop fills 20 a bar)."
    c, v = np.full(n, 100.0), np.full(n, 1e6)
    c[DROP:] = 90.0
    if thin: v[DROP:] = 200.0
    idx = pd.date_range(OPEN, periods=n, freq="1min", name="start")
    return pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": v}, index=idx)


def universe():
    u = make_universe(1, 42)
    u.index = pd.Index(["AAA"], name=u.index.name)
    u["price"], u["fractionable"], u["shortable"] = 100.0, False, True     # a margin account: a sell beyond the position is a short
    return u


def held(sim, sym="AAA") -> Decimal:
    return sum((p.qty for p in sim.positions() if p.symbol == sym), Decimal(0))


def stops(sim, sym="AAA"):
    return [o for o in sim.orders("open") if o.symbol == sym and o.side is Side.SELL and o.type is OrderType.STOP]


def check(sim, when:str):
    "The invariant for real money: the working sell stops never exceed the position, and nothing is ever short."
    q, s = held(sim), sum((o.remaining_qty for o in stops(sim)), Decimal(0))
    assert q >= 0, f"{when}: short {q} AAA"
    assert s <= q, f"{when}: working sell stops for {s} AAA while {q} is held: {[(o.id, o.qty, o.remaining_qty) for o in stops(sim)]}"


class Harness:
    "A bot on a SimBroker with a manual clock; its order updates wait in the stream's queue until `deliver`."
    def __init__(self, thin=True):
        self.clock = SimClock(OPEN, mode="manual")
        self.sim = SimBroker({"AAA": market(thin=thin)}, universe(), self.clock, fill_at="quote")
        self.bot = sim_bot(S, self.sim, Ledger(":memory:", clock=self.clock), universe=["AAA"])
        self.tr = self.bot.trader

    async def start(self):
        self.bot._order_gate = asyncio.Lock()
        await self.bot.order_updates.start()          # the stream's queue fills; nothing consumes it but `deliver`
        self.tr.set_account(self.sim.account(), self.sim.positions())

    async def settle(self):
        for _ in range(20): await asyncio.sleep(0)     # the listener's call_soon_threadsafe puts land in the queue

    async def deliver(self) -> int:
        "The late updates arrive: every one queued so far, in order, through the bot."
        await self.settle()
        q, n = self.bot.order_updates.queue, 0
        while not q.empty(): self.bot.on_update(q.get_nowait()); n += 1
        return n

    def at(self, minute:int, seconds:int=0): self.sim.advance_to(OPEN + timedelta(minutes=minute, seconds=seconds))

    def decide(self, action:SignalAction, price:float=100.0):
        t = self.clock.now()
        self.tr.last["AAA"], self.tr.last_time = price, t
        return self.tr.decide(Signal("AAA", action, t, price, 1.0))

    async def send(self, it):
        async with self.bot._order_gate: return await self.bot.submit(it)

    async def enter(self):
        (it,) = self.decide(SignalAction.ENTER_LONG)
        return await self.send(it)


async def protected_position(h:Harness):
    "A whole-share position bought at the open with its protective stop working at the broker, every update delivered."
    await h.start()
    h.at(1); assert await h.enter() is not None
    h.at(2); await h.deliver()
    assert held(h.sim) > 0 and h.tr.held("AAA") == held(h.sim)
    assert await h.bot.sync_stops() == 1
    await h.deliver()
    (a,) = stops(h.sim)
    assert a.qty == held(h.sim) and is_protective_key(a.client_key)
    check(h.sim, "placed")
    return a


def test_move_while_the_stops_own_partial_fill_is_on_its_way():
    """The stop triggers and fills in part; before that fill's update arrives, the trail moves and the keeper replaces the
    stop. Before the fix the replacement was for the whole old quantity (50) while the broker held 30: a stop for more
    than held, which at once sold the position short."""
    async def go():
        h = Harness()
        a = await protected_position(h)
        q0 = a.qty
        h.at(DROP + 1)                                             # the gap: the stop triggers, 20 shares a bar fill ...
        assert Decimal(0) < held(h.sim) < q0 and stops(h.sim)[0].filled_qty > 0
        assert h.tr.held("AAA") == q0                              # ... and the bot has not heard of it yet
        h.tr.stops.stops["AAA"].stop += 0.5                        # the code-side trail moved: a replace is due
        h.at(DROP + 1, 30)
        await h.bot.sync_stops()
        check(h.sim, "after the replace decided on a stale position")
        rows = [o for o in h.bot.ledger.orders() if o.signal_id == PROTECTIVE and o.status == "rejected"]
        assert rows and "the broker holds" in rows[-1].error       # refused before it was sent
        assert h.tr.protection.behind["AAA"] == held(h.sim)        # the next stop is sized from the broker's position
        await h.bot.sync_stops()                                   # the next sync: the broker's orders first, then what is sellable
        check(h.sim, "after the next sync")
        for m in range(DROP + 2, DROP + 6):                        # the stop keeps filling; the updates arrive late, then all
            h.at(m); await h.bot.sync_stops(); check(h.sim, f"minute {m}")
        await h.deliver(); await h.bot.sync_stops(); await h.deliver()
        check(h.sim, "after every update arrived")
        assert h.tr.held("AAA") == held(h.sim) == 0 and stops(h.sim) == [] and h.tr.protection.behind == {}
        assert h.bot.ledger.check() == [] and all(p.qty >= 0 for p in h.bot.ledger.positions())
    asyncio.run(go())


def test_resize_while_the_stops_own_partial_fill_is_on_its_way():
    """The same lag, met by a resize: the bot hears of a fill of its stop from the order snapshot before it has applied
    the fill to the position (here: the record says 10 working, the position view still says 50). A resize to the stale
    position must not be sent."""
    async def go():
        h = Harness()
        a = await protected_position(h)
        h.at(DROP + 2)                                             # 40 of 50 sold by the stop, not yet heard of
        left = held(h.sim)
        assert left == a.qty - 40 and h.tr.held("AAA") == a.qty
        ps = h.tr.protective["AAA"]
        ps.qty = stops(h.sim)[0].remaining_qty                     # the record follows the broker's remaining quantity
        await h.bot.sync_stops()                                   # held (stale) 50 != 10 working: a resize to 50 is due
        check(h.sim, "after the resize decided on a stale position")
        await h.bot.sync_stops(); check(h.sim, "after the next sync")
        await h.deliver(); await h.bot.sync_stops(); await h.deliver()
        check(h.sim, "after every update arrived")
        assert h.tr.held("AAA") == held(h.sim) and sum((o.remaining_qty for o in stops(h.sim)), Decimal(0)) == held(h.sim)
    asyncio.run(go())


def test_exit_decided_before_the_stops_fill_arrived():
    """The chaos week's short (tastytrade, Monday 14:53 New York): the protective stop filled at the broker; the code-side
    exit was decided on the next bar from the position the bot still believed (the fill's update not in yet) and waited for
    the order gate; the fill arrived meanwhile and removed the stop's record, so the exit found no stop to release and went
    out — a sell of the whole position with nothing held: short. The exit is dropped instead (never sent)."""
    async def go():
        h = Harness(thin=False)
        a = await protected_position(h)
        h.at(DROP + 1)                                             # the gap: the broker stop fills at once ...
        assert held(h.sim) == 0 and h.tr.held("AAA") == a.qty      # ... the bot has not heard of it yet
        (it,) = h.decide(SignalAction.EXIT_LONG, 90.0)             # the code-side stop says exit: all it believes held
        assert it.request.qty == a.qty
        await h.deliver()                                          # the stop's fill arrives while the exit waits
        assert h.tr.held("AAA") == 0 and "AAA" not in h.tr.protective
        assert await h.send(it) is None                            # not sent: nothing is held
        h.at(DROP + 3)
        check(h.sim, "after the exit")
        assert h.sim.order_by_client_key(it.client_key) is None
        assert h.bot.ledger.order(it.client_key).status == "rejected" and it.client_key not in h.tr.pending
        assert h.tr.held("AAA") == held(h.sim) == 0 and h.bot.ledger.check() == []
    asyncio.run(go())


def test_a_second_stop_next_to_one_the_bot_lost_track_of():
    """A protective stop works at the broker but the bot's record of it is gone (a place whose answer was lost, a record
    cleared by a stale update): the keeper's next place would be a second stop for the same shares — when one fills, the
    other is a stop for more than held. It is not sent; the broker's orders are read and the working stop adopted."""
    async def go():
        h = Harness()
        a = await protected_position(h)
        h.tr.protective.pop("AAA")                                 # the record is lost; the broker's stop still works
        await h.bot.sync_stops()
        check(h.sim, "after the keeper's place")
        assert [o.id for o in stops(h.sim)] == [a.id]
        assert h.tr.stops_uncertain
        await h.bot.sync_stops()                                   # compare with the broker's orders: adopt the working one
        assert h.tr.protective["AAA"].order_id == a.id and [o.id for o in stops(h.sim)] == [a.id]
        assert await h.bot.sync_stops() == 0
    asyncio.run(go())


def test_a_place_for_more_than_held_is_never_sent():
    "The guard itself, on any broker: a place or replace for more than the position is refused before the broker call."
    clock = SimClock(OPEN, mode="manual")
    sim = SimBroker({"AAA": market()}, universe(), clock, fill_at="quote")
    sim.advance_to(OPEN + timedelta(minutes=1))
    sim.submit(OrderRequest("AAA", Side.BUY, qty=Decimal(5)))
    sim.advance_to(OPEN + timedelta(minutes=2))
    assert held(sim) == 5
    req = lambda q, k: OrderRequest("AAA", Side.SELL, qty=Decimal(q), type=OrderType.STOP, tif="gtc", stop_price=Decimal("95"), client_key=k)
    with pytest.raises(StopExceedsPosition, match="holds 5") as e: StopCall("place", "AAA", req(6, "ps-k1")).send(sim)
    assert e.value.held == 5 and e.value.reason == "exceeds_position"
    assert sim.order_by_client_key("ps-k1") is None and stops(sim) == []
    o = StopCall("place", "AAA", req(5, "ps-k2")).send(sim)
    with pytest.raises(StopExceedsPosition): StopCall("replace", "AAA", req(6, "ps-k3"), o.id).send(sim)
    assert [x.id for x in stops(sim)] == [o.id] and sim.order_by_client_key("ps-k3") is None


class TickingClock(SimClock):
    "A manual clock that, once `ticking`, moves `step` seconds each time it is read: every broker call sees a later instant (at 2000x, a few ms)."
    def __init__(self, start, step=2.0):
        super().__init__(start, mode="manual"); self.step, self.ticking = step, False
    def now(self):
        t = super().now()
        if self.ticking: self._t = t + timedelta(seconds=self.step)
        return t


def test_the_chaos_sample_reads_orders_and_positions_at_one_instant():
    """The chaos week's sampler read `orders("open")`, then `positions()`: two syncs. Just before the bar close that fills a
    protective stop, the two reads straddle it — a stop for 50 working next to 0 held, in a week where no such stop ever
    worked. `Chaos.snapshot` syncs once and reads both."""
    from test_chaos_week import Chaos
    def protected(clock):
        "50 AAA bought at the open, a GTC sell stop at 95 for all of it (the market gaps to 90 at minute DROP)."
        b = SimBroker({"AAA": market(thin=False)}, universe(), clock, fill_at="quote")
        clock.set(OPEN + timedelta(minutes=1)); b.sync(); b.submit(OrderRequest("AAA", Side.BUY, qty=Decimal(50)))
        clock.set(OPEN + timedelta(minutes=2)); b.sync()
        st = b.submit(OrderRequest("AAA", Side.SELL, qty=Decimal(50), type=OrderType.STOP, tif="gtc", stop_price=Decimal("95")))
        return b, st
    probe, st = protected(SimClock(OPEN, mode="manual"))        # the bar close that fills the stop
    fill_at = next(t for t in (OPEN + timedelta(minutes=m, seconds=x) for m in range(DROP, DROP + 5) for x in range(0, 60, 5))
                   if (probe.advance_to(t), probe.order(st.id).status.is_terminal)[1])
    def straddling():
        "That broker, 1.5 s before the fill, read through a clock that moves 2 s per read."
        c = TickingClock(OPEN)
        b, _ = protected(c)
        c.set(fill_at - timedelta(seconds=1.5)); c.ticking = True
        return b
    def two_reads(b): return b.orders("open"), {p.symbol: p.qty for p in b.positions()}       # the sampler before
    def oversized(open_, pos):
        return [(o.symbol, o.remaining_qty, pos.get(o.symbol, Decimal(0))) for o in open_
                if o.side is Side.SELL and o.type is OrderType.STOP and o.remaining_qty > pos.get(o.symbol, Decimal(0))]
    assert oversized(*two_reads(straddling())) == [("AAA", Decimal(50), Decimal(0))]      # the reported violation, reproduced
    b = straddling()
    assert oversized(*Chaos.snapshot(SimpleNamespace(env=SimpleNamespace(sim=b)))) == []   # one instant: consistent
    assert b.orders("open") == [] and held(b) == 0                                         # the stop sold the position
