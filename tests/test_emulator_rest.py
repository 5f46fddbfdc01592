"tastytrade REST + OAuth + account streamer served by the emulator: every endpoint, error shapes, pagination."
from __future__ import annotations
import json, time
from decimal import Decimal

import pytest, requests

from emu_support import serve, Client, ws_connect, ws_recv_until, UA
from swingtrader.tastytrade.wire import order_from_tt, account_from_tt, position_from_tt, asset_from_tt

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("emu")) as s: yield s


@pytest.fixture
def c(srv):
    srv.emu.faults.__init__()  # reset knobs between tests
    return Client(srv)


def _advance(c, minutes):
    return c.control("clock", {"seconds": minutes * 60})


def test_user_agent_refused_with_nginx_page(srv):
    base = srv.api_url
    for headers in ({"User-Agent": "curl"}, {"User-Agent": ""}, {"User-Agent": "python-requests"}):
        r = requests.get(base + "/customers/me/accounts", headers=headers, timeout=5)
        assert r.status_code == 401 and r.headers["Content-Type"].startswith("text/html")
        assert "401 Authorization Required" in r.text and "nginx" in r.text
    r = requests.post(base + "/oauth/token", json={"grant_type": "refresh_token", "client_secret": "x", "refresh_token": "y"}, headers={"User-Agent": "curl"}, timeout=5)
    assert r.status_code == 401 and "nginx" in r.text


def test_oauth_json_and_form_and_errors(srv):
    base = srv.api_url
    r = requests.post(base + "/oauth/token", json={"grant_type": "refresh_token", "client_secret": "a", "refresh_token": "b", "scope": "read trade"}, headers=UA, timeout=5)
    assert r.status_code == 200
    j = r.json()
    assert j["token_type"] == "Bearer" and j["expires_in"] == 900 and j["access_token"].count(".") == 2 and "data" not in j
    r = requests.post(base + "/oauth/token", data={"grant_type": "refresh_token", "client_secret": "a", "refresh_token": "b", "client_id": "c"}, headers=UA, timeout=5)
    assert r.status_code == 200 and r.json()["access_token"]
    for body in ({"grant_type": "password", "client_secret": "a", "refresh_token": "b"}, {"grant_type": "refresh_token", "client_secret": "a"}):
        r = requests.post(base + "/oauth/token", json=body, headers=UA, timeout=5)
        assert r.status_code in (400, 401) and r.json()["error_code"] == "invalid_grant" and r.json()["error_description"]
    r = requests.post(base + "/oauth/token", data=b"{not json", headers=UA | {"Content-Type": "application/json"}, timeout=5)
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_grant"


def test_missing_invalid_and_expired_bearer(srv):
    base = srv.api_url
    r = requests.get(base + "/customers/me/accounts", headers=UA, timeout=5)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = requests.get(base + "/customers/me/accounts", headers=UA | {"Authorization": "Bearer nope"}, timeout=5)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    srv.emu.faults.token_lifetime_s = 0.3
    try:
        c = Client(srv)
        assert c.get("/customers/me/accounts").status_code == 200
        time.sleep(0.5)
        r = c.get("/customers/me/accounts")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        c.login()
        assert c.get("/customers/me/accounts").status_code == 200
    finally:
        srv.emu.faults.token_lifetime_s = 900


def test_strict_credentials(tmp_path):
    from swingtrader.emulator.core import STRICT_CLIENT_SECRET, STRICT_REFRESH_TOKEN
    with serve(tmp_path, strict=True) as s:
        r = requests.post(s.api_url + "/oauth/token", json={"grant_type": "refresh_token", "client_secret": "wrong", "refresh_token": STRICT_REFRESH_TOKEN}, headers=UA, timeout=5)
        assert r.status_code == 401 and r.json()["error_code"] == "invalid_grant"
        c = Client(s, STRICT_CLIENT_SECRET, STRICT_REFRESH_TOKEN)
        assert c.get("/customers/me/accounts").status_code == 200


def test_accounts_balances_positions(c):
    r = c.get("/customers/me/accounts").json()
    acct = r["data"]["items"][0]
    assert acct["authority-level"] == "owner" and acct["account"]["account-number"] == c.acct
    for k in ("opened-at", "nickname", "account-type-name", "is-closed", "day-trader-status", "is-firm-error", "is-firm-proprietary",
              "is-futures-approved", "margin-or-cash", "is-foreign", "created-at"):
        assert k in acct["account"], k
    b = c.get(f"/accounts/{c.acct}/balances").json()
    assert b["context"] == f"/accounts/{c.acct}/balances"
    bu = c.get(f"/accounts/{c.acct}/balances/USD").json()["data"]
    a = account_from_tt(bu)
    assert a.account_id == c.acct and a.equity > 0 and isinstance(bu["cash-balance"], str)
    sim = c.srv.call(c.srv.emu.broker.account)
    assert a.cash == sim.cash and a.buying_power == sim.buying_power
    assert c.get(f"/accounts/{c.acct}/balances/EUR").status_code == 404
    assert c.get("/accounts/5WT99999/balances").json()["error"]["code"] == "not_permitted"
    p = c.get(f"/accounts/{c.acct}/positions").json()
    assert "items" in p["data"] and p["pagination"]["total-pages"] >= 1


def test_order_lifecycle(c):
    sym = c.symbols()[0]
    q = c.price(sym)
    far = round(q.bid * 0.5, 2)
    r = c.post(f"/accounts/{c.acct}/orders", json=c.order_body(sym, 2, price=far, key="lifecycle-1"))
    assert r.status_code == 201, r.text
    d = r.json()["data"]
    o = d["order"]
    assert isinstance(o["id"], int) and o["external-identifier"] == "lifecycle-1" and o["status"] in ("Live", "Received")
    assert set(d["buying-power-effect"]) >= {"change-in-margin-requirement", "change-in-buying-power", "current-buying-power", "new-buying-power",
                                             "isolated-order-margin-requirement", "is-spread", "impact", "effect"}
    assert set(d["fee-calculation"]) >= {"regulatory-fees", "clearing-fees", "commission", "proprietary-index-option-fees", "total-fees"}
    oid = o["id"]
    got = c.get(f"/accounts/{c.acct}/orders/{oid}").json()["data"]
    assert order_from_tt(got).client_key == "lifecycle-1" and isinstance(got["updated-at"], int) and got["updated-at"] > 0
    live = c.get(f"/accounts/{c.acct}/orders/live").json()["data"]["items"]
    assert oid in [x["id"] for x in live]
    # replace the price
    r = c.req("PUT", f"/accounts/{c.acct}/orders/{oid}", json={"order-type": "Limit", "time-in-force": "Day", "price": str(round(far - 0.01, 2)), "price-effect": "Debit"})
    assert r.status_code == 200, r.text
    new = r.json()["data"]
    assert new["id"] != oid and new["replaces-order-id"] == oid and Decimal(new["price"]) == Decimal(str(round(far - 0.01, 2)))
    old = c.get(f"/accounts/{c.acct}/orders/{oid}").json()["data"]
    assert old["status"] == "Cancelled"
    r = c.req("PUT", f"/accounts/{c.acct}/orders/{new['id']}", json={"order-type": "Market", "time-in-force": "Day"})
    assert r.status_code == 422 and r.json()["error"]["errors"][0]["code"] == "invalid_replace"
    # cancel, then cancel again
    r = c.req("DELETE", f"/accounts/{c.acct}/orders/{new['id']}")
    assert r.status_code == 200 and r.json()["data"]["status"] == "Cancel Requested"
    assert c.get(f"/accounts/{c.acct}/orders/{new['id']}").json()["data"]["status"] == "Cancelled"
    r = c.req("DELETE", f"/accounts/{c.acct}/orders/{new['id']}")
    assert r.status_code == 422 and r.json()["error"]["code"] == "cannot_update_order"
    assert c.req("DELETE", f"/accounts/{c.acct}/orders/999999999").json()["error"]["code"] == "record_not_found"


def test_dry_run_and_preflight_errors(c):
    sym = c.symbols()[1]
    r = c.post(f"/accounts/{c.acct}/orders/dry-run", json=c.order_body(sym, 1, price=round(c.price(sym).bid * 0.9, 2)))
    assert r.status_code == 200, r.text
    d = r.json()["data"]
    assert "id" not in d["order"] and d["order"]["updated-at"] == 0 and d["order"]["status"] == "Received"
    assert d["buying-power-effect"]["change-in-buying-power-effect"] == "Debit" and Decimal(d["buying-power-effect"]["change-in-buying-power"]) > 0
    n_before = len(c.srv.call(c.srv.emu.broker.orders))
    r = c.post(f"/accounts/{c.acct}/orders", json=c.order_body(sym, 1, otype="Market", tif="GTC"))
    e = r.json()["error"]
    assert r.status_code == 422 and e["code"] == "preflight_check_failure" and e["errors"][0]["code"] == "gtc_market_orders_not_supported"
    body = c.order_body(sym, 1, price=10)
    body["price-effect"] = "Credit"
    r = c.post(f"/accounts/{c.acct}/orders", json=body)
    assert r.status_code == 422 and r.json()["error"]["errors"][0]["code"] == "cant_buy_for_credit"
    r = c.post(f"/accounts/{c.acct}/orders", data=b"{oops", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = c.post(f"/accounts/{c.acct}/orders", json=c.order_body("ZZZZZ", 1, price=10))
    assert r.status_code == 422 and r.json()["error"]["code"] == "preflight_check_failure"
    assert len(c.srv.call(c.srv.emu.broker.orders)) >= n_before  # no order from the invalid requests except possibly the stored rejection
    assert not [o for o in c.srv.call(c.srv.emu.broker.orders) if o.symbol == "ZZZZZ" and o.is_open]


def test_history_pagination(c):
    sym = c.symbols()[2]
    low = round(c.price(sym).bid * 0.5, 2)
    ids = [c.post(f"/accounts/{c.acct}/orders", json=c.order_body(sym, 1, price=low, key=f"hist-{i}")).json()["data"]["order"]["id"] for i in range(3)]
    r = c.get(f"/accounts/{c.acct}/orders", params={"per-page": 2, "page-offset": 0, "underlying-symbol": sym}).json()
    pg = r["pagination"]
    assert pg["per-page"] == 2 and pg["total-items"] >= 3 and pg["total-pages"] == -(-pg["total-items"] // 2) and len(r["data"]["items"]) == 2
    seen = []
    for page in range(pg["total-pages"]):
        seen += [x["id"] for x in c.get(f"/accounts/{c.acct}/orders", params={"per-page": 2, "page-offset": page, "underlying-symbol": sym}).json()["data"]["items"]]
    assert set(ids) <= set(seen) and seen == sorted(seen, reverse=True)
    assert c.get(f"/accounts/{c.acct}/orders", params={"per-page": "abc"}).status_code == 400
    for i in ids: c.req("DELETE", f"/accounts/{c.acct}/orders/{i}")


def test_instruments_metrics_quote_token_market_time(c):
    items = c.get("/instruments/equities").json()["data"]["items"]
    assert len(items) >= 1
    e = c.get(f"/instruments/equities/{items[0]['symbol']}").json()["data"]
    for k in ("id", "symbol", "instrument-type", "is-index", "description", "lendability", "market-time-instrument-collection", "is-closing-only",
              "is-options-closing-only", "active", "is-illiquid", "is-etf", "streamer-symbol", "is-fractional-quantity-eligible", "tick-sizes"):
        assert k in e, k
    a = asset_from_tt(e)
    sim_a = c.srv.call(lambda: c.srv.emu.broker.asset(e["symbol"]))
    assert a.fractionable == sim_a.fractionable and a.tick_size == sim_a.tick_size
    sel = c.get("/instruments/equities", params=[("symbol[]", items[0]["symbol"])]).json()["data"]["items"]
    assert [x["symbol"] for x in sel] == [items[0]["symbol"]]
    r = c.get("/instruments/equities/NOPE")
    assert r.status_code == 404 and r.json()["error"]["code"] == "record_not_found"
    m = c.get("/market-metrics", params={"symbols": ",".join(x["symbol"] for x in items[:2])}).json()["data"]["items"]
    assert len(m) == 2 and all(Decimal(x["market-cap"]) > 0 and x["updated-at"] for x in m)
    qt = c.get("/api-quote-tokens").json()["data"]
    assert qt["dxlink-url"] == c.srv.dxlink_url and c.srv.emu.quote_token_ok(qt["token"]) and not c.srv.emu.quote_token_ok("forged")
    s = c.get("/market-time/sessions/current").json()["data"]["items"][0]
    assert s["instrument-collection"] == "Equity" and s["state"] in ("Open", "Closed", "Pre-market", "Extended")
    assert s["state"] == ("Open" if c.state()["market_open"] else s["state"])
    h = c.get("/market-time/equities/holidays").json()["data"]
    assert "2026-04-03" in h["market-holidays"] and "2026-11-27" in h["market-half-days"]


def test_unknown_path_is_json_404(c):
    r = c.get("/accounts/x/y/z/none")
    assert r.status_code == 404 and r.json()["error"]["code"]


def test_account_streamer_connect_heartbeat_and_fill(c):
    srv = c.srv
    ws = ws_connect(srv)
    try:
        ws.send(json.dumps({"action": "heartbeat", "auth-token": f"Bearer {c.token}", "request-id": 1}))
        m = json.loads(ws.recv())
        assert m["status"] == "error" and m["message"] == "not-implemented"
        ws.send(json.dumps({"action": "connect", "value": [c.acct], "auth-token": "Bearer bad", "request-id": 2}))
        m = json.loads(ws.recv())
        assert m["status"] == "error" and m["message"] == "failed" and m["request-id"] == 2
        ws.send(json.dumps({"action": "connect", "value": c.acct, "auth-token": f"Bearer {c.token}", "request-id": 3, "source": "t"}))
        m = json.loads(ws.recv())
        assert m == {"status": "ok", "action": "connect", "web-socket-session-id": m["web-socket-session-id"], "value": [c.acct], "request-id": 3}
        ws.send(json.dumps({"action": "heartbeat", "auth-token": f"Bearer {c.token}", "request-id": 4}))
        assert json.loads(ws.recv())["request-id"] == 4
        ws.ping(b"x")
        sym = c.symbols()[3]
        r = c.post(f"/accounts/{c.acct}/orders", json=c.order_body(sym, 3, otype="Market", key="streamed-fill"))
        assert r.status_code == 201, r.text
        oid = r.json()["data"]["order"]["id"]
        for _ in range(30):
            if c.get(f"/accounts/{c.acct}/orders/{oid}").json()["data"]["status"] == "Filled": break
            _advance(c, 5)
        m, seen = ws_recv_until(ws, lambda m: m.get("type") == "Order" and m["data"]["id"] == oid and m["data"]["status"] == "Filled", limit=200)
        assert isinstance(m["timestamp"], int) and m["data"]["legs"][0]["fills"] and order_from_tt(m["data"]).filled_qty == 3
        m2, _ = ws_recv_until(ws, lambda m: m.get("type") == "CurrentPosition" and m["data"]["symbol"] == sym, limit=50)
        assert position_from_tt(m2["data"]).qty >= 3
        assert any(x.get("type") == "AccountBalance" for x in seen + [m2]) or ws_recv_until(ws, lambda m: m.get("type") == "AccountBalance")
        pos = c.get(f"/accounts/{c.acct}/positions").json()["data"]["items"]
        assert any(p["symbol"] == sym and p["quantity-direction"] == "Long" for p in pos)
        tx = c.get(f"/accounts/{c.acct}/transactions").json()["data"]["items"]
        t = [x for x in tx if x["order-id"] == oid]
        assert t and t[0]["transaction-type"] == "Trade" and t[0]["value-effect"] == "Debit"
    finally:
        ws.close()


def test_streamer_idle_close(tmp_path):
    with serve(tmp_path, streamer_idle_s=0.5) as s:
        ws = ws_connect(s)
        try:
            ws.settimeout(5)
            from websocket import ABNF
            frame = ws.recv_data(control_frame=True)
            assert frame[0] == ABNF.OPCODE_CLOSE
        finally:
            ws.close()


def test_quote_before_the_first_bar():
    "Before a symbol's first bar ever, emu.quote stands in the reference price (previous close); later the live quote."
    from datetime import date, datetime, timedelta, timezone
    from emu_support import make_broker, make_emulator
    b = make_broker(seed=7, symbols=2, start=date(2026, 3, 2), end=date(2026, 3, 3), minutes=0)
    emu = make_emulator(b)
    sym = b.symbols[0]
    with pytest.raises(Exception): b.latest_quote(sym)  # the simulator has nothing yet
    q = emu.quote(sym)
    ref = float(b.universe.loc[sym, "price"])
    assert q.symbol == sym and q.bid < ref < q.ask and q.ask - q.bid < ref * 0.01 and q.time < b.clock.now()
    assert q.time == datetime(2026, 2, 27, 21, 0, tzinfo=timezone.utc)  # Friday's close: the previous session
    assert emu.quote("NOPE") is None
    b.advance_to(b.clock.now() + timedelta(minutes=2))
    assert emu.quote(sym) == b.latest_quote(sym)

@pytest.mark.parametrize("kind", ["futures", "equity-options", "future-options", "cryptocurrencies"])
def test_non_equity_instruments_are_empty_not_missing(c, kind):
    "The official SDK's MarketData.subscribe looks symbols up in every instrument list; the simulator has equities only."
    r = c.get(f"/instruments/{kind}", params={"symbol[]": "AAPL"})
    assert r.status_code == 200 and r.json()["data"]["items"] == [] and r.json()["pagination"]["total-items"] == 0
    r = c.get(f"/instruments/{kind}/XYZ")
    assert r.status_code == 404 and r.json()["error"]["code"] == "record_not_found"
