"""An exit filled in part, then cancelled (or replaced): the rest of the position gets its broker stop back at once.

Found by the simulated week (tests/test_bot_e2e.py, tastytrade, Friday 20:15 UTC): the bot released BNK's protective
stop and sent a market exit for 312 shares; the thin market filled 99, and then the day's loss tripped the kill switch,
whose `cancel_all` cancelled the exit's remainder and every other protective stop (FALM's). The stop keeper placed
nothing while the trader was halted, so 213 BNK (and FALM until its own exit) had no broker stop until a person resumed
trading after the close — the end-of-week check saw it whenever the bot shut down before the tester's resume.

A halt stops entries, not protection ("Exits continue (stops and exit signals still trade)"): the keeper now keeps a
stop for every held position while halted, and compares with the broker's open orders first after a new halt (the
trip cancelled the stops behind its back).

Each test drives the interleaving deterministically: a simulated broker on a manual clock (time moves only when the
test says so), thin volume so a market exit fills 20 shares a bar, the bot's real order-update consumer applying the
updates, and then ONE keeper cycle (`Bot.sync_stops`, what the stop keeper runs when an update wakes it). Through the
simulator, and through the emulator with the real tastytrade and Alpaca clients and their update streams."""
import asyncio, time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np, pandas as pd
import pytest

from swingtrader.audit import AuditLog
from swingtrader.clock import MarketCalendar, SimClock
from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.models import Bar, OrderRequest, OrderType, Side, Signal, SignalAction
from swingtrader.registry import broker_parts, sim_parts
from swingtrader.session import build_bot
from swingtrader.sim.broker import SimBroker
from swingtrader.sim.data import make_universe
from swingtrader.stops import is_protective_key

from emu_support import make_emulator, serve

UTC = timezone.utc
OPEN = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)          # Monday 9:30 New York
THIN = 10                                                  # from this minute on: 200 shares a bar (a market order fills 20 a bar)
SYMS = ("AAA", "BBB")
S = Settings(_env_file=None, warmup_bars=30, broker_stop_min_move=5, broker_stops=True, max_losing_streak=1000)


def market(n=390, volume=200.0):
    "A flat 100 on heavy volume; from minute THIN on `volume` shares a bar."
    c, v = np.full(n, 100.0), np.full(n, 1e6)
    v[THIN:] = volume
    idx = pd.date_range(OPEN, periods=n, freq="1min", name="start")
    return pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": v}, index=idx)


def universe(fractionable=False):
    u = make_universe(len(SYMS), 42)
    u.index = pd.Index(list(SYMS), name=u.index.name)
    u["price"], u["fractionable"], u["shortable"] = 100.0, fractionable, True   # a margin account: an oversell is a short
    return u


class Rig:
    "A bot on `kind` (sim | tastytrade | alpaca) over one simulator on a manual clock; its update consumer runs, its keeper does not."
    def __init__(self, kind:str, tmp_path, volume=200.0, fractionable=False):
        self.kind, self.stack = kind, ExitStack()
        self.clock = SimClock(OPEN, mode="manual")
        self.sim = SimBroker({s: market(volume=volume) for s in SYMS}, universe(fractionable), self.clock, fill_at="quote")
        self.cal = MarketCalendar()
        s = S.model_copy(update={"data_dir": tmp_path})
        if kind == "sim": parts = sim_parts(s, self.clock, self.cal, broker=self.sim)
        else:
            srv = self.stack.enter_context(serve(emu=make_emulator(self.sim)))
            if kind == "tastytrade":
                s = Settings(**{**s.model_dump(), "broker": "tastytrade", "tt_client_secret": "s", "tt_refresh_token": "r",
                                "tt_api_url": srv.api_url, "tt_streamer_url": srv.streamer_url})
                parts = broker_parts(s, self.clock, self.cal, ca_file=srv.ca_file)
            else:
                from swingtrader.emulator.alpaca_data import alpaca_keys
                key, secret = alpaca_keys(srv.emu)
                s = Settings(**{**s.model_dump(), "broker": "alpaca", "environment": "paper", "alpaca_api_key": key,
                                "alpaca_secret_key": secret, "alpaca_base_url": srv.api_url, "alpaca_data_url": srv.api_url})
                parts = broker_parts(s, self.clock, self.cal, poll_interval=0.2)
        self.broker = parts.broker
        self.ledger = Ledger(tmp_path / "ledger.sqlite", clock=self.clock)
        self.audit = AuditLog(tmp_path / "audit", self.clock, fsync=False)
        self.bot = build_bot(s, self.clock, self.ledger, self.audit, parts, calendar=self.cal, scan=False, universe=list(SYMS),
                             queued_audit=False)
        self.tr = self.bot.trader

    def close(self):
        if self.kind != "sim": self.broker.close()
        self.stack.close(); self.audit.close(); self.ledger.close()

    # -- driving
    async def start(self, consumer:bool=True): # False: updates wait in the stream's queue until `deliver`
        b = self.bot
        b._order_gate, b._stop_wake, self.consumer = asyncio.Lock(), asyncio.Event(), consumer
        before = asyncio.all_tasks()
        await b.order_updates.start()
        self.stream_tasks = asyncio.all_tasks() - before             # the update source's own tasks (stream, poller)
        if consumer: b._tasks.append(asyncio.create_task(b._consume_updates(), name="order_updates"))   # the bot's own consumer
        self.at(1)
        await b.refresh_account()

    async def stop(self):
        for t in self.bot._tasks: t.cancel()
        for t in self.bot._tasks:
            try: await t
            except (asyncio.CancelledError, Exception): pass
        closing = asyncio.ensure_future(self.bot.order_updates.close())
        while not closing.done():      # Python 3.11's wait_for can swallow a cancel (the Alpaca poller's): cancel until it ends
            for t in self.stream_tasks: t.cancel()
            await asyncio.wait([closing], timeout=0.5)
        closing.result()

    async def deliver(self, n:int|None=None) -> list:
        "Without the consumer: the next `n` queued updates (all: None) reach the bot, in order."
        for _ in range(20): await asyncio.sleep(0)         # the listener's call_soon_threadsafe puts land in the queue
        q, done = self.bot.order_updates.queue, []
        while not q.empty() and (n is None or len(done) < n):
            u = q.get_nowait(); self.bot.on_update(u); done.append(u)
        return done

    def at(self, minute:int, seconds:int=0): self.sim.advance_to(OPEN + timedelta(minutes=minute, seconds=seconds))

    def row(self, key:str): return self.ledger.order(key)

    async def settled(self, what:str, pred, timeout:float=60.0):
        "Wait (a generous bound, never a fixed sleep) until the bot has applied the updates `pred` needs."
        end = time.monotonic() + timeout
        while not pred():
            if not self.consumer: await self.deliver()
            if time.monotonic() > end: raise AssertionError(f"{self.kind}: {what} never arrived")
            await asyncio.sleep(0.02)

    def decide(self, sym:str, action:SignalAction, qty:Decimal|None=None, **req):
        t = self.clock.now()
        self.tr.last[sym], self.tr.last_time = 100.0, t
        sig = Signal(sym, action, t, 100.0, 1.0)
        if qty is None: (it,) = self.tr.decide(sig)
        else:                                                         # a person's order (a qty of their own, a limit ...)
            side = Side.BUY if action is SignalAction.ENTER_LONG else Side.SELL
            (it,) = self.tr.decide_order(sig, OrderRequest(sym, side, qty=qty, client_key=f"p{sig.id[:30]}", **req))
        return it

    async def send(self, it):
        async with self.bot._order_gate: return await self.bot.submit(it)

    async def keeper_cycle(self) -> int:
        "One stop-keeper cycle, as the keeper runs it when an order update woke it."
        return await self.bot.sync_stops()

    async def protected(self, sym:str, qty:Decimal|None=None):
        "A position in `sym` bought at minute 1 (heavy volume: filled at once) with its protective stop working at the broker."
        it = self.decide(sym, SignalAction.ENTER_LONG, qty)
        assert await self.send(it) is not None
        await self.settled(f"{sym}'s entry fill", lambda: self.tr.held(sym) > 0 and self.row(it.client_key).status == "filled")
        await self.keeper_cycle()
        await self.settled(f"{sym}'s stop", lambda: self.tr.protective.get(sym) is not None and self.tr.protective[sym].order_id)
        assert len(stops(self.sim, sym)) == (1 if self.tr.held(sym) >= 1 else 0)
        return self.tr.held(sym)


def held(sim, sym) -> Decimal: return sum((p.qty for p in sim.positions() if p.symbol == sym), Decimal(0))
def stops(sim, sym): return [o for o in sim.orders("open") if o.symbol == sym and o.side is Side.SELL and o.type is OrderType.STOP]
def sells(sim, sym): return [o for o in sim.orders("open") if o.symbol == sym and o.side is Side.SELL]


def check(sim, when:str):
    "Real money: the working sells never exceed the position, nothing is short."
    for sym in SYMS:
        q, s = held(sim, sym), sum((o.remaining_qty for o in sells(sim, sym)), Decimal(0))
        assert q >= 0, f"{when}: short {q} {sym}"
        assert s <= q, f"{when}: sells for {s} {sym} working while {q} is held"


def protected_exactly(r:Rig, sym:str) -> Decimal:
    "The broker holds whole shares of `sym` and exactly one protective stop for all of them works there."
    q = held(r.sim, sym)
    (st,) = stops(r.sim, sym)
    assert st.remaining_qty == q == r.tr.held(sym) and is_protective_key(st.client_key), (r.kind, st, q)
    return q


def run(kind, tmp_path, scenario, consumer=True, **kw):
    r = Rig(kind, tmp_path, **kw)
    async def go():
        await r.start(consumer)
        try: await scenario(r)
        finally: await r.stop()
    try: asyncio.run(asyncio.wait_for(go(), 240))
    finally: r.close()


async def partial_exit(r:Rig, sym:str="AAA"):
    "A protected position; at minute THIN + 1 a market exit (the stop released first) fills 20 shares at once; the rest works."
    q0 = await r.protected(sym)
    r.at(THIN + 1)
    it = r.decide(sym, SignalAction.EXIT_LONG)
    assert it.request.qty == q0
    o = await r.send(it)
    assert o is not None
    await r.settled("the exit's partial fill", lambda: Decimal(0) < r.tr.held(sym) < q0)
    assert stops(r.sim, sym) == [] and r.tr.exit_pending(sym)           # the stop was released for the exit
    assert r.tr.held(sym) == held(r.sim, sym) == q0 - 20
    check(r.sim, "the exit works")
    return it, o


KINDS = ["sim", "tastytrade", "alpaca"]


@pytest.mark.parametrize("kind", KINDS)
def test_exit_filled_in_part_then_cancelled_by_the_broker(kind, tmp_path):
    "The broker cancels the exit's remainder (an outage, a person at the broker's site): one keeper cycle puts a stop on the rest."
    async def scenario(r):
        it, o = await partial_exit(r)
        await asyncio.to_thread(r.broker.cancel, o.id)
        await r.settled("the exit's cancel", lambda: r.row(it.client_key).status == "cancelled" and not r.tr.exit_pending("AAA"))
        assert r.bot._stop_wake.is_set()                                  # the update woke the keeper ...
        await r.keeper_cycle()                                            # ... and its one cycle protects the rest
        assert protected_exactly(r, "AAA") == 30
        check(r.sim, "after the keeper cycle")
    run(kind, tmp_path, scenario)


@pytest.mark.parametrize("kind", KINDS)
def test_exit_filled_in_part_then_cancelled_by_a_kill_switch_trip(kind, tmp_path):
    """The week's case: the loss trips the kill switch while the exit works; its cancel_all takes the exit's remainder and
    the other position's stop. Halted, the keeper still protects both: the rest of AAA and all of BBB."""
    async def scenario(r):
        await r.protected("BBB")
        it, o = await partial_exit(r)
        rep = await asyncio.to_thread(r.bot.kill_switch.trip, "daily_loss", "day P&L -210.39 is a 0.21% loss (limit 0.15%)")
        assert rep.cancelled == 2 and r.ledger.halt_state().state == "halted"
        await r.settled("the trip's cancels", lambda: r.row(it.client_key).status == "cancelled" and not r.tr.exit_pending("AAA")
                        and r.tr.protective["BBB"].order_id is None)
        assert stops(r.sim, "AAA") == stops(r.sim, "BBB") == []
        assert r.bot._stop_wake.is_set()
        await r.keeper_cycle()
        assert protected_exactly(r, "AAA") == 30 and protected_exactly(r, "BBB") == 50
        check(r.sim, "after the keeper cycle")
        assert r.ledger.halt_state().state == "halted"                    # protected, and still halted: no entry goes
        assert r.tr.decide(Signal("AAA", SignalAction.ENTER_LONG, r.clock.now(), 100.0, 1.0)) == []
    run(kind, tmp_path, scenario)


@pytest.mark.parametrize("kind", ["sim", "alpaca"])
def test_a_remainder_under_one_share_is_reported_and_still_exits(kind, tmp_path):
    """10.5 shares (a fractionable stock), a stop on the 10 whole ones; the exit sells 10 and its last 0.5 is cancelled.
    No broker stop can cover half a share (stop orders are for whole shares): none is sent, and the fraction is not
    forgotten — reported once (log, audit `protective_stop_fraction`), and the code-side trail, still open, exits it."""
    async def scenario(r):
        assert await r.protected("AAA", Decimal("10.5")) == Decimal("10.5")
        assert stops(r.sim, "AAA")[0].qty == 10
        r.at(THIN + 1)
        it = r.decide("AAA", SignalAction.EXIT_LONG)
        assert it.request.qty == Decimal("10.5")
        o = await r.send(it)
        await r.settled("the exit's partial fill", lambda: r.tr.held("AAA") == Decimal("0.5"))
        await asyncio.to_thread(r.broker.cancel, o.id)
        await r.settled("the exit's cancel", lambda: r.row(it.client_key).status == "cancelled" and not r.tr.exit_pending("AAA"))
        await r.keeper_cycle()
        assert held(r.sim, "AAA") == Decimal("0.5") and stops(r.sim, "AAA") == []      # nothing the broker could take
        assert r.tr.protection.fractions == {"AAA": Decimal("0.5")}
        await r.keeper_cycle()                                                        # reported once, not on every cycle
        recs = [x for x in r.audit.read("health", r.clock.now().date()) if x["details"]["what"] == "protective_stop_fraction"]
        assert len(recs) == 1 and recs[0]["symbol"] == "AAA" and Decimal(recs[0]["details"]["held"]) == Decimal("0.5"), recs
        assert recs[0]["details"]["level"] == "warning" and recs[0]["details"]["trail"] is True
        # the code-side trail still covers it: a close below it decides an exit of the half share, which sells it
        ts = r.tr.stops.stops["AAA"]
        r.at(THIN + 5)
        c = ts.stop - 1.0
        (ex,) = r.tr.on_bar(Bar("AAA", r.clock.now() - timedelta(minutes=5), c, c, c, c, 100.0, "5m"))
        assert ex.request.qty == Decimal("0.5")
        assert await r.send(ex) is not None
        await r.settled("the half share's sale", lambda: r.tr.held("AAA") == 0)
        assert held(r.sim, "AAA") == 0
        await r.keeper_cycle()
        assert r.tr.protection.fractions == {} and r.sim.orders("open") == []
    run(kind, tmp_path, scenario, volume=100.0, fractionable=True)      # 10 shares a bar


def test_exit_filled_in_part_then_replaced_then_cancelled(tmp_path):
    """A person's limit exit fills 20 of 50, then is replaced by a higher limit for the other 30. While the
    replacement works no stop may go out (two sells for the same 30 shares); the keeper happened to run between the
    old order's `replaced` update and the replacement's own first update — the ledger did not know the replacement yet,
    so its place was refused at the broker (a working sell) and backed off. When the replacement is cancelled in turn,
    the next keeper cycle puts a stop on the 30 at once (the refusal made the records uncertain: the cycle compared with
    the broker's orders first, which ends the back-off)."""
    async def scenario(r):
        q0 = await r.protected("AAA")
        assert q0 == 50 and len(stops(r.sim, "AAA")) == 1
        r.at(THIN + 1)
        it = r.decide("AAA", SignalAction.EXIT_LONG, q0, type=OrderType.LIMIT, limit_price=Decimal("99"))
        o = await r.send(it)
        await r.deliver()
        assert r.tr.held("AAA") == held(r.sim, "AAA") == 30 and stops(r.sim, "AAA") == []
        new = r.broker.replace(o.id, limit_price=Decimal("100.5"), client_key="chase-step-1")   # a person asks more for the rest
        assert new.remaining_qty == 30 and new.is_open
        (u,) = await r.deliver(1)                                        # the old order's `replaced` update only
        assert u.order.id == o.id and not r.tr.exit_pending("AAA")
        assert await r.keeper_cycle() == 1                               # the replacement is not in the ledger yet ...
        assert r.tr.protective["AAA"].fails == 1 and r.tr.stops_uncertain
        check(r.sim, "a keeper cycle while the replacement works")
        assert stops(r.sim, "AAA") == []                                 # ... the broker's working sell kept the stop back
        await r.deliver()
        await r.keeper_cycle(); await r.deliver()
        assert stops(r.sim, "AAA") == []                                 # the replacement is known: still no stop
        check(r.sim, "the replacement works")
        r.broker.cancel(new.id)                                          # the chase ends: its order is cancelled
        await r.deliver()
        assert r.row("chase-step-1").status == "cancelled"
        await r.keeper_cycle(); await r.deliver()
        assert protected_exactly(r, "AAA") == 30
        check(r.sim, "after the keeper cycle")
    run("sim", tmp_path, scenario, consumer=False)


@pytest.mark.parametrize("kind", ["tastytrade", "alpaca"])
def test_exit_filled_in_part_then_replaced_through_the_adapters(kind, tmp_path):
    "The same through the real clients and their update streams (the updates in the order the stream brings them)."
    async def scenario(r):
        assert await r.protected("AAA") == 50
        r.at(THIN + 1)
        it = r.decide("AAA", SignalAction.EXIT_LONG, Decimal(50), type=OrderType.LIMIT, limit_price=Decimal("99"))
        o = await r.send(it)
        await r.settled("the exit's partial fill", lambda: r.tr.held("AAA") == 30)
        new = await asyncio.to_thread(r.broker.replace, o.id, limit_price=Decimal("100.5"), client_key="chase-step-1")
        await r.settled("the replace", lambda: r.row(it.client_key).status == "cancelled" and not r.tr.exit_pending("AAA")
                        and r.row("chase-step-1") is not None and r.row("chase-step-1").status in ("accepted", "new", "working"))
        await r.keeper_cycle()
        check(r.sim, "a keeper cycle while the replacement works")
        assert stops(r.sim, "AAA") == [] and [x.remaining_qty for x in sells(r.sim, "AAA")] == [30]
        await asyncio.to_thread(r.broker.cancel, new.id)
        await r.settled("the replacement's cancel", lambda: r.row("chase-step-1").status == "cancelled")
        await r.keeper_cycle()
        assert protected_exactly(r, "AAA") == 30
        check(r.sim, "after the keeper cycle")
    run(kind, tmp_path, scenario)
