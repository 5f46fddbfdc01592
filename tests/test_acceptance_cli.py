"A demanding user's acceptance pass: each test is a defect found running the installed `swingtrader` command, run the same way."
import os, subprocess, sys
from pathlib import Path
import pytest

EXE = str(Path(sys.executable).parent/"swingtrader")

def run(args, cwd, timeout=120, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_"))}
    return subprocess.run([EXE, *args], capture_output=True, text=True, env={**base, **env}, cwd=cwd, timeout=timeout)

def py(code, cwd, timeout=120, **env):
    "The CLI inside a Python process that first points a client library somewhere (no network)."
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_"))}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**base, **env}, cwd=cwd, timeout=timeout)

def one_line(r, marker=" Fix: "):
    "Exit 2, one `error:` line on stderr that names the problem and the fix, no traceback (settings: `problem: fix`)."
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and marker in lines[0], r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    return lines[0]

# -- a data directory the OS refuses (here: a name longer than the file system allows, which refuses root too)

@pytest.mark.parametrize("args", [["daily", "--no-report", "--speed", "1000"], ["run"]])
def test_unusable_data_dir_is_one_line(tmp_path, args):
    bad = tmp_path/("d" * 300)
    line = one_line(run(args, tmp_path, SWINGTRADER_DATA_DIR=str(bad)))
    assert "cannot use" in line and "d" * 300 in line and "SWINGTRADER_DATA_DIR" in line

# -- backtest --symbols: a count beyond the simulator's 500 ran for many minutes (100000: > 2 minutes, no output)

@pytest.mark.parametrize("n", ["100000", "501", "0", "-5"])
def test_backtest_symbol_count_is_bounded(tmp_path, n):
    line = one_line(run(["backtest", "--start", "2026-03-02", "--end", "2026-03-03", "--symbols", n], tmp_path,
                        SWINGTRADER_DATA_DIR=str(tmp_path/"data"), timeout=60))
    assert f"--symbols {n} is out of range" in line and "1 to 500" in line

# -- status on a ledger no bot has run yet printed "by ledger at None"

def test_status_of_a_new_ledger_has_no_none(tmp_path):
    env = {"SWINGTRADER_DATA_DIR": str(tmp_path/"data")}
    r = run(["flatten"], tmp_path, **env)                    # creates the ledger without a halt
    assert r.returncode == 0, r.stderr
    st = run(["status"], tmp_path, **env)
    assert st.returncode == 0 and "trading state: active" in st.stdout and "None" not in st.stdout, st.stdout

# -- a misspelt option: "Did you mean '--data'?." (two marks)

def test_option_suggestion_ends_once(tmp_path):
    line = one_line(run(["backtest", "--data-typo", "x.csv"], tmp_path))
    assert "Did you mean '--data'? Fix:" in line and "?." not in line
    line = one_line(run(["backtest", "--dta", "x.csv"], tmp_path))
    assert "(Did you mean one of: '--data'" in line and "?)." not in line

# -- `resume --help` said "(alias: resume)" of itself

def test_resume_help_names_what_it_is_an_alias_of(tmp_path):
    r = run(["resume", "--help"], tmp_path)
    assert r.returncode == 0 and "the same as reset-halt" in r.stdout and "alias: resume" not in r.stdout
    top = run(["--help"], tmp_path).stdout
    assert "resume" in top and "reset-halt" in top

# -- chat: Discord out of reach, or a wrong bot token, ended in a traceback (exit 1)

CHAT_ENV = {"SWINGTRADER_DISCORD_TOKEN": "wrong-token-abc123", "SWINGTRADER_CHAT_ALLOW": "1:trade:2"}

def test_chat_when_discord_is_unreachable(tmp_path):
    import socket
    with socket.socket() as s:                                 # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    code = ("import sys; from swingtrader.emulator.discord import point_discord_at; "
            f"point_discord_at('http://127.0.0.1:{port}/api/v10', 'ws://127.0.0.1:{port}/gateway'); "
            "from swingtrader.cli import main; sys.argv = ['swingtrader', 'chat']; main()")
    line = one_line(py(code, tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"data"), **CHAT_ENV))
    assert "a connection failed" in line and "wrong-token-abc123" not in line

def test_chat_with_a_token_discord_refuses(tmp_path):
    code = ("import sys; from swingtrader.emulator.discord import DiscordEmulator, point_discord_at\n"
            "emu = DiscordEmulator(token='the-right-token'); emu.start()\n"
            "point_discord_at(emu.api_base, emu.gateway_url)\n"
            "from swingtrader.cli import main; sys.argv = ['swingtrader', 'chat']\n"
            "try: main()\n"
            "finally: emu.stop()\n")
    r = py(code, tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"data"), **CHAT_ENV)
    line = one_line(r)
    assert "Discord refused SWINGTRADER_DISCORD_TOKEN" in line and "wrong-token-abc123" not in r.stdout + r.stderr

# -- sweep: a range with nan/inf was a traceback; a tiny step or a vast grid ran (and ate memory) for minutes

SWEEP = ["sweep", "--start", "2026-03-02", "--end", "2026-03-06", "--symbols", "3", "--workers", "1"]

@pytest.mark.parametrize("params,needle", [
    (["macd_fast=nan:10:1"], "'nan' is not a finite number"),
    (["macd_fast=8:inf:1"], "'inf' is not a finite number"),
    (["macd_fast=8:10:nan"], "'nan' is not a finite number"),
    (["macd_fast=8:9:1e-300"], "makes more than a trillion values, more than a sweep runs (10,000)"),
    (["macd_fast=8:9:5e-324"], "more than a sweep runs (10,000)"),
    (["risk_per_trade=0.001:0.05:0.0000001"], "more than a sweep runs"),
    (["macd_fast=2:20:1", "macd_slow=30:300:1", "atr_period=2:100:1"], "= 509,751 parameter sets"),
])
def test_sweep_grid_mistakes_are_one_line(tmp_path, params, needle):
    args = [*SWEEP, "--out", str(tmp_path/"sw")] + [a for p in params for a in ("--param", p)]
    line = one_line(run(args, tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"data"), timeout=60))
    assert needle in line
    assert "finite" in needle or "--optuna" in line            # the fix names the other way to cover a range

# -- halt/resume/flatten: a reason with an escape sequence went to the ledger and back to the terminal raw (and 100,000
#    characters were taken); status printed a reason written elsewhere (dashboard, chat) with its newlines and escapes

@pytest.mark.parametrize("args,needle", [
    (["halt", "--reason", "news\x1b[2J"], "'--reason': has a control character"),
    (["halt", "--reason", "ok", "--who", "bob\u202e"], "'--who': has a control character"),
    (["resume", "--who", "bob", "--reason", "x" * 501], "'--reason': is 501 characters long: keep it to 500"),
    (["flatten", "--who", "\x07bell"], "'--who': has a control character"),
])
def test_recorded_notes_are_plain_text(tmp_path, args, needle):
    line = one_line(run(args, tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"data")))
    assert needle in line
    assert not (tmp_path/"data"/"ledger.sqlite").exists()          # refused before anything was recorded

def test_status_prints_a_recorded_reason_on_one_printable_line(tmp_path):
    from swingtrader.ledger import Ledger
    data = tmp_path/"data"; data.mkdir()
    with Ledger(data/"ledger.sqlite") as lg: lg.set_halt("halted", "dash\nboard", "line one\nline two\x1b[31m red")
    r = run(["status"], tmp_path, SWINGTRADER_DATA_DIR=str(data))
    assert r.returncode == 0, r.stderr
    line = next(l for l in r.stdout.splitlines() if l.startswith("trading state:"))
    assert "by dash board" in line and "line one line two?[31m red" in line and "\x1b" not in r.stdout

def test_multi_line_reason_is_recorded_as_one_line(tmp_path):
    env = {"SWINGTRADER_DATA_DIR": str(tmp_path/"data")}
    r = run(["halt", "--reason", "fed\n  day"], tmp_path, **env)
    assert r.returncode == 0 and "trading state: halted (by cli: fed day)" in r.stdout, r.stdout + r.stderr

# -- emulator on a taken port or an unknown host: the error ran into "Fix:" without a full stop, said "pick another port"
#    for a host name, and four "Task was destroyed but it is pending!" blocks followed it

@pytest.mark.parametrize("host,needle", [("127.0.0.1", "pick another --port"), ("no-such-host.invalid", "give --host an address")])
def test_emulator_that_cannot_bind_is_one_line(tmp_path, host, needle):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); s.listen(); port = s.getsockname()[1]
        line = one_line(run(["emulator", "--host", host, "--port", str(port), "--days", "1", "--symbols", "2", "--strict"], tmp_path,   # off loopback: strict only
                            SWINGTRADER_DATA_DIR=str(tmp_path/"data"), timeout=60))
    assert f"the emulator could not start on {host}:{port}: " in line and needle in line and ". Fix:" in line

# -- api on a taken port: uvicorn's "ERROR: [Errno 98] ..." log line, then "the order API did not start" without the port

def test_api_on_a_taken_port_is_one_line(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); s.listen(); port = s.getsockname()[1]
        line = one_line(run(["api", "--port", str(port)], tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"data"), timeout=60))
    assert f"cannot serve the order API on 127.0.0.1:{port}: Address already in use" in line and "another --port" in line
    assert not (tmp_path/"data").exists()                      # refused before the engine opened the ledger

# -- config: SWINGTRADER_FOO "did you mean SWINGTRADER_BROKER?" (the shared prefix made every name look near);
#    a .env line without '=' was "(<the line>=…) cannot be read (an unterminated quote?)" — the line may be a pasted secret

def test_unknown_setting_without_a_near_name_gets_no_guess(tmp_path):
    line = one_line(run(["config"], tmp_path, SWINGTRADER_FOO="1"), marker=": ")
    assert "SWINGTRADER_FOO is not a swingtrader setting: remove it" in line and "did you mean" not in line
    assert "did you mean SWINGTRADER_MACD_FAST?" in one_line(run(["config"], tmp_path, SWINGTRADER_MACD_FAS="8"), marker=": ")

def test_dotenv_line_without_equals_is_named_not_printed(tmp_path):
    (tmp_path/".env").write_text("SWINGTRADER_BROKER=sim\nmy pasted secret 123\n")
    line = one_line(run(["config"], tmp_path), marker=": ")
    assert ".env line 2 is not a KEY=value line" in line and "pasted" not in line and "secret 123" not in line

# -- backtest --data: a NaN close was shown as "(np.float64(nan))"

def test_data_error_shows_the_value_as_written(tmp_path):
    rows = ["time,open,high,low,close,volume", "2026-03-02 09:30,10,11,9,10.5,100", "2026-03-02 09:35,10,11,9,,100"]
    (tmp_path/"AAA.csv").write_text("\n".join(rows) + "\n")
    line = one_line(run(["backtest", "--data", "AAA.csv"], tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"data")))
    assert "close is missing or not a number at row 2 (nan)" in line and "np.float64" not in line

# -- SWINGTRADER_ENVIRONMENT=live on the simulator said it "trades real money" too (a second error line); a production
#    Alpaca URL told the user to "set the production environment" (Alpaca's is live)

def test_environment_of_another_broker_is_one_line(tmp_path):
    line = one_line(run(["config"], tmp_path, SWINGTRADER_ENVIRONMENT="live"), marker=": ")
    assert "does not apply to broker 'sim'" in line and "real money" not in line

def test_alpaca_production_url_names_alpacas_live_environment(tmp_path):
    line = one_line(run(["config"], tmp_path, SWINGTRADER_BROKER="alpaca", ALPACA_BASE_URL="https://api.alpaca.markets"), marker=": ")  # production host: refused, never reached
    assert "set SWINGTRADER_ENVIRONMENT=live and SWINGTRADER_LIVE_CONFIRM=yes" in line

# -- api --hash-token with standard input at its end (a script, cron): click's Abort as "unexpected Abort (a bug)" + traceback;
#    dashboard --address ::1: bokeh's "Invalid host value: [::1]:PORT" as a traceback

def test_hash_token_without_input_is_one_line(tmp_path):
    r = subprocess.run([EXE, "api", "--hash-token"], capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=tmp_path, timeout=60,
                       env={k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_"))})
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == "", (r.stdout, r.stderr)
    assert "error: no token was given (standard input ended). Fix:" in r.stderr.splitlines()[-1]

def test_hash_token_from_a_pipe_prints_only_the_hash(tmp_path):
    import hashlib
    r = subprocess.run([EXE, "api", "--hash-token"], capture_output=True, text=True, input="s3cret-token\n", cwd=tmp_path, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == hashlib.sha256(b"s3cret-token").hexdigest(), (r.stdout, r.stderr)
    assert "s3cret-token" not in r.stdout + r.stderr

def test_dashboard_on_an_ipv6_address_is_one_line(tmp_path):
    line = one_line(run(["dashboard", "--address", "::1", "--port", "0"], tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"data"), timeout=60))
    assert "--address ::1 is an IPv6 address" in line and "127.0.0.1" in line

# -- daily --day at the calendar's edges: the last week (2030-12-24 on) waited forever for a close the frozen emulator clock
#    never reached, deaf to Ctrl-C and SIGTERM; the first session (2015-01-02) crashed the backfill (IndexError) and exited 0

@pytest.mark.parametrize("day,edge", [("2030-12-31", "end"), ("2030-12-30", "end"), ("2015-01-02", "start"), ("2015-01-01", "start")])
def test_simulated_day_at_the_calendar_edge_is_one_line(tmp_path, day, edge):
    line = one_line(run(["daily", "--day", day, "--no-report", "--speed", "1000"], tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"data"), timeout=60))
    assert f"too close to the {edge} of the market calendar" in line and "pick a day from 2015-01-09 to 2030-12-23" in line
    assert not (tmp_path/"data").exists()                      # refused before a run started

# -- a simulated backtest, sweep or agent evaluation through the calendar's last session (2030-12-31): "unexpected IndexError
#    (a bug)" + traceback (its fills settle T+1, past the calendar)

@pytest.mark.parametrize("args", [
    ["backtest", "--start", "2030-12-20", "--end", "2030-12-31", "--symbols", "3"],
    ["sweep", "--param", "macd_fast=8,10", "--start", "2030-12-20", "--end", "2030-12-31", "--symbols", "3", "--workers", "1"],
    ["agent", "evaluate", "--model", "example", "--start", "2030-12-30", "--end", "2030-12-31", "--count", "1"],
])
def test_simulated_backtest_through_the_last_session_is_one_line(tmp_path, args):
    line = one_line(run(args, tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"data"), timeout=120))
    assert "--end 2030-12-31 reaches the market calendar's last session" in line and "end on or before 2030-12-30" in line

# -- config printed a URL setting as given: a password in it (https://bob:PASSWORD@host) and tokens in its query, in clear

def test_config_masks_credentials_inside_urls(tmp_path):
    r = run(["config"], tmp_path, SWINGTRADER_BROKER="tastytrade", TT_API_URL="https://bob:hunter2pass@127.0.0.1:9/x?token=abc123secret",
            ALPACA_DATA_URL="https://data.example:8443/?key=k3y-value")
    assert r.returncode == 0, r.stderr
    assert "hunter2pass" not in r.stdout and "abc123secret" not in r.stdout and "k3y-value" not in r.stdout
    assert "https://bob:********@127.0.0.1:9/x?token=********" in r.stdout

@pytest.mark.parametrize("url", ["https://bob:pw-Zq81x@api.tastyworks.com", "https://bob:pw-Zq81x@ bad host"])   # production host: refused, never reached
def test_config_errors_never_print_a_urls_password(tmp_path, url):
    r = run(["config"], tmp_path, SWINGTRADER_BROKER="tastytrade", TT_API_URL=url)
    line = one_line(r, marker=": ")
    assert "pw-Zq81x" not in r.stdout + r.stderr and "bob:********@" in line

# -- api --host ::1 announced "order API on http://::1:PORT" (no brackets: not a URL a browser or curl takes)

def test_api_on_ipv6_loopback_prints_a_usable_url(tmp_path):
    import socket
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0)); port = s.getsockname()[1]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_"))}
    p = subprocess.Popen([EXE, "api", "--host", "::1", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**base, "SWINGTRADER_DATA_DIR": str(tmp_path/"data")}, cwd=tmp_path)
    try: first = p.stdout.readline()
    finally: p.terminate(); p.communicate(timeout=60)
    assert f"order API on http://[::1]:{port} " in first, first

# -- a simulated day faster than the bot can trade (QA: --speed 30000 saw 719 of 1560 bars, 100000 none) printed it as a whole day, exit 0

def test_a_day_that_ran_ahead_of_the_bot_is_one_line(tmp_path):
    line = one_line(run(["daily", "--no-report", "--speed", "100000"], tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"data"), timeout=300))
    # the bot trades on a part of the day, or (a busy machine) is ready only after it: both say so and name a lower speed
    assert ("ran ahead of the bot" in line and "of its 1560 bars (20 symbols x 78)" in line) or "did not complete (at --speed 100000)" in line, line
    assert "lower --speed" in line, line
