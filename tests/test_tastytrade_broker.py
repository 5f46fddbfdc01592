"""TastytradeBroker against the emulator: order lifecycles, token expiry, 429/5xx bursts, order POST timeouts."""
import threading, time
from types import SimpleNamespace
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from swingtrader.config import Settings, ConfigError
from swingtrader.clock import SimClock
from swingtrader.models import OrderRequest, OrderStatus, Side
from swingtrader.broker import Broker, AuthError, OrderRejected, OrderNotFound, UnknownSymbol

START = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)   # Monday 10:00 New York

@pytest.fixture
def sim_spec():
    "conftest's sim_broker for this module: seed 11, 8 symbols, a manual clock at START (not advanced)."
    return dict(seed=11, symbols=8, start=date(2026, 3, 2), end=date(2026, 3, 3), minutes=0, clock=SimClock(START, mode="manual"))

@pytest.fixture
def env(emulator, sim_broker, tt_settings, tt_clients, emulator_control):
    "The conftest harness under the names these tests use: srv, sim, settings, broker(...), faults(**kw), sim_orders()."
    return SimpleNamespace(srv=emulator, sim=sim_broker, settings=tt_settings, broker=tt_clients,
                           faults=lambda **kw: emulator_control("faults", **kw), sim_orders=sim_broker.orders)

def sym_where(env, fractionable):
    u = env.sim.universe
    rows = u[u["fractionable"] == fractionable]
    if rows.empty: pytest.skip(f"no {'fractionable' if fractionable else 'whole-share'} symbol in this universe")
    return rows.index[0]

def wait_for(pred, timeout=5.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = pred()
        if v: return v
        time.sleep(0.05)
    return pred()

# -- protocol ---------------------------------------------------------------------------------------------

def test_is_a_broker(env):
    b = env.broker()
    assert isinstance(b, Broker) and b.name == "tastytrade"
    assert b.account_number == env.srv.account_number
    a = b.account()
    assert a.account_id == env.srv.account_number and a.equity == Decimal("100000") and a.buying_power > 0

def test_market_order_lifecycle(env):
    b, sym = env.broker(), env.sim.symbols[0]
    o = b.submit(OrderRequest(sym, "buy", qty=7))
    assert o.symbol == sym and o.qty == 7 and o.side is Side.BUY
    filled = wait_for(lambda: (x := b.order(o.id)).status is OrderStatus.FILLED and x)
    assert filled and filled.filled_qty == 7 and filled.avg_fill_price > 0
    assert [(p.symbol, p.qty) for p in b.positions()] == [(sym, Decimal(7))]
    s = b.submit(OrderRequest(sym, "sell", qty=7))
    assert wait_for(lambda: b.order(s.id).status is OrderStatus.FILLED)
    assert b.positions() == []
    assert b.order_by_client_key(o.client_key).id == o.id
    assert len(env.sim_orders()) == 2

def test_limit_replace_cancel(env):
    b, sym = env.broker(), env.sim.symbols[1]
    o = b.submit(OrderRequest(sym, "buy", qty=4, type="limit", limit_price=Decimal("1.00")))
    assert o.status is OrderStatus.ACCEPTED and o.limit_price == Decimal("1.00")
    r = b.replace(o.id, qty=Decimal(6), limit_price=Decimal("1.10"))
    assert r.id != o.id and r.replaces == o.id and r.qty == 6 and r.limit_price == Decimal("1.10")
    assert b.order(o.id).status is OrderStatus.CANCELLED
    b.cancel(r.id)
    assert wait_for(lambda: b.order(r.id).status is OrderStatus.CANCELLED)
    again = b.cancel(r.id)                       # terminal: returned unchanged, no error
    assert again.status is OrderStatus.CANCELLED
    with pytest.raises(OrderRejected): b.replace(r.id, limit_price=Decimal("1.20"))
    with pytest.raises(OrderNotFound): b.order("987654")
    assert b.orders(status="open") == []

def test_replace_with_our_client_key_once(env):
    "A protective stop is moved by a replace under our own deterministic key; a repeat after a lost answer is the same order."
    b, sym = env.broker(), env.sim.symbols[1]
    buy = b.submit(OrderRequest(sym, "buy", qty=5))
    assert wait_for(lambda: b.order(buy.id).status is OrderStatus.FILLED)
    st = b.submit(OrderRequest(sym, "sell", qty=5, type="stop", tif="gtc", stop_price=Decimal("0.50"), client_key="ps-test-1"))
    r = b.replace(st.id, stop_price=Decimal("0.60"), client_key="ps-test-2")
    assert (r.client_key, r.replaces, r.stop_price, r.qty) == ("ps-test-2", st.id, Decimal("0.60"), Decimal(5))
    again = b.replace(st.id, stop_price=Decimal("0.60"), client_key="ps-test-2")
    assert again.id == r.id
    assert [o.client_key for o in env.sim_orders()].count("ps-test-2") == 1
    assert [o.id for o in b.orders(status="open")] == [r.id]
    assert b.cancel(r.id).id == r.id

def test_a_sell_for_more_than_held_is_refused(env):
    """The chaos week's two real-money faults, at the adapter: an exit decided before the fill of the position's protective
    stop arrived, and a protective stop replaced (resized) for the shares the bot still believed held. tastytrade takes a
    sell beyond the long position as `Sell to Open` and a cancel-replace sets the quantity as given: both would go short.
    Refused before anything is sent."""
    b, sym = env.broker(), env.sim.symbols[1]
    held = lambda: sum((p.qty for p in env.sim.positions() if p.symbol == sym), Decimal(0))
    buy = b.submit(OrderRequest(sym, "buy", qty=5))
    assert wait_for(lambda: b.order(buy.id).status is OrderStatus.FILLED) and held() == 5
    st = b.submit(OrderRequest(sym, "sell", qty=5, type="stop", tif="gtc", stop_price=Decimal("0.50"), client_key="ps-race-1"))
    part = b.submit(OrderRequest(sym, "sell", qty=3))                 # 3 of the 5 sold (as the stop would, in part)
    assert wait_for(lambda: b.order(part.id).status is OrderStatus.FILLED) and held() == 2
    with pytest.raises(OrderRejected, match="would open a short") as e:
        b.replace(st.id, qty=Decimal(5), stop_price=Decimal("0.60"), client_key="ps-race-2")
    assert e.value.reason == "exceeds_position"
    assert "ps-race-2" not in [o.client_key for o in env.sim_orders()] and b.order(st.id).status.is_open
    r = b.replace(st.id, qty=Decimal(2), stop_price=Decimal("0.60"), client_key="ps-race-3")   # what is held: fine
    assert (r.qty, r.replaces) == (Decimal(2), st.id)
    b.cancel(r.id)
    out = b.submit(OrderRequest(sym, "sell", qty=2, client_key="exit-1"))
    assert wait_for(lambda: b.order(out.id).status is OrderStatus.FILLED) and held() == 0
    with pytest.raises(OrderRejected, match="holds 0"):              # the exit decided while the stop was filling
        b.submit(OrderRequest(sym, "sell", qty=2, client_key="exit-2"))
    assert "exit-2" not in [o.client_key for o in env.sim_orders()] and held() == 0

def test_marketable_limit_fills(env):
    b, sym = env.broker(), env.sim.symbols[2]
    px = Decimal(str(round(env.sim.latest_quote(sym).ask * 1.05, 2)))
    o = b.submit(OrderRequest(sym, "buy", qty=3, type="limit", limit_price=px))
    assert wait_for(lambda: b.order(o.id).status is OrderStatus.FILLED)

def test_stop_and_stop_limit(env):
    b, sym = env.broker(), env.sim.symbols[3]
    buy = b.submit(OrderRequest(sym, "buy", qty=10))
    assert wait_for(lambda: b.order(buy.id).status is OrderStatus.FILLED)
    bid = Decimal(str(env.sim.latest_quote(sym).bid))
    stop = (bid * Decimal("0.5")).quantize(Decimal("0.01"))
    st = b.submit(OrderRequest(sym, "sell", qty=5, type="stop", stop_price=stop))
    sl = b.submit(OrderRequest(sym, "sell", qty=5, type="stop_limit", stop_price=stop, limit_price=stop - Decimal("0.05")))
    got = {o.id: o for o in b.orders(status="open")}
    assert got[st.id].stop_price == stop and got[st.id].type.value == "stop"
    assert got[sl.id].limit_price == stop - Decimal("0.05") and got[sl.id].type.value == "stop_limit"
    r = b.replace(st.id, stop_price=stop - Decimal("1"))
    assert r.stop_price == stop - Decimal("1")
    cancelled = b.cancel_all()
    assert {o.id for o in cancelled} == {r.id, sl.id}
    assert wait_for(lambda: b.orders(status="open") == [])

def test_notional_fractional(env):
    b, sym = env.broker(env.settings.model_copy(update={"broker_stops": False})), sym_where(env, True)
    o = b.submit(OrderRequest(sym, "buy", notional=Decimal("250")))
    assert o.notional == Decimal("250") and o.qty is None
    f = wait_for(lambda: (x := b.order(o.id)).status is OrderStatus.FILLED and x)
    assert f and f.filled_qty > 0 and f.filled_qty != f.filled_qty.to_integral_value()
    assert o.client_key not in b.conversions

def test_notional_buy_is_whole_shares_while_broker_stops_are_on(env):
    "Broker stop orders are whole shares: with broker stops on, a notional entry leaves no fraction outside the stop."
    assert env.settings.broker_stops
    b, sym = env.broker(), sym_where(env, True)
    q = b.latest_quote(sym)
    o = b.submit(OrderRequest(sym, "buy", notional=Decimal("1000")))
    assert o.notional is None and o.qty == int(Decimal("1000") / Decimal(str(q.ask)))
    assert b.conversions[o.client_key]["why"] == "broker-side stops cover whole shares only"
    f = wait_for(lambda: (x := b.order(o.id)).status is OrderStatus.FILLED and x)
    assert f and f.filled_qty == o.qty and f.filled_qty == f.filled_qty.to_integral_value()
    s = b.submit(OrderRequest(sym, "sell", notional=Decimal("100")))    # a notional sell is no entry: it may stay fractional
    assert s.notional == Decimal("100") and s.client_key not in b.conversions

def test_notional_whole_shares(env):
    b, sym = env.broker(), sym_where(env, False)
    q = b.latest_quote(sym)                              # through DXLink (no REST quotes on the emulator)
    o = b.submit(OrderRequest(sym, "buy", notional=Decimal("1000")))
    assert o.notional is None and o.qty == int(Decimal("1000") / Decimal(str(q.ask)))
    conv = b.conversions[o.client_key]
    assert conv["qty"] == o.qty and conv["why"] == "instrument not fractional-eligible"
    assert o.note.startswith("notional $1000 sent as") and "whole shares" in o.note
    with pytest.raises(OrderRejected, match="less than one share"):
        b.submit(OrderRequest(sym, "buy", notional=Decimal("0.5")))

def test_dry_run_and_dry_run_first(env):
    sym = env.sim.symbols[0]
    b = env.broker(env.settings.model_copy(update={"dry_run_first": True}))
    pv = b.dry_run(OrderRequest(sym, "buy", qty=1))
    assert pv.ok and pv.buying_power_effect < 0
    bad = b.dry_run(OrderRequest(sym, "buy", qty=10_000_000))
    assert not bad.ok and bad.errors
    with pytest.raises(OrderRejected): b.submit(OrderRequest(sym, "buy", qty=10_000_000))
    assert env.sim_orders() == []                        # the dry run stopped it: nothing placed

def test_history_pagination(env):
    b, sym = env.broker(), env.sim.symbols[4]
    b.page_size = 3
    ids = [b.submit(OrderRequest(sym, "buy", qty=1, type="limit", limit_price=Decimal("1.00"))).id for _ in range(8)]
    hist = b.orders(since=datetime(2026, 3, 1, tzinfo=timezone.utc))
    assert [o.id for o in hist if o.id in ids] == ids
    assert {o.id for o in b.orders(status="open")} == set(ids)
    assert b.order_by_client_key("nope") is None

def test_unknown_symbol_and_bars(env):
    b, sym = env.broker(), env.sim.symbols[0]
    with pytest.raises(UnknownSymbol): b.asset("ZZZZQ")
    a = b.asset(sym)
    assert a.symbol == sym and a.tick_size > 0
    df = b.bars(sym, "5m", datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc), START)
    assert len(df) == 6 and list(df.columns) == ["open", "high", "low", "close", "volume"]

def test_account_choice(env, monkeypatch):
    with pytest.raises(ConfigError, match="TT_ACCOUNT_NUMBER=5WZ99999"):
        env.broker(env.settings.model_copy(update={"tt_account_number": "5WZ99999"})).account_number
    b = env.broker()
    many = {"data": {"items": [{"account": {"account-number": n, "is-closed": False}} for n in ("5WT00001", "5WT00002")]}}
    monkeypatch.setattr(b.api, "get", lambda path, params=None: many)
    with pytest.raises(ConfigError, match="5WT00001, 5WT00002"): b.account_number

# -- faults -----------------------------------------------------------------------------------------------

def test_tokens_expiring_every_two_seconds(env):
    "The issue's scenario: a one-minute session, access tokens expiring every 2 s, three threads, no failed call."
    env.faults(token_lifetime_s=2)
    b, syms = env.broker(), env.sim.symbols
    errors, calls = [], [0]
    def work(i):
        t_end = time.monotonic() + 60
        while time.monotonic() < t_end:
            try:
                b.account(); b.orders()
                if calls[0] % 10 == i: b.submit(OrderRequest(syms[i], "buy", qty=1))
                calls[0] += 1
            except BaseException as e: errors.append(repr(e))
            time.sleep(0.05)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    [t.start() for t in ts]; [t.join() for t in ts]
    assert errors == []
    assert b.transport.refreshes >= 20, b.transport.refreshes   # a fresh token at least every ~3 s of the minute
    assert calls[0] > 150

def on_order_post(b, action):
    "Run `action()` just before the first order POST leaves (later POSTs go through untouched)."
    real, done = b.transport._send, []
    def send(method, path, *a, **k):
        if method == "POST" and path.endswith("/orders") and not done: done.append(1); action()
        return real(method, path, *a, **k)
    b.transport._send = send

def test_rate_limit_burst(env):
    b = env.broker(backoff=0.01)
    b.transport.throttle.max_gap = 0.2                   # keep the test quick; the default caps at 2 s
    b.account_number
    env.faults(rate_limit_next=6, retry_after=0.2)
    assert b.account().account_id == env.srv.account_number
    on_order_post(b, lambda: env.faults(rate_limit_next=3, retry_after=0.1))
    o = b.submit(OrderRequest(env.sim.symbols[0], "buy", qty=2))
    assert [x.client_key for x in env.sim_orders()] == [o.client_key]
    assert b.transport.stats["throttled"] == 9 and b.transport.throttle.gap > 0
    for _ in range(30): b.account()
    assert b.transport.throttle.gap == 0.0                # recovered

def test_server_error_burst(env):
    b = env.broker(backoff=0.01)
    b.account_number
    env.faults(server_error_next=3)
    assert b.positions() == []
    on_order_post(b, lambda: env.faults(server_error_next=1))
    o = b.submit(OrderRequest(env.sim.symbols[0], "buy", qty=2))
    assert [x.client_key for x in env.sim_orders()] == [o.client_key]
    assert b.transport.stats["order_confirms"] == 1 and b.transport.stats["order_resends"] == 1

def test_order_post_timeout_places_exactly_one(env):
    "The emulator reads the body before its latency fault, as a real server does: the slow order is placed."
    b = env.broker(timeout=0.5, backoff=0.01, confirm_window=3.0)
    b.account_number; b.positions()
    req = OrderRequest(env.sim.symbols[5], "buy", qty=3)
    def slow_then_heal():   # this POST takes 1.5 s inside the emulator; requests after it are fast again
        env.faults(latency_ms=1500)
        threading.Timer(0.7, lambda: env.faults(latency_ms=0)).start()
    on_order_post(b, slow_then_heal)
    o = b.submit(req)
    assert o.client_key == req.client_key
    assert b.transport.stats["order_confirms"] == 1 and b.transport.stats["order_resends"] == 0
    time.sleep(1.2)                                     # the slow request has long finished
    assert [x.client_key for x in env.sim_orders()] == [req.client_key]

@pytest.mark.parametrize("emulator_options", [dict(strict=True)])
def test_bad_credentials_are_named_not_shown(env):
    b = env.broker(Settings(broker="tastytrade", TT_CLIENT_SECRET="wrong-secret-123", TT_REFRESH_TOKEN="wrong-refresh-456",
                            TT_API_URL=env.srv.api_url), backoff=0.01)
    with pytest.raises(AuthError) as ei: b.account()
    msg = str(ei.value)
    assert "TT_CLIENT_SECRET" in msg and "TT_REFRESH_TOKEN" in msg
    assert "wrong-secret-123" not in msg and "wrong-refresh-456" not in msg
    assert "wrong-secret-123" not in repr(b) + repr(b.transport)

@pytest.mark.parametrize("emulator_options", [dict(tls=True)])
def test_tls(env):
    b = env.broker()
    assert b.transport.base_url.startswith("https://") and b.account().equity > 0
