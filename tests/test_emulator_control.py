"The emulator's control API is guarded (token, JSON only, bounded moves) and the server survives hostile clients (slowloris)."
from __future__ import annotations
import logging, queue, socket, threading, time
from dataclasses import asdict
from datetime import datetime, timedelta

import pytest, requests

from emu_support import serve, Client, make_broker, make_emulator
from swingtrader.clock import SimClock
from swingtrader.emulator import core
from swingtrader.emulator.core import Faults
from swingtrader.emulator.app import run_emulator, CONTROL_HEADER

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("control")) as s: yield s


@pytest.fixture
def c(srv):
    srv.emu.faults.__init__(); srv.emu.apply_fill_mode()
    return Client(srv)


def _url(c, what): return f"{c.base}/_emulator/{what}"


def _wait_for(pred, what, bound=60.0):
    "Poll `pred` until true; fail after a generous bound (no timing is asserted)."
    end = time.monotonic() + bound
    while time.monotonic() < end:
        if pred(): return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


# -- token -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method,what", [("GET", "state"), ("POST", "clock"), ("POST", "faults"), ("POST", "disconnect")])
def test_every_control_route_needs_the_token(c, method, what):
    for headers in ({}, {CONTROL_HEADER: "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {c.token}"}):
        r = requests.request(method, _url(c, what), json={}, headers=headers, timeout=10)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["error"]["code"] == "unauthorized" and CONTROL_HEADER in r.json()["error"]["message"]
    for headers in (c.srv.control_headers, {"Authorization": f"Bearer {c.srv.control_token}"}):
        assert requests.request(method, _url(c, "state" if method == "GET" else what), json={}, headers=headers, timeout=10).status_code == 200


def test_token_is_new_per_start(tmp_path):
    tokens = []
    for _ in range(2):
        with serve(tmp_path) as s:
            tokens.append(s.control_token)
            assert len(s.control_token) >= 24 and s.control_token not in repr(s) and s.control_token not in repr(s.emu)
    assert tokens[0] != tokens[1]


# -- JSON only ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ctype,body", [("text/plain", '{"seconds": 600}'), ("application/x-www-form-urlencoded", "seconds=600"),
                                        ("multipart/form-data; boundary=x", "--x--"), (None, '{"seconds": 600}')])
def test_control_takes_json_only(c, ctype, body):
    before = c.state()["now"]
    headers = dict(c.srv.control_headers) | ({"Content-Type": ctype} if ctype else {})
    r = requests.post(_url(c, "clock"), data=body.encode(), headers=headers, timeout=10)
    assert r.status_code == 415 and r.headers["Content-Type"].startswith("application/json"), r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert c.state()["now"] == before


# -- clock bounds ------------------------------------------------------------------------------------------------

def test_clock_past_the_calendar_is_refused_and_changes_nothing(c):
    before = c.state()
    r = requests.post(_url(c, "clock"), json={"to": "9999-12-31T23:59:59+00:00"}, headers=c.srv.control_headers, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_clock"
    assert "past the market calendar" in r.json()["error"]["message"] and before["clock_limit"] in r.json()["error"]["message"]
    after = c.state()
    assert after["now"] == before["now"] and after["errors_logged"] == 0
    assert c.get("/customers/me/accounts").status_code == 200
    assert c.get("/market-time/sessions/current").status_code == 200


def test_clock_moves_inside_the_calendar(c):
    now = datetime.fromisoformat(c.state()["now"])
    assert datetime.fromisoformat(c.control("clock", {"seconds": 60})["now"]) == now + timedelta(seconds=60)
    to = (now + timedelta(minutes=5)).isoformat()
    assert c.control("clock", {"to": to})["now"] == to


HOSTILE = [
    ("clock", '{"to": "9999-12-31T23:59:59+00:00"}'), ("clock", '{"to": "0001-01-01T00:00:00"}'), ("clock", '{"to": "tomorrow"}'),
    ("clock", '{"to": 12}'), ("clock", '{"to": null}'), ("clock", '{"seconds": 1e308}'), ("clock", '{"seconds": 1e400}'),
    ("clock", '{"seconds": -60}'), ("clock", '{"seconds": NaN}'), ("clock", '{"seconds": Infinity}'), ("clock", '{"seconds": "60"}'),
    ("clock", '{"seconds": true}'), ("clock", '{"seconds": 60, "to": "2026-03-02T15:00:00Z"}'), ("clock", '{"minutes": 5}'),
    ("clock", '[1, 2]'), ("clock", '"x"'), ("clock", '{"seconds": 6'), ("clock", b'\xff\xfe'),
    ("faults", '{"latency_ms": 1e300}'), ("faults", '{"latency_ms": 10, "token_lifetime_s": -1}'), ("faults", '{"fill_mode": "garbage"}'),
    ("faults", '{"fill_mode": "partial:7", "rate_limit_next": 3}'), ("faults", '{"ws_delay_ms": Infinity}'), ("faults", '{"retry_after": 1e9}'),
    ("faults", '{"rate_limit_every": 1e30}'), ("faults", '{"__class__": 1}'), ("faults", '[]'), ("disconnect", '[]'),
]


def test_hostile_control_requests_leave_it_serving(c, caplog):
    before = c.state()
    with caplog.at_level(logging.WARNING, logger="swingtrader.emulator"):
        for what, raw in HOSTILE:
            r = requests.post(_url(c, what), data=raw.encode() if isinstance(raw, str) else raw,
                              headers=c.srv.control_headers | {"Content-Type": "application/json"}, timeout=10)
            assert 400 <= r.status_code < 500 and "error" in r.json(), (what, raw, r.status_code, r.text)
        time.sleep(0.3)  # let the sync loop run a few ticks on whatever state the requests left (there must be none)
    after = c.state()
    assert after["now"] >= before["now"] and after["now"] < after["clock_limit"]
    assert after["faults"] == asdict(Faults()) and after["errors_logged"] == 0
    # normal REST still answers
    for path in ("/customers/me/accounts", f"/accounts/{c.acct}/balances", f"/accounts/{c.acct}/positions", "/market-time/sessions/current"):
        assert c.get(path).status_code == 200, path
    r = c.post(f"/accounts/{c.acct}/orders/dry-run", json=c.order_body(c.symbols()[0], price=1))
    assert r.status_code in (200, 201, 422), r.text
    # one warning line per refused request, never a traceback, nothing else logged
    ours = [rec for rec in caplog.records if rec.name == "swingtrader.emulator"]
    assert len(ours) == len(HOSTILE), [rec.getMessage() for rec in ours]
    assert all(rec.levelno == logging.WARNING and rec.exc_info is None and "refused" in rec.getMessage() for rec in ours)


def test_scaled_clock_is_frozen_at_the_calendar_end():
    emu = make_emulator(make_broker())
    emu.clock = SimClock(emu.clock_limit() - timedelta(seconds=30), mode="scaled", speed=3600)  # the emulator's own clock runs out
    with serve(emu=emu) as s:
        c = Client(s)
        _wait_for(lambda: c.state()["clock_mode"] == "manual", "the scaled clock frozen at the calendar's end")
        st = c.state()
        assert st["now"] >= st["clock_limit"]
        assert c.get("/market-time/sessions/current").status_code == 200
        assert c.get("/customers/me/accounts").status_code == 200
        r = requests.post(_url(c, "clock"), json={"seconds": 3600}, headers=s.control_headers, timeout=10)
        assert r.status_code == 400 and c.state()["errors_logged"] == 0


def test_run_emulator_prints_the_control_token(capsys):
    got, stop = queue.Queue(), threading.Event()
    th = threading.Thread(target=run_emulator, kwargs=dict(port=0, speed=60, seed=3, symbols=2, days=1, stop=stop, on_ready=got.put), daemon=True)
    th.start()
    s = got.get(timeout=60)
    try:
        out = capsys.readouterr().out
        assert f"control API token (header {CONTROL_HEADER}): {s.control_token}" in out
        assert requests.get(f"{s.api_url}/_emulator/state", headers=s.control_headers, timeout=10).status_code == 200
    finally:
        stop.set(); th.join(60)
    assert not th.is_alive()


# -- slowloris ---------------------------------------------------------------------------------------------------

def _closed_by_server(sock, trickle:bytes|None=None, bound=60.0) -> bool:
    "Keep `sock` open (sending `trickle` every 0.2 s) until the server closes it; True if it did within `bound`."
    sock.settimeout(0.2)
    end = time.monotonic() + bound
    while time.monotonic() < end:
        try:
            if trickle: sock.sendall(trickle)
            if sock.recv(4096) == b"": return True
        except socket.timeout: continue
        except (ConnectionResetError, BrokenPipeError): return True
    return False


@pytest.fixture
def slow_srv():
    with serve(header_timeout=1.0) as s: yield s


def _connect(s) -> socket.socket:
    return socket.create_connection(("127.0.0.1", s.port), timeout=10)


def test_header_timeout_drops_a_client_that_trickles_headers(slow_srv):
    sock = _connect(slow_srv)
    sock.sendall(b"GET /customers/me HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    assert _closed_by_server(sock, trickle=b"X")     # one header byte every 0.2 s, never the blank line
    sock.close()


def test_header_timeout_drops_a_client_that_sends_nothing(slow_srv):
    sock = _connect(slow_srv)
    assert _closed_by_server(sock)
    sock.close()


def test_header_timeout_applies_to_each_keep_alive_request(slow_srv):
    sock = _connect(slow_srv)
    sock.sendall(b"GET /_emulator/state HTTP/1.1\r\nHost: 127.0.0.1\r\n" + f"{CONTROL_HEADER}: {slow_srv.control_token}\r\n\r\n".encode())
    sock.settimeout(10)
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET /_emulator/state HTTP/1.1\r\n")    # the second request never finishes its headers
    assert _closed_by_server(sock, trickle=b"Y")
    sock.close()


def test_slow_body_is_refused(slow_srv, monkeypatch):
    monkeypatch.setattr(core, "BODY_TIMEOUT_S", 1.0)
    sock = _connect(slow_srv)
    head = (f"POST /_emulator/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{CONTROL_HEADER}: {slow_srv.control_token}\r\nContent-Length: 100\r\n\r\n").encode()
    sock.sendall(head + b'{"seconds"')
    sock.settimeout(60)
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(65536)
        if not chunk: break
        reply += chunk
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    sock.close()


def test_many_slow_connections_do_not_stop_normal_requests(slow_srv):
    socks = []
    try:
        for _ in range(200):
            s = _connect(slow_srv); s.sendall(b"GET /customers/me HTTP/1.1\r\nHost: 127.0.0.1\r\n"); socks.append(s)
        c = Client(slow_srv)   # a fresh connection per request below, so each has the whole header budget
        for _ in range(20):
            r = requests.get(f"{c.base}/customers/me/accounts", headers=dict(c.s.headers), timeout=30)
            assert r.status_code == 200
        assert all(_closed_by_server(s) for s in socks)   # and every slow one was dropped
    finally:
        for s in socks: s.close()


# -- logs: no traceback floods ---------------------------------------------------------------------------------

def test_malformed_http_is_one_warning_line_without_traceback(slow_srv, caplog):
    raws = [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x00\x05hello", b"POST /_emulator/clock HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]
    with caplog.at_level(logging.DEBUG):
        for raw in raws:
            sock = _connect(slow_srv); sock.sendall(raw); sock.settimeout(30)
            assert sock.recv(100).startswith(b"HTTP/1."), raw[:30]
            sock.close()
        assert Client(slow_srv).get("/customers/me/accounts").status_code == 200
    recs = [r for r in caplog.records if r.name.startswith(("swingtrader", "aiohttp"))]
    assert all(r.exc_info is None and r.levelno <= logging.WARNING and len(r.getMessage()) < 400 for r in recs), \
        [(r.name, r.levelname, r.getMessage()[:100]) for r in recs if r.exc_info or r.levelno > logging.WARNING]


def test_a_failing_handler_logs_its_traceback_once(c, caplog, monkeypatch):
    def boom(*a, **kw): raise RuntimeError("positions exploded")
    monkeypatch.setattr(c.srv.emu.broker, "positions", boom)
    before = c.state()["errors_logged"]
    with caplog.at_level(logging.WARNING, logger="swingtrader.emulator"):
        codes = [c.get(f"/accounts/{c.acct}/positions").status_code for _ in range(3)]
    monkeypatch.undo()
    assert codes == [400, 400, 400] and c.state()["errors_logged"] == before + 3
    ours = [r for r in caplog.records if r.name == "swingtrader.emulator"]
    assert [bool(r.exc_info) for r in ours] == [True, False, False] and "positions exploded" in ours[-1].getMessage()
    assert c.get(f"/accounts/{c.acct}/positions").status_code == 200


def test_websockets_outlive_the_header_timeout(slow_srv):
    "The header timeout bounds reading a request's headers, not an upgraded websocket (a request in progress)."
    import json
    from emu_support import ws_connect
    c = Client(slow_srv)
    ws = ws_connect(slow_srv, timeout=10)
    try:
        for _ in range(3):
            ws.send(json.dumps({"action": "heartbeat", "auth-token": c.token, "value": ""}))
            assert json.loads(ws.recv())["status"] in ("ok", "error")
            time.sleep(1.0)   # three times the 1 s header timeout in all: the socket must still be served
        ws.send(json.dumps({"action": "heartbeat", "auth-token": c.token}))
        assert json.loads(ws.recv())["status"] in ("ok", "error")
    finally:
        ws.close()
