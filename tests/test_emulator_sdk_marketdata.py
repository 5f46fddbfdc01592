"""The official tastytrade-sdk 1.2.0 `MarketData.subscribe`, unmodified, against the real emulator over TLS.

The SDK's own login calls the decommissioned POST /sessions, so (as in test_emulator_sdk.py) the test gets an OAuth
access token from /oauth/token and sets it on the SDK's requests session. The SDK then fetches the quote token and
DXLink URL from /api-quote-tokens itself and opens wss://.../dxlink. Trust comes from the emulator's trustme CA
(REQUESTS_CA_BUNDLE for requests, SSL_CERT_FILE for the websocket's default SSL context); verification stays on.
"""
from __future__ import annotations
import os, pathlib, sys, threading, time
from contextlib import contextmanager

import pytest, requests

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from dxlink_harness import live

pytestmark = pytest.mark.timeout(90)
UA = {"User-Agent": "swingtrader-tests/1.0"}


@contextmanager
def sdk_market_data(packing):
    "The SDK's MarketData bound to a TLS emulator whose DXLink uses `packing`; yields (market_data, Live)."
    from tastytrade_sdk import Tastytrade
    from tastytrade_sdk.api import RequestsSession
    with live(packing=packing, tls=True) as L:
        assert L.url.startswith("wss://") and L.srv.ca_file.exists()
        tok = requests.post(L.http + "/oauth/token", json={"grant_type": "refresh_token", "client_secret": "a", "refresh_token": "b"},
                            headers=UA, verify=str(L.srv.ca_file), timeout=10).json()["access_token"]
        session = RequestsSession._RequestsSession__session
        old = dict(session.headers), session.verify
        old_env = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
        session.headers["Authorization"] = f"Bearer {tok}"
        session.verify = str(L.srv.ca_file)
        for k in old_env: os.environ[k] = str(L.srv.ca_file)
        try:
            tt = Tastytrade(api_base_url=L.http.removeprefix("https://"))
            md = tt.market_data
            # MarketData.subscribe maps symbols through /instruments/{equities,futures,equity-options,future-options,
            # cryptocurrencies}: the emulator answers the last four with empty lists (the simulator trades equities only).
            yield md, L
        finally:
            session.headers.clear(); session.headers.update(old[0]); session.verify = old[1]
            for k, v in old_env.items():
                if v is None: os.environ.pop(k, None)
                else: os.environ[k] = v


def wait(pred, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not pred(): time.sleep(0.02)
    return pred()


def close(L, sub):
    "SDK 1.2.0 joins its receive thread (blocked in recv) before closing the socket: one more simulated minute releases it."
    t = threading.Timer(0.05, L.step, (1,)); t.start()
    sub.close(); t.join()


def test_sdk_subscribe_quotes_and_candles_per_event_packing():
    with sdk_market_data("per_event") as (md, L):
        syms = L.broker.symbols[:2]; quotes, candles = [], []
        sub = md.subscribe(syms, on_quote=quotes.append, on_candle=candles.append,
                           event_fields={"Quote": ["eventSymbol", "bidPrice", "askPrice"],
                                         "Candle": ["eventSymbol", "time", "open", "high", "low", "close", "volume"]}).open()
        try:
            assert wait(lambda: {q["symbol"] for q in quotes} == set(syms))      # the latest quote on subscribe
            n = len(quotes)
            L.step(2)
            assert wait(lambda: len(quotes) >= n + 2 * len(syms) and len(candles) >= 2 * len(syms))
            for s in syms:
                q = [x for x in quotes if x["symbol"] == s][-1]; ref = L.broker.latest_quote(s)
                assert (q["bidPrice"], q["askPrice"]) == (ref.bid, ref.ask)
                c = [x for x in candles if x["symbol"] == s][-1]
                bar = L.broker.bars(s, "1m", L.clock.now().replace(second=0) - __import__("datetime").timedelta(minutes=1), L.clock.now()).iloc[-1]
                assert (c["open"], c["high"], c["low"], c["close"], c["volume"]) == tuple(bar[["open", "high", "low", "close", "volume"]])
        finally: close(L, sub)


def test_sdk_dies_on_tastytrades_flat_packing():
    "Documents SDK 1.2.0's bug: it assumes one event per list, so real (flat) packing kills its receive thread silently."
    errors = []
    old = threading.excepthook
    threading.excepthook = lambda a: errors.append(a.exc_value)
    try:
        with sdk_market_data("flat") as (md, L):
            syms = L.broker.symbols; quotes = []
            sub = md.subscribe(syms, on_quote=quotes.append, event_fields={"Quote": ["eventSymbol", "bidPrice", "askPrice"]}).open()
            try:
                assert wait(lambda: errors)
                assert isinstance(errors[0], ValueError) and "Event and field length do not match" in str(errors[0])
                assert quotes == []            # the caller saw nothing, and no exception reached it
            finally: sub.close()               # the receive thread is already dead: close() returns at once
    finally: threading.excepthook = old
