"""The dashboard's kill switch under attack: a non-browser websocket client that forges `Origin` must press nothing.

Each test starts a real server in a subprocess on 127.0.0.1 (`swingtrader dashboard`, or `panel serve dashboards/app.py`),
then speaks Bokeh's websocket protocol itself (the `websockets` package): ACK, PULL-DOC for the page's models, PATCH-DOC
with `button_click` events for Halt, Resume, Flatten and its confirmation. The ledger's halt state and commands must not
change. A positive control — the same client with this start's token — shows the client really can press buttons, so the
refusals are the server's doing, not a broken client."""
import asyncio, json, os, queue, re, socket, subprocess, sys, threading, time, urllib.error, urllib.parse, urllib.request
from datetime import datetime, timezone
from decimal import Decimal
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
import websockets
from bokeh.util.token import generate_jwt_token, generate_session_id
from click.testing import CliRunner

from swingtrader.cli import main
from swingtrader.ledger import Ledger
from swingtrader.models import Fill, Order, OrderRequest, OrderStatus, OrderType, Side

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboards" / "app.py"
WAIT = 120          # generous: servers share 2 cores with other tests
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
BUTTONS = ("Halt", "Resume", "Flatten", "Confirm flatten: sell everything")
PASSWORD = "a-long-test-password-42"

# -- a ledger the kill switch has halted, with a position to flatten

def make_ledger(data:Path):
    with Ledger(data / "ledger.sqlite") as lg:
        lg.record_equity(Decimal("100000"), Decimal("100000"), at=T0)
        req = OrderRequest("AAPL", Side.BUY, qty=Decimal(10))
        lg.record_intent(None, req)
        lg.record_submitted(req.client_key, Order("o-1", req.client_key, "AAPL", Side.BUY, OrderType.MARKET, req.tif, OrderStatus.FILLED,
                                                  qty=Decimal(10), filled_qty=Decimal(10), avg_fill_price=Decimal(200)))
        lg.record_fill(Fill("f-1", "o-1", "AAPL", Side.BUY, Decimal(10), Decimal(200), T0, req.client_key))
        lg.set_halt("halted", "kill_switch:daily_loss", "daily loss 3.2 % >= 3 %")

def ledger_snapshot(data:Path):
    with Ledger(data / "ledger.sqlite", readonly=True) as lg:
        st = lg.halt_state()
        return (st.state, st.who, st.reason), [(c.kind, c.requested_by) for c in lg.commands(100)]

# -- servers

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def _env(data:Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_", "BOKEH_"))}
    env.update(SWINGTRADER_DATA_DIR=str(data), PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]), **extra)
    return env

class Served:
    "A server subprocess whose output lines are collected by a thread (so waiting on a line never blocks on a pipe)."
    def __init__(self, args, env, cwd):
        self.p = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines, self.q = [], queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
    def _pump(self):
        for line in self.p.stdout: self.lines.append(line); self.q.put(line)
        self.q.put(None)
    def wait_line(self, pattern:str) -> re.Match:
        deadline = time.monotonic() + WAIT
        for line in list(self.lines):
            if (m := re.search(pattern, line)): return m
        while time.monotonic() < deadline:
            try: line = self.q.get(timeout=1)
            except queue.Empty: continue
            if line is None: break
            if (m := re.search(pattern, line)): return m
        pytest.fail(f"server never printed {pattern!r}:\n{self.output()}")
    def output(self) -> str: return "".join(self.lines)
    def stop(self):
        self.p.terminate()
        try: self.p.wait(15)
        except subprocess.TimeoutExpired: self.p.kill(); self.p.wait(5)

def wait_http(url:str, srv:Served):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if srv.p.poll() is not None: pytest.fail(f"server exited ({srv.p.returncode}):\n{srv.output()}")
        try:
            with urllib.request.urlopen(url, timeout=10): return
        except urllib.error.HTTPError: return            # answering (401/403/...) is up
        except OSError: time.sleep(0.3)
    pytest.fail(f"server did not answer:\n{srv.output()}")

def start_dashboard(tmp_path, data, **env_extra):
    port = _free_port()
    srv = Served([sys.executable, "-c", "from swingtrader.cli import main; main()", "dashboard", "--port", str(port)],
                 _env(data, **env_extra), tmp_path)
    url = srv.wait_line(r"open (http://\S+)").group(1)
    wait_http(f"http://127.0.0.1:{port}/login", srv)
    return srv, port, url

@pytest.fixture
def dashboard(tmp_path):
    data = tmp_path / "data"; data.mkdir(); make_ledger(data)
    srv, port, url = start_dashboard(tmp_path, data)
    try: yield data, port, url, srv
    finally: srv.stop()

# -- plain HTTP without following redirects

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw): return None

def http(url:str, data:dict|None=None, cookies:CookieJar|None=None):
    "(status, headers, body) of one request; redirects are returned, not followed."
    handlers = [_NoRedirect()] + ([urllib.request.HTTPCookieProcessor(cookies)] if cookies is not None else [])
    body = None if data is None else urllib.parse.urlencode(data).encode()
    try:
        with urllib.request.build_opener(*handlers).open(urllib.request.Request(url, data=body), timeout=60) as r:
            return r.status, r.headers, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8", "replace")

def to_login(status:int, headers) -> bool:
    "A redirect to the login page (or a plain 401/403)."
    return status in (401, 403) or (status == 302 and urllib.parse.urlparse(headers["Location"]).path.endswith("login"))

def page_token(html_text:str) -> str|None:
    "The signed Bokeh session token a page embeds (what the browser hands to the websocket)."
    m = re.search(r'"token"\s*:\s*"([^"]+)"', html_text) or re.search(r'token=([A-Za-z0-9_.-]{40,})', html_text)
    return m.group(1) if m else None

# -- a non-browser Bokeh client

async def _recv_msg(ws) -> tuple[dict, dict]:
    header = json.loads(await ws.recv()); await ws.recv()          # header, metadata
    content = json.loads(await ws.recv())
    for _ in range(2 * (header.get("num_buffers", 0) or 0)): await ws.recv()   # each buffer: a header, then the bytes
    return header, content

async def _send_msg(ws, msgtype:str, content:dict, n:list):
    n[0] += 1
    for part in ({"msgid": f"atk{n[0]}", "msgtype": msgtype}, {}, content): await ws.send(json.dumps(part))

def _buttons(doc) -> dict[str, str]:
    "label -> model id of every Button in a PULL-DOC reply."
    found = {}
    def walk(x):
        if isinstance(x, dict):
            if x.get("type") == "object" and "Button" in str(x.get("name", "")) and isinstance(x.get("attributes"), dict):
                lab = x["attributes"].get("label")
                if isinstance(lab, str): found[lab] = x["id"]
            for v in x.values(): walk(v)
        elif isinstance(x, list):
            for v in x: walk(v)
    walk(doc)
    return found

def _click(model_id:str) -> dict:
    return {"kind": "MessageSent", "msg_type": "bokeh_event",
            "msg_data": {"type": "event", "name": "button_click", "values": {"type": "map", "entries": [["model", {"id": model_id}]]}}}

async def _attack(ws_url:str, origin:str, bokeh_token:str, cookie:str|None, presses:list[str], until:str|None) -> dict:
    "Connect like a script would, read the page's models, click `presses` (labels) in order; report what happened."
    headers = {"Cookie": cookie} if cookie else None
    try:
        async with websockets.connect(ws_url, subprotocols=["bokeh", bokeh_token], origin=origin, extra_headers=headers,
                                      open_timeout=WAIT, close_timeout=10, max_size=None) as ws:
            n = [0]
            h, _ = await asyncio.wait_for(_recv_msg(ws), WAIT)
            assert h["msgtype"] == "ACK", h
            await _send_msg(ws, "PULL-DOC-REQ", {}, n)
            while True:
                h, content = await asyncio.wait_for(_recv_msg(ws), WAIT)
                if h["msgtype"] == "PULL-DOC-REPLY": break
            buttons = _buttons(content)
            ids = list(buttons.values()) if presses == ["*"] else [buttons[p] for p in presses if p in buttons]
            for i in ids:
                await _send_msg(ws, "PATCH-DOC", {"events": [_click(i)]}, n)
            # Panel runs click callbacks on a later tick: pull the page again until it shows `until` (the message of the
            # last click), so every click has been handled before the caller looks at the ledger
            deadline = time.monotonic() + WAIT
            while True:
                await _send_msg(ws, "PULL-DOC-REQ", {}, n)
                while True:
                    h, content = await asyncio.wait_for(_recv_msg(ws), WAIT)
                    if h["msgtype"] == "PULL-DOC-REPLY": break
                if until is None or until in json.dumps(content): break
                assert time.monotonic() < deadline, f"the page never showed {until!r}"
                await asyncio.sleep(0.2)
            return {"accepted": True, "buttons": buttons, "clicked": len(ids), "doc": content}
    except websockets.exceptions.InvalidStatusCode as e:
        return {"accepted": False, "status": e.status_code}
    except websockets.exceptions.InvalidHandshake as e:
        return {"accepted": False, "status": str(e)}

def attack(port:int, bokeh_token:str, presses:list[str], cookie:str|None=None, origin:str|None=None, until:str|None=None) -> dict:
    return asyncio.run(_attack(f"ws://127.0.0.1:{port}/app/ws", origin or f"http://localhost:{port}", bokeh_token, cookie, presses, until))

def forged_token(**payload) -> str:
    "An unsigned Bokeh session token a script can make up, with any cookies/arguments it likes in its payload."
    return generate_jwt_token(generate_session_id(signed=False), signed=False,
                              extra_payload={"headers": {}, "cookies": payload.get("cookies", {}), "arguments": payload.get("arguments", {})})

def _result_text(doc) -> str:
    return json.dumps(doc)

# -- the attacks

def test_forged_origin_websocket_presses_nothing(dashboard):
    data, port, url, srv = dashboard
    before = ledger_snapshot(data)
    assert before[0][0] == "halted" and before[0][1] == "kill_switch:daily_loss"
    everything = list(BUTTONS) + ["Flatten", "Confirm flatten: sell everything"]
    # 1. no credentials: the page is not served (sent to the login), so no signed session token to harvest
    st, hd, body = http(f"http://127.0.0.1:{port}/app")
    assert to_login(st, hd), (st, dict(hd))
    assert page_token(body) is None
    st, hd, body = http(f"http://127.0.0.1:{port}/app?token=not-the-token")
    assert to_login(st, hd) and page_token(body) is None
    # 2. a made-up session token with a forged Origin (both the allowed 127.0.0.1 and localhost), with and without a
    #    forged (unsigned) login cookie and token argument: the websocket handshake is refused
    for origin in (f"http://localhost:{port}", f"http://127.0.0.1:{port}"):
        for tok, cookie in ((forged_token(), None),
                            (forged_token(cookies={"user": "local"}, arguments={"token": ["guess"]}), "user=local"),
                            (forged_token(), 'user="2|1:0|10:1796434851|4:user|8:bG9jYWw=|00ff"')):
            r = attack(port, tok, everything, cookie=cookie, origin=origin)
            assert r["accepted"] is False, r
    assert ledger_snapshot(data) == before
    assert "Traceback" not in srv.output()

def test_positive_control_and_server_side_checks(dashboard):
    "With this start's token the same client does reach the buttons: the checks behind them still hold."
    data, port, url, srv = dashboard
    token = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["token"][0]
    assert url == f"http://127.0.0.1:{port}/app?token={token}" and len(token) >= 40
    jar = CookieJar()
    st, _, body = http(url, cookies=jar)
    assert st == 200, st
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    assert "user=" in cookie
    # a wrong Origin is refused even with valid credentials
    r = attack(port, page_token(body), ["Halt"], cookie=cookie, origin="http://evil.example:80")
    assert r["accepted"] is False, r
    # the signed session of the page: accepted; the buttons are there
    r = attack(port, page_token(body), ["Resume", "Halt", "Confirm flatten: sell everything"], cookie=cookie,
               origin=f"http://127.0.0.1:{port}", until="Flatten needs its confirmation")
    assert r["accepted"] and {"Halt", "Resume", "Flatten"} <= set(r["buttons"]), r.get("buttons")
    # a Resume click with no name and reason, a Halt with no reason, a confirm without the Flatten step: all refused
    assert ledger_snapshot(data)[0][0] == "halted"
    assert ledger_snapshot(data)[1] == []
    # Flatten, then confirm: one command; the same again at once: refused by the rate limit
    st, _, body = http(url, cookies=jar)
    r = attack(port, page_token(body), ["Flatten", "Confirm flatten: sell everything"] * 2, cookie=cookie, origin=f"http://127.0.0.1:{port}",
               until="one kill-switch action every")
    assert r["clicked"] == 4
    state, cmds = ledger_snapshot(data)
    assert state[:2] == ("halted", "kill_switch:daily_loss")           # the kill switch's halt stands
    assert cmds == [("flatten", "dashboard")], cmds                      # one, not two
    assert token not in srv.output()[srv.output().index("Ctrl-C"):]      # printed once, never logged after

def test_panel_serve_is_locked_without_the_token(tmp_path):
    "`panel serve dashboards/app.py` has no login in front: each session checks its own (signed) request instead."
    data = tmp_path / "data"; data.mkdir(); make_ledger(data)
    port = _free_port()
    srv = Served([sys.executable, "-m", "panel", "serve", str(APP), "--port", str(port), "--address", "127.0.0.1"], _env(data), tmp_path)
    try:
        wait_http(f"http://127.0.0.1:{port}/app", srv)
        before = ledger_snapshot(data)
        st, _, body = http(f"http://127.0.0.1:{port}/app")
        assert st == 200
        r = attack(port, page_token(body), ["*"])                        # the page's own session, forged Origin: accepted...
        assert r["accepted"], r
        assert not set(BUTTONS) & set(r["buttons"]), r["buttons"]         # ...but a locked page: no kill switch, no data
        assert "This dashboard is private" in _result_text(r["doc"]) and "AAPL" not in _result_text(r["doc"])
        r = attack(port, forged_token(arguments={"token": ["guess"]}, cookies={"user": "local"}), ["*"])
        assert not r["accepted"] or not set(BUTTONS) & set(r["buttons"]), r
        assert ledger_snapshot(data) == before
        # the token printed on the console opens the real page
        token = srv.wait_line(r"\?token=([A-Za-z0-9_-]+)").group(1)
        st, _, body = http(f"http://127.0.0.1:{port}/app?token={token}")
        r = attack(port, page_token(body), [])
        assert {"Halt", "Resume", "Flatten"} <= set(r["buttons"]), r["buttons"]
    finally:
        srv.stop()

# -- address and password

def test_non_loopback_address_needs_a_password(clean_env, tmp_path):
    clean_env.setenv("SWINGTRADER_DATA_DIR", str(tmp_path))
    for addr in ("0.0.0.0", "192.0.2.10", "example.com"):
        r = CliRunner().invoke(main, ["dashboard", "--address", addr, "--port", "0"])
        assert r.exit_code == 2, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --address") and "SWINGTRADER_DASHBOARD_PASSWORD" in lines[0], r.output
    r = CliRunner().invoke(main, ["dashboard", "--address", "::", "--port", "0"])    # IPv6: refused before any password question
    assert r.exit_code == 2 and r.output.strip().splitlines() == [
        "error: --address :: is an IPv6 address, which the dashboard server cannot serve. "
        "Fix: use 127.0.0.1 (or an IPv4 address or host name of this machine)."], r.output
    clean_env.setenv("SWINGTRADER_DASHBOARD_PASSWORD", "short")
    r = CliRunner().invoke(main, ["dashboard", "--port", "0"])
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines() == ["error: SWINGTRADER_DASHBOARD_PASSWORD is shorter than 12 characters. Fix: "
                                             "set a password of at least 12 characters."], r.output

def test_password_login(tmp_path):
    data = tmp_path / "data"; data.mkdir(); make_ledger(data)
    srv, port, url = start_dashboard(tmp_path, data, SWINGTRADER_DASHBOARD_PASSWORD=PASSWORD)
    try:
        assert url == f"http://127.0.0.1:{port}/app" and "token=" not in url
        before = ledger_snapshot(data)
        st, hd, body = http(url)                                          # not logged in: to the login page
        assert to_login(st, hd), (st, dict(hd))
        assert page_token(body) is None
        jar = CookieJar()
        st, hd, _ = http(f"http://127.0.0.1:{port}/login", {"username": "mallory", "password": "wrong-password-123"}, cookies=jar)
        assert not [c for c in jar if c.name == "user"]
        st, hd, body = http(url, cookies=jar)
        assert to_login(st, hd) and page_token(body) is None
        r = attack(port, forged_token(cookies={"user": "ann"}), list(BUTTONS), cookie="user=ann")
        assert r["accepted"] is False, r
        # the right password: the page and its buttons, commands recorded with the user name
        st, _, _ = http(f"http://127.0.0.1:{port}/login", {"username": "ann", "password": PASSWORD}, cookies=jar)
        assert [c for c in jar if c.name == "user"], st
        st, _, body = http(url, cookies=jar)
        assert st == 200 and page_token(body)
        cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
        r = attack(port, page_token(body), ["Flatten", "Confirm flatten: sell everything"], cookie=cookie, origin=f"http://127.0.0.1:{port}",
                   until="Flatten requested")
        assert r["accepted"], r
        state, cmds = ledger_snapshot(data)
        assert state == before[0] and cmds == [("flatten", "dashboard:ann")], cmds
        assert PASSWORD not in srv.output()
    finally:
        srv.stop()

def test_port_in_use_is_one_line(clean_env, tmp_path):
    clean_env.setenv("SWINGTRADER_DATA_DIR", str(tmp_path))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); s.listen()
        r = CliRunner().invoke(main, ["dashboard", "--port", str(s.getsockname()[1])])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot serve the dashboard on 127.0.0.1:") and "--port" in lines[0], r.output
