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

# --- host checks that cannot be fooled: every spelling of a production host is refused in sandbox/paper ---------
from swingtrader.config import PRODUCTION_HOSTS_BY_BROKER, is_production_host, normalise_host

def _variants(host):
    "The tricks a URL can play on a naive hostname comparison (each is still the same host to a client)."
    up = host.upper()
    first, _, rest = host.partition(".")
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in first) + "." + rest
    puny = "xn--" + "".join(chr(ord(c) + 0xFEE0) for c in first).encode("punycode").decode() + "." + rest
    return {"case": up, "trailing dot": host + ".", "trailing dot + port": host + ".:1", "userinfo": "me:pw@" + host,
            "port": host + ":443", "fullwidth (IDNA)": fullwidth, "ideographic dots (IDNA)": host.replace(".", "\u3002"),
            "punycode": puny, "percent-escape": "%" + format(ord(host[0]), "02x") + host[1:],
            "subdomain": "eu." + host, "everything": "u@" + up + ".:8443"}

PROD = [(b, h) for b, hs in PRODUCTION_HOSTS_BY_BROKER.items() for h in hs]

def test_every_production_host_is_listed():
    hosts = {h for _, h in PROD}
    assert {"api.tastyworks.com", "api.tastytrade.com", "streamer.tastyworks.com", "streamer.tastytrade.com",
            "api.alpaca.markets"} <= hosts
    assert any(h.endswith("dxfeed.com") and "demo" not in h for h in hosts)   # DXLink production

@pytest.mark.parametrize("broker,host", PROD)
def test_every_spelling_of_a_production_host_is_production(broker, host):
    for trick, h in _variants(host).items():
        for scheme in ("https", "wss"):
            assert is_production_host(f"{scheme}://{h}/v1"), (trick, h)
        assert normalise_host(f"https://{h}") in (host, "eu." + host), (trick, normalise_host(f"https://{h}"))

@pytest.mark.parametrize("var,scheme", [("TT_API_URL", "https"), ("TT_STREAMER_URL", "wss"), ("ALPACA_BASE_URL", "https")])
@pytest.mark.parametrize("broker,host", PROD)
def test_sandbox_settings_refuse_every_trick(clean_env, var, scheme, broker, host):
    clean_env.setenv("SWINGTRADER_BROKER", "alpaca" if var.startswith("ALPACA") else "tastytrade")
    for trick, h in _variants(host).items():
        clean_env.setenv(var, f"{scheme}://{h}")
        with pytest.raises(ConfigError) as e: Settings.load()
        assert len(e.value.lines) == 1 and ("points at a production host" in e.value.lines[0]
                                            or "is not a usable URL" in e.value.lines[0]), (trick, e.value.lines)

def test_the_issue_case_is_refused_but_production_with_opt_in_is_not(clean_env):
    clean_env.setenv("SWINGTRADER_BROKER", "tastytrade")
    clean_env.setenv("TT_API_URL", "https://api.tastyworks.com.:1")
    with pytest.raises(ConfigError, match="points at a production host"): Settings.load()
    clean_env.setenv("SWINGTRADER_ENVIRONMENT", "production"); clean_env.setenv("SWINGTRADER_LIVE_CONFIRM", "yes")
    assert Settings.load().tt_api_url == "https://api.tastyworks.com.:1"

@pytest.mark.parametrize("url", ["https://api.cert.tastyworks.com", "wss://streamer.cert.tastyworks.com", "http://127.0.0.1:8765",
                                 "ws://localhost:9/streamer", "https://paper-api.alpaca.markets", "https://data.alpaca.markets",
                                 "wss://stream.data.alpaca.markets/v2/iex", "https://api.tastyworks.com.example.org",
                                 "https://notapi-tastyworks.com", "http://[::1]:8080"])
def test_safe_hosts_stay_usable(url):
    assert not is_production_host(url)

@pytest.mark.parametrize("url", ["https://api2.tastyworks.com", "https://tastytrade.com", "https://api.cert.tastyworks.com.evil.tastyworks.com",
                                 "https://broker-api.alpaca.markets", "https://x.api.cert.tastyworks.com"])
def test_unknown_hosts_under_a_broker_domain_count_as_production(url):
    assert is_production_host(url)

@pytest.mark.parametrize("url", ["https://api.tastyworks.com\\@127.0.0.1", "https://api.cert.tastyworks.com x", "https://h:notaport"])
def test_ambiguous_urls_are_not_usable(clean_env, url):
    clean_env.setenv("SWINGTRADER_BROKER", "tastytrade"); clean_env.setenv("TT_API_URL", url)
    with pytest.raises(ConfigError) as e: Settings.load()
    assert len(e.value.lines) == 1 and "is not a usable URL" in e.value.lines[0]


@pytest.mark.parametrize("url", ["https://api.tastyworks.com.:1/x", "https://API.TASTYTRADE.com", "https://user:pw@api.tastyworks.com:443",
                                 "wss://streamer.tastyworks.com./ws"])
def test_transport_guard_normalises_hosts_too(url):
    "The transport checks again at connect time, so a Settings built without validation still cannot reach production."
    from swingtrader.config import ConfigError, Settings
    from swingtrader.tastytrade.transport import guard_url
    with pytest.raises(ConfigError): guard_url(Settings.model_construct(environment="sandbox", live_confirm=""), url)
