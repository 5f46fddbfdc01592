"""No code path reaches a tastytrade production host unless settings say production *and* SWINGTRADER_LIVE_CONFIRM=yes."""
import itertools, socket
from urllib.parse import urlparse

import pytest

from swingtrader.config import Settings, ConfigError, PRODUCTION_HOSTS, TT_HOSTS
from swingtrader.broker import AuthError, BrokerError
from swingtrader.tastytrade.transport import TastytradeTransport, tt_urls, production_allowed
from swingtrader.tastytrade.broker import TastytradeBroker

PROD_REST, PROD_STREAM = TT_HOSTS["production"]
SBX_REST, SBX_STREAM = TT_HOSTS["sandbox"]
OVERRIDES = [None, "http://127.0.0.1:9", SBX_REST, PROD_REST, "https://API.TASTYWORKS.COM"]
STREAM_OVERRIDES = [None, "ws://127.0.0.1:9/streamer", PROD_STREAM]

def combos():
    for broker, env, confirm, api, stream in itertools.product(
            ["sim", "tastytrade", "alpaca"], ["sandbox", "production", "paper", "live"], ["", "yes", "no"], OVERRIDES, STREAM_OVERRIDES):
        yield dict(broker=broker, environment=env, live_confirm=confirm, TT_API_URL=api, TT_STREAMER_URL=stream,
                   TT_CLIENT_SECRET="cs-secret-1", TT_REFRESH_TOKEN="rt-secret-1")

def build(kw):
    try: return Settings(**{k: v for k, v in kw.items() if v is not None})
    except Exception: return None   # invalid combinations never yield settings

@pytest.fixture
def dialled(monkeypatch):
    "Record every host a connection is attempted to, and refuse them all (no network)."
    hosts = []
    def fake_getaddrinfo(host, *a, **k):
        hosts.append(str(host).lower()); raise socket.gaierror(-2, "blocked by test")
    def fake_connect(self, addr):
        hosts.append(str(addr[0]).lower()); raise ConnectionRefusedError("blocked by test")
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", fake_connect)
    return hosts

def test_every_settings_combination_resolves_safe_urls():
    seen_prod = 0
    for kw in combos():
        s = build(kw)
        if s is None: continue
        try: rest, stream = tt_urls(s)
        except ConfigError:
            assert not production_allowed(s); continue
        for u in (rest, stream):
            if urlparse(u).hostname in PRODUCTION_HOSTS:
                seen_prod += 1
                assert production_allowed(s), (kw, u)
        if not production_allowed(s):
            assert urlparse(rest).hostname not in PRODUCTION_HOSTS and urlparse(stream).hostname not in PRODUCTION_HOSTS
    assert seen_prod > 0          # the allowed production case is reachable (and was checked)

def test_unvalidated_settings_cannot_reach_production():
    for env, confirm in [("production", ""), ("production", "no"), ("sandbox", "yes"), ("sandbox", "")]:
        s = Settings.model_construct(broker="tastytrade", environment=env, live_confirm=confirm, tt_api_url=PROD_REST,
                                     tt_streamer_url=None, **{"tt_client_secret": None, "tt_refresh_token": None})
        with pytest.raises(ConfigError): tt_urls(s)

def test_transport_dials_only_allowed_hosts(dialled):
    for kw in combos():
        s = build(kw)
        if s is None: continue
        before = len(dialled)
        try:
            tr = TastytradeTransport(s, retries=0, backoff=0.001, timeout=0.2)
        except ConfigError:
            assert not production_allowed(s); continue
        with pytest.raises((AuthError, BrokerError)): tr.access_token()
        new = dialled[before:]
        assert new, "the transport should have tried to connect somewhere"
        if not production_allowed(s):
            assert not any(h in PRODUCTION_HOSTS for h in new), (kw, new)
        tr.close()

def test_broker_defaults_to_sandbox(dialled):
    s = Settings(broker="tastytrade", TT_CLIENT_SECRET="cs-secret-1", TT_REFRESH_TOKEN="rt-secret-1")
    b = TastytradeBroker(s, retries=0, backoff=0.001, timeout=0.2)
    assert b.transport.base_url == SBX_REST and b.transport.streamer_url == SBX_STREAM
    with pytest.raises(BrokerError): b.account()
    assert dialled and set(dialled) <= {"api.cert.tastyworks.com"}
    assert "cs-secret-1" not in repr(b) and "rt-secret-1" not in repr(b.transport)

def test_production_only_with_opt_in(dialled):
    s = Settings(broker="tastytrade", environment="production", live_confirm="yes",
                 TT_CLIENT_SECRET="cs-secret-1", TT_REFRESH_TOKEN="rt-secret-1")
    tr = TastytradeTransport(s, retries=0, backoff=0.001, timeout=0.2)
    assert tr.base_url == PROD_REST and tr.session.headers.get("Accept-Version") is None
    with pytest.raises(BrokerError): tr.access_token()
    assert set(dialled) == {"api.tastyworks.com"}
