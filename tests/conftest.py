"""Shared pytest fixtures. The emulator harness (seeded SimBroker -> Emulator -> EmulatorServer -> tastytrade client)
is built in ONE place, tests/emu_support.py (`make_broker`, `make_emulator`, `serve`); the fixtures below wrap it.
A module tunes them by overriding `sim_spec` (make_broker arguments) or `emulator_options` (make_emulator/serve arguments)."""
import os, pytest

TT_SECRET, TT_REFRESH = "client-secret-xyz", "refresh-token-xyz"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    "No swingtrader/broker variables and no .env: each test states exactly what it sets."
    for k in list(os.environ):
        if k.startswith(("SWINGTRADER_", "TT_", "ALPACA_")): monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.fixture
def sim_spec():
    "Arguments for emu_support.make_broker; override in a module for another seed/universe/clock."
    return {}


@pytest.fixture
def sim_broker(sim_spec):
    "A seeded SimBroker (default: seed 7, 4 symbols, 10 minutes into Monday 2026-03-02)."
    import emu_support   # imported lazily: only tests that use the emulator pay for its imports
    return emu_support.make_broker(**sim_spec)


@pytest.fixture
def emulator_options():
    "Arguments for emu_support.serve (tls, strict, faults, Emulator options); override in a module."
    return {}


@pytest.fixture
def emulator(sim_broker, emulator_options):
    "A started EmulatorServer on 127.0.0.1 over `sim_broker` (`.control_headers` for /_emulator); stopped at teardown."
    import emu_support
    with emu_support.serve(broker=sim_broker, **emulator_options) as srv:
        yield srv


@pytest.fixture
def tt_settings(emulator):
    "Settings for the tastytrade broker pointed at `emulator`."
    from swingtrader.config import Settings
    return Settings(broker="tastytrade", TT_CLIENT_SECRET=TT_SECRET, TT_REFRESH_TOKEN=TT_REFRESH,
                    TT_API_URL=emulator.api_url, TT_STREAMER_URL=emulator.streamer_url)


@pytest.fixture
def tt_clients(emulator, tt_settings):
    "Factory: tt_clients(settings=None, **kw) -> a TastytradeBroker on `emulator` (wall clock, emulator CA); all closed at teardown."
    from swingtrader.clock import WallClock
    from swingtrader.tastytrade.broker import TastytradeBroker
    made = []
    def make(settings=None, **kw):
        kw.setdefault("verify", emulator.ca_file)
        b = TastytradeBroker(settings or tt_settings, clock=kw.pop("clock", WallClock()), **kw)
        made.append(b); return b
    yield make
    for b in made: b.close()


@pytest.fixture
def tt_client(tt_clients):
    "A TastytradeBroker pointed at `emulator` with `tt_settings`."
    return tt_clients()


@pytest.fixture
def emulator_control(emulator):
    "control(what, **body): POST /_emulator/<what> with the control token; asserts 200 and returns the JSON."
    import requests
    def control(what, **body):
        r = requests.post(f"{emulator.api_url}/_emulator/{what}", json=body, headers=emulator.control_headers,
                          verify=str(emulator.ca_file) if emulator.ca_file else True, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()
    return control


@pytest.fixture
def dx_live():
    "A running emulator for DXLink tests (dxlink_harness.live() defaults), as a dxlink_harness.Live."
    from dxlink_harness import live
    with live() as L:
        yield L


@pytest.fixture
def alpaca_trading(emulator):
    "alpaca-py's TradingClient (unmodified) bound to `emulator` with the emulator's Alpaca key pair (emulator-key-id / emulator-secret-key)."
    import emu_support
    return emu_support.alpaca_trading_client(emulator)
