"""AlpacaBroker through alpaca-py, unmodified, against the emulator: every Broker method, a 504 after the order was
accepted (exactly one order), a duplicate client_order_id looked up (never resent), rejections with Alpaca's reason,
protective GTC stops placed and ratcheted by replace, secrets never in errors."""
import time, uuid
from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from pydantic import SecretStr

from swingtrader.config import Settings
from swingtrader.clock import MarketCalendar
from swingtrader.broker import AuthError, Broker, OrderNotFound, OrderRejected, RateLimited, UnknownSymbol
from swingtrader.models import OrderRequest, OrderStatus, OrderType, TimeInForce
from swingtrader.session import emulated_alpaca
from swingtrader.alpaca.broker import AlpacaBroker

pytest.importorskip("swingtrader.emulator.alpaca_trading", reason="the emulator's Alpaca trading side (h-alpemu) is not merged here")
DAY = date(2026, 3, 2)


@pytest.fixture(scope="module")
def env():
    "The emulator over a seeded simulator, an hour into the session, 60 simulated seconds per second."
    cal = MarketCalendar()
    e = emulated_alpaca(Settings(_env_file=None, sim_symbols=3), DAY, DAY, speed=60.0, start=cal.session(DAY)[0] + timedelta(minutes=60),
                        history_days=12)   # 3 symbols x 12 sessions of minute bars: more than one 10,000-bar page
    yield e
    e.close()


@pytest.fixture(scope="module")
def broker(env):
    b = AlpacaBroker(env.settings, clock=env.clock, calendar=env.calendar, retry_wait=0.2)
    yield b
    b.close()


@pytest.fixture(scope="module")
def sym(env): return env.sim.symbols[0]


def wait_for(fn, pred, timeout=30.0):
    "Poll `fn()` until `pred(value)` (generous bound), returning the value."
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if pred(v): return v
        assert time.monotonic() < end, f"condition not met within {timeout} s: {v!r}"
        time.sleep(0.05)


def far_limit(broker, sym, key=None, qty=1):
    "A buy limit at half the bid: rests without filling."
    q = broker.latest_quote(sym)
    return OrderRequest(sym, "buy", qty=qty, type="limit", limit_price=Decimal(str(round(q.bid / 2, 2))), **({"client_key": key} if key else {}))


def test_it_is_a_broker_with_account_positions_asset_clock_quote(broker, sym):
    assert isinstance(broker, Broker) and broker.name == "alpaca"
    a = broker.account()
    assert a.equity > 0 and a.buying_power > 0 and a.account_id
    assert isinstance(broker.positions(), list)
    asset = broker.asset(sym)
    assert asset.symbol == sym and asset.tradable and asset.tick_size == Decimal("0.01")
    with pytest.raises(UnknownSymbol, match="does not know the asset"): broker.asset("ZZZZZ")
    c = broker.market_clock()
    assert c["is_open"] is True and c["next_close"] > c["timestamp"]
    q = broker.latest_quote(sym)
    assert 0 < q.bid <= q.ask


def test_bars_history_pages_and_window(broker, sym, env):
    now = env.clock.now()
    df = broker.bars(sym, "1m", now - timedelta(days=20), now)
    assert list(df.columns) == ["open", "high", "low", "close", "volume"] and str(df.index.tz) == "UTC"
    assert len(df) > 1000 and df.index.is_monotonic_increasing and df.index[-1] < pd.Timestamp(now)
    five = broker.bars(sym, "5m", now - timedelta(hours=1), now)
    assert 0 < len(five) <= 12 and (five.index >= pd.Timestamp(now - timedelta(hours=1))).all()
    many = broker.bars_many(env.sim.symbols, "1m", now - timedelta(days=20), now)   # > 10,000 bars: alpaca-py follows next_page_token
    assert set(many) == set(env.sim.symbols) and sum(map(len, many.values())) > 10_000
    assert all(v.index.is_unique and v.index.is_monotonic_increasing for v in many.values())
    assert many[sym].equals(df)                                                         # the same bars, paged or not


def test_submit_read_replace_cancel(broker, sym):
    req = far_limit(broker, sym)
    o = broker.submit(req)
    assert o.client_key == req.client_key and o.status is OrderStatus.ACCEPTED and o.limit_price == req.limit_price
    assert broker.order(o.id).id == o.id
    assert broker.order_by_client_key(req.client_key).id == o.id
    assert o.id in [x.id for x in broker.orders("open")]
    r = broker.replace(o.id, limit_price=req.limit_price - Decimal("0.10"), client_key=req.client_key + ".r1")
    assert (r.replaces, r.limit_price, r.client_key) == (o.id, req.limit_price - Decimal("0.10"), req.client_key + ".r1")
    assert broker.replace(o.id, limit_price=Decimal(1), client_key=req.client_key + ".r1").id == r.id   # once per key
    assert broker.order(o.id).status.is_terminal
    c = broker.cancel(r.id)
    c = wait_for(lambda: broker.order(r.id), lambda x: x.status is OrderStatus.CANCELLED)
    assert broker.cancel(r.id).status is OrderStatus.CANCELLED          # again: unchanged, no error
    assert r.id in [x.id for x in broker.orders("closed", since=c.created_at - timedelta(minutes=1))]
    with pytest.raises(OrderRejected, match="cannot be replaced"): broker.replace(r.id, limit_price=Decimal(2))


def test_market_order_fills_and_protective_stop_ratchets(broker, sym):
    buy = broker.submit(OrderRequest(sym, "buy", qty=3))
    f = wait_for(lambda: broker.order(buy.id), lambda x: x.status is OrderStatus.FILLED)
    assert f.filled_qty == 3 and f.avg_fill_price > 0
    broker.invalidate()
    pos = wait_for(broker.positions, lambda ps: any(p.symbol == sym and p.qty >= 3 for p in ps))
    assert any(p.symbol == sym for p in pos)
    stop = broker.submit(OrderRequest(sym, "sell", qty=3, type="stop", tif="gtc", stop_price=(f.avg_fill_price * Decimal("0.8")).quantize(Decimal("0.01")),
                                      client_key=f"stop-{buy.id[:8]}"))
    assert (stop.type, stop.tif, stop.status) == (OrderType.STOP, TimeInForce.GTC, OrderStatus.ACCEPTED)
    higher = (f.avg_fill_price * Decimal("0.9")).quantize(Decimal("0.01"))
    new = broker.replace(stop.id, qty=Decimal(3), stop_price=higher, client_key=stop.client_key + ".r1")
    assert (new.stop_price, new.tif, new.replaces) == (higher, TimeInForce.GTC, stop.id)
    assert [o.id for o in broker.orders("open") if o.symbol == sym and o.side.value == "sell"] == [new.id]
    done = broker.cancel_all()
    assert all(o.status.is_terminal or o.broker_status == "pending_cancel" for o in done)
    wait_for(lambda: broker.orders("open"), lambda os: not os)


def test_a_504_after_accept_leaves_exactly_one_order(broker, sym, env):
    env.server.emu.faults.accept_then_504_next = 1          # placed, then the answer is lost in a 504
    req = far_limit(broker, sym)
    before = broker.stats["duplicate_lookups"]
    o = broker.submit(req)                                   # alpaca-py retries the POST: 422 duplicate -> looked up
    assert o.client_key == req.client_key and broker.stats["duplicate_lookups"] == before + 1
    mine = [x for x in broker.orders(status=None, since=o.created_at - timedelta(minutes=5)) if x.client_key == req.client_key]
    assert len(mine) == 1 and mine[0].id == o.id
    broker.cancel(o.id)


def test_rate_limited_beyond_alpaca_pys_retries_places_nothing(broker, sym, env):
    req = far_limit(broker, sym)
    f = env.server.emu.faults
    f.rate_limit_next, f.retry_after = 6, 0.0                # more 429s than alpaca-py's three retries (and the look-up)
    try:
        with pytest.raises(RateLimited, match="rate-limited"): broker.submit(req)
    finally: f.rate_limit_next = 0
    assert broker.order_by_client_key(req.client_key) is None
    o = broker.submit(req)                                    # later, the same intent goes through once
    assert o.client_key == req.client_key
    broker.cancel(o.id)


def test_a_repeated_submit_is_looked_up_never_resent(broker, sym):
    req = far_limit(broker, sym)
    a = broker.submit(req); b = broker.submit(req)
    assert a.id == b.id
    broker.cancel(a.id)
    assert broker.submit(req).id == a.id                     # even after the cancel: Alpaca keeps the key used


def test_rejections_carry_alpacas_reason(broker, sym):
    huge = OrderRequest(sym, "buy", qty=10_000_000, type="limit", limit_price=Decimal("1.00"))
    with pytest.raises(OrderRejected) as e: broker.submit(huge)
    assert "buying power" in e.value.reason
    assert broker.dry_run(huge).ok is False and broker.dry_run(far_limit(broker, sym)).ok is True
    with pytest.raises(OrderNotFound): broker.order(str(uuid.uuid4()))
    with pytest.raises(OrderNotFound): broker.order("12345")
    assert broker.order_by_client_key("never-used-key") is None


def test_bad_keys_are_an_auth_error_without_the_secret(env):
    bad = env.settings.model_copy(update={"alpaca_secret_key": SecretStr("wrong-secret-9876")})
    b = AlpacaBroker(bad, clock=env.clock)
    with pytest.raises(AuthError) as e: b.account()
    assert "wrong-secret-9876" not in str(e.value) and "ALPACA_SECRET_KEY" in str(e.value)
    assert "wrong-secret-9876" not in repr(b) + repr(b.transport)
    b.close()


def test_latency_is_tracked(broker):
    s = broker.transport.latency.summary()
    assert s["POST /orders"]["n"] >= 3 and s["POST /orders"]["p99_ms"] >= s["POST /orders"]["p50_ms"] > 0


def test_compliance_views_agree_with_the_orders(broker, sym):
    o = broker.submit(OrderRequest(sym, "buy", qty=2))
    f = wait_for(lambda: broker.order(o.id), lambda x: x.status is OrderStatus.FILLED)
    acts = [a for a in broker.fill_activities() if a.order_id == o.id]
    assert sum(a.qty for a in acts) == f.filled_qty == 2 and all(a.symbol == sym and a.side.value == "buy" for a in acts)
    assert len({a.fill_id for a in broker.fill_activities(page_size=2)}) == len(broker.fill_activities())   # paged, none twice
    h = broker.portfolio_history(period="1W", timeframe="1D")
    assert list(h.columns) == ["equity", "profit_loss", "profit_loss_pct"] and len(h) >= 1 and str(h.index.tz) == "UTC"
    broker.submit(OrderRequest(sym, "sell", qty=2))


def test_notional_entries_go_as_whole_shares_while_broker_stops_are_on(env, sym):
    """Stop orders are for whole shares: with broker-side stops on, a notional buy is sent as whole shares (rounded down at
    the ask), so the protective stop covers the whole position and no fraction stays open after it fills. Off: fractional."""
    q = None
    for stops, key in ((True, f"wh-{uuid.uuid4().hex[:10]}"), (False, f"fr-{uuid.uuid4().hex[:10]}")):
        b = AlpacaBroker(env.settings.model_copy(update={"broker_stops": stops}), clock=env.clock, calendar=env.calendar, retry_wait=0.2)
        try:
            q = b.latest_quote(sym)
            o = b.submit(OrderRequest(sym, "buy", notional=Decimal(str(round(q.ask * 3.5, 2))), client_key=key))
            f = wait_for(lambda: b.order(o.id), lambda x: x.status is OrderStatus.FILLED)
            if stops: assert f.filled_qty == f.filled_qty.to_integral_value() and f.filled_qty >= 3 and "broker-side stops" in o.note
            else: assert f.filled_qty != f.filled_qty.to_integral_value()
            assert b.whole_shares_why(OrderRequest(sym, "sell", qty=1)) is None      # a qty order is never converted
            b.submit(OrderRequest(sym, "sell", qty=f.filled_qty))
            if stops:
                with pytest.raises(OrderRejected, match="less than one share.*broker-side stops"):
                    b.submit(OrderRequest(sym, "buy", notional=Decimal(str(round(q.ask / 2, 2)))))
        finally: b.close()


def test_a_sell_for_more_than_is_held_is_refused(broker, sym):
    """Alpaca takes a sell for more than the long position as a short sale: a protective stop (client key `ps-…`) or an exit
    sized from a stale view of the position is refused before it reaches Alpaca, definitely (nothing placed); one for what is
    held goes."""
    buy = broker.submit(OrderRequest(sym, "buy", qty=2))
    wait_for(lambda: broker.order(buy.id), lambda x: x.status is OrderStatus.FILLED)
    held = sum(p.qty for p in broker.positions() if p.symbol == sym)
    px = (broker.latest_quote(sym).bid * 0.5)
    key = f"ps-{uuid.uuid4().hex[:20]}"
    with pytest.raises(OrderRejected, match="would open a short") as e:
        broker.submit(OrderRequest(sym, "sell", qty=held + 1, type="stop", tif="gtc", stop_price=Decimal(str(round(px, 2))), client_key=key))
    assert e.value.reason == "exceeds_position" and broker.order_by_client_key(key) is None
    ok = broker.submit(OrderRequest(sym, "sell", qty=held, type="stop", tif="gtc", stop_price=Decimal(str(round(px, 2))), client_key=key + "b"))
    assert ok.status.is_open
    with pytest.raises(OrderRejected, match="would open a short"):
        broker.replace(ok.id, qty=held + 1, client_key=key + "c")
    broker.cancel(ok.id)
    wait_for(lambda: broker.order(ok.id), lambda x: x.status.is_terminal)
    with pytest.raises(OrderRejected, match="a sell for .* would open a short"):       # an exit too: long only
        broker.submit(OrderRequest(sym, "sell", qty=held + 1))
    broker.submit(OrderRequest(sym, "sell", qty=held))
