"""Three gaps of the protective-stop keeper, each closed (real money: no share unprotected longer than needed, never a stop
for more than is held, never a second sell for the same shares).

1. A sell of PART of a position (an agent's resting offer, a person's limit exit) used to keep the keeper off the whole
   symbol while it worked: all the shares were without a broker stop. Now the stop covers what is held minus what the
   working sells still sell, and grows back when such a sell is cancelled.
2. A halt that liquidates on its trip makes the keeper wait while the trip runs. A halted state that no trip carries out
   (set by another process, or a trip that died half-way) kept it waiting for ever. Now the wait is bounded
   (`SWINGTRADER_BROKER_STOP_HALT_WAIT` real seconds): then the stops go back and the keeper says why (log, audit).
3. A protective stop that filled at the broker before an exit was sent drops the exit (the executor); the bot then kept
   counting the position as held until the stop's fill update came. Now it re-reads the broker after a dropped exit (as
   the agent runner does), and once more when the late fill arrives (the snapshot counted it already).

Same rigs as tests/test_agent_stops.py (an agent runner on a simulated broker, manual clock) and
tests/test_partial_exit_stop.py (a bot on a simulated broker, manual clock, one keeper cycle at a time)."""
import asyncio
from decimal import Decimal

import pytest

import test_partial_exit_stop as pes
from test_agent_stops import Rig as AgentRig, market as agent_market
from test_partial_exit_stop import check, held, protected_exactly, run, sells, stops
from swingtrader.agent import AgentAction
from swingtrader.models import OrderStatus, OrderType, Side, Signal, SignalAction
from swingtrader.stops import is_protective_key


# -- 1. a sell of part of a position ----------------------------------------------------------------------------------

def test_an_agent_offer_for_half_leaves_the_other_half_under_a_stop(tmp_path):
    "The agent offers 5 of its 10 (resting): a stop covers the other 5 while it works, and all 10 again once it is cancelled."
    bars = agent_market()
    bars["high"] = bars["close"]                                # no trade above the close: the offer at the ask rests
    r = AgentRig(tmp_path, bars=bars)
    r.step(1, AgentAction("market", 1.0))
    offer = r.step(2, AgentAction("limit_passive", -0.5))
    assert offer.result == "placed" and r.broker.order(offer.order_id).is_open and r.held() == 10
    (stop,) = r.stops()
    assert (stop.qty, stop.side, stop.tif.value) == (5, Side.SELL, "gtc") and is_protective_key(stop.client_key)
    work = sum((o.remaining_qty for o in r.broker.orders("open") if o.side is Side.SELL), Decimal(0))
    assert work == r.held() == 10                               # the offer and the stop sell every share once, never more
    assert r.step(3, AgentAction("market", 0.25)).result == "refused"   # the offer works (a CANCEL would cancel it)
    assert [s.qty for s in r.stops()] == [5]                    # steady while the offer works
    assert r.step(4, AgentAction("cancel")).result == "cancelled"
    (stop,) = r.stops()                                         # the batch's sync grew it back to the whole position
    assert stop.qty == r.held() == 10 and r.traded(Side.SELL) == 0


@pytest.mark.parametrize("kind", pes.KINDS)
def test_a_persons_limit_exit_of_part_leaves_the_rest_under_a_stop(kind, tmp_path):
    """A resting limit sell of 20 of 50 through the bot: the stop covers 30 while it works, and 50 again once it is cancelled.
    Through the simulator, and the emulator with the real tastytrade and Alpaca clients (two sells side by side, no refusal)."""
    async def scenario(r):
        assert await r.protected("AAA") == 50
        it = r.decide("AAA", SignalAction.EXIT_LONG, Decimal(20), type=OrderType.LIMIT, limit_price=Decimal("101"))
        o = await r.send(it)
        assert o is not None and o.is_open
        await r.settled("the offer's acceptance", lambda: r.row(it.client_key).status in ("new", "accepted"))
        assert stops(r.sim, "AAA") == []                                  # released for the sell
        await r.keeper_cycle()
        (st,) = stops(r.sim, "AAA")
        assert st.remaining_qty == 30 and r.tr.protective["AAA"].key == st.client_key
        check(r.sim, "the offer works under a stop for the rest")
        assert await r.keeper_cycle() == 0                                # nothing more to do
        await asyncio.to_thread(r.broker.cancel, o.id)
        await r.settled("the offer's cancel", lambda: r.row(it.client_key).status == "cancelled" and not r.tr.exit_pending("AAA"))
        await r.keeper_cycle()
        assert protected_exactly(r, "AAA") == 50
        check(r.sim, "after the cancel")
        assert [x.client_key for x in r.ledger.orders() if x.status == "rejected"] == []   # the broker refused nothing
    run(kind, tmp_path, scenario)


def test_a_limit_exit_filling_bar_by_bar_keeps_the_rest_covered(tmp_path):
    "A marketable limit sell of 40 of 50 fills 20 a bar: the stop covers the 10 it leaves throughout; nothing is sold twice."
    async def scenario(r):
        assert await r.protected("AAA") == 50
        r.at(pes.THIN + 1)
        it = r.decide("AAA", SignalAction.EXIT_LONG, Decimal(40), type=OrderType.LIMIT, limit_price=Decimal("99"))
        assert await r.send(it) is not None
        await r.settled("the first 20", lambda: r.tr.held("AAA") == 30)
        await r.keeper_cycle()
        (st,) = stops(r.sim, "AAA")
        assert st.remaining_qty == 10 and [x.remaining_qty for x in sells(r.sim, "AAA") if x.id != st.id] == [20]
        check(r.sim, "half the limit filled")
        r.at(pes.THIN + 2)
        await r.settled("the other 20", lambda: r.tr.held("AAA") == 10 and r.row(it.client_key).status == "filled")
        await r.keeper_cycle()
        assert protected_exactly(r, "AAA") == 10 and stops(r.sim, "AAA")[0].id == st.id   # the same stop: nothing to change
        check(r.sim, "the limit filled")
    run("sim", tmp_path, scenario)


# -- 2. a halt that no trip carries out ---------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["agent", "kill_switch:daily_loss"])
def test_a_halt_no_trip_carries_out_ends_the_keepers_wait(who, tmp_path):
    """Liquidate-on-halt is on; the ledger says halted, but no trip follows: set by another process (an agent following
    this ledger, a dashboard) with no command, or a trip that died after writing the state. The keeper waits (the trip's
    market sells may still come), but only `broker_stop_halt_wait` real seconds: then the stop goes back, said once."""
    async def scenario(r):
        assert await r.protected("AAA") == 50
        r.bot.kill_switch.liquidate = True
        r.ledger.set_halt("halted", who, "the day's loss")
        t = [1000.0]
        r.tr.protection.monotonic = lambda: t[0]                      # real seconds, made to pass by the test
        await asyncio.to_thread(r.broker.cancel, r.tr.protective["AAA"].order_id)   # the stop is gone (a cancel_all)
        await r.settled("the stop's cancel", lambda: r.tr.protective["AAA"].order_id is None)
        await r.keeper_cycle()
        assert stops(r.sim, "AAA") == []                              # a trip's liquidation may still come: wait
        wait = getattr(r.tr.settings, "broker_stop_halt_wait", 120.0)
        t[0] += wait - 1
        await r.keeper_cycle()
        assert stops(r.sim, "AAA") == []
        t[0] += 2
        await r.keeper_cycle()
        assert protected_exactly(r, "AAA") == 50                      # no trip within the wait: protected again
        check(r.sim, "after the wait")
        assert r.ledger.halt_state().state == "halted"                 # still halted: entries stay blocked
        said = lambda: [x for x in r.audit.read("health", r.clock.now().date()) if x["details"]["what"] == "halt_not_carried_out"]
        (rec,) = said()
        assert rec["details"]["level"] == "critical" and "SWINGTRADER_BROKER_STOP_HALT_WAIT" in rec["details"]["message"]
        assert rec["details"]["who"] == who
        await r.keeper_cycle()
        assert len(said()) == 1                                       # said once per halt
    run("sim", tmp_path, scenario)


def test_the_running_keeper_wakes_by_itself_when_the_wait_ends(tmp_path):
    """The bot's stop keeper task sleeps until an update wakes it; waiting on a trip, it also wakes when the wait ends (here
    5 real seconds), with no update or bar to wake it: the stop is back about then, not at the next event."""
    async def scenario(r):
        assert await r.protected("AAA") == 50
        r.tr.settings = r.tr.settings.model_copy(update={"broker_stop_halt_wait": 5.0})
        r.bot.kill_switch.liquidate = True
        keeper = asyncio.create_task(r.bot._stop_keeper())
        r.bot._tasks.append(keeper)
        r.ledger.set_halt("halted", "agent", "followed another ledger")
        await asyncio.to_thread(r.broker.cancel, r.tr.protective["AAA"].order_id)   # its update wakes the keeper: the wait starts
        await r.settled("the keeper's first look at the halt", lambda: r.tr.protection._halt_wait is not None)
        await r.settled("the stop back after the wait", lambda: len(stops(r.sim, "AAA")) == 1, timeout=120)
        assert protected_exactly(r, "AAA") == 50
        check(r.sim, "after the wait")
    run("sim", tmp_path, scenario)


def test_a_trip_after_the_wait_is_still_waited_for(tmp_path):
    "The keeper gave up waiting, then the bot obeys the halt after all: its trip (a new halt) is waited for again, and it sells once."
    async def scenario(r):
        assert await r.protected("AAA") == 50
        r.bot.kill_switch.liquidate = True
        from swingtrader.risk import halt
        halt(r.ledger, "news", who="tester")                          # the command waits for the bot's command loop
        t = [0.0]
        r.tr.protection.monotonic = lambda: t[0]
        await r.keeper_cycle()
        t[0] += getattr(r.tr.settings, "broker_stop_halt_wait", 120.0) + 1
        await r.keeper_cycle()
        assert protected_exactly(r, "AAA") == 50                      # the stop stays: no trip came within the wait
        await r.bot.obey_commands()                                   # the trip: cancel all, liquidate 50 (heavy volume: all filled)
        await r.settled("the liquidation", lambda: r.tr.held("AAA") == 0)
        await r.keeper_cycle()
        assert held(r.sim, "AAA") == 0 and r.sim.orders("open") == []
        assert sum((o.filled_qty for o in r.sim.orders() if o.side is Side.SELL), Decimal(0)) == 50
    run("sim", tmp_path, scenario, volume=1e6)


# -- 3. a dropped exit: the broker's position at once ------------------------------------------------------------------

@pytest.fixture
def dip(monkeypatch):
    "The rig's market dips to 90 within the bar at minute 5 (the close stays 100): a protective stop fills there."
    flat = pes.market
    def market(n=390, volume=200.0):
        m = flat(n, volume)
        m.loc[m.index[5], "low"] = 90.0
        return m
    monkeypatch.setattr(pes, "market", market)


def test_a_dropped_exit_rereads_the_broker(dip, tmp_path):
    """The stop fills at the broker (its update is late); the exit decided meanwhile is dropped (nothing sold twice). The bot
    re-reads the broker at once: the trader no longer counts the 50 as held, so a second exit is not even decided. When
    the late fill arrives the snapshot had counted it already: the bot re-reads once more, and a new position is whole."""
    async def scenario(r):
        assert await r.protected("AAA") == 50
        stop = r.tr.protective["AAA"].order_id
        r.at(6)                                                           # the dip: the stop fills; its update waits in the stream
        assert r.sim.order(stop).status is OrderStatus.FILLED and held(r.sim, "AAA") == 0
        it = r.decide("AAA", SignalAction.EXIT_LONG)
        assert it.request.qty == 50                                       # decided on the late view
        assert await r.send(it) is None and r.row(it.client_key).status == "rejected"   # dropped: the stop sold them
        assert r.tr.held("AAA") == 0                                      # the broker's view at once
        r.at(7)                                                           # a bar later, the fill still on its way
        r.tr.last["AAA"], r.tr.last_time = 100.0, r.clock.now()
        assert r.tr.decide(Signal("AAA", SignalAction.EXIT_LONG, r.clock.now(), 100.0, 1.0)) == []   # no second sell (a short)
        check(r.sim, "after the dropped exit")
        await r.deliver()                                                 # the stop's fill arrives at last
        assert r.tr.held("AAA") == 0 and r.row(r.tr.ledger.order_by_broker_id(stop).client_key).status == "filled"
        await r.keeper_cycle()                                            # the keeper, woken by the fill
        assert stops(r.sim, "AAA") == []
        r.at(8)                                                           # a new position: held and protected whole
        q = await r.protected("AAA")
        assert q > 0 and r.tr.held("AAA") == held(r.sim, "AAA") == q
        assert protected_exactly(r, "AAA") == q
        check(r.sim, "a new position")
    run("sim", tmp_path, scenario, consumer=False, volume=1e6)
