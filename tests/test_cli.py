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
    (["emulator", "--port", "70000"], "'70000' is out of range: give a whole number >= 0 and <= 65535"),
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
    (["run"], {"SWINGTRADER_BROKER": "alpaca"}, "ALPACA_API_KEY is not set but SWINGTRADER_BROKER='alpaca' needs it"),
    (["smoke", "--symbol", "SPY"], {"SWINGTRADER_BROKER": "alpaca"}, "ALPACA_API_KEY is not set"),
    (["daily"], {"SWINGTRADER_BROKER": "alpaca", "ALPACA_API_KEY": "k"}, "ALPACA_SECRET_KEY is not set"),
])
def test_missing_credentials_and_unsupported_brokers(tmp_path, args, env, needle):
    "Refused before anything connects: one line naming what is missing, exit 2, no traceback."
    r = run(args, tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"data"), **env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr + r.stdout

# -- run: the tracebacks, each now one line (exit 2)

def one_line(r):
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr + r.stdout, r.stderr
    return lines[0]

@pytest.mark.parametrize("args,needle", [
    (["daily", "--day", "9999-12-31"], "--day 9999-12-31 is outside the market calendar"),
    (["daily", "--speed", "nan"], "'--speed': 'nan' is out of range: give a number > 0 and <= 1000000"),
    (["daily", "--speed", "inf"], "'--speed'"),
    (["daily", "--speed", "-1"], "'--speed'"),
    (["daily", "--speed", "1e309"], "'--speed': '1e309' is out of range"),
    (["emulator", "--speed", "nan"], "'--speed'"),
    (["emulator", "--speed", "1e309"], "'--speed'"),
    (["emulator", "--seed", "-1"], "'--seed': '-1' is out of range: give a whole number >= 0 and <= 4294967295"),
    (["backtest", "--start", "2026-03-02", "--end", "2026-03-04", "--seed", "-1"], "'--seed'"),
    (["backtest", "--start", "2026-03-02", "--end", "9999-12-31"], "--end 9999-12-31 is outside the market calendar"),
    (["market", "--at", "9999-12-31T23:59:59+00:00"], "is outside the market calendar"),
    (["market", "--at", "2031-06-01T12:00"], "is outside the market calendar"),
    (["status", "--runs", "-1"], "'--runs'"),
    (["fly"], "No such command 'fly'"),
])
def test_bad_values_are_one_line(tmp_path, args, needle):
    assert needle in one_line(run(args, tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"data")))

@pytest.mark.parametrize("args", [["status"], ["halt", "--reason", "x"], ["flatten"], ["daily", "--no-report"], ["run"]])
def test_data_dir_that_is_a_file(tmp_path, args):
    (tmp_path/"afile").write_text("not a directory")
    line = one_line(run(args, tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"afile")))
    assert "not a directory" in line and "SWINGTRADER_DATA_DIR" in line

def test_corrupt_ledger_under_status_and_run(tmp_path):
    data = tmp_path/"data"; data.mkdir()
    (data/"ledger.sqlite").write_bytes(b"this is not SQLite at all" * 100)
    line = one_line(run(["status"], tmp_path, SWINGTRADER_DATA_DIR=str(data)))
    assert str(data/"ledger.sqlite") in line
    live = {"SWINGTRADER_BROKER": "tastytrade", "TT_CLIENT_SECRET": "x-secret", "TT_REFRESH_TOKEN": "x-token",
            "SWINGTRADER_LOCK_DIR": str(tmp_path/"locks"), "SWINGTRADER_DATA_DIR": str(data)}
    line = one_line(run(["run"], tmp_path, **live))
    assert str(data/"ledger.sqlite") in line and "x-secret" not in line
    assert (data/"ledger.sqlite").read_bytes().startswith(b"this is not SQLite")    # never written to

def test_status_into_a_closed_pipe(tmp_path):
    "`swingtrader status | head -2`: the reader goes away; no traceback, no 'Exception ignored'."
    env = {"SWINGTRADER_DATA_DIR": str(tmp_path/"data")}
    assert run(["halt", "--reason", "x"], tmp_path, **env).returncode == 0
    r_fd, w_fd = os.pipe()
    os.close(r_fd)                                         # every write to the pipe now fails with EPIPE
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_"))}
    p = subprocess.run([str(Path(sys.executable).parent/"swingtrader"), "status"], stdout=w_fd, stderr=subprocess.PIPE, text=True,
                       env={**base, **env}, cwd=tmp_path, timeout=120)
    os.close(w_fd)
    assert p.returncode in (0, 1) and p.stderr == "", p.stderr

# -- every numeric option: NaN, ±inf, negative, huge → one `error:` line naming the option and its range

import click
from click.testing import CliRunner
from hypothesis import given, settings as hsettings, strategies as st, HealthCheck
from swingtrader import cli as _cli

REQUIRED = {"--start": "2026-03-02", "--end": "2026-03-04"}

def _numeric_options():
    out = []
    def walk(grp, path):
        ctx = click.Context(grp)
        for name in sorted(grp.list_commands(ctx)):              # the lazily loaded commands too (ledger, backtest, sweep, ...)
            cmd = grp.get_command(ctx, name)
            if isinstance(cmd, click.Group): walk(cmd, path + [name]); continue
            for p in cmd.params:
                if isinstance(p, click.Option) and isinstance(p.type, (_cli.Number, click.IntRange, click.FloatRange, click.types.IntParamType, click.types.FloatParamType)):
                    out.append((tuple(path + [name]), cmd, p))
    walk(_cli.main, [])
    return out

NUMERIC = _numeric_options()

def _bounds(t):
    if isinstance(t, _cli.Number): return t.lo, t.hi, t.lo_open, t.kind is int
    if isinstance(t, (click.IntRange, click.FloatRange)): return t.min, t.max, t.min_open, isinstance(t, click.IntRange)
    return None, None, False, isinstance(t, click.types.IntParamType)

def test_every_numeric_option_is_bounded():
    "Every numeric option is a `Number` with both bounds: an unbounded float takes NaN and infinities, an unbounded int any huge value."
    assert len(NUMERIC) >= 8
    for path, cmd, p in NUMERIC:
        assert isinstance(p.type, _cli.Number), f"{' '.join(path)} {p.opts[0]} is a {p.type!r}: use cli.Number(kind, lo, hi)"
        assert p.type.lo is not None and p.type.hi is not None, f"{' '.join(path)} {p.opts[0]} has no range"

def _bad_values(lo, hi, lo_open, is_int):
    bad = st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e309", "-1e309", "1e400"])
    below = (st.floats(max_value=lo, allow_nan=False, allow_infinity=False).filter(lambda x: x < lo or (lo_open and x == lo))
             if not is_int else st.integers(max_value=int(lo) - (0 if lo_open else 1)))
    above = (st.floats(min_value=hi, allow_nan=False, allow_infinity=False).filter(lambda x: x > hi)
             if not is_int else st.integers(min_value=int(hi) + 1))
    huge = st.integers(min_value=10**19, max_value=10**400).map(lambda x: x if x > hi else int(hi) + 1)
    return st.one_of(bad, below.map(repr), above.map(repr), huge.map(str), huge.map(lambda x: str(-x)))

@pytest.mark.parametrize("path,cmd,p", NUMERIC, ids=[f"{' '.join(x[0])}-{x[2].opts[0]}" for x in NUMERIC])
@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_numeric_option_rejects_bad_values(path, cmd, p, data, tmp_path, monkeypatch):
    lo, hi, lo_open, is_int = _bounds(p.type)
    v = data.draw(_bad_values(lo, hi, lo_open, is_int))
    args = [*path, f"{p.opts[0]}={v}"]
    for q in cmd.params:
        if isinstance(q, click.Option) and q.required: args += [q.opts[0], REQUIRED.get(q.opts[0], "x")]
    monkeypatch.setenv("SWINGTRADER_DATA_DIR", str(tmp_path/"data"))
    r = CliRunner().invoke(_cli.main, args)
    assert r.exit_code == 2, (args, r.output)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output, (args, r.output)
    assert f"'{p.opts[0]}'" in lines[0] and p.type.range in lines[0], lines[0]      # names the option and its valid range
