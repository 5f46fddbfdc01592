"Matching engine and simulated account: each fill rule, each rejection, settlement, GFV, expiry, replace, fill modes."
from datetime import datetime, timezone, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from swingtrader.broker import BAR_COLUMNS, OrderRejected, OrderNotFound
from swingtrader.models import Asset, OrderRequest, OrderStatus, OrderEvent, Side, InvalidOrder
from swingtrader.sim.account import SimAccount, SessionTable, to_ns
from swingtrader.sim.engine import MatchingEngine, EngineConfig, FillMode
from swingtrader.sim.book import BarTape
from swingtrader.config import SwingtraderError

UTC = timezone.utc
ST = SessionTable()
MON = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)          # Monday 10:00 New York
FRI = datetime(2026, 3, 6, 20, 0, tzinfo=UTC)          # Friday 15:00 New York
NS = 10**9


def engine(cash="100000", account_type="margin", **cfg):
    assets = {"XYZ": Asset("XYZ", fractionable=True, shortable=True), "NOF": Asset("NOF"),
              "HALT": Asset("HALT", tradable=False), "PENNY": Asset("PENNY")}
    return MatchingEngine(assets, SimAccount(cash=cash, account_type=account_type, count_day_trades=cfg.pop("count_day_trades", False)),
                          EngineConfig(**cfg), sessions=ST, spread_bps={"XYZ": 10.0}, ref_prices={"XYZ": 100.0, "NOF": 100.0, "PENNY": 0.5})


def bars(rows, start=MON):
    idx = pd.date_range(start, periods=len(rows), freq="1min", tz="UTC", name="start")
    return pd.DataFrame(rows, columns=BAR_COLUMNS, index=idx, dtype=float)


def feed(e, df, sym="XYZ", until=None):
    tape = BarTape({sym: df})
    tape.feed(e, until if until is not None else int(tape.close[-1]))
    return e


def fills(e, o): return [(f.qty, f.price, f.time) for f in e.fills if f.order_id == o.id]
def buy(qty=100, **kw): return OrderRequest("XYZ", "buy", qty=qty, **kw)
def sell(qty=100, **kw): return OrderRequest("XYZ", "sell", qty=qty, **kw)
def hold(e, qty=100, price=90):
    "Give the account a long position bought the previous session."
    t = to_ns(MON) - 3 * 86400 * NS
    e.account.apply_fill("XYZ", Side.BUY, Decimal(qty), Decimal(price), Decimal(0), t, ST.index(t), t)
def m(k): return MON + timedelta(minutes=k)
def reason(f):
    with pytest.raises(OrderRejected) as ex: f()
    return ex.value.reason


# ---------------------------------------------------------------- fill rules
def test_market_fills_at_next_bar_open_without_quote():
    e = engine()
    o = e.submit(buy(), to_ns(MON))
    feed(e, bars([(100, 101, 99, 100.5, 10_000)]))
    assert fills(e, o) == [(Decimal(100), Decimal("100"), MON)]


def test_market_never_fills_on_a_bar_already_under_way():
    e = engine(fill_at="bar")
    feed(e, bars([(100, 101, 99, 100.5, 10_000)]))              # 10:00 bar closed
    o = e.submit(buy(), to_ns(m(1)) + 30 * NS)                    # 10:01:30, mid-bar
    feed(e, bars([(200, 201, 199, 200, 10_000), (101, 102, 100, 101, 10_000)], start=m(1)))
    assert fills(e, o) == [(Decimal(100), Decimal("101"), m(2))]


def test_market_fills_at_quote_once_traded():
    e = engine()
    feed(e, bars([(100, 101, 99, 100, 10_000)]))
    b = e.submit(buy(), to_ns(m(1)))
    s = e.submit(OrderRequest("XYZ", "sell", qty=50), to_ns(m(1)))
    assert fills(e, b)[0][1] == Decimal("100.05") and fills(e, s)[0][1] == Decimal("99.95")


def test_quote_fill_bounded_by_participation_rest_on_bars():
    e = engine()
    feed(e, bars([(100, 101, 99, 100, 1_000)]))                 # quote size 100
    o = e.submit(buy(250), to_ns(m(1)))
    assert e.order(o.id).status is OrderStatus.PARTIALLY_FILLED and e.order(o.id).filled_qty == 100
    feed(e, bars([(101, 101, 101, 101, 1_000), (102, 102, 102, 102, 1_000)], start=m(1)))
    assert [f[0] for f in fills(e, o)] == [100, 100, 50] and e.order(o.id).status is OrderStatus.FILLED
    assert e.order(o.id).avg_fill_price == ((100 * Decimal("100.05") + 100 * 101 + 50 * 102) / 250).quantize(Decimal("0.0001"))


def test_participation_shared_by_orders_in_one_bar():
    e = engine(fill_at="bar", participation=0.1)
    a, b = e.submit(buy(80), to_ns(MON)), e.submit(buy(80), to_ns(MON))
    feed(e, bars([(100, 100, 100, 100, 1_000)]))
    assert sum(f.qty for f in e.fills) == 100 and fills(e, a)[0][0] == 80 and fills(e, b)[0][0] == 20


def test_buy_limit_needs_trade_through_and_fills_at_better_of_open():
    e = engine(fill_at="bar")
    o = e.submit(buy(10, type="limit", limit_price="99"), to_ns(MON))
    feed(e, bars([(100, 100, 99, 99.5, 10_000), (99.5, 99.6, 98.9, 99, 10_000)]))
    assert fills(e, o) == [(Decimal(10), Decimal("99"), m(1))]
    g = e.submit(buy(10, type="limit", limit_price="98"), to_ns(m(2)))
    feed(e, bars([(97, 97.5, 96.5, 97, 10_000)], start=m(2)))
    assert fills(e, g)[0][1] == Decimal("97")


def test_sell_limit_rule():
    e = engine(fill_at="bar"); hold(e)
    o = e.submit(sell(10, type="limit", limit_price="101"), to_ns(MON))
    feed(e, bars([(100, 101, 99, 100, 10_000), (102, 103, 101.5, 102, 10_000)]))
    assert fills(e, o) == [(Decimal(10), Decimal("102"), m(1))]


def test_stops_touch_and_gap():
    e = engine(fill_at="bar"); hold(e)
    bs = e.submit(buy(10, type="stop", stop_price="101"), to_ns(MON))
    ss = e.submit(sell(10, type="stop", stop_price="99"), to_ns(MON))
    gs = e.submit(buy(10, type="stop", stop_price="103"), to_ns(MON))
    feed(e, bars([(100, 101, 99.5, 100, 10_000), (98, 98.5, 97, 98, 10_000), (105, 106, 104, 105, 10_000)]))
    assert fills(e, bs)[0][1:] == (Decimal("101"), m(0))
    assert fills(e, ss)[0][1:] == (Decimal("98"), m(1))
    assert fills(e, gs)[0][1:] == (Decimal("105"), m(2))


def test_triggered_stop_remainder_waits_for_next_bar():
    e = engine(fill_at="bar", participation=0.1)
    o = e.submit(buy(150, type="stop", stop_price="101"), to_ns(MON))
    feed(e, bars([(100, 101.5, 99.5, 101, 1_000), (99, 99, 99, 99, 1_000)]))
    assert fills(e, o) == [(Decimal(100), Decimal("101"), m(0)), (Decimal(50), Decimal("99"), m(1))]


def test_stop_limit_trigger_then_limit():
    e = engine(fill_at="bar")
    a = e.submit(buy(10, type="stop_limit", stop_price="101", limit_price="101.5"), to_ns(MON))
    b = e.submit(buy(10, type="stop_limit", stop_price="101", limit_price="101.2", client_key="gapper"), to_ns(MON))
    feed(e, bars([(102, 102.5, 101.8, 102, 10_000), (101.6, 101.7, 101.1, 101.3, 10_000)]))
    assert fills(e, a) == [(Decimal(10), Decimal("101.5"), m(1))]   # gap above both limits: rests, fills when traded through
    assert fills(e, b) == [(Decimal(10), Decimal("101.2"), m(1))]
    c = e.submit(sell(10, type="stop_limit", stop_price="100", limit_price="99.8"), to_ns(m(2)))
    feed(e, bars([(100.5, 100.6, 99.5, 99.9, 10_000)], start=m(2)))
    assert fills(e, c) == [(Decimal(10), Decimal("100"), m(2))]


def test_stop_not_triggered_no_fill_and_untriggered_stop_limit_rests():
    e = engine(fill_at="bar")
    o = e.submit(buy(10, type="stop_limit", stop_price="105", limit_price="106"), to_ns(MON))
    feed(e, bars([(100, 104.99, 99, 100, 10_000)]))
    assert fills(e, o) == [] and e.order(o.id).status is OrderStatus.ACCEPTED


def test_notional_fractional():
    e = engine(fill_at="bar")
    o = e.submit(OrderRequest("XYZ", "buy", notional="1000"), to_ns(MON))
    feed(e, bars([(30, 31, 29, 30, 10_000)]))
    f = e.order(o.id)
    assert f.status is OrderStatus.FILLED and f.filled_qty == Decimal("33.333333333")
    assert e.account.cash == Decimal("100000") - Decimal("33.333333333") * 30


def test_slippage_capped_by_limit_and_commission_minimum():
    e = engine(fill_at="bar", slippage_bps=50, commission_per_share="0.005", commission_min="1")
    lim = e.submit(buy(10, type="limit", limit_price="100.2"), to_ns(MON))
    mk = e.submit(buy(1000), to_ns(MON))
    feed(e, bars([(100, 101, 99, 100, 100_000)]))
    assert fills(e, lim)[0][1] == Decimal("100.2")                       # 100 * 1.005 = 100.5 capped at the limit
    assert fills(e, mk)[0][1] == Decimal("100.5")
    fl = {f.order_id: f.commission for f in e.fills}
    assert fl[lim.id] == Decimal(1) and fl[mk.id] == Decimal("5.00")
    assert e.account.commissions == Decimal(6)


def test_close_mode_fills_at_decision_close_without_costs():
    e = engine(fill_at="close", slippage_bps=50, commission_per_share="0.01", commission_min="1")
    feed(e, bars([(100, 103, 97, 102, 10)]))                          # tiny volume: no cap in close mode
    o = e.submit(buy(500), to_ns(m(1)))
    lim = e.submit(buy(10, type="limit", limit_price="101"), to_ns(m(1)))
    feed(e, bars([(102, 102, 99, 100.5, 10)], start=m(1)))
    assert fills(e, o) == [(Decimal(500), Decimal("102"), m(1))]
    assert fills(e, lim) == [(Decimal(10), Decimal("100.5"), m(1))]
    assert all(f.commission == 0 for f in e.fills)


def test_bars_outside_rth_do_not_match():
    e = engine(fill_at="bar")
    o = e.submit(buy(10, type="limit", limit_price="99", tif="gtc"), to_ns(MON))
    feed(e, bars([(90, 90, 90, 90, 10_000)], start=datetime(2026, 3, 2, 22, 0, tzinfo=UTC)))   # 17:00 NY print
    assert fills(e, o) == []


# ---------------------------------------------------------------- rejections
def test_each_rejection_reason():
    e = engine()
    now = to_ns(MON)
    assert reason(lambda: e.submit(OrderRequest("NOPE", "buy", qty=1), now)) == "unknown_symbol"
    assert reason(lambda: e.submit(OrderRequest("HALT", "buy", qty=1), now)) == "not_tradable"
    assert reason(lambda: e.submit(buy(1), to_ns(datetime(2026, 3, 2, 22, tzinfo=UTC)))) == "outside_regular_hours"
    assert reason(lambda: e.submit(OrderRequest("XYZ", "buy", notional=100), to_ns(datetime(2026, 3, 7, 15, tzinfo=UTC)))) == "outside_regular_hours"
    assert reason(lambda: e.submit(OrderRequest("NOF", "buy", qty="1.5"), now)) == "fractional_not_eligible"
    assert reason(lambda: e.submit(OrderRequest("NOF", "buy", notional=100), now)) == "fractional_not_eligible"
    assert reason(lambda: e.submit(buy("1.5", type="limit", limit_price="10", tif="gtc"), now)) == "fractional_not_eligible"
    assert reason(lambda: e.submit(buy(1, type="limit", limit_price="10.001"), now)) == "off_tick"
    assert reason(lambda: e.submit(buy(1, type="stop", stop_price="10.015"), now)) == "off_tick"
    assert e.submit(OrderRequest("PENNY", "buy", qty=10, type="limit", limit_price="0.5012"), now).status is OrderStatus.ACCEPTED
    assert reason(lambda: e.submit(OrderRequest("PENNY", "buy", qty=10, type="limit", limit_price="0.50125"), now)) == "off_tick"
    assert reason(lambda: e.submit(buy(3000), now)) == "insufficient_buying_power"       # 300k > 200k margin BP
    assert reason(lambda: e.submit(OrderRequest("NOF", "sell", qty=1), now)) == "not_shortable"
    c = engine(cash="1000", account_type="cash")
    assert reason(lambda: c.submit(sell(1), now)) == "insufficient_position"
    assert reason(lambda: c.submit(buy(11), now)) == "insufficient_buying_power"
    e.set_fill_mode("reject", key="bad")
    assert reason(lambda: e.submit(buy(1, client_key="bad"), now)) == "rejected_by_fill_mode"


def test_rejection_is_recorded_once_with_event_and_message():
    e = engine()
    req = OrderRequest("NOF", "sell", qty=1, client_key="k1")
    with pytest.raises(OrderRejected) as ex: e.submit(req, to_ns(MON))
    assert "not available to sell short" in str(ex.value) and "Fix:" in str(ex.value)
    assert ex.value.order.status is OrderStatus.REJECTED
    ev = e.take_events()
    assert [u.event for u in ev] == [OrderEvent.REJECTED]
    assert e.submit(req, to_ns(MON)).id == ex.value.order.id and len(e.orders) == 1


def test_cash_account_sells_net_of_open_sells_and_never_shorts():
    c = engine(cash="100000", account_type="cash"); hold(c, 100)
    c.submit(sell(60, type="limit", limit_price="200"), to_ns(MON))
    assert reason(lambda: c.submit(sell(41, type="limit", limit_price="200"), to_ns(MON))) == "insufficient_position"
    assert c.submit(sell(40, type="limit", limit_price="200"), to_ns(MON)).status is OrderStatus.ACCEPTED


def test_margin_short_uses_buying_power_and_cover():
    e = engine(cash="10000")
    e.submit(sell(150, type="limit", limit_price="100"), to_ns(MON))     # short 15k of 20k BP
    assert reason(lambda: e.submit(sell(60, type="limit", limit_price="100"), to_ns(MON))) == "insufficient_buying_power"
    feed(e, bars([(100, 101, 99, 100.5, 100_000)]))
    assert e.account.positions["XYZ"].qty == -150


def test_open_orders_hold_buying_power_until_cancelled():
    e = engine(cash="10000")
    o = e.submit(buy(150, type="limit", limit_price="100"), to_ns(MON))
    assert e.reserved == Decimal(15000)
    assert reason(lambda: e.submit(buy(60, type="limit", limit_price="100"), to_ns(MON))) == "insufficient_buying_power"
    e.cancel(o.id, to_ns(MON))
    assert e.reserved == 0 and e.submit(buy(60, type="limit", limit_price="100"), to_ns(MON)).status is OrderStatus.ACCEPTED


# ---------------------------------------------------------------- lifecycle
def test_day_expires_at_close_gtc_persists_after_hours_limit_queues():
    e = engine(fill_at="bar")
    d = e.submit(buy(1, type="limit", limit_price="50"), to_ns(MON))
    g = e.submit(buy(1, type="limit", limit_price="50", tif="gtc"), to_ns(MON))
    late = e.submit(buy(1, type="limit", limit_price="50"), to_ns(datetime(2026, 3, 2, 23, tzinfo=UTC)))   # 18:00 NY
    e.on_time(to_ns(datetime(2026, 3, 2, 21, tzinfo=UTC)))
    assert e.order(d.id).status is OrderStatus.EXPIRED and e.order(g.id).is_open and e.order(late.id).is_open
    e.on_time(to_ns(datetime(2026, 3, 3, 21, tzinfo=UTC)))
    assert e.order(late.id).status is OrderStatus.EXPIRED and e.order(g.id).is_open


def test_limit_outside_rth_works_from_next_open():
    e = engine(fill_at="bar")
    o = e.submit(buy(10, type="limit", limit_price="99"), to_ns(datetime(2026, 3, 7, 15, tzinfo=UTC)))   # Saturday
    feed(e, bars([(98, 98, 98, 98, 10_000)], start=datetime(2026, 3, 9, 13, 30, tzinfo=UTC)))  # Mon 9:30 (EDT)
    assert fills(e, o)[0][1:] == (Decimal("98"), datetime(2026, 3, 9, 13, 30, tzinfo=UTC))


def test_queue_market_outside_rth_option():
    e = engine(fill_at="bar", queue_market_outside_rth=True)
    o = e.submit(buy(10), to_ns(datetime(2026, 3, 2, 13, tzinfo=UTC)))
    feed(e, bars([(101, 101, 101, 101, 10_000)], start=datetime(2026, 3, 2, 14, 30, tzinfo=UTC)))
    assert fills(e, o)[0][1] == Decimal("101")


def test_cancel_never_fills_afterwards_and_terminal_cancel_returns_as_is():
    e = engine(fill_at="bar")
    o = e.submit(buy(10, type="limit", limit_price="99"), to_ns(MON))
    c = e.cancel(o.id, to_ns(MON))
    feed(e, bars([(90, 90, 90, 90, 10_000)]))
    assert c.status is OrderStatus.CANCELLED and fills(e, o) == []
    assert e.cancel(o.id, to_ns(m(5))) == c
    with pytest.raises(OrderNotFound): e.cancel("nope", 0)


def test_replace_semantics():
    e = engine(fill_at="bar")
    o = e.submit(buy(300, type="limit", limit_price="99", client_key="ck"), to_ns(MON))
    feed(e, bars([(98, 98, 98, 98, 1000)]))                            # 100 of 300 fill
    n = e.replace(o.id, to_ns(m(1)), limit_price=Decimal("97"))
    assert (n.replaces, n.qty, n.limit_price, n.client_key) == (o.id, Decimal(200), Decimal(97), "ck.r1") and n.id != o.id
    old = e.order(o.id)
    assert old.status is OrderStatus.CANCELLED and old.broker_status == "replaced" and old.filled_qty == 100
    assert [u.event for u in e.take_events()][-2:] == [OrderEvent.REPLACED, OrderEvent.ACCEPTED]
    feed(e, bars([(96, 96, 96, 96, 10_000)], start=m(1)))
    assert fills(e, o) == [(Decimal(100), Decimal(98), MON)] and fills(e, n) == [(Decimal(200), Decimal(96), m(1))]


def test_replace_after_fill_is_refused_and_bad_replace_keeps_original():
    e = engine(cash="10000", fill_at="bar")
    o = e.submit(buy(10), to_ns(MON))
    feed(e, bars([(100, 100, 100, 100, 10_000)]))
    assert reason(lambda: e.replace(o.id, to_ns(m(1)), qty=20)) == "not_replaceable"
    w = e.submit(buy(10, type="limit", limit_price="90"), to_ns(m(1)))
    assert reason(lambda: e.replace(w.id, to_ns(m(1)), qty=1000)) == "insufficient_buying_power"
    assert e.order(w.id).status is OrderStatus.ACCEPTED
    assert e.replace(w.id, to_ns(m(1)), qty=100).status is OrderStatus.ACCEPTED   # its own reservation is released first
    with pytest.raises(InvalidOrder): e.replace(e.submit(buy(1, type="limit", limit_price="90"), to_ns(m(1))).id, to_ns(m(1)), stop_price=Decimal(1))


def test_repeated_client_key_never_creates_a_second_order():
    e = engine()
    r = buy(5, type="limit", limit_price="90", client_key="same")
    a, b = e.submit(r, to_ns(MON)), e.submit(buy(7, client_key="same"), to_ns(m(1)))
    assert a.id == b.id and len(e.orders) == 1 and b.qty == 5


# ---------------------------------------------------------------- settlement, GFV, P&L
def test_t_plus_1_settlement_over_weekend():
    e = engine(fill_at="bar"); hold(e, 10, 90)
    e.submit(sell(10), to_ns(FRI))
    feed(e, bars([(100, 100, 100, 100, 10_000)], start=FRI))
    assert e.account.unsettled_cash == Decimal(1000) and e.account.settled_cash == e.account.cash - 1000
    e.on_time(to_ns(datetime(2026, 3, 8, 12, tzinfo=UTC)))            # Sunday: still unsettled
    assert e.account.unsettled_cash == 1000
    e.on_time(to_ns(datetime(2026, 3, 9, 13, 30, tzinfo=UTC)))        # Monday open
    assert e.account.unsettled_cash == 0 and e.account.realized_pl == Decimal(100)


def test_good_faith_violation_detected_in_cash_account_only():
    for kind, expected in (("cash", 1), ("margin", 0)):
        e = engine(cash="1900", account_type=kind, fill_at="bar"); hold(e, 10, 90)   # 1000 settled cash left
        e.submit(sell(10), to_ns(MON))
        feed(e, bars([(100, 100, 100, 100, 10_000)]))                    # +1000 unsettled
        e.submit(buy(19), to_ns(m(1)))                                   # 1900: 1000 settled + 900 unsettled
        feed(e, bars([(100, 100, 100, 100, 10_000)], start=m(1)))
        e.submit(sell(19), to_ns(m(2)))
        feed(e, bars([(101, 101, 101, 101, 10_000)], start=m(2)))
        assert len(e.account.gfvs) == expected
        assert e.account.settled_cash + e.account.unsettled_cash == e.account.cash


def test_day_trade_counting_optional():
    for count, expected in ((True, 1), (False, None)):
        e = engine(fill_at="bar", count_day_trades=count)
        e.submit(buy(10), to_ns(MON)); feed(e, bars([(100, 100, 100, 100, 10_000)]))
        e.submit(sell(10), to_ns(m(1))); feed(e, bars([(101, 101, 101, 101, 10_000)], start=m(1)))
        assert e.account.snapshot(session=ST.index(to_ns(MON))).day_trade_count == expected


# ---------------------------------------------------------------- fill modes, dry run
def test_fill_modes_precedence_and_behaviour():
    e = engine(fill_at="bar")
    e.set_fill_mode("never")
    e.set_fill_mode("immediate", key="XYZ")
    e.set_fill_mode("partial:0.5", key="half")
    e.set_fill_mode("delayed:1", key="late")
    a = e.submit(buy(10, type="limit", limit_price="95"), to_ns(MON))
    h = e.submit(buy(10, client_key="half", type="limit", limit_price="95"), to_ns(MON))
    d = e.submit(buy(10, client_key="late"), to_ns(MON))
    n = e.submit(OrderRequest("NOF", "buy", qty=1), to_ns(MON))
    assert e.order(a.id).status is OrderStatus.FILLED and fills(e, a)[0][1] == Decimal(95)
    assert e.order(h.id).filled_qty == 5
    feed(e, bars([(100, 100, 100, 100, 10_000)] * 3))
    assert fills(e, d) == [(Decimal(10), Decimal(100), m(1))]
    assert e.order(h.id).filled_qty == 5 and e.order(n.id).status is OrderStatus.ACCEPTED
    with pytest.raises(SwingtraderError): FillMode.parse("partial:2")


def test_dry_run_previews_without_placing():
    c = engine(cash="1000", account_type="cash")
    ok = c.dry_run(buy(5, type="limit", limit_price="100"), to_ns(MON))
    assert ok.ok and ok.estimated_cost == Decimal(500) and ok.buying_power_effect == Decimal(-500)
    bad = c.dry_run(buy(50, type="limit", limit_price="100"), to_ns(MON))
    assert not bad.ok and bad.errors[0].startswith("insufficient_buying_power")
    assert c.orders == {} and c.reserved == 0


def test_early_close_expiry_and_gtc_fills_next_day():
    e = engine(fill_at="bar")
    t = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)                   # day after Thanksgiving, closes 13:00 NY
    d = e.submit(buy(1, type="limit", limit_price="50"), to_ns(t))
    g = e.submit(buy(1, type="limit", limit_price="50", tif="gtc"), to_ns(t))
    feed(e, bars([(49, 49, 48, 49, 1000)], start=datetime(2026, 11, 30, 14, 30, tzinfo=UTC)))
    assert e.order(d.id).status is OrderStatus.EXPIRED and e.order(d.id).updated_at == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert fills(e, g) == [(Decimal(1), Decimal(49), datetime(2026, 11, 30, 14, 30, tzinfo=UTC))]


def test_invariants_after_mixed_activity():
    e = engine(cash="50000", fill_at="bar", commission_per_share="0.01", commission_min="1"); hold(e, 50, 95)
    e.submit(buy(120), to_ns(MON)); e.submit(sell(30, type="limit", limit_price="100.5"), to_ns(MON))
    e.submit(OrderRequest("XYZ", "sell", qty=70), to_ns(m(1)))
    feed(e, bars([(100, 101, 99, 100.5, 800), (100.5, 100.9, 100, 100.6, 5000), (100.6, 100.6, 100.6, 100.6, 5000)]))
    a = e.account
    assert a.equity == a.cash + sum(p.qty * a.mark(s) for s, p in a.positions.items())
    assert a.settled_cash + a.unsettled_cash == a.cash
    assert a.positions["XYZ"].qty == 50 + 120 - 30 - 70
    spent = sum(f.qty * f.price * (1 if f.side is Side.BUY else -1) + f.commission for f in e.fills)
    assert a.cash == Decimal(50000) - 50 * 95 - spent
