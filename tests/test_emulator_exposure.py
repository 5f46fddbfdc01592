"""The emulator off loopback: it serves a trading API, so it refuses to start without --strict, and its strict credentials
are drawn at random per run (printed once to the terminal, never logged). On loopback the fixed ones stay (tests use them).
Nothing here binds anything but loopback: the off-loopback cases are refused, or their `start` is replaced."""
import logging, threading

import pytest
import requests
from click.testing import CliRunner

from swingtrader.config import SwingtraderError
from swingtrader.emulator import app as emu_app
from swingtrader.emulator.app import EmulatorServer, run_emulator
from swingtrader.emulator.core import STRICT_CLIENT_SECRET, STRICT_REFRESH_TOKEN
from emu_support import make_emulator, serve, UA

OFF = ["0.0.0.0", "::", "192.0.2.10", ""]


def token(srv, secret, refresh):
    return requests.post(srv.api_url + "/oauth/token", json={"grant_type": "refresh_token", "client_secret": secret, "refresh_token": refresh},
                         headers=UA, timeout=10)


@pytest.mark.parametrize("host", OFF)
def test_off_loopback_without_strict_is_refused_before_binding(host):
    emu = make_emulator()
    with pytest.raises(SwingtraderError) as e:
        EmulatorServer(emu, host=host)
    assert "--strict" in str(e.value) and "127.0.0.1" in str(e.value) and "\n" not in str(e.value)


def test_cli_off_loopback_without_strict_is_one_line(clean_env, tmp_path, monkeypatch):
    "`swingtrader emulator --host 0.0.0.0`: one error line, exit 2, nothing started (start is replaced: it must not be reached)."
    from swingtrader.cli import main
    started = []
    monkeypatch.setattr(EmulatorServer, "start", lambda self: started.append(self.host) or (_ for _ in ()).throw(RuntimeError("bound")))
    clean_env.setenv("SWINGTRADER_DATA_DIR", str(tmp_path/"data"))
    r = CliRunner().invoke(main, ["emulator", "--host", "0.0.0.0", "--port", "0"])
    assert started == [] and r.exit_code == 2, (r.exit_code, r.output, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--strict" in lines[0] and "Traceback" not in r.output, r.output


def test_off_loopback_strict_credentials_are_random_per_run():
    a, b = EmulatorServer(make_emulator(strict=True), host="0.0.0.0"), EmulatorServer(make_emulator(strict=True), host="0.0.0.0")
    ca, cb = a.emu.strict_credentials, b.emu.strict_credentials
    assert ca.client_secret not in (STRICT_CLIENT_SECRET, cb.client_secret) and ca.refresh_token not in (STRICT_REFRESH_TOKEN, cb.refresh_token)
    assert len(ca.client_secret) >= 32 and len(ca.refresh_token) >= 32
    for text in (repr(ca), repr(a), repr(a.emu), str(ca)):                  # never in a repr
        assert ca.client_secret not in text and ca.refresh_token not in text
    from swingtrader.emulator.alpaca_data import alpaca_keys, ALPACA_KEY_ID, ALPACA_SECRET_KEY
    k, s = alpaca_keys(a.emu)                                               # the Alpaca side's key pair: random too
    assert k != ALPACA_KEY_ID and s != ALPACA_SECRET_KEY and (k, s) != alpaca_keys(b.emu)


def test_loopback_keeps_the_fixed_strict_credentials(tmp_path):
    with serve(tmp_path, strict=True) as s:
        assert token(s, STRICT_CLIENT_SECRET, STRICT_REFRESH_TOKEN).status_code == 200


def test_random_strict_credentials_are_the_only_ones_accepted(tmp_path):
    "The oauth endpoint checks the run's credentials (served on loopback here with random ones set, as off loopback)."
    emu = make_emulator(strict=True)
    emu.strict_credentials = emu_app.StrictCredentials.random()
    c = emu.strict_credentials
    with serve(tmp_path, emu=emu) as s:
        assert token(s, STRICT_CLIENT_SECRET, STRICT_REFRESH_TOKEN).status_code == 401
        assert token(s, c.client_secret, "wrong").status_code == 401
        r = token(s, c.client_secret, c.refresh_token)
        assert r.status_code == 200 and r.json()["access_token"]


def test_run_emulator_prints_the_random_credentials_once_and_logs_none(monkeypatch, capsys, caplog):
    "Off loopback with --strict: the credentials are printed once to the terminal; no log record has them."
    seen = {}
    def fake_start(self):                     # no bind off loopback in a test
        seen["srv"] = self; self.port = 1; return self
    monkeypatch.setattr(EmulatorServer, "start", fake_start)
    monkeypatch.setattr(EmulatorServer, "stop", lambda self: None)
    stop = threading.Event(); stop.set()
    with caplog.at_level(logging.DEBUG):
        run_emulator(host="0.0.0.0", port=0, strict=True, symbols=2, days=1, stop=stop)
    out = capsys.readouterr()
    c = seen["srv"].emu.strict_credentials
    assert out.out.count(c.client_secret) == 1 and out.out.count(c.refresh_token) == 1, out.out
    assert STRICT_CLIENT_SECRET not in out.out and c.client_secret not in out.err
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert c.client_secret not in logged and c.refresh_token not in logged
