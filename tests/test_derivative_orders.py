"""Options and futures orders through OUR client (TastytradeBroker + the wire) against the emulator: single-leg and
2-leg option orders and a futures order placed, filled, listed and cancelled; their fills on the account streamer
through swingtrader.tastytrade.order_updates; dry-run buying-power effect; malformed legs -> one clear error."""
from __future__ import annotations
import asyncio, time
from datetime import timedelta
from decimal import Decimal, ROUND_CEILING, ROUND_FLOOR

import pytest

from swingtrader.config import SwingtraderError
from swingtrader.models import (DerivativeOrder, InvalidOrder, MultiLegRequest, OrderLeg, OrderRequest, OrderStatus,
                                OrderEvent, Side)
from swingtrader.broker import OrderRejected
from swingtrader.tastytrade import wire

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def env(emulator, tt_client):
    class E: pass
    e = E()
    e.srv, e.b, e.dv = emulator, tt_client, emulator.emu.derivatives
    return e


def on_tick(price:Decimal, tick:Decimal, up:bool) -> Decimal:
    "`price` moved onto `tick`: up (we pay more) or down."
    return (price / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR) * tick


def option(env, n_from_atm=0, cp="C", exp=2, und=0):
    dv = env.dv
    u = dv.underlyings()[und]
    chain = [o for o in dv.option_chain(u) if o.call_put == cp and o.expiry == dv.expirations()[exp]]
    chain.sort(key=lambda o: o.strike)
    s = float(dv.spot(u))
    atm = min(range(len(chain)), key=lambda i: abs(float(chain[i].strike) - s))
    return chain[atm + n_from_atm].occ


def mid(env, sym) -> Decimal: return env.dv.mark_price(sym)


def wait_for(pred, timeout=20.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if (v := pred()): return v
        time.sleep(0.05)
    return pred()


# -- single-leg options ------------------------------------------------------------------------------------------

def test_single_option_limit_fills_and_becomes_a_position(env):
    sym = option(env, 1)
    m = mid(env, sym)
    price = on_tick(m, wire.derivative_tick(sym, m), up=True) + wire.derivative_tick(sym, m)
    req = OrderRequest(sym, "buy", qty=2, type="limit", limit_price=price)
    o = env.b.submit(req)
    assert isinstance(o, DerivativeOrder) and o.status is OrderStatus.FILLED, o
    assert (o.symbol, o.qty, o.filled_qty, o.side, o.client_key) == (sym, 2, 2, Side.BUY, req.client_key)
    assert o.avg_fill_price == m and [(l.symbol, l.effect) for l in o.legs] == [(sym, "open")]
    again = env.b.order(o.id)
    assert isinstance(again, DerivativeOrder) and again.status is OrderStatus.FILLED
    assert env.b.submit(req).id == o.id                     # the client key places it at most once
    pos = {p.symbol: p for p in env.b.positions()}
    assert pos[sym].qty == 2 and pos[sym].avg_entry_price == m
    # closing it: the leg becomes Sell to Close from the position
    close = env.b.submit(OrderRequest(sym, "sell", qty=2))
    assert close.status is OrderStatus.FILLED and close.legs[0].effect == "close"
    assert sym not in {p.symbol for p in env.b.positions()}


def test_option_limit_that_does_not_fill_is_listed_and_cancelled(env):
    sym = option(env, 2)
    o = env.b.submit(OrderRequest(sym, "buy", qty=1, type="limit", limit_price="0.05"))
    assert o.status is OrderStatus.ACCEPTED and o.broker_status == "Live" and o.limit_price == Decimal("0.05")
    assert o.id in {x.id for x in env.b.orders(status="open")}
    assert o.id in {x.id for x in env.b.orders(since=env.b.clock.now() - timedelta(days=2))}
    assert env.b.order_by_client_key(o.client_key).id == o.id
    c = env.b.cancel(o.id)
    assert c.status is OrderStatus.CANCELLED and isinstance(c, DerivativeOrder)
    assert env.b.order(o.id).status is OrderStatus.CANCELLED
    assert env.b.cancel(o.id).status is OrderStatus.CANCELLED          # terminal: returned unchanged
    assert o.id not in {x.id for x in env.b.orders(status="open")}
    with pytest.raises(OrderRejected, match="cannot be replaced"):
        env.b.replace(o.id, limit_price=Decimal("0.10"))


# -- a 2-leg spread ------------------------------------------------------------------------------------------------

def test_vertical_spread_fills_and_cancels(env):
    lo, hi = option(env, 0), option(env, 2)
    net = mid(env, lo) - mid(env, hi)
    assert net > 0
    spread = MultiLegRequest([OrderLeg(lo, "buy", 1), OrderLeg(hi, "sell", 1)], limit_price=on_tick(net, Decimal("0.01"), up=True) + Decimal("0.05"),
                             price_effect="debit")
    pv = env.b.dry_run(spread)
    assert pv.ok and pv.buying_power_effect < 0
    assert abs(-pv.buying_power_effect - net * 100) <= Decimal("0.01")          # the spread's debit x 100 shares per contract
    o = env.b.submit(spread)
    assert isinstance(o, DerivativeOrder) and o.status is OrderStatus.FILLED and o.symbol == env.dv.underlyings()[0]
    assert [(l.symbol, l.side, l.effect) for l in o.legs] == [(lo, Side.BUY, "open"), (hi, Side.SELL, "open")]
    assert (o.qty, o.filled_qty, o.side) == (1, 1, Side.BUY) and abs(o.avg_fill_price - net) < Decimal("0.0002")
    pos = {p.symbol: p.qty for p in env.b.positions()}
    assert (pos[lo], pos[hi]) == (1, -1)
    # the same spread for a credit far above its value does not fill; it is live, then cancelled
    credit = MultiLegRequest([OrderLeg(lo, "sell", 1), OrderLeg(hi, "buy", 1)], limit_price=on_tick(net * 3, Decimal("0.01"), up=True), price_effect="credit")
    body = wire.derivative_body(credit, pos)
    assert [x["action"] for x in body["legs"]] == ["Sell to Close", "Buy to Close"] and body["advanced-instructions"]
    w = env.b.submit(credit)
    assert w.status is OrderStatus.ACCEPTED and w.side is Side.SELL and w.price_effect == "credit"
    assert env.b.cancel(w.id).status is OrderStatus.CANCELLED
    assert {p.symbol: p.qty for p in env.b.positions()}[lo] == 1


# -- futures -------------------------------------------------------------------------------------------------------

def test_futures_market_and_limit(env):
    fut = env.dv.futures()[0].symbol
    pv = env.b.dry_run(OrderRequest(fut, "buy", qty=1))
    assert pv.ok and abs(-pv.buying_power_effect - mid(env, fut) * 50) <= Decimal("0.01")
    o = env.b.submit(OrderRequest(fut, "buy", qty=1))
    assert o.status is OrderStatus.FILLED and o.legs[0].instrument_type == "Future"
    assert {p.symbol: p.qty for p in env.b.positions()}[fut] == 1
    low = on_tick(mid(env, fut) * Decimal("0.8"), Decimal("0.25"), up=False)
    w = env.b.submit(OrderRequest(fut, "buy", qty=1, type="limit", limit_price=low))
    assert w.status is OrderStatus.ACCEPTED and w.limit_price == low
    assert env.b.cancel(w.id).status is OrderStatus.CANCELLED
    with pytest.raises(InvalidOrder, match="0.25 tick"):
        env.b.submit(OrderRequest(fut, "buy", qty=1, type="limit", limit_price=low + Decimal("0.1")))


# -- fills through order_updates --------------------------------------------------------------------------------------

def test_option_and_spread_fills_arrive_on_the_order_updates_stream(env):
    from swingtrader.tastytrade.order_updates import TastytradeOrderUpdates
    sym, lo, hi = option(env, 1, "P"), option(env, -1, "P", und=1), option(env, -3, "P", und=1)
    async def main():
        ups = await TastytradeOrderUpdates(env.b, poll_interval=0.5).start()
        assert ups.streaming
        single = await asyncio.to_thread(env.b.submit, OrderRequest(sym, "buy", qty=1))
        spread = await asyncio.to_thread(env.b.submit, MultiLegRequest([OrderLeg(lo, "sell", 2), OrderLeg(hi, "buy", 2)], limit_price="0.01",
                                                                        price_effect="credit"))
        evs, t_end = [], time.monotonic() + 20
        while sum(1 for e in evs if e.fill) < 3 and time.monotonic() < t_end:
            if (e := await ups.next(timeout=0.2)) is not None: evs.append(e)
        await ups.close()
        return single, spread, evs, ups
    single, spread, evs, ups = asyncio.run(main())
    fills = [e.fill for e in evs if e.fill]
    assert sorted((f.order_id, f.symbol, f.side, f.qty) for f in fills) == sorted(
        [(single.id, sym, Side.BUY, 1), (spread.id, lo, Side.SELL, 2), (spread.id, hi, Side.BUY, 2)])
    assert [e.event for e in evs if e.fill and e.fill.order_id == single.id] == [OrderEvent.FILL]
    # a spread is filled when every leg is: the first leg's fill is partial, the last one completes it
    assert [e.event for e in evs if e.fill and e.fill.order_id == spread.id] == [OrderEvent.PARTIAL_FILL, OrderEvent.FILL]
    assert ups.stats["streamer_events"] >= 1
    assert all(isinstance(e.order, DerivativeOrder) for e in evs)


# -- clear errors --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make,words", [
    (lambda s: OrderLeg(s, "buy", 0), "whole number"),
    (lambda s: OrderLeg(s, "hold", 1), "side"),
    (lambda s: OrderLeg("AAPL", "buy", 1), "is an equity"),
    (lambda s: OrderLeg("/ES 5", "buy", 1), "symbol"),
    (lambda s: MultiLegRequest([OrderLeg(s, "buy", 1)] * 2, limit_price=1, price_effect="debit"), "two legs"),
    (lambda s: MultiLegRequest([OrderLeg(s, "buy", 1)], limit_price=1, price_effect="credit"), "only buys"),
    (lambda s: MultiLegRequest([], limit_price=1), "1 to 4 legs"),
    (lambda s: MultiLegRequest([OrderLeg(s, "buy", 1), OrderLeg("/ESH6", "sell", 1)], limit_price=1, price_effect="debit"), "one leg"),
    (lambda s: MultiLegRequest([OrderLeg(s, "buy", 1)], type="stop"), "not supported"),
    (lambda s: OrderRequest(s, "buy", notional=100), None),
])
def test_a_malformed_leg_is_one_clear_error(env, make, words):
    sym = option(env, 0)
    with pytest.raises(SwingtraderError) as ei:
        req = make(sym)
        env.b.submit(req)                     # the notional case is refused when the body is built
    e = ei.value
    assert "\n" not in str(e) and e.problem and e.fix
    if words: assert words in str(e), str(e)


def test_the_emulator_refuses_an_unlisted_option_as_a_rejection(env):
    with pytest.raises(OrderRejected, match="invalid_symbol"):
        env.b.submit(OrderRequest("ZZZZ  990115C00001000", "buy", qty=1))
    pv = env.b.dry_run(OrderRequest("ZZZZ  990115C00001000", "buy", qty=1))
    assert not pv.ok and "invalid_symbol" in pv.errors[0]


def test_the_body_is_tastytrades_documented_vertical():
    "The request body of tastytrade's own example (a 1x1 AAPL call vertical for a 1.09 debit)."
    req = MultiLegRequest([OrderLeg("AAPL  230818C00197500", "buy", 1), OrderLeg("AAPL  230818C00200000", "sell", 1)],
                          limit_price="1.09", price_effect="debit", client_key="k1")
    body = wire.derivative_body(req, source="my-app")
    assert {k: body[k] for k in ("time-in-force", "order-type", "price", "price-effect", "source", "legs")} == {
        "time-in-force": "Day", "order-type": "Limit", "price": "1.09", "price-effect": "Debit", "source": "my-app", "legs": [
            {"instrument-type": "Equity Option", "symbol": "AAPL  230818C00197500", "quantity": 1, "action": "Buy to Open"},
            {"instrument-type": "Equity Option", "symbol": "AAPL  230818C00200000", "quantity": 1, "action": "Sell to Open"}]}
    assert body["external-identifier"] == "k1" and "advanced-instructions" not in body
    fop = wire.derivative_body(MultiLegRequest([OrderLeg("./ESZ9 EW4U9 190927P2975", "sell", 1, "close")], limit_price="12.25", price_effect="credit"))
    assert fop["legs"][0] == {"instrument-type": "Future Option", "symbol": "./ESZ9 EW4U9 190927P2975", "quantity": 1, "action": "Sell to Close"}
    assert fop["advanced-instructions"] == {"strict-position-effect-validation": True}


def test_a_working_limit_fills_on_a_later_market_event(env, emulator_control):
    "A Live limit is re-checked on market events: once marketable it fills, and our client sees the fill."
    sym = option(env, 1, "P")
    m = mid(env, sym)
    tick = wire.derivative_tick(sym, m)
    o = env.b.submit(OrderRequest(sym, "buy", qty=1, type="limit", limit_price=max(tick, on_tick(m, tick, up=False) - 2 * tick)))
    assert o.broker_status == "Live"
    assert env.b.order(o.id).broker_status == "Live"
    emulator_control("clock", seconds=60)                                # the market moves on; the bid is still too low
    assert env.b.order(o.id).broker_status == "Live"
    env.srv.call(lambda: env.dv.working.__setitem__(int(o.id), 1e9))   # as if the mids fell below the limit
    f = wait_for(lambda: (x := env.b.order(o.id)).status is OrderStatus.FILLED and x)
    assert f.status is OrderStatus.FILLED and f.filled_qty == 1 and f.avg_fill_price > 0
    assert {p.symbol: p.qty for p in env.b.positions()}[sym] == 1
