"""Start-up during a broker outage, against the emulator (both brokers): HTTP 503s on the first requests are waited out
for up to `connectivity_timeout` seconds, each wait logged; a longer outage ends in one clear `BrokerUnavailable`; bad
credentials (401) are an error at once, never retried."""
import asyncio, logging, os, subprocess, sys
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
from pydantic import SecretStr

import proc_support
from swingtrader.broker import AuthError, BrokerUnavailable
from swingtrader.clock import MarketCalendar
from swingtrader.config import Settings
from swingtrader.session import build_bot, open_state, sim_environment

DAY = date(2026, 3, 2)
BROKERS = ["tastytrade", "alpaca"]
WAITS = "retrying in"


@contextmanager
def _env(which, tmp_path, timeout):
    "The emulated broker `which`, 30 minutes into a session, with `connectivity_timeout=timeout`; closed at the end."
    s = Settings(_env_file=None, sim_symbols=3, sim_broker=which, data_dir=tmp_path / "data", connectivity_timeout=timeout)
    env = sim_environment(s, DAY, DAY, 60.0, start=MarketCalendar().session(DAY)[0] + timedelta(minutes=30))
    try: yield env
    finally: env.close()


def _start(env, settings=None, calls=None):
    "Build the bot on `env` (tastytrade asks for its first token here) and run its start-up; None, or what it raised."
    settings = settings or env.settings
    ledger, audit = open_state(settings, env.clock)
    bot = None
    async def go():
        try: await bot.startup()
        finally: await bot.shutdown()
    try:
        bot = build_bot(settings, env.clock, ledger, audit, scan=False)
        asyncio.run(go())
        return None
    except Exception as e: return e
    finally:
        if bot is not None:
            if calls is not None and hasattr(bot.broker.transport, "latency"):    # Alpaca: the REST requests it made
                calls.extend(k for k, v in bot.broker.transport.latency.summary().items() for _ in range(v["n"]))
            bot.broker.close()
        ledger.close(); audit.close()


def _waits(caplog): return [r for r in caplog.records if WAITS in r.getMessage()]


@pytest.mark.parametrize("which", BROKERS)
def test_an_outage_shorter_than_the_timeout_is_waited_out(which, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    with _env(which, tmp_path, timeout=300) as env:       # generous: the outage is 4 requests, the machine may be slow
        env.server.call(lambda: env.server.emu.faults.update(server_error_next=4))
        assert _start(env) is None
        assert env.server.emu.faults.server_error_next == 0                   # every 503 was met ...
        waits = _waits(caplog)
        assert len(waits) == 4 and all("HTTP 503" in r.getMessage() for r in waits)   # ... and each wait logged
        assert all("SWINGTRADER_CONNECTIVITY_TIMEOUT" in r.getMessage() for r in waits)


@pytest.mark.parametrize("which", BROKERS)
def test_an_outage_longer_than_the_timeout_is_one_clear_error(which, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    with _env(which, tmp_path, timeout=2) as env:
        env.server.call(lambda: env.server.emu.faults.update(server_error_next=10**9))
        e = _start(env)
        assert isinstance(e, BrokerUnavailable), repr(e)
        assert "HTTP 503" in e.problem and "looks unreachable or down" in e.problem
        assert "SWINGTRADER_CONNECTIVITY_TIMEOUT=2 s" in e.fix
        assert len(_waits(caplog)) >= 2                                       # it did wait before giving up


@pytest.mark.parametrize("which", BROKERS)
def test_bad_credentials_are_an_error_at_once(which, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    with _env(which, tmp_path, timeout=300) as env:
        if which == "tastytrade":
            env.server.emu.strict = True                                      # the emulator checks the refresh token
            bad = env.settings.model_copy(update={"tt_refresh_token": SecretStr("wrong-secret-4242")})
        else: bad = env.settings.model_copy(update={"alpaca_secret_key": SecretStr("wrong-secret-4242")})
        before, calls = env.server.emu.requests, []
        e = _start(env, bad, calls)
        assert isinstance(e, AuthError), repr(e)
        if which == "tastytrade": assert env.server.emu.requests - before == 1     # one token request, never retried
        else: assert calls == ["GET /orders"]                                 # (Alpaca's key check comes before the request count)
        assert not _waits(caplog)
        assert "wrong-secret-4242" not in str(e)
        assert ("TT_REFRESH_TOKEN" if which == "tastytrade" else "ALPACA_SECRET_KEY") in str(e)


def _cli_env(which, s, tmp_path) -> dict:
    "The environment of `swingtrader run` on `which` pointed at the emulator of settings `s`."
    if which == "tastytrade":
        kw = dict(TT_API_URL=s.tt_api_url, TT_STREAMER_URL=s.tt_streamer_url, TT_ACCOUNT_NUMBER=s.tt_account_number,
                  TT_CLIENT_SECRET=s.tt_client_secret.get_secret_value(), TT_REFRESH_TOKEN=s.tt_refresh_token.get_secret_value(),
                  SWINGTRADER_ENVIRONMENT="sandbox")
    else:
        kw = dict(ALPACA_BASE_URL=s.alpaca_base_url, ALPACA_DATA_URL=s.alpaca_data_url, ALPACA_API_KEY=s.alpaca_api_key.get_secret_value(),
                  ALPACA_SECRET_KEY=s.alpaca_secret_key.get_secret_value(), SWINGTRADER_ENVIRONMENT="paper")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))          # this checkout's swingtrader
    return proc_support.env(tmp_path, SWINGTRADER_BROKER=which, SWINGTRADER_CONNECTIVITY_TIMEOUT="2",
                            PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]), **kw)


@pytest.mark.parametrize("which", BROKERS)
@pytest.mark.parametrize("case", ["outage", "credentials"])
def test_swingtrader_run_prints_one_error_line(which, case, tmp_path):
    "`swingtrader run`: a long outage or refused credentials is one `error:` line and exit code 2, no traceback."
    with _env(which, tmp_path, timeout=2) as env:
        s = env.settings
        if case == "outage": env.server.call(lambda: env.server.emu.faults.update(server_error_next=10**9))
        elif which == "tastytrade":
            env.server.emu.strict = True
            s = s.model_copy(update={"tt_refresh_token": SecretStr("wrong-secret-4242")})
        else: s = s.model_copy(update={"alpaca_secret_key": SecretStr("wrong-secret-4242")})
        p = subprocess.run([sys.executable, "-m", "swingtrader", "run"], env=_cli_env(which, s, tmp_path), cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
        assert p.returncode == 2, p.stderr[-2000:]
        assert len(errors) == 1 and "Traceback" not in p.stderr, p.stderr[-2000:]
        if case == "outage":
            assert "looks unreachable or down" in errors[0] and WAITS in p.stderr
        else:
            assert ("refused the refresh token" if which == "tastytrade" else "refused the credentials") in errors[0]
            assert WAITS not in p.stderr and "wrong-secret-4242" not in p.stderr
