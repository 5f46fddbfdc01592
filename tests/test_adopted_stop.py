"""A position the bot adopts (held at the broker, unknown to the ledger) gets a trailing stop and a broker stop.

Bought by hand in the broker's app, or left by a crash before the ledger wrote: the reconciler adopts it into the ledger
(an adopted order and fill), and a fill of an unknown order that arrives on the update stream is adopted the same way. Such
a position had no trailing stop (no entry signal, so no ATR), and so no broker stop: nothing protected it while the bot was
down, and nothing exited it while it ran. Now the stop keeper opens a trail for it from the ATR of recent bars (the same rule
as the bot's own entries: last close − k × ATR, k = SWINGTRADER_ATR_STOP_MULT), places the broker stop, and says so (log,
audit `adopt_protected`). With SWINGTRADER_BROKER_STOPS off nothing new happens.

Same rig as tests/test_partial_exit_stop.py (a simulated broker on a manual clock, the bot's real update consumer), over a
market that moves 1.00 within each bar (ATR 1: the stop goes at 100 − 2 × 1 = 98)."""
import asyncio
from datetime import timedelta
from decimal import Decimal

import numpy as np, pandas as pd
import pytest

import test_partial_exit_stop as pes
from test_partial_exit_stop import OPEN, Rig, held, protected_exactly, check, stops
from swingtrader.models import OrderRequest, Side


def ranged(n=390, history=True):
    "Closes at 100, each minute's bar from 99.50 to 100.50 (5-minute ATR 1.00), heavy volume; with the previous session's bars."
    days = [OPEN - timedelta(days=3), OPEN] if history else [OPEN]         # Friday, then Monday
    idx = pd.DatetimeIndex(np.concatenate([pd.date_range(d, periods=n, freq="1min").values for d in days]), tz=None)
    idx = pd.DatetimeIndex(idx.tz_localize("UTC"), name="start")
    c = np.full(len(idx), 100.0)
    return pd.DataFrame({"open": c, "high": c + 0.5, "low": c - 0.5, "close": c, "volume": np.full(len(idx), 1e6)}, index=idx)


@pytest.fixture
def ranged_market(monkeypatch):
    monkeypatch.setattr(pes, "market", lambda n=390, volume=None: ranged(n))


@pytest.fixture
def fresh_market(monkeypatch):
    "No bar before this morning's open."
    monkeypatch.setattr(pes, "market", lambda n=390, volume=None: ranged(n, history=False))


def by_hand(r, sym="AAA", qty=40):
    "A person buys in the broker's app: the order never passes through the bot."
    if r.clock.now() < OPEN + timedelta(minutes=1): r.at(1)   # the first bar has traded: a market order fills at once
    o = r.sim.submit(OrderRequest(sym, Side.BUY, qty=Decimal(qty), client_key=f"by-hand-{sym}"))
    assert held(r.sim, sym) == qty, o
    return o


def audit(r, what):
    return [x for x in r.audit.read("health", r.clock.now().date()) if x["details"]["what"] == what]


def start_with(kind, tmp_path, before, scenario):
    "A rig whose broker already holds what `before(r)` bought (the bot not yet running), then `scenario(r)` on the started bot."
    r = Rig(kind, tmp_path)
    async def go():
        before(r)
        await r.start()
        try: await scenario(r)
        finally: await r.stop()
    try: asyncio.run(asyncio.wait_for(go(), 240))
    finally: r.close()


@pytest.mark.parametrize("kind", ["sim", "tastytrade", "alpaca"])
def test_a_position_adopted_at_startup_gets_a_broker_stop(kind, tmp_path, ranged_market):
    "Bought by hand while the bot was down: the start-up reconcile adopts it, the keeper puts a stop at last close − 2 × ATR on it."
    async def scenario(r):
        if kind != "sim":   # the emulated brokers' update streams bring the hand buy's fill at the start: the ledger adopts its order
            await r.settled("the hand buy's fill", lambda: r.ledger.order("by-hand-AAA") is not None)
        rep = r.bot.reconcile(grace=0.0)                                   # what `startup` runs first
        assert rep.adopted_positions == (("AAA",) if kind == "sim" else ()) and r.ledger.position("AAA").qty == 40
        await r.bot.refresh_account()
        await r.bot.sync_stops(reconcile=True)                             # what `startup` runs next
        assert protected_exactly(r, "AAA") == 40
        (st,) = stops(r.sim, "AAA")
        assert st.stop_price == Decimal("98.00"), st
        ts = r.tr.stops.stops["AAA"]
        assert (ts.entry, ts.stop) == (100.0, 98.0)
        assert r.ledger.stops()["AAA"]["stop"] == 98.0                    # the trail survives a restart
        (rec,) = audit(r, "adopt_protected")
        assert rec["symbol"] == "AAA" and Decimal(rec["details"]["stop"]) == Decimal("98") and rec["details"]["qty"] == "40", rec
        assert "adopted" in rec["details"]["message"] and rec["details"]["level"] == "warning"
        await r.bot.sync_stops()
        assert len(audit(r, "adopt_protected")) == 1 and len(stops(r.sim, "AAA")) == 1
        check(r.sim, "adopted")
    start_with(kind, tmp_path, by_hand, scenario)


def test_a_fill_of_an_unknown_order_is_adopted_and_protected(tmp_path, ranged_market):
    "Bought by hand while the bot runs: the fill arrives on the update stream (the ledger adopts the order), the keeper protects it."
    async def scenario(r):
        by_hand(r, "BBB", 25)
        await r.settled("the hand buy's fill", lambda: r.tr.held("BBB") == 25)
        assert r.ledger.order("by-hand-BBB").adopted
        await r.keeper_cycle()
        assert protected_exactly(r, "BBB") == 25 and stops(r.sim, "BBB")[0].stop_price == Decimal("98.00")
        assert [x["symbol"] for x in audit(r, "adopt_protected")] == ["BBB"]
    start_with("sim", tmp_path, lambda r: None, scenario)


def test_a_position_adopted_by_the_periodic_reconcile_wakes_the_keeper(tmp_path, ranged_market):
    """The running bot's periodic reconcile adopts a position it never saw (its fill never reached the bot: the updates wait
    in the stream's queue and are never delivered here): it refreshes the trader's view and wakes the keeper, which protects it."""
    r = Rig("sim", tmp_path)
    async def go():
        await r.start(consumer=False)
        try:
            by_hand(r, "BBB", 25)
            r.bot._stop_wake.clear()
            rep = await r.bot.reconcile_async(grace=0.0)
            assert rep.adopted_positions == ("BBB",) and r.tr.held("BBB") == 25 and r.bot._stop_wake.is_set()
            await r.keeper_cycle()
            assert protected_exactly(r, "BBB") == 25
            assert [x["symbol"] for x in audit(r, "adopt_protected")] == ["BBB"]
        finally: await r.stop()
    try: asyncio.run(asyncio.wait_for(go(), 240))
    finally: r.close()


def test_a_position_adopted_when_no_bars_are_known_is_reported_then_protected(tmp_path, fresh_market):
    "No bar of the symbol yet (the first minute of the data): reported once as unprotected; protected once bars exist."
    r = Rig("sim", tmp_path)
    async def go():
        by_hand(r)
        await r.start()
        try:
            assert r.bot.reconcile(grace=0.0).adopted_positions == ("AAA",)
            await r.bot.refresh_account()
            await r.bot.sync_stops(reconcile=True)
            assert stops(r.sim, "AAA") == [] and "AAA" not in r.tr.stops.stops
            (rec,) = audit(r, "adopt_unprotected")
            assert rec["symbol"] == "AAA" and rec["details"]["level"] == "critical", rec
            await r.bot.sync_stops()
            assert len(audit(r, "adopt_unprotected")) == 1                 # reported once, not on every cycle
            r.at(30)                                                       # bars exist now (and the retry's wait is over)
            await r.bot.sync_stops()
            assert protected_exactly(r, "AAA") == 40
        finally: await r.stop()
    try: asyncio.run(asyncio.wait_for(go(), 240))
    finally: r.close()


def test_broker_stops_off_adopts_without_a_stop(tmp_path, ranged_market):
    "SWINGTRADER_BROKER_STOPS=false: the position is adopted, and nothing new happens (no trail, no stop, no record)."
    async def scenario(r):
        assert not r.tr.broker_stops
        assert r.bot.reconcile(grace=0.0).adopted_positions == ("AAA",)
        await r.bot.refresh_account()
        assert await r.bot.sync_stops(reconcile=True) == 0
        assert stops(r.sim, "AAA") == [] and "AAA" not in r.tr.stops.stops and audit(r, "adopt_protected") == []
    def off(r):
        r.tr.broker_stops = False
        by_hand(r)
    start_with("sim", tmp_path, off, scenario)


def test_an_adopted_fraction_is_reported(tmp_path, ranged_market):
    "Half a share adopted: no stop order can cover it and no trail is opened for it; it is reported once (sell it by hand)."
    r = Rig("sim", tmp_path, fractionable=True)
    async def go():
        by_hand(r, qty=Decimal("0.5"))
        await r.start()
        try:
            assert r.bot.reconcile(grace=0.0).adopted_positions == ("AAA",)
            await r.bot.refresh_account()
            await r.bot.sync_stops(reconcile=True); await r.bot.sync_stops()
            assert stops(r.sim, "AAA") == [] and "AAA" not in r.tr.stops.stops and audit(r, "adopt_protected") == []
            (rec,) = audit(r, "protective_stop_fraction")
            assert rec["symbol"] == "AAA" and rec["details"]["trail"] is False and "sell it by hand" in rec["details"]["message"]
        finally: await r.stop()
    try: asyncio.run(asyncio.wait_for(go(), 240))
    finally: r.close()
