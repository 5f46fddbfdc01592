"""A halt that liquidates (SWINGTRADER_LIQUIDATE_ON_HALT): a liquidation that ends short leaves no share without a broker stop.

The kill switch's trip cancels every open order (the protective stops too) and sends a market sell per position. The stop
keeper used to place nothing at all while such a halt lasted (a stop next to the liquidation would be a second sell for the
same shares). When the liquidation filled in part and its remainder was then cancelled (by the broker, a person at the
broker's site, the close) or rejected, the rest of the position stayed without a broker stop until a person resumed trading.

Now the keeper holds back only while the trip runs and while a liquidation sell works (or is unresolved) for the symbol;
once it has ended short, the rest gets its broker stop at once and the remainder is reported (log, audit
`liquidation_remainder`) with the command that sells it. Same rig as tests/test_partial_exit_stop.py: a simulated broker on
a manual clock, thin volume (a market order fills 20 shares a bar), the bot's real update consumer, one keeper cycle at a time;
through the simulator and through the emulator with the real tastytrade and Alpaca clients."""
import asyncio

import pytest

from test_partial_exit_stop import THIN, check, held, protected_exactly, run, sells, stops


def trip_liquidating(r, why="day P&L -210.39 is a 0.21% loss (limit 0.15%)"):
    r.bot.kill_switch.liquidate = True
    return r.bot.kill_switch.trip("daily_loss", why)


def liquidation(r, sym):
    "The ledger row of the trip's liquidation order for `sym` (a sell the trader did not decide: no signal)."
    (row,) = [o for o in r.ledger.orders(symbol=sym) if o.side.value == "sell" and o.signal_id is None]
    return row


async def liquidating_halt(r):
    "AAA and BBB protected (50 each); at minute THIN + 1 a liquidating trip: 20 of each sold at once, the rest working."
    assert await r.protected("AAA") == 50 and await r.protected("BBB") == 50
    r.at(THIN + 1)
    rep = await asyncio.to_thread(trip_liquidating, r)
    assert rep.cancelled == 2 and len(rep.liquidation_orders) == 2 and rep.errors == ()
    await r.settled("the liquidations' first fills", lambda: r.tr.held("AAA") == 30 and r.tr.held("BBB") == 30)
    assert stops(r.sim, "AAA") == stops(r.sim, "BBB") == []
    assert [o.remaining_qty for o in sells(r.sim, "AAA")] == [30]
    await r.keeper_cycle()                                            # the liquidations work: no stop may go out
    assert stops(r.sim, "AAA") == stops(r.sim, "BBB") == []
    check(r.sim, "the liquidation works")


@pytest.mark.parametrize("kind", ["sim", "tastytrade", "alpaca"])
def test_liquidation_filled_in_part_then_cancelled_gets_a_stop_on_the_rest(kind, tmp_path):
    "The broker cancels AAA's liquidation after 20 of 50: the next keeper cycle puts a stop on the 30; BBB's still works (no stop)."
    async def scenario(r):
        await liquidating_halt(r)
        o = liquidation(r, "AAA")
        r.bot._stop_wake.clear()
        await asyncio.to_thread(r.broker.cancel, o.broker_order_id)
        await r.settled("the liquidation's cancel", lambda: r.row(o.client_key).status == "cancelled")
        assert r.bot._stop_wake.is_set()                              # the update woke the keeper ...
        await r.keeper_cycle()                                        # ... and its one cycle protects the rest
        assert protected_exactly(r, "AAA") == 30
        assert stops(r.sim, "BBB") == [] and [x.remaining_qty for x in sells(r.sim, "BBB")] == [30]
        check(r.sim, "after the keeper cycle")
        assert r.ledger.halt_state().state == "halted"
        recs = [x for x in r.audit.read("health", r.clock.now().date()) if x["details"]["what"] == "liquidation_remainder"]
        assert [(x["symbol"], x["details"]["held"]) for x in recs] == [("AAA", "30")], recs
        assert "swingtrader flatten" in recs[0]["details"]["message"] and recs[0]["details"]["level"] == "critical"
        await r.keeper_cycle()                                        # reported once
        assert len([x for x in r.audit.read("health", r.clock.now().date()) if x["details"]["what"] == "liquidation_remainder"]) == 1
        # BBB's liquidation completes over the next bars: nothing is left to protect, no stop is placed
        for m in (2, 3): r.at(THIN + m)
        await r.settled("BBB's liquidation", lambda: r.tr.held("BBB") == 0 and r.row(liquidation(r, "BBB").client_key).status == "filled")
        await r.keeper_cycle()
        assert held(r.sim, "BBB") == 0 and stops(r.sim, "BBB") == [] and protected_exactly(r, "AAA") == 30
        check(r.sim, "after BBB's liquidation")
    run(kind, tmp_path, scenario)


def test_liquidation_rejected_gets_a_stop_on_everything(tmp_path):
    "The broker refuses the liquidation outright (nothing sold): the whole position gets its stop back."
    async def scenario(r):
        assert await r.protected("AAA") == 50
        r.at(THIN + 1)
        real = r.sim.submit
        def refuse(req):
            if req.side.value == "sell" and req.type.value == "market":
                from swingtrader.broker import OrderRejected
                raise OrderRejected("the symbol is halted at the exchange.", "try again later.")
            return real(req)
        r.sim.submit = refuse
        try: rep = await asyncio.to_thread(trip_liquidating, r)
        finally: r.sim.submit = real
        assert rep.liquidation_orders == () and "halted at the exchange" in rep.errors[0]
        await r.settled("the trip's cancel", lambda: r.tr.protective["AAA"].order_id is None or r.tr.stops_uncertain)
        await r.keeper_cycle()
        assert protected_exactly(r, "AAA") == 50
        check(r.sim, "after the keeper cycle")
    run("sim", tmp_path, scenario)


def test_no_stop_while_the_trip_has_not_run(tmp_path):
    "A halt asked for (`swingtrader halt`) but not yet obeyed by the bot: its trip will liquidate, so the keeper waits."
    async def scenario(r):
        assert await r.protected("AAA") == 50
        r.bot.kill_switch.liquidate = True
        from swingtrader.risk import halt
        halt(r.ledger, "news", who="tester")
        await asyncio.to_thread(r.broker.cancel, r.tr.protective["AAA"].order_id)     # the stop is gone meanwhile
        await r.settled("the stop's cancel", lambda: r.tr.protective["AAA"].order_id is None)
        await r.keeper_cycle()
        assert stops(r.sim, "AAA") == []                          # the trip's market sell comes next: no second sell
        await r.bot.obey_commands()                               # the trip: cancel all, liquidate 50 (heavy volume: all filled)
        await r.settled("the liquidation", lambda: r.tr.held("AAA") == 0)
        await r.keeper_cycle()
        assert held(r.sim, "AAA") == 0 and r.sim.orders("open") == []
    run("sim", tmp_path, scenario, volume=1e6)


def test_a_restarted_keeper_protects_what_an_earlier_trip_left(tmp_path):
    "The bot restarts while still halted: the trip that liquidated is in the ledger, so the new keeper protects the rest at once."
    from swingtrader.protective import ProtectiveStops
    async def scenario(r):
        await liquidating_halt(r)
        for sym in ("AAA", "BBB"): await asyncio.to_thread(r.broker.cancel, liquidation(r, sym).broker_order_id)
        await r.settled("the liquidations' cancels", lambda: all(r.row(liquidation(r, s).client_key).status == "cancelled" for s in ("AAA", "BBB")))
        r.tr.protection = ProtectiveStops(r.tr)                       # what a restarted bot starts with: no records, unsure
        r.tr.protection.uncertain = True
        await r.keeper_cycle()
        assert protected_exactly(r, "AAA") == 30 and protected_exactly(r, "BBB") == 30
        check(r.sim, "after the restarted keeper's cycle")
    run("sim", tmp_path, scenario)
