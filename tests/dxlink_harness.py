"""DXLink / TradingView test support on the REAL emulator: `Emulator` + `SimBroker` served by `EmulatorServer`
(background thread, own loop) on 127.0.0.1:0, with a manual `SimClock` that tests advance on the server loop.

(This file used to hold a stand-in server; every DXLink test now runs against the real emulator, swingtrader.emulator.app.)"""
from __future__ import annotations
import asyncio
from contextlib import contextmanager
from datetime import date, timedelta

import requests

import emu_support
from swingtrader.emulator.app import EmulatorServer
from swingtrader.emulator.dxlink import DXLINK_KEY


def make_broker(symbols=3, seed=7, start=date(2026, 3, 2), end=date(2026, 3, 4), minutes=10):
    "A seeded SimBroker on a manual clock, `minutes` into the first session (every symbol has traded)."
    return emu_support.make_broker(seed=seed, symbols=symbols, start=start, end=end, minutes=minutes)


class Live:
    "A running emulator seen from a test: URLs, the DXLink server object, and clock control on the server loop."
    def __init__(self, srv:EmulatorServer):
        self.srv, self.emu, self.broker, self.clock = srv, srv.emu, srv.emu.broker, srv.emu.clock
        self.url, self.http = srv.dxlink_url, srv.api_url

    @property
    def dx(self): return self.srv.app[DXLINK_KEY]
    @property
    def faults(self): return self.emu.faults

    def step(self, minutes=1):
        "Advance the simulated clock one minute at a time on the server loop (each minute: bars, quotes, sync)."
        for _ in range(minutes):
            self.srv.call(lambda: self.broker.advance_to(self.clock.now() + timedelta(minutes=1)))

    def jump(self, **delta):
        "Advance the clock by `delta` at once (one sync on the server loop)."
        self.srv.call(lambda: self.broker.advance_to(self.clock.now() + timedelta(**delta)))

    def set(self, t): self.srv.call(lambda: self.broker.advance_to(t))
    def token(self) -> str: return self.srv.call(self.emu.issue_quote_token)
    def disconnect(self) -> int:
        r = requests.post(f"{self.http}/_emulator/disconnect", json={}, headers=self.srv.control_headers, timeout=10, verify=str(self.srv.ca_file) if self.srv.ca_file else True)
        assert r.status_code == 200, r.text
        return r.json()["closed"]

    def sessions(self) -> int: return self.srv.call(lambda: len(self.dx.sessions))

    def quote_token_body(self) -> dict:
        "GET /api-quote-tokens over REST with an OAuth bearer token, like a real client."
        s = requests.Session(); s.headers["User-Agent"] = "swingtrader-tests/1.0"
        if self.srv.ca_file: s.verify, s.trust_env = str(self.srv.ca_file), False
        r = s.post(self.http + "/oauth/token", json={"grant_type": "refresh_token", "client_secret": "a", "refresh_token": "b"}, timeout=10)
        s.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        r = s.get(self.http + "/api-quote-tokens", timeout=10)
        assert r.status_code == 200, r.text
        return r.json()


@contextmanager
def live(broker=None, packing="flat", keepalive_timeout=None, faults=None, tls=False, **dx_options):
    "Serve `broker` (default: make_broker()) through the real emulator (built by emu_support); yields a `Live`."
    emu = emu_support.make_emulator(broker or make_broker(), faults=faults, dxlink_packing=packing)
    if keepalive_timeout is not None: emu.dxlink_keepalive_timeout = keepalive_timeout
    if dx_options: emu.dxlink_options = dx_options
    with emu_support.serve(emu=emu, tls=tls) as srv:
        yield Live(srv)


async def until(cond, timeout=5.0):
    "Poll `cond()` on the running loop (no timed assertion: only a generous limit)."
    end = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > end: raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)
