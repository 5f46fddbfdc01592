"""The official tastytrade-sdk 1.2.0, unmodified, against the emulator over TLS.

The SDK's own login calls the decommissioned POST /sessions, so the test gets an OAuth access token from
/oauth/token and sets it on the SDK's requests session (a class attribute of tastytrade_sdk.api.RequestsSession):
    session.headers['Authorization'] = f'Bearer {token}'
and makes that session trust the emulator's trustme CA with session.verify = <ca file> (verification stays on).
"""
from __future__ import annotations
from decimal import Decimal

import pytest, requests

from emu_support import serve, UA

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def sdk(tmp_path_factory):
    from tastytrade_sdk import Tastytrade
    from tastytrade_sdk.api import RequestsSession
    with serve(tmp_path_factory.mktemp("sdk"), tls=True) as srv:
        assert srv.api_url.startswith("https://") and srv.ca_file.exists()
        tok = requests.post(srv.api_url + "/oauth/token", json={"grant_type": "refresh_token", "client_secret": "a", "refresh_token": "b"},
                            headers=UA, verify=str(srv.ca_file), timeout=10).json()["access_token"]
        session = RequestsSession._RequestsSession__session
        old = dict(session.headers), session.verify
        session.headers["Authorization"] = f"Bearer {tok}"
        session.verify = str(srv.ca_file)
        import os
        old_env = os.environ.get("REQUESTS_CA_BUNDLE")
        os.environ["REQUESTS_CA_BUNDLE"] = str(srv.ca_file)  # requests prefers this env var over session.verify
        try:
            yield Tastytrade(api_base_url=srv.api_url.removeprefix("https://")).api, srv
        finally:
            session.headers.clear(); session.headers.update(old[0]); session.verify = old[1]
            if old_env is None: os.environ.pop("REQUESTS_CA_BUNDLE", None)
            else: os.environ["REQUESTS_CA_BUNDLE"] = old_env


def test_tls_is_verified(sdk):
    _, srv = sdk
    with pytest.raises(requests.exceptions.SSLError):
        import certifi
        requests.get(srv.api_url + "/customers/me/accounts", headers=UA, timeout=5, verify=certifi.where())  # public trust store: refused


def test_sdk_accounts_balances_positions(sdk):
    api, srv = sdk
    accts = api.get("/customers/me/accounts")["data"]["items"]
    n = accts[0]["account"]["account-number"]
    assert n == srv.account_number
    bal = api.get(f"/accounts/{n}/balances/USD")["data"]
    assert Decimal(bal["net-liquidating-value"]) > 0
    assert "items" in api.get(f"/accounts/{n}/positions")["data"]


def test_sdk_instruments(sdk):
    api, _ = sdk
    items = api.get("/instruments/equities")["data"]["items"]
    sym = items[0]["symbol"]
    one = api.get("/instruments/equities", params=[("symbol[]", sym)])["data"]["items"]
    assert [x["symbol"] for x in one] == [sym]
    assert api.get(f"/instruments/equities/{sym}")["data"]["streamer-symbol"] == sym


def test_sdk_orders(sdk):
    from tastytrade_sdk.api import Unprocessable, NotFound
    api, srv = sdk
    n = srv.account_number
    sym = api.get("/instruments/equities")["data"]["items"][1]["symbol"]
    px = srv.call(lambda: srv.emu.broker.latest_quote(sym)).bid
    body = {"time-in-force": "Day", "order-type": "Limit", "price": f"{px * 0.5:.2f}", "price-effect": "Debit", "external-identifier": "sdk-1",
            "legs": [{"instrument-type": "Equity", "symbol": sym, "quantity": 1, "action": "Buy to Open"}]}
    dry = api.post(f"/accounts/{n}/orders/dry-run", data=body)["data"]
    assert "id" not in dry["order"] and dry["buying-power-effect"]["effect"] == "Debit"
    placed = api.post(f"/accounts/{n}/orders", data=body)["data"]["order"]
    oid = placed["id"]
    assert placed["external-identifier"] == "sdk-1"
    assert oid in [o["id"] for o in api.get(f"/accounts/{n}/orders/live")["data"]["items"]]
    assert api.get(f"/accounts/{n}/orders/{oid}")["data"]["status"] in ("Live", "Received")
    new = api.put(f"/accounts/{n}/orders/{oid}", data={"order-type": "Limit", "time-in-force": "Day", "price": f"{px * 0.49:.2f}", "price-effect": "Debit"})["data"]
    assert new["replaces-order-id"] == oid
    assert api.delete(f"/accounts/{n}/orders/{new['id']}")["data"]["status"] == "Cancel Requested"
    with pytest.raises(Unprocessable) as e:
        api.delete(f"/accounts/{n}/orders/{new['id']}")
    assert e.value.error_code == "cannot_update_order"
    with pytest.raises(Unprocessable) as e:
        api.post(f"/accounts/{n}/orders", data=body | {"order-type": "Market", "time-in-force": "GTC"} | {"price": None})
    assert e.value.error_code == "preflight_check_failure"
    with pytest.raises(NotFound):
        api.get(f"/accounts/{n}/orders/424242424")
