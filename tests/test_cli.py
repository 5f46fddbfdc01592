"Bad input at the CLI: one clear line each, non-zero exit, never a traceback."
import os, subprocess, sys
from pathlib import Path
import pytest

def run(args, tmp_path, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_"))}
    return subprocess.run([str(Path(sys.executable).parent/"swingtrader"), *args], capture_output=True, text=True,
                          env={**base, **env}, cwd=tmp_path, timeout=120)

@pytest.mark.parametrize("args,env,needle", [
    (["config"], {"SWINGTRADER_BROKER": "ibkr"}, "SWINGTRADER_BROKER='ibkr' is invalid"),
    (["config"], {"SWINGTRADER_BROKER": "tastytrade", "SWINGTRADER_ENVIRONMENT": "production"}, "SWINGTRADER_LIVE_CONFIRM is not 'yes'"),
    (["config"], {"SWINGTRADER_RISK_PER_TRAD": "0.01"}, "did you mean SWINGTRADER_RISK_PER_TRADE"),
    (["market", "--at", "tomorrow"], {}, "is not a date/time"),
])
def test_bad_input_is_one_line(tmp_path, args, env, needle):
    r = run(args, tmp_path, **env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert all(l.startswith("error: ") for l in r.stderr.strip().splitlines())

def test_unknown_command(tmp_path):
    r = run(["fly"], tmp_path)
    assert r.returncode == 2 and "No such command 'fly'" in r.stderr and "Traceback" not in r.stderr

def test_config_with_empty_environment(tmp_path):
    r = run(["config"], tmp_path)
    assert r.returncode == 0 and "* sim        ready" in r.stdout

@pytest.mark.parametrize("args,needle", [
    (["status"], "No ledger at"),
    (["halt"], "Missing option '--reason'"),
    (["halt", "--reason", "  "], "halt needs a reason"),
    (["reset-halt", "--reason", "ok"], "Missing option '--who'"),
    (["resume", "--who", " ", "--reason", "ok"], "needs who and why"),
    (["emulator", "--port", "70000"], "70000 is not in the range"),
    (["emulator", "--speed", "0"], "--speed"),
    (["audit-prune", "--today", "31/12/2026"], "is not a date"),
])
def test_command_errors_are_one_line(tmp_path, args, needle):
    r = run(args, tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"data"))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr + r.stdout

def test_halt_status_resume_round_trip(tmp_path):
    env = {"SWINGTRADER_DATA_DIR": str(tmp_path/"data")}
    assert run(["halt", "--reason", "fed day"], tmp_path, **env).returncode == 0
    st = run(["status"], tmp_path, **env)
    assert "trading state: halted (by cli" in st.stdout and "halt#1" in st.stdout
    r = run(["resume", "--who", "bob", "--reason", "calm again"], tmp_path, **env)
    assert r.returncode == 0 and "active (reset by bob: calm again)" in r.stdout
    assert "trading state: active" in run(["status"], tmp_path, **env).stdout

@pytest.mark.parametrize("args,env,needle", [
    (["run"], {"SWINGTRADER_BROKER": "tastytrade"}, "TT_CLIENT_SECRET is not set but SWINGTRADER_BROKER='tastytrade' needs it"),
    (["smoke"], {"SWINGTRADER_BROKER": "tastytrade", "TT_CLIENT_SECRET": "x"}, "TT_REFRESH_TOKEN is not set"),
    (["daily"], {"SWINGTRADER_BROKER": "tastytrade"}, "TT_CLIENT_SECRET is not set"),
    (["run"], {"SWINGTRADER_BROKER": "alpaca", "ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s"}, "does not trade on alpaca yet"),
    (["smoke", "--symbol", "SPY"], {"SWINGTRADER_BROKER": "alpaca"}, "does not support Alpaca yet"),
    (["daily"], {"SWINGTRADER_BROKER": "alpaca", "ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s"}, "the daily run does not support Alpaca yet"),
])
def test_missing_credentials_and_unsupported_brokers(tmp_path, args, env, needle):
    "Refused before anything connects: one line naming what is missing, exit 2, no traceback."
    r = run(args, tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"data"), **env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr + r.stdout
