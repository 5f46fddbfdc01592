"Every fault knob of the emulator does what it says."
from __future__ import annotations
import json, time

import pytest, requests

from emu_support import serve, Client, ws_connect

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("faults")) as s: yield s


@pytest.fixture
def c(srv):
    srv.emu.faults.__init__()
    srv.emu.apply_fill_mode()
    return Client(srv)


def test_latency(c):
    c.control("faults", {"latency_ms": 300})
    t = time.perf_counter(); r = c.get("/customers/me/accounts"); dt = time.perf_counter() - t
    assert r.status_code == 200 and dt >= 0.3
    c.control("faults", {"latency_ms": 0})


def test_rate_limit_next_n(c):
    c.control("faults", {"rate_limit_next": 2, "retry_after": 3})
    codes = [c.get("/customers/me/accounts") for _ in range(3)]
    assert [r.status_code for r in codes] == [429, 429, 200]
    assert codes[0].headers["Retry-After"] == "3" and codes[0].json()["error"]["code"] == "too_many_requests"


def test_rate_limit_every_nth(c):
    c.control("faults", {"rate_limit_every": 3})
    codes = [c.get("/customers/me/accounts").status_code for _ in range(9)]
    c.control("faults", {"rate_limit_every": 0})
    assert codes.count(429) == 3 and codes.count(200) == 6


def test_server_error_burst(c):
    c.control("faults", {"server_error_next": 2})
    rs = [c.get("/customers/me/accounts") for _ in range(3)]
    assert [r.status_code for r in rs] == [503, 503, 200] and rs[0].json()["error"]["code"] == "service_unavailable"


def test_token_lifetime(c):
    c.control("faults", {"token_lifetime_s": 1})
    j = c.login()
    assert j["expires_in"] == 1
    time.sleep(1.2)
    assert c.get("/customers/me/accounts").status_code == 401


def _connected(c):
    ws = ws_connect(c.srv)
    ws.send(json.dumps({"action": "connect", "value": [c.acct], "auth-token": f"Bearer {c.token}", "request-id": 1}))
    assert json.loads(ws.recv())["status"] == "ok"
    return ws


def test_ws_drop_rate(c):
    ws = _connected(c)
    try:
        c.control("faults", {"ws_drop_rate": 1.0})
        ws.settimeout(0.7)
        ws.send(json.dumps({"action": "heartbeat", "auth-token": f"Bearer {c.token}", "request-id": 2}))
        import websocket
        with pytest.raises(websocket.WebSocketTimeoutException): ws.recv()
        c.control("faults", {"ws_drop_rate": 0.0})
        ws.settimeout(5)
        ws.send(json.dumps({"action": "heartbeat", "auth-token": f"Bearer {c.token}", "request-id": 3}))
        assert json.loads(ws.recv())["request-id"] == 3
    finally: ws.close()


def test_ws_delay(c):
    ws = _connected(c)
    try:
        c.control("faults", {"ws_delay_ms": 400})
        t = time.perf_counter()
        ws.send(json.dumps({"action": "heartbeat", "auth-token": f"Bearer {c.token}", "request-id": 9}))
        assert json.loads(ws.recv())["request-id"] == 9 and time.perf_counter() - t >= 0.4
    finally: ws.close()


def test_forced_disconnect(c):
    from websocket import ABNF
    ws = _connected(c)
    try:
        assert c.control("disconnect")["closed"] >= 1
        op, frame = ws.recv_data_frame(control_frame=True)
        assert op == ABNF.OPCODE_CLOSE and int.from_bytes(frame.data[:2], "big") == 1012
    finally: ws.close()


def test_disconnect_every(c):
    from websocket import ABNF
    c.control("faults", {"disconnect_every_s": 0.3})
    try:
        for _ in range(2):  # closed with 1012 after ~0.3 s; a new connection works, and is closed again
            ws = _connected(c)
            try:
                ws.settimeout(5)
                op, frame = ws.recv_data_frame(control_frame=True)
                assert op == ABNF.OPCODE_CLOSE and int.from_bytes(frame.data[:2], "big") == 1012
            finally: ws.close()
        assert c.state()["faults"]["disconnect_every_s"] == 0.3
    finally:
        c.control("faults", {"disconnect_every_s": 0})


def _place_market(c, sym, key):
    r = c.post(f"/accounts/{c.acct}/orders", json=c.order_body(sym, 1, otype="Market", key=key))
    return r


def test_fill_mode_never_and_immediate(c):
    syms = c.symbols()
    c.control("faults", {"fill_mode": "never"})
    r = _place_market(c, syms[0], "fm-never")
    assert r.status_code == 201, r.text
    oid = r.json()["data"]["order"]["id"]
    c.control("clock", {"seconds": 600})
    assert c.get(f"/accounts/{c.acct}/orders/{oid}").json()["data"]["status"] in ("Live", "Received")
    c.req("DELETE", f"/accounts/{c.acct}/orders/{oid}")
    c.control("faults", {"fill_mode": "immediate"})
    r = _place_market(c, syms[1], "fm-immediate")
    oid = r.json()["data"]["order"]["id"]
    c.control("clock", {"seconds": 1})
    assert c.get(f"/accounts/{c.acct}/orders/{oid}").json()["data"]["status"] == "Filled"
    c.control("faults", {"fill_mode": "reject"})
    r = _place_market(c, syms[2], "fm-reject")
    if r.status_code == 201:
        oid = r.json()["data"]["order"]["id"]; c.control("clock", {"seconds": 60})
        assert c.get(f"/accounts/{c.acct}/orders/{oid}").json()["data"]["status"] == "Rejected"
    else:
        assert r.status_code == 422 and r.json()["error"]["code"] == "preflight_check_failure"
    c.control("faults", {"fill_mode": "normal"})


def test_bad_fault_values(c):
    r = requests.post(f"{c.base}/_emulator/faults", json={"nope": 1}, headers=c.srv.control_headers, timeout=5)
    assert r.status_code == 422 and "does not exist" in r.json()["error"]["message"]
    r = requests.post(f"{c.base}/_emulator/faults", json={"ws_drop_rate": 5}, headers=c.srv.control_headers, timeout=5)
    assert r.status_code == 422


def test_control_api_only_on_loopback(tmp_path):
    with serve(tmp_path, host="0.0.0.0", strict=True) as s:     # off loopback: strict only
        base = s.api_url.replace("0.0.0.0", "127.0.0.1")
        assert requests.get(base + "/_emulator/state", headers=s.control_headers, timeout=5).status_code == 404
        assert requests.post(base + "/_emulator/faults", json={"latency_ms": 1}, headers=s.control_headers, timeout=5).status_code == 404
