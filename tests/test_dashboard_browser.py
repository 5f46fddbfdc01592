"""The live dashboard in a real browser: `swingtrader dashboard` in a subprocess, driven by headless Chromium.

Needs Debian's `chromium` + `chromium-driver` and the `selenium` package (`make test` installs them)."""
import os, queue, re, shutil, socket, subprocess, sys, threading, time, urllib.error, urllib.request
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from swingtrader.ledger import Ledger
from swingtrader.models import Fill, Order, OrderRequest, OrderStatus, OrderType, Side

ROOT = Path(__file__).resolve().parents[1]
WAIT = 90          # generous: the page waits for a server that shares 2 cores with other tests
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:   # pragma: no cover - the failure below says what to do
    webdriver = None

def _need(what:str):
    pytest.fail(f"{what} is missing: the dashboard browser test needs Debian's chromium and chromium-driver and the selenium "
                f"package. Run `make test` (which installs them), or `apt-get install -y chromium chromium-driver && "
                f".venv/bin/pip install selenium`.", pytrace=False)

# -- a ledger written the way the bot writes it

def _fill(lg:Ledger, sym:str, qty, price, fid:str, side=Side.BUY):
    req = OrderRequest(sym, side, qty=Decimal(qty))
    lg.record_intent(None, req)
    lg.record_submitted(req.client_key, Order(f"o-{fid}", req.client_key, sym, side, OrderType.MARKET, req.tif, OrderStatus.FILLED,
                                              qty=Decimal(qty), filled_qty=Decimal(qty), avg_fill_price=Decimal(price)))
    lg.record_fill(Fill(fid, f"o-{fid}", sym, side, Decimal(qty), Decimal(price), T0, req.client_key))

def make_ledger(data_dir:Path):
    with Ledger(data_dir / "ledger.sqlite") as lg:
        lg.record_equity(Decimal("100000"), Decimal("100000"), at=T0)
        _fill(lg, "AAPL", 10, "200", "fill-aapl-1")
        _fill(lg, "MSFT", 5, "400", "fill-msft-1")
        req = OrderRequest("NVDA", Side.BUY, qty=Decimal(3), type=OrderType.LIMIT, limit_price=Decimal("100"))
        lg.record_intent(None, req)
        lg.record_submitted(req.client_key, Order("o-nvda", req.client_key, "NVDA", Side.BUY, OrderType.LIMIT, req.tif,
                                                  OrderStatus.ACCEPTED, qty=Decimal(3), limit_price=Decimal("100")))
        lg.record_equity(Decimal("100250"), Decimal("95000"), at=T0.replace(hour=19))

# -- the server and the browser

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def _env(data:Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_", "BOKEH_"))}
    env["SWINGTRADER_DATA_DIR"] = str(data)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env

@pytest.fixture
def server(tmp_path):
    "`swingtrader dashboard` on a free loopback port; yields the URL it printed (with this start's token)."
    data = tmp_path / "data"; data.mkdir()
    yield from _serve(tmp_path, data)

@pytest.fixture
def bot_run_server(tmp_path):
    "A short simulated bot day (`swingtrader daily --speed 2000 --no-report`) in a fresh data directory, then the dashboard over it."
    data = tmp_path / "data"; data.mkdir()
    r = subprocess.run([sys.executable, "-c", "from swingtrader.cli import main; main()", "daily", "--speed", "2000", "--no-report"],
                       cwd=tmp_path, env=_env(data), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"the bot run failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert "ledger:" in r.stdout
    yield from _serve(tmp_path, data)

def _serve(tmp_path:Path, data:Path):
    port = _free_port()
    env = _env(data)
    log_path = tmp_path / "dashboard.log"
    p = subprocess.Popen([sys.executable, "-c", "from swingtrader.cli import main; main()", "dashboard", "--port", str(port)],
                         cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    def pump():
        with open(log_path, "w") as log:
            for line in p.stdout: log.write(line); log.flush(); lines.put(line)
        lines.put(None)
    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline, url = time.monotonic() + 120, None
        while url is None:
            if time.monotonic() > deadline: pytest.fail(f"swingtrader dashboard printed no URL:\n{log_path.read_text()}")
            try: line = lines.get(timeout=1)
            except queue.Empty: continue
            if line is None: pytest.fail(f"swingtrader dashboard exited ({p.wait()}):\n{log_path.read_text()}")
            if (m := re.search(r"open (http://\S+)", line)): url = m.group(1)
        assert url.startswith(f"http://127.0.0.1:{port}/app?token=")
        while True:
            if p.poll() is not None: pytest.fail(f"swingtrader dashboard exited ({p.returncode}):\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
                    if r.status == 200: break
            except OSError: pass
            if time.monotonic() > deadline: pytest.fail(f"swingtrader dashboard did not answer:\n{log_path.read_text()}")
            time.sleep(0.3)
        yield url, data, log_path
    finally:
        p.terminate()
        try: p.wait(15)
        except subprocess.TimeoutExpired: p.kill(); p.wait(5)

@pytest.fixture
def browser(tmp_path):
    if webdriver is None: _need("selenium")
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_bin = shutil.which("chromedriver")
    if not chrome: _need("chromium")
    if not driver_bin: _need("chromedriver (Debian package chromium-driver)")
    o = Options()
    o.binary_location = chrome
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--window-size=1500,1000", f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        o.add_argument(a)
    d = webdriver.Chrome(service=Service(executable_path=driver_bin), options=o)
    d.set_page_load_timeout(WAIT)
    try: yield d
    finally: d.quit()

# Bokeh renders every component in its own shadow root: these helpers search through them.
_DEEP = """
function deepAll(root, sel, out) {
  root.querySelectorAll(sel).forEach(e => out.push(e));
  root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) deepAll(e.shadowRoot, sel, out); });
  return out;
}
function deepText(node) {
  let t = '';
  if (node.shadowRoot) t += deepText(node.shadowRoot);
  for (const c of node.childNodes) {
    if (c.nodeType === 3) t += c.textContent + ' ';
    else if ((c.nodeType === 1 && !['SCRIPT', 'STYLE'].includes(c.tagName)) || c.nodeType === 11) t += deepText(c);
  }
  return t;
}
"""

def find_all(d, sel:str): return d.execute_script(_DEEP + "return deepAll(document, arguments[0], []);", sel)
def page_text(d) -> str: return d.execute_script(_DEEP + "return deepText(document.body);")
def state(d) -> str|None:
    "The state badge's state, found and read in one script (never a stale element)."
    return d.execute_script(_DEEP + "const e = deepAll(document, '.st-state', []); return e.length ? e[0].getAttribute('data-state') : null;")
def cells(d) -> list[str]:
    return d.execute_script(_DEEP + "return deepAll(document, '.tabulator-cell', []).map(e => e.textContent.trim());")
def button(d, label:str):
    bs = [b for b in find_all(d, "button") if b.text.strip() == label or (b.get_attribute("textContent") or "").strip() == label]
    return bs[0] if bs else None
_BUTTON = _DEEP + """
const b = deepAll(document, 'button', []).find(b => b.textContent.trim() === arguments[0]);
if (!b) return null;
if (arguments[1] && !b.disabled) b.click();
return b.disabled;
"""
def disabled(d, label:str) -> bool|None:
    "Whether the button is disabled (None: not on the page); found and read in one script, so never stale."
    return d.execute_script(_BUTTON, label, False)
def press(d, label:str) -> bool|None:
    "Click the button if it is enabled; returns whether it was disabled."
    return d.execute_script(_BUTTON, label, True)
def text_input(d, placeholder:str):
    return next(e for e in find_all(d, "input") if placeholder in (e.get_attribute("placeholder") or ""))
def _fresh(f, tries:int=5):
    "Run `f` again when the page re-rendered the element under it (a refresh replaced it between finding and using)."
    from selenium.common.exceptions import StaleElementReferenceException
    for i in range(tries):
        try: return f()
        except StaleElementReferenceException:
            if i == tries - 1: raise
def type_in(d, placeholder:str, text:str): _fresh(lambda: text_input(d, placeholder).send_keys(text))
def click_tab(d, label:str):
    def click():
        tab = next(t for t in find_all(d, ".bk-tab") if (t.get_attribute("textContent") or "").strip() == label)
        d.execute_script("arguments[0].click();", tab)
    _fresh(click)

def ledger_state(data:Path):
    with Ledger(data / "ledger.sqlite", readonly=True) as lg: return lg.halt_state().state, lg.commands()

def test_dashboard_in_browser(server, browser, tmp_path):
    url, data, panel_log = server
    d, wait = browser, WebDriverWait(browser, WAIT, poll_frequency=0.3)
    # without the token: the login form, nothing of the page
    d.get(url.split("?")[0])
    wait.until(lambda d: "This dashboard is private" in page_text(d))
    assert not find_all(d, ".st-state")
    d.get(url)
    # no ledger yet: the page says where it looked and how to start the bot; no traceback page
    wait.until(lambda d: "SWINGTRADER_DATA_DIR" in page_text(d))
    txt = page_text(d)
    assert "swingtrader run" in txt and str(data) in txt and "Traceback" not in txt
    assert not (data / "ledger.sqlite").exists()         # the dashboard never creates the ledger
    assert "no ledger at" in txt                          # the kill switch says why it is off
    wait.until(lambda d: disabled(d, "Halt") is True)

    # the bot starts: the page picks the ledger up at the next refresh
    make_ledger(data)
    wait.until(lambda d: state(d) == "active")
    wait.until(lambda d: {"AAPL", "MSFT"} <= set(cells(d)))
    assert "100,250.00" in page_text(d)                   # equity of the latest mark
    assert "SWINGTRADER_DATA_DIR" not in page_text(d)
    assert disabled(d, "Resume") is True   # nothing to resume while active

    # halt with a reason
    type_in(d, "why trading must stop", "fed surprise")
    assert press(d, "Halt") is False
    wait.until(lambda d: ledger_state(data)[0] == "halted" and ledger_state(data)[1])   # state first, then the command
    st, cmds = ledger_state(data)
    assert [(c.kind, c.requested_by, c.args.get("reason")) for c in cmds] == [("halt", "dashboard", "fed surprise")]
    with Ledger(data / "ledger.sqlite", readonly=True) as lg:
        assert (lg.halt_state().who, lg.halt_state().reason) == ("dashboard", "fed surprise")
    wait.until(lambda d: state(d) == "halted")
    wait.until(lambda d: "HALTED" in page_text(d))
    # the halt ends only with the recorded manual reset: Resume is enabled once a name and a reason are typed
    assert disabled(d, "Resume") is True
    type_in(d, "who resumes", "Ann")
    assert disabled(d, "Resume") is True
    type_in(d, "why it is safe", "fed statement reviewed")
    wait.until(lambda d: disabled(d, "Resume") is False)
    def resumed(d):                                       # a press within 5 s of the halt is refused: press until it takes
        st, cmds = ledger_state(data)
        if st != "active": press(d, "Resume")
        return any(c.kind == "resume" for c in cmds)         # the state changes first, then the command is queued
    wait.until(resumed)
    st, cmds = ledger_state(data)
    assert [(c.kind, c.requested_by) for c in cmds][:2] == [("resume", "Ann (dashboard)"), ("halt", "dashboard")]
    with Ledger(data / "ledger.sqlite", readonly=True) as lg: assert lg.halt_state().reason == "fed statement reviewed"
    wait.until(lambda d: state(d) == "active")

    # the bot records a new fill: positions and fills show it after a refresh
    with Ledger(data / "ledger.sqlite") as lg: _fill(lg, "TSLA", 7, "250", "fill-tsla-new")
    wait.until(lambda d: "TSLA" in cells(d))
    shot = tmp_path / "dashboard.png"
    assert d.save_screenshot(str(shot))
    click_tab(d, "Fills")
    wait.until(lambda d: "fill-tsla-new" in cells(d))
    # the broker's positions with greeks: no tastytrade source here, so the tab says what to set and its button is off
    click_tab(d, "Positions & greeks")
    wait.until(lambda d: "Positions with greeks come from tastytrade" in page_text(d))
    assert disabled(d, "Read positions and greeks") is True
    click_tab(d, "Fills")
    if os.environ.get("DASHBOARD_SCREENSHOT_COPY"): shutil.copy(shot, os.environ["DASHBOARD_SCREENSHOT_COPY"])
    from PIL import Image
    raw = shot.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 20_000
    img = Image.open(shot).convert("RGB")
    assert img.size[0] >= 1000 and img.size[1] >= 600
    colors = img.resize((150, 100)).getcolors(maxcolors=15000)
    assert colors is None or len(colors) > 50             # a rendered page, not a blank screen
    log_text = panel_log.read_text()
    assert "Traceback" not in log_text
    token = url.split("token=")[1]
    assert log_text.count(token) == 1                     # printed once, in the URL; never logged


# -- after a real (simulated) bot run: every rule's bar, the closed trades, a screenshot of each tab

TABS = ["Positions", "Orders", "Fills", "Trades", "Risk", "Equity", "Chart", "Alerts", "Commands"]
RULES = {"daily_loss", "weekly_loss", "losing_streak", "position", "sector", "correlated", "leverage", "connectivity", "health",
         "reconciliation"}

def rules_on_page(d) -> dict:
    "{rule: (data-tripped, text)} of the Risk tab's bars, read in one script."
    return {r: (t, x) for r, t, x in d.execute_script(_DEEP + "return deepAll(document, '.st-rule', []).map("
                                                      "e => [e.getAttribute('data-rule'), e.getAttribute('data-tripped'), e.textContent]);")}

def _artifacts(tmp_path:Path) -> Path:
    "Where the screenshots go: the test's tmp dir, or DASHBOARD_ARTIFACTS (e.g. test-artifacts/, ignored by git) when set."
    out = Path(os.environ.get("DASHBOARD_ARTIFACTS") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out

def _check_png(path:Path):
    from PIL import Image
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 20_000, path
    img = Image.open(path).convert("RGB")
    assert img.size[0] >= 1000 and img.size[1] >= 600
    colors = img.resize((150, 100)).getcolors(maxcolors=15000)
    assert colors is None or len(colors) > 30, f"{path} looks blank"

def test_dashboard_after_a_bot_run(bot_run_server, browser, tmp_path):
    from swingtrader.config import Settings
    from swingtrader.dashboard import ledger_file
    from swingtrader.dashboard_trading import closed_trades, money
    url, data, panel_log = bot_run_server
    lpath = ledger_file(Settings(data_dir=data))
    with Ledger(lpath, readonly=True) as lg:
        halt, trades, held = lg.halt_state(), closed_trades(lg), [p.symbol for p in lg.positions() if p.qty != 0]
    assert len(trades) > 0, "the simulated day closed no trade: nothing for the Trades tab to show"
    d, wait = browser, WebDriverWait(browser, WAIT, poll_frequency=0.3)
    d.get(url)
    wait.until(lambda d: state(d) == halt.state)
    if halt.state != "active": assert "no new entries, exits (stops, exit signals) continue" in page_text(d)
    # every RiskGuard and kill-switch rule has its bar with use / limit; a trip is named on its rule
    wait.until(lambda d: set(rules_on_page(d)) == RULES)
    rules = rules_on_page(d)
    assert all("/" in text for r, (_, text) in rules.items() if r not in ("health", "reconciliation")), rules   # use / limit
    if halt.state == "halted" and halt.who.startswith("kill_switch:"):
        trig = {"reconciliation_mismatch": "reconciliation"}.get(halt.who.split(":", 1)[1], halt.who.split(":", 1)[1])
        assert rules[trig][0] == "true" and "TRIPPED" in rules[trig][1], rules[trig]
        assert [r for r, (t, _) in rules.items() if t == "true"] == [trig]
        if trig == "losing_streak":                          # the streak that tripped it, over its limit: e.g. 6 / 5
            m = re.search(r"(\d+) / 5 TRIPPED", rules[trig][1])
            assert m and int(m.group(1)) > 5, rules[trig]
    # the closed trades with their P&L to the cent, in New York time
    click_tab(d, "Trades")
    last = trades.iloc[-1]
    wait.until(lambda d: money(last.pl) in cells(d))
    cs = cells(d)
    assert last.symbol in cs and any(c.endswith(("EST", "EDT")) for c in cs)
    # the per-position close: off with its reason when nothing is held; else asks, then queues a flatten of that symbol only
    click_tab(d, "Positions")
    if not held:
        assert disabled(d, "Close position") is True
        assert "No open position to close" in page_text(d)
    else:
        wait.until(lambda d: disabled(d, "Close position") is False)
        assert press(d, "Close position") is False
        wait.until(lambda d: "at market? Its protective stop is cancelled first" in page_text(d))
        sym = re.search(r"Close\s+([A-Z.]+)\s+(?:\(|at market)", page_text(d)).group(1)
        assert sym in held
        assert press(d, "Confirm close") is False
        def queued():
            with Ledger(lpath, readonly=True) as lg: return [(c.kind, c.args.get("symbols")) for c in lg.commands()]
        wait.until(lambda d: queued() == [("flatten", [sym])])
        wait.until(lambda d: f"Close {sym} requested" in page_text(d))
    # a screenshot of each tab, then the dark theme
    out = _artifacts(tmp_path)
    d.set_window_size(1500, 1500)                            # tall enough for every rule's bar
    for i, tab in enumerate(TABS):
        click_tab(d, tab)
        d.execute_script("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));")
        shot = out / f"{i:02d}-{tab.lower()}.png"
        assert d.save_screenshot(str(shot))
        _check_png(shot)
    d.get(url + "&theme=dark")
    wait.until(lambda d: set(rules_on_page(d)) == RULES)
    bg = d.execute_script("return getComputedStyle(document.body).backgroundColor")
    shot = out / "99-dark.png"
    assert d.save_screenshot(str(shot)); _check_png(shot)
    r, g, b = (int(x) for x in re.findall(r"\d+", bg)[:3])
    assert r + g + b < 200, f"the dark theme kept a light background: {bg}"
    for tab in ("Risk", "Chart"):
        click_tab(d, tab)
        d.execute_script("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));")
        shot = out / f"99-dark-{tab.lower()}.png"
        assert d.save_screenshot(str(shot)); _check_png(shot)
    log_text = panel_log.read_text()
    assert "Traceback" not in log_text
