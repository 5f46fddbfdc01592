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
