"swingtrader.tastytrade.wire against captured tastytrade payloads (tests/fixtures/tastytrade, copied from the shared fixture set; see SOURCES.txt)."
from __future__ import annotations
import json
from decimal import Decimal
from pathlib import Path
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings, strategies as st

from swingtrader.models import OrderStatus, Side, OrderType, TimeInForce, OrderRequest, Order, Position, Account
from swingtrader.broker import OrderRejected, AuthError
from swingtrader.tastytrade.wire import *
from swingtrader.tastytrade.wire import TT_STATUS

FIX = Path(__file__).parent / "fixtures" / "tastytrade"
def load(name): return json.loads((FIX / name).read_text())


def test_filled_notification():
    m = load("account_streamer_order_filled_notification.json")
    o = order_from_tt(m["data"])
    assert (o.id, o.status, o.broker_status, o.filled_qty, o.avg_fill_price, o.symbol, o.side) == ("270602", OrderStatus.FILLED, "Filled", Decimal(1), Decimal("1.0"), "AAPL", Side.BUY)
    assert o.updated_at == datetime.fromtimestamp(1748448002.553, timezone.utc)
    f = fills_from_tt(m["data"])[0]
    assert f.fill_id == "2_TW::TEST_A1::20250528.135-TEST_FILL" and f.time == tt_time("2025-05-28T16:00:01.953+00:00")


@pytest.mark.parametrize("name,status,otype,tif", [("rest_get_orders_stop_limit_live_paginated.json", OrderStatus.ACCEPTED, OrderType.STOP_LIMIT, TimeInForce.GTC),
                                                   ("rest_get_orders_limit_gtd_received_paginated.json", OrderStatus.ACCEPTED, OrderType.LIMIT, TimeInForce.GTC)])
def test_paginated_orders(name, status, otype, tif):
    d = load(name)
    o = order_from_tt(d["data"]["items"][0])
    assert (o.status, o.type, o.tif, o.limit_price, o.qty) == (status, otype, tif, Decimal("4.0"), Decimal(1))
    assert d["pagination"]["total-pages"] == 1


def test_post_order_responses():
    o = order_from_tt(load("rest_post_order_response_routed.json")["data"]["order"])
    assert (o.status, o.broker_status, o.type) == (OrderStatus.ACCEPTED, "Routed", OrderType.MARKET)
    d = load("rest_post_order_response_with_bp_and_fees.json")["data"]
    bp, fees = preview_amounts(d)
    assert bp == Decimal("-1.001") and fees == Decimal("0.001")
    # what we emit has the same keys as the capture
    ours = bp_effect_to_tt(Decimal("1000000.0"), Decimal("-1.001"), Decimal("1.0"))
    assert set(ours) == set(d["buying-power-effect"])
    assert {k: ours[k] for k in ("change-in-buying-power", "change-in-buying-power-effect", "current-buying-power", "impact", "effect", "is-spread")} == \
           {k: d["buying-power-effect"][k] for k in ("change-in-buying-power", "change-in-buying-power-effect", "current-buying-power", "impact", "effect", "is-spread")}
    fc = fees_to_tt(clearing=Decimal("0.001"))
    assert {k: v for k, v in d["fee-calculation"].items() if not k.endswith("breakdown")} == fc


def test_balances_and_positions():
    b = load("rest_get_balances_sandbox_single_object.json")["data"]
    a = account_from_tt(b)
    assert a.account_id == "5WZ81257" and a.equity == 0 and a.currency == "USD"
    ours = balance_to_tt(Account("5WT1", Decimal(1), Decimal(1), Decimal(1), Decimal(1)), at=datetime(2025, 5, 13, tzinfo=timezone.utc))
    required = {"cash-balance", "net-liquidating-value", "equity-buying-power", "derivative-buying-power", "day-trading-buying-power", "cash-available-to-withdraw",
                "available-trading-funds", "margin-equity", "maintenance-requirement", "maintenance-excess", "maintenance-call-value", "reg-t-call-value",
                "reg-t-margin-requirement", "day-trading-call-value", "day-equity-call-value", "day-trade-excess", "pending-cash", "pending-cash-effect",
                "long-equity-value", "short-equity-value", "long-derivative-value", "short-derivative-value", "long-futures-value", "short-futures-value",
                "long-futures-derivative-value", "short-futures-derivative-value", "long-margineable-value", "short-margineable-value",
                "futures-margin-requirement", "futures-overnight-margin-requirement", "futures-intraday-margin-requirement", "long-cryptocurrency-value",
                "short-cryptocurrency-value", "cryptocurrency-margin-requirement", "unsettled-cryptocurrency-fiat-amount", "unsettled-cryptocurrency-fiat-effect",
                "effective-cryptocurrency-buying-power", "closed-loop-available-balance", "equity-offering-margin-requirement", "long-bond-value",
                "bond-margin-requirement", "used-derivative-buying-power", "pending-margin-interest", "snapshot-date", "updated-at",
                "cash-settle-balance", "margin-settle-balance", "total-settle-balance", "account-number"}
    assert required <= set(ours)
    assert set(b) - set(ours) <= {"fixed-income-security-margin-requirement"} | set()  # every captured key is emitted
    ps = [position_from_tt(p) for p in load("rest_get_positions.json")["data"]["items"]]
    assert [(p.symbol, p.qty, p.avg_entry_price) for p in ps] == [("AAPL", Decimal(1), Decimal("1.0")), ("TQQQ", Decimal(742), Decimal("52.73"))]
    ours = position_to_tt(Position("AAPL", Decimal(1), Decimal("1.0")), "5WT1")
    assert set(load("rest_get_positions.json")["data"]["items"][0]) <= set(ours)


def test_errors_and_quote_token():
    e = error_from_tt(422, load("rest_error_preflight_check_failure.json"))
    assert isinstance(e, OrderRejected) and e.reason.startswith("gtc_market_orders_not_supported")
    assert isinstance(error_from_tt(401, load("rest_error_invalid_credentials.json")), AuthError)
    e = error_from_tt(403, load("rest_error_not_permitted.json"))
    assert "not_permitted" in str(e)
    assert preflight_failure(("gtc_market_orders_not_supported", "GTC/GTD Market orders are not supported.")).body() == load("rest_error_preflight_check_failure.json")
    qt = load("rest_get_api_quote_tokens_sandbox.json")
    assert set(qt["data"]) == {"dxlink-url", "level", "token"}


def test_our_order_json_matches_capture_keys():
    cap = load("account_streamer_order_filled_notification.json")["data"]
    o = order_from_tt(cap)
    fills = fills_from_tt(cap)
    ours = order_to_tt(o, "5WX06827", id=270602, fills=fills, action="Buy to Open")
    minimum = {"id", "account-number", "time-in-force", "order-type", "underlying-symbol", "underlying-instrument-type", "status", "cancellable",
               "editable", "edited", "updated-at", "legs", "size", "received-at", "terminal-at"}
    assert minimum <= set(ours) and set(cap["legs"][0]) <= set(ours["legs"][0]) and set(cap["legs"][0]["fills"][0]) <= set(ours["legs"][0]["fills"][0])
    assert order_from_tt(ours) == o


def test_every_status_string():
    for s, st_ in TT_STATUS.items():
        assert tt_status(s) is st_
        o = Order("1", "k", "AAPL", Side.BUY, OrderType.LIMIT, TimeInForce.DAY, tt_status(s), qty=Decimal(1), limit_price=Decimal(1), broker_status=s)
        assert order_from_tt(order_to_tt(o, "A", id=1)).status is o.status


@settings(max_examples=150, deadline=None)
@given(side=st.sampled_from(["buy", "sell"]), kind=st.sampled_from(["market", "limit", "stop", "stop_limit", "notional"]),
       qty=st.decimals(min_value=1, max_value=10000, places=0), px=st.decimals(min_value="0.01", max_value=5000, places=2),
       tif=st.sampled_from(["day", "gtc"]), pos=st.decimals(min_value=-100, max_value=100, places=0))
def test_order_body_round_trip(side, kind, qty, px, tif, pos):
    kw = {"market": {}, "limit": {"limit_price": px}, "stop": {"stop_price": px}, "stop_limit": {"stop_price": px, "limit_price": px}, "notional": {}}[kind]
    if kind == "notional": req = OrderRequest("AAPL", side, notional=px)
    else: req = OrderRequest("AAPL", side, qty=qty, type=kind, tif=tif if kind != "market" else "day", **kw)
    body = json.loads(json.dumps(order_body(req, pos)))
    back, action = order_request_from_tt(body)
    assert back == req
    assert action in ("Buy to Open", "Buy to Close", "Sell to Open", "Sell to Close") and action.startswith(side.title())
