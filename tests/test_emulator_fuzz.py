"Hypothesis-generated malformed requests and account-streamer messages: never a 500, never a crashed handler."
from __future__ import annotations
import json

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from emu_support import serve, Client, ws_connect

pytestmark = pytest.mark.timeout(120)

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False), st.text(max_size=12))
json_any = st.recursive(json_leaf, lambda ch: st.one_of(st.lists(ch, max_size=4), st.dictionaries(st.text(max_size=8), ch, max_size=4)), max_leaves=12)
keys = st.sampled_from(["time-in-force", "order-type", "price", "price-effect", "stop-trigger", "value", "value-effect", "legs", "external-identifier", "source"])
leg = st.fixed_dictionaries({}, optional={"instrument-type": st.sampled_from(["Equity", "Future", 3, None]), "symbol": st.one_of(st.sampled_from(["AAPL", "", "ZZZ"]), json_leaf),
                                          "quantity": st.one_of(st.integers(-5, 10**12), st.text(max_size=6), st.floats()), "action": st.sampled_from(["Buy to Open", "Sell to Close", "Explode", 1])})
order_like = st.dictionaries(keys, st.one_of(json_any, st.lists(leg, max_size=3), st.sampled_from(["Day", "GTC", "Limit", "Market", "Notional Market", "Stop", "Debit", "Credit", "1.5", "-3"])), max_size=8)


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("fuzz")) as srv:
        yield Client(srv)


def _alive(c):
    r = c.get("/customers/me/accounts")
    assert r.status_code == 200


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(order_like, json_any))
def test_order_bodies_never_500(c, body):
    raw = json.dumps(body)  # json.dumps, not requests' json=: it also sends Infinity, which Python's parser accepts
    for path in (f"/accounts/{c.acct}/orders", f"/accounts/{c.acct}/orders/dry-run"):
        r = c.post(path, data=raw, headers={"Content-Type": "application/json"})
        assert r.status_code < 500, (body, r.text)
        assert r.status_code in (200, 201) or "error" in r.json()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=64), ctype=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"]),
       path=st.sampled_from(["/oauth/token", "/accounts/{a}/orders", "/accounts/{a}/orders/1", "/_emulator/faults", "/_emulator/clock", "/_emulator/disconnect"]),
       method=st.sampled_from(["POST", "PUT"]))
def test_raw_bodies_never_500(c, raw, ctype, path, method):
    if path.startswith("/_emulator") and method == "PUT": return
    headers = {"Content-Type": ctype} | (c.srv.control_headers if path.startswith("/_emulator") else {})  # past the token check
    r = c.req(method, path.format(a=c.acct), data=raw, headers=headers)
    assert r.status_code < 500, r.text
    if path.startswith("/_emulator") and ctype != "application/json": assert r.status_code == 415, r.text


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-/._%", max_size=40),
       params=st.dictionaries(st.sampled_from(["per-page", "page-offset", "symbol[]", "symbols", "status[]", "start-date", "sort", "symbol"]), st.text(max_size=8), max_size=4))
def test_get_paths_and_params_never_500(c, path, params):
    for p in (f"/accounts/{c.acct}/orders", f"/accounts/{c.acct}/transactions", "/instruments/equities", "/market-metrics", f"/accounts/{c.acct}/{path}", f"/{path}"):
        r = c.get(p, params=params)
        assert r.status_code < 500, (p, params, r.text)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(msgs=st.lists(st.one_of(json_any.map(json.dumps), st.text(max_size=30),
                               st.fixed_dictionaries({"action": st.sampled_from(["connect", "heartbeat", "x", 5, None])},
                                                     optional={"value": json_any, "auth-token": json_any, "request-id": json_any}).map(json.dumps)), min_size=1, max_size=5))
def test_streamer_messages_never_crash(c, msgs):
    ws = ws_connect(c.srv)
    try:
        for m in msgs:
            ws.send(m)
            reply = json.loads(ws.recv())
            assert reply["status"] in ("ok", "error")
    finally:
        ws.close()
    _alive(c)


def test_no_handler_crashed(c):
    _alive(c)
    assert c.state()["errors_logged"] == 0
