"""The trader's held count against an account snapshot that already counts a fill whose update is still on its way.

`BrokerView.held(symbol)` = min(the ledger's fill-tracked quantity, the broker's count) where the broker's count is the
last snapshot (`set_account(account, positions)`) plus the fills applied since. A snapshot read while a SELL's fill
update is on its way already counts the sale; when the update arrives the sale was subtracted again, and `held()` read
too low until the next snapshot: protective stops sized too small (shares unprotected at the broker), exits selling too
few. Every `set_account` with positions can hit it (the bot's refresh, reconcile, the chat engine, the agent runner).

The trader cannot tell such a fill from a sale the snapshot does not count: "the ledger holds 10, the broker 6, a sell
of 4 was working, its fill of 4 arrives" is what it sees both after an own sale in flight (the broker holds 6) and after
an outside sale of 4 followed by its own sale of 4 (the broker holds 2: `test_the_twin_an_outside_sale_then_an_own_sale`).
Reading 6 there sells 4 short. So the count stays on the safe side (it may read low, never high) and the trader marks
the symbol to be read again (`Trader.recount`); the bot's stop keeper reads the broker before it sizes a stop, so the
stop and the exits after it are for what the broker holds.

The other way round, an update applied while a snapshot is being read (the bot's refresh awaits the broker while its
update consumer runs) left the count high: the ledger already counts the sale, the snapshot may not. With an outside
sale too, the trader counted 6 held of 2 (`test_a_sale_applied_while_the_snapshot_is_read_after_an_outside_sale`). The
refresh now marks its read (`snapshot_mark`, `set_account(since=)`): such fills are taken low, and read again.

Same rig as tests/test_partial_exit_stop.py: a bot on a simulated broker with a manual clock (through the emulator with
the real tastytrade and Alpaca clients where marked), its order updates held back in the stream's queue until the test
delivers them, one stop-keeper cycle at a time."""
import asyncio, uuid
from decimal import Decimal

import pytest

import test_partial_exit_stop as pes
from test_partial_exit_stop import KINDS, THIN, check, held, protected_exactly, run, stops
from swingtrader.models import OrderRequest, OrderType, Side, Signal, SignalAction

RISE, DIP = 3, THIN + 1          # a trade at 102 within the bar at minute RISE; at DIP the low touches 80 (a stop triggers)


@pytest.fixture(autouse=True)
def shaped(monkeypatch):
    "The rig's flat market, with a trade at 102 in the bar at minute RISE (a resting limit sell at 101 fills) and a dip at DIP."
    flat = pes.market
    def market(n=390, volume=200.0):
        m = flat(n, volume)
        m.loc[m.index[RISE], "high"] = 102.0
        m.loc[m.index[DIP], "low"] = 80.0
        return m
    monkeypatch.setattr(pes, "market", market)


def recount(r) -> set:
    return getattr(r.tr, "recount", set())


def taken(q) -> list:
    "Every item of asyncio queue `q`, taken out in order (public API only: `get_nowait`)."
    items = []
    while True:
        try: items.append(q.get_nowait())
        except asyncio.QueueEmpty: return items


def peek(q) -> list:
    "The items waiting in `q`, left there in the same order (nothing else runs in between: one event loop)."
    items = taken(q)
    for x in items: q.put_nowait(x)
    return items


async def queued(r, pred, what:str):
    "Wait (generous bound, never a fixed sleep) until an update `pred` accepts sits in the stream's queue; nothing is delivered."
    for _ in range(3000):
        for _ in range(20): await asyncio.sleep(0)
        if any(pred(u) for u in peek(r.bot.order_updates.queue)): return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{r.kind}: {what} never reached the stream")


def person(r, action, qty, sym="AAA", **req):
    "A person's order (its own client key: the rig's is the same for every order of one process's signals)."
    t = r.clock.now()
    r.tr.last[sym], r.tr.last_time = 100.0, t
    side = Side.BUY if action is SignalAction.ENTER_LONG else Side.SELL
    (it,) = r.tr.decide_order(Signal(sym, action, t, 100.0, 1.0), OrderRequest(sym, side, qty=Decimal(qty), client_key=uuid.uuid4().hex, **req))
    return it


def filled(key):
    return lambda u: u.fill is not None and u.order.client_key == key and u.order.status.value == "filled"


async def send_sell(r, qty, sym="AAA"):
    "A person's limit sell of `qty` at 101 (the protective stop is released first): it rests until the trade at 102."
    it = person(r, SignalAction.EXIT_LONG, qty, sym, type=OrderType.LIMIT, limit_price=Decimal(101))
    assert await r.send(it) is not None
    assert r.sim.order_by_client_key(it.client_key).is_open
    return it


async def sell(r, qty, sym="AAA"):
    "`send_sell`, then the trade at 102 fills it at the broker; its updates wait in the stream."
    it = await send_sell(r, qty, sym)
    r.at(RISE + 2)
    await queued(r, filled(it.client_key), "the sell's fill")
    return it


def safe(r, when, sym="AAA"):
    "Never more than the broker holds (a sell of it would go short); the working sells never exceed the position."
    assert r.tr.held(sym) <= held(r.sim, sym), f"{r.kind} {when}: the trader counts {r.tr.held(sym)} held, the broker holds {held(r.sim, sym)}"
    check(r.sim, when)


async def exit_all(r, sym="AAA"):
    "The strategy's exit sells what is held, and nothing more."
    q = held(r.sim, sym)
    it = r.decide(sym, SignalAction.EXIT_LONG)
    assert it.request.qty == q, (r.kind, it.request.qty, q)
    assert await r.send(it) is not None
    await r.settled("the exit's fill", lambda: it.client_key not in r.tr.pending)
    await r.keeper_cycle()
    assert held(r.sim, sym) == r.tr.held(sym) == 0 and stops(r.sim, sym) == []
    check(r.sim, "after the exit")


@pytest.mark.parametrize("kind", KINDS)
def test_a_snapshot_that_counts_a_sale_whose_update_is_on_its_way(kind, tmp_path):
    """Hold 10, sell 4: the broker fills it, the bot reads the account before the fill's update arrives, then the update
    arrives. Before the fix the sale was subtracted twice (held 2 of 6): the keeper put a stop on 2 of the 6 shares."""
    async def scenario(r):
        assert await r.protected("AAA", Decimal(10)) == 10
        await sell(r, 4)
        await r.bot.refresh_account()                              # the snapshot counts the sale; the ledger does not yet
        assert held(r.sim, "AAA") == 6 and r.tr.held("AAA") == 6
        safe(r, "the snapshot")
        await r.deliver()                                          # the late update
        safe(r, "the update")
        assert r.tr.held("AAA") == 6 or "AAA" in recount(r)        # low only while marked to be read again
        await r.keeper_cycle()                                     # what the fill's update wakes
        assert protected_exactly(r, "AAA") == 6                    # the stop covers the 6 held
        assert recount(r) == set()
        await exit_all(r)                                          # and the exit sells the 6
    run(kind, tmp_path, scenario, consumer=False, volume=1e6)


def test_a_snapshot_before_the_sale(tmp_path):
    "The other order: the snapshot is read before the sale fills; its update then moves both counts, exact at once."
    async def scenario(r):
        assert await r.protected("AAA", Decimal(10)) == 10
        await r.bot.refresh_account()
        await sell(r, 4)                                           # (until its update arrives, no count can know of it)
        check(r.sim, "the sale")
        await r.deliver()
        assert r.tr.held("AAA") == held(r.sim, "AAA") == 6 and recount(r) == set()
        await r.keeper_cycle()
        assert protected_exactly(r, "AAA") == 6
        await exit_all(r)
    run("sim", tmp_path, scenario, consumer=False, volume=1e6)


def test_a_snapshot_that_counts_a_buy_whose_update_is_on_its_way(tmp_path):
    "A buy of 5 more in flight at the snapshot: never counted held before its update, exact after it (the ledger caps it)."
    async def scenario(r):
        assert await r.protected("AAA", Decimal(10)) == 10
        it = person(r, SignalAction.ENTER_LONG, 5)
        assert await r.send(it) is not None
        await queued(r, filled(it.client_key), "the buy's fill")
        await r.bot.refresh_account()
        assert held(r.sim, "AAA") == 15 and r.tr.held("AAA") == 10
        safe(r, "the snapshot")
        await r.deliver()
        assert r.tr.held("AAA") == 15
        await r.keeper_cycle()
        assert protected_exactly(r, "AAA") == 15
        await exit_all(r)
    run("sim", tmp_path, scenario, consumer=False, volume=1e6)


def test_a_partial_fill_on_its_way_at_the_snapshot(tmp_path):
    """A sell of 30 of 50 on thin volume fills 20 at once; the snapshot counts those 20, the next bar fills the other 10,
    then both updates arrive: never above the broker's count, and the stop covers the 20 left after one keeper cycle."""
    async def scenario(r):
        assert await r.protected("AAA", Decimal(50)) == 50
        r.at(THIN + 1)
        it = person(r, SignalAction.EXIT_LONG, 30)
        assert await r.send(it) is not None
        await queued(r, lambda u: u.fill is not None and u.order.client_key == it.client_key, "the first part's fill")
        assert held(r.sim, "AAA") == 30
        await r.bot.refresh_account()
        safe(r, "the snapshot")
        r.at(THIN + 2)                                             # the other 10
        await queued(r, filled(it.client_key), "the last part's fill")
        assert held(r.sim, "AAA") == 20
        check(r.sim, "the second part")                           # (its update not in yet: no count knows of it)
        await r.deliver()
        safe(r, "both updates")
        await r.keeper_cycle()
        assert protected_exactly(r, "AAA") == 20 and recount(r) == set()
    run("sim", tmp_path, scenario, consumer=False)


def test_a_protective_stops_fill_on_its_way_at_the_snapshot(tmp_path):
    """The protective stop itself sells: the dip triggers it on a thin market, 20 of 50 fill a bar; the snapshot counts
    the first 20, the updates arrive after the next bar's 20: the next stop is for the 10 left, the count never above."""
    async def scenario(r):
        assert await r.protected("AAA", Decimal(50)) == 50
        stop = r.tr.protective["AAA"].order_id
        r.at(DIP + 1)
        await queued(r, lambda u: u.fill is not None and u.order.id == stop, "the stop's first fill")
        assert held(r.sim, "AAA") == 30
        await r.bot.refresh_account()
        safe(r, "the snapshot")
        r.at(DIP + 2)
        assert held(r.sim, "AAA") == 10
        check(r.sim, "the next bar")                              # (its update not in yet: no count knows of it)
        await r.deliver()
        safe(r, "the updates")
        await r.keeper_cycle()
        assert r.tr.held("AAA") == held(r.sim, "AAA") and recount(r) == set()
        check(r.sim, "after the keeper")
    run("sim", tmp_path, scenario, consumer=False)


async def outside_sale(r, qty, sym="AAA"):
    "Someone sells `qty` at the broker; the bot never hears of it (its updates are lost)."
    out = r.sim.submit(OrderRequest(sym, Side.SELL, qty=Decimal(qty), client_key="outside-sale"))
    await queued(r, lambda u: u.order.client_key == out.client_key and u.fill is not None, "the outside sale's fill")
    q = r.bot.order_updates.queue
    for u in taken(q):
        if u.order.client_key != out.client_key: q.put_nowait(u)


def test_an_outside_sale_still_caps_held(tmp_path):
    "A sale at the broker the ledger never hears of: the snapshot caps held, and the exit sells what is left."
    async def scenario(r):
        assert await r.protected("AAA", Decimal(10)) == 10
        await send_sell(r, 1)                                     # the stop released (a sell works: nothing sells twice)
        await outside_sale(r, 3)
        await r.bot.refresh_account()
        assert held(r.sim, "AAA") == 7 and r.tr.held("AAA") == 7 and recount(r) == set()
        safe(r, "the snapshot")
        r.at(RISE + 2)                                            # the own sell of 1 fills: 6
        await r.deliver()
        safe(r, "the update")
        await r.keeper_cycle()
        assert r.tr.held("AAA") == held(r.sim, "AAA") == 6
        await exit_all(r)
    run("sim", tmp_path, scenario, consumer=False, volume=1e6)


def test_the_twin_an_outside_sale_then_an_own_sale(tmp_path):
    """What the trader sees here is what it sees in the first test (the ledger 10, the snapshot 6, an own sell of 4
    working, its fill of 4 arriving), but the broker then holds 2: an outside sale of 4 before the snapshot, the own sale
    after it. A count that took the arriving fill as one the snapshot already counted would read 6 and sell 4 short."""
    async def scenario(r):
        assert await r.protected("AAA", Decimal(10)) == 10
        it = await send_sell(r, 4)
        await outside_sale(r, 4)
        await r.bot.refresh_account()
        assert held(r.sim, "AAA") == 6 and r.tr.held("AAA") == 6
        r.at(RISE + 2)
        await queued(r, filled(it.client_key), "the sale's fill")
        assert held(r.sim, "AAA") == 2
        await r.deliver()
        safe(r, "the update")                                      # 2 at most, never 6
        await r.keeper_cycle()
        assert r.tr.held("AAA") == held(r.sim, "AAA") == 2 and recount(r) == set()
        await exit_all(r)
    run("sim", tmp_path, scenario, consumer=False, volume=1e6)


def test_a_stale_snapshot_after_the_update(tmp_path):
    "A snapshot read before a sale and handed to the trader after its update (a restart, a slow read): held stays the ledger's."
    async def scenario(r):
        assert await r.protected("AAA", Decimal(10)) == 10
        acct, pos = r.broker.account(), r.broker.positions()
        await sell(r, 4)
        await r.deliver()
        r.tr.set_account(acct, pos)
        assert r.tr.held("AAA") == held(r.sim, "AAA") == 6
        await r.keeper_cycle()
        assert protected_exactly(r, "AAA") == 6
    run("sim", tmp_path, scenario, consumer=False, volume=1e6)


def test_a_view_with_an_account_provider_reads_again(tmp_path):
    "The trader alone (an account provider, as the backtest gives it): the next context after the late update reads the broker."
    async def scenario(r):
        assert await r.protected("AAA", Decimal(10)) == 10
        await sell(r, 4)
        r.tr.set_account(r.broker.account(), r.broker.positions())
        await r.deliver()
        safe(r, "the update")
        r.tr.account_provider = lambda: (r.broker.account(), r.broker.positions())
        r.tr.context("AAA", r.clock.now())
        assert r.tr.held("AAA") == 6 and recount(r) == set()
    run("sim", tmp_path, scenario, consumer=False, volume=1e6)


def updates_during_the_read(r, fill_after_read:bool):
    """The bot's refresh awaits the broker's positions (a thread) while its update consumer keeps applying updates: the
    queued updates reach the bot after the positions were read and before the trader takes them (`fill_after_read`: the
    broker fills the working sale just after the read, as a bar closes)."""
    read, call = r.broker.positions, r.bot.call
    def positions():
        p = read()
        if fill_after_read: r.at(RISE + 2)
        return p
    async def during(fn, *a, **kw):
        out = await call(fn, *a, **kw)
        if fn is positions: await r.deliver()
        return out
    r.broker.positions, r.bot.call = positions, during


def test_a_sale_applied_while_the_snapshot_is_read_after_an_outside_sale(tmp_path):
    """Someone sold 4 of 10 at the broker (the bot never hears of it); the bot's own sale of 4 fills just after the
    snapshot's positions were read, and its update is applied before the snapshot reaches the trader. The broker holds 2;
    the snapshot says 6 and so does the ledger. Before the fix the trader counted 6 held: an exit sold 4 short."""
    async def scenario(r):
        assert await r.protected("AAA", Decimal(10)) == 10
        it = await send_sell(r, 4)
        await outside_sale(r, 4)
        updates_during_the_read(r, fill_after_read=True)
        await r.bot.refresh_account()
        assert r.row(it.client_key).status == "filled" and held(r.sim, "AAA") == 2
        safe(r, "the snapshot")                                    # 2 at most, never 6
        await r.keeper_cycle()
        assert r.tr.held("AAA") == held(r.sim, "AAA") == 2 and recount(r) == set()
        await exit_all(r)
    run("sim", tmp_path, scenario, consumer=False, volume=1e6)


def test_a_sale_applied_while_the_snapshot_is_read(tmp_path):
    "The other order: the sale filled before the read (the snapshot counts it), its update applied during it: low, then exact."
    async def scenario(r):
        assert await r.protected("AAA", Decimal(10)) == 10
        it = await sell(r, 4)
        updates_during_the_read(r, fill_after_read=False)
        await r.bot.refresh_account()
        assert r.row(it.client_key).status == "filled" and held(r.sim, "AAA") == 6
        safe(r, "the snapshot")
        await r.keeper_cycle()
        assert protected_exactly(r, "AAA") == 6 and recount(r) == set()
        await exit_all(r)
    run("sim", tmp_path, scenario, consumer=False, volume=1e6)
