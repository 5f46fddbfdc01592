"""The one test harness for the emulator: a seeded simulator (`make_broker`), an Emulator over it (`make_emulator`),
served on loopback (`serve`), and a requests client. tests/conftest.py builds its fixtures from these."""
from __future__ import annotations
import json
from datetime import date, timedelta
from contextlib import contextmanager

import requests

from swingtrader.emulator.core import Emulator, Faults
from swingtrader.emulator.app import EmulatorServer

UA = {"User-Agent": "swingtrader-tests/1.0"}


def make_broker(seed=7, symbols=4, start=date(2026, 3, 2), end=date(2026, 3, 3), minutes=10, at=None, **kw):
    "A seeded SimBroker: advanced to `at`, else `minutes` into its first session (every symbol has traded); 0 = not advanced."
    from swingtrader.sim.broker import SimBroker
    b = SimBroker.from_seed(seed=seed, symbols=symbols, start=start, end=end, **kw)
    if at is not None: b.advance_to(at)
    elif minutes: b.advance_to(b.clock.now() + timedelta(minutes=minutes))
    return b


def make_emulator(broker=None, tmp_path=None, strict=False, faults=None, **kw) -> Emulator:
    "THE one place tests build an Emulator: over `broker` (default: make_broker()) on the broker's own clock."
    broker = broker or make_broker()
    return Emulator(broker, broker.clock, faults=faults or Faults(), strict=strict, data_dir=tmp_path, **kw)


@contextmanager
def serve(tmp_path=None, tls=False, strict=False, faults=None, host="127.0.0.1", broker=None, emu=None, header_timeout=None, **kw):
    "THE one place tests start an EmulatorServer (loopback by default); it stops when the block ends."
    emu = emu or make_emulator(broker, tmp_path=tmp_path, strict=strict, faults=faults, **kw)
    opts = {} if header_timeout is None else {"header_timeout": header_timeout}
    with EmulatorServer(emu, host=host, tls=tls, **opts) as srv:
        yield srv


class Client:
    "A minimal tastytrade REST client over requests, for tests."
    def __init__(self, srv, secret="s3cret", refresh="r3fresh", token=True):
        self.srv, self.base = srv, srv.api_url.replace("0.0.0.0", "127.0.0.1")
        self.s = requests.Session()
        self.s.headers.update(UA)
        if srv.ca_file:  # requests lets REQUESTS_CA_BUNDLE override session.verify unless trust_env is off
            self.s.verify, self.s.trust_env = str(srv.ca_file), False
        self.acct = srv.account_number
        if token: self.login(secret, refresh)

    def login(self, secret="s3cret", refresh="r3fresh"):
        r = self.s.post(self.base + "/oauth/token", json={"grant_type": "refresh_token", "client_secret": secret, "refresh_token": refresh}, timeout=10)
        assert r.status_code == 200, r.text
        self.token = r.json()["access_token"]
        self.s.headers["Authorization"] = f"Bearer {self.token}"
        return r.json()

    def req(self, method, path, **kw):
        kw.setdefault("timeout", 10)
        return self.s.request(method, self.base + path, **kw)

    def get(self, path, **kw): return self.req("GET", path, **kw)
    def post(self, path, **kw): return self.req("POST", path, **kw)

    def control(self, what, body=None):
        r = requests.post(f"{self.base}/_emulator/{what}", json=body or {}, headers=self.srv.control_headers, timeout=10, verify=self.s.verify)
        assert r.status_code == 200, r.text
        return r.json()

    def state(self): return requests.get(f"{self.base}/_emulator/state", headers=self.srv.control_headers, timeout=10, verify=self.s.verify).json()

    def order_body(self, symbol, qty=1, action="Buy to Open", otype="Limit", price=None, tif="Day", key=None, stop=None):
        b = {"time-in-force": tif, "order-type": otype, "legs": [{"instrument-type": "Equity", "symbol": symbol, "quantity": qty, "action": action}]}
        if price is not None: b |= {"price": str(price), "price-effect": "Debit" if action.startswith("Buy") else "Credit"}
        if stop is not None: b["stop-trigger"] = str(stop)
        if key: b["external-identifier"] = key
        return b

    def symbols(self):
        return [e["symbol"] for e in self.get("/instruments/equities").json()["data"]["items"]]

    def price(self, symbol):
        return self.srv.call(lambda: self.srv.emu.broker.latest_quote(symbol))


def ws_connect(srv, **kw):
    import ssl, websocket
    opts = {}
    if srv.ca_file: opts["sslopt"] = {"ca_certs": str(srv.ca_file), "cert_reqs": ssl.CERT_REQUIRED}
    return websocket.create_connection(srv.streamer_url, timeout=kw.pop("timeout", 5), **opts, **kw)


def ws_recv_until(ws, pred, limit=50):
    "Receive JSON messages until pred(msg) is true; returns (msg, seen)."
    seen = []
    for _ in range(limit):
        m = json.loads(ws.recv())
        seen.append(m)
        if pred(m): return m, seen
    raise AssertionError(f"no matching message in {seen}")


# -- Alpaca market data: alpaca-py, unmodified, against the emulator (swingtrader.emulator.alpaca_data*)

def wait_until(pred, timeout=30.0, every=0.02):
    "Poll `pred` until it is true or `timeout` seconds pass; returns its last value."
    import time
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end: return v
        time.sleep(every)


def alpaca_keys(srv) -> tuple[str, str]:
    "The Alpaca key pair the emulator behind `srv` accepts."
    from swingtrader.emulator.alpaca_data import alpaca_keys as keys
    return keys(srv.emu)


def alpaca_data_client(srv, key=None, secret=None, **kw):
    "alpaca-py's StockHistoricalDataClient pointed at `srv` (the emulator's key pair unless given)."
    from alpaca.data.historical.stock import StockHistoricalDataClient
    k, s = alpaca_keys(srv)
    return StockHistoricalDataClient(key or k, secret or s, url_override=srv.api_url, **kw)


def alpaca_data_state(srv) -> dict:
    "The emulator's Alpaca data-stream state (sessions, authenticated, subscriptions, knobs), read on its loop."
    from swingtrader.emulator.alpaca_data_stream import ALPACA_DATA_KEY
    return srv.call(lambda: srv.app[ALPACA_DATA_KEY].state())


@contextmanager
def alpaca_data_stream(srv, setup, key=None, secret=None, url=None, **kw):
    "alpaca-py's StockDataStream on `srv` running in a thread; `setup(stream)` subscribes before it starts. Stopped at the end."
    import threading
    from alpaca.data.enums import DataFeed
    from alpaca.data.live.stock import StockDataStream
    k, s = alpaca_keys(srv)
    st = StockDataStream(key or k, secret or s, feed=DataFeed.IEX, url_override=url or srv.alpaca_data_stream_url, **kw)
    setup(st)
    th = st.thread = threading.Thread(target=st.run, name="alpaca-data-stream", daemon=True)   # st.thread: ends when the stream gives up
    th.start()
    try: yield st
    finally:
        wait_until(lambda: st._loop is not None, 10)
        try: st.stop()
        except Exception: pass   # its loop already ended
        th.join(30)
        assert not th.is_alive(), "StockDataStream did not stop"
# -- Alpaca trading side (alpaca-py unmodified against the emulator) --
def alpaca_trading_client(srv, key=None, secret=None, retry_wait=None):
    "alpaca-py's TradingClient bound to `srv` with the emulator's key pair (or `key`/`secret`); `retry_wait` seconds between its 429/504 retries (default: alpaca-py's 3 s)."
    from alpaca.trading.client import TradingClient
    from swingtrader.emulator.alpaca_orders import ALPACA_KEY_ID, ALPACA_SECRET_KEY
    c = TradingClient(key or ALPACA_KEY_ID, secret or ALPACA_SECRET_KEY, paper=True, url_override=srv.alpaca_url)
    if retry_wait is not None: c._retry_wait = retry_wait
    return c


def alpaca_headers(key=None, secret=None) -> dict:
    "The APCA-API-* headers of the emulator's key pair (for raw `requests` calls)."
    from swingtrader.emulator.alpaca_orders import ALPACA_KEY_ID, ALPACA_SECRET_KEY
    return {"APCA-API-KEY-ID": key or ALPACA_KEY_ID, "APCA-API-SECRET-KEY": secret or ALPACA_SECRET_KEY}


class AlpacaStream:
    "alpaca-py's TradingStream on `srv`, run in a thread; `updates` collects every TradeUpdate. Use as a context manager."
    def __init__(self, srv, key=None, secret=None):
        from alpaca.trading.stream import TradingStream
        from swingtrader.emulator.alpaca_orders import ALPACA_KEY_ID, ALPACA_SECRET_KEY
        self.stream = TradingStream(key or ALPACA_KEY_ID, secret or ALPACA_SECRET_KEY, paper=True, url_override=srv.alpaca_stream_url)
        self.updates, self.srv = [], srv
        async def on_update(u): self.updates.append(u)
        self.stream.subscribe_trade_updates(on_update)
        self.thread = None

    def __enter__(self):
        import threading
        self.thread = threading.Thread(target=self.stream.run, name="alpaca-trading-stream", daemon=True)
        self.thread.start()
        return self

    def wait_listening(self, timeout=20):
        "Wait until the emulator has a session listening to trade_updates."
        import time
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = getattr(self.srv.emu, "alpaca_trading", None)
            if st is not None and any("trade_updates" in s.streams for s in list(st.sessions)): return True
            time.sleep(0.05)
        raise AssertionError("the TradingStream never started listening")

    def wait_for(self, pred, timeout=20):
        "The first update with pred(update) true (generous bound; fails the test otherwise)."
        import time
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for u in list(self.updates):
                if pred(u): return u
            time.sleep(0.05)
        raise AssertionError(f"no matching trade update in {[(u.event, str(u.order.id)) for u in self.updates]}")

    def __exit__(self, *exc):
        import time
        end = time.monotonic() + 10
        while self.stream._loop is None and time.monotonic() < end: time.sleep(0.05)
        try: self.stream.stop()
        except Exception: pass
        self.thread.join(15)


# -- the Alpaca side in scaled time: `from emu_support import alpaca_env, alpaca_broker` gives a test module the fixtures
# `env` (the emulator over a seeded 3-symbol simulator, 30 minutes into 2026-03-02's session, 60 simulated seconds per
# second) and `broker` (an `AlpacaBroker` on it)
import pytest

ALPACA_DAY = date(2026, 3, 2)

@pytest.fixture(name="env")
def alpaca_env():
    from swingtrader.clock import MarketCalendar
    from swingtrader.config import Settings
    from swingtrader.session import emulated_alpaca
    e = emulated_alpaca(Settings(_env_file=None, sim_symbols=3), ALPACA_DAY, ALPACA_DAY, speed=60.0,
                        start=MarketCalendar().session(ALPACA_DAY)[0] + timedelta(minutes=30))
    yield e
    e.close()

@pytest.fixture(name="broker")
def alpaca_broker(env):
    from swingtrader.alpaca.broker import AlpacaBroker
    b = AlpacaBroker(env.settings, clock=env.clock, calendar=env.calendar)
    yield b
    b.close()


async def until(pred, timeout=60.0, step=0.05):
    "Wait in a coroutine for `pred()` (generous bound; never a fixed sleep as synchronisation)."
    import asyncio, time
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end: raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
