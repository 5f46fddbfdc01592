"A demanding new user's pass over the installed command (session 9): each test is a defect found running `swingtrader`, run the same way."
import os, re, sqlite3, subprocess, sys
from pathlib import Path
import pytest

import test_acceptance_cli as acceptance
from test_acceptance_cli import one_line                         # exit 2, one `error:` line naming the problem and the fix

def run(args, cwd, timeout=180, **env):
    "The installed command with a clean environment (as the acceptance pass runs it), given longer for a sweep."
    return acceptance.run(args, cwd, timeout=timeout, **env)

@pytest.fixture
def data(tmp_path):
    d = tmp_path/"data"
    return {"SWINGTRADER_DATA_DIR": str(d), "SWINGTRADER_LOCK_DIR": str(tmp_path/"locks")}

# -- flatten with no bot running said "the running bot carries it out within a second": nothing is sold, and a bot started
#    later closes the command without selling (tests/test_bot_unit.py: no sale on an old request)

def test_flatten_without_a_running_bot_says_nothing_is_sold_now(tmp_path, data):
    r = run(["flatten"], tmp_path, **data)
    assert r.returncode == 0, r.stderr
    assert "the running bot carries it out" not in r.stdout, r.stdout
    warn = r.stderr.strip().splitlines()
    assert len(warn) == 1 and warn[0].startswith("warning: ") and "no bot is running" in warn[0] and "nothing is sold now" in warn[0], r.stderr
    assert "closes this flatten without selling" in warn[0] and "flatten again" in warn[0], r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    st = run(["status"], tmp_path, **data)
    assert st.returncode == 0 and "pending commands: flatten#1 (no bot is running" in st.stdout, st.stdout
    assert "closes flattens without selling" in st.stdout, st.stdout

def test_flatten_with_a_running_bot_still_says_it_is_carried_out(tmp_path, data):
    "A run held by a live process (this test's child) is a running bot: flatten says the bot carries it out."
    code = ("import sys, time; from pathlib import Path; from swingtrader.config import Settings; from swingtrader import runs\n"
            "s = Settings.load()\n"
            "with runs.start_run(s, 'run', label='qa') as r:\n"
            "    print('ready', flush=True); sys.stdin.readline()\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_"))}
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**base, **data}, cwd=tmp_path)
    try:
        assert p.stdout.readline().strip() == "ready"
        r = run(["flatten"], tmp_path, **data)
        assert r.returncode == 0 and "the running bot carries it out" in r.stdout and r.stderr == "", (r.stdout, r.stderr)
    finally:
        p.communicate("\n", timeout=60)

# -- sweep printed every number with four decimals: trades 4.0000, win rate 0.2500, final equity 99,962.8400

def test_sweep_table_prints_sane_numbers(tmp_path, data):
    r = run(["sweep", "--param", "macd_fast=8,12", "--start", "2026-03-02", "--end", "2026-03-06", "--symbols", "2", "--workers", "1"],
            tmp_path, **data)
    assert r.returncode == 0, r.stderr
    table = r.stdout.split("parameter sets")[0]
    assert not re.search(r"\d\.0000\b", table), table                 # trades are whole numbers
    assert not re.search(r"\d,\d{3}\.\d{3,}", table), table            # money to the cent
    assert re.search(r"\$\d{2,3},\d{3}\.\d{2}\b", table), table        # final equity in dollars and cents
    assert re.search(r"-?\d+\.\d{2}%", table), table                   # returns, drawdowns, win rates in percent

# -- ledger backup left empty -wal/-shm files beside the backup (and `ledger check` of the backup made them again)

def test_ledger_backup_is_one_file(tmp_path, data):
    assert run(["halt", "--reason", "qa"], tmp_path, **data).returncode == 0            # creates the ledger
    bk = tmp_path/"bk"/"one.sqlite"
    r = run(["ledger", "backup", "--to", str(bk)], tmp_path, **data)
    assert r.returncode == 0 and str(bk) in r.stdout, r.stderr
    assert sorted(p.name for p in bk.parent.iterdir()) == ["one.sqlite"]
    r = run(["ledger", "check", str(bk)], tmp_path, **data)
    assert r.returncode == 0 and ": ok" in r.stdout, r.stdout
    assert sorted(p.name for p in bk.parent.iterdir()) == ["one.sqlite"]
    other = {**data, "SWINGTRADER_DATA_DIR": str(tmp_path/"other")}
    r = run(["ledger", "restore", str(bk)], tmp_path, **other)                           # the restored ledger is a WAL ledger again
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(tmp_path/"other"/"ledger.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    st = run(["status"], tmp_path, **other)
    assert st.returncode == 0 and "trading state: halted (by cli" in st.stdout, st.stdout

# -- `ledger backup --help` said DATA_DIR/backups: the backup goes beside the current run's ledger (sim-runs/<run>/backups)

def test_ledger_backup_help_names_where_it_goes(tmp_path, data):
    h = run(["ledger", "backup", "--help"], tmp_path)
    assert h.returncode == 0 and "DATA_DIR/backups" not in h.stdout and "beside the ledger" in " ".join(h.stdout.split()), h.stdout
    assert run(["halt", "--reason", "qa"], tmp_path, **data).returncode == 0
    r = run(["ledger", "backup"], tmp_path, **data)
    assert r.returncode == 0 and f"{data['SWINGTRADER_DATA_DIR']}/backups/ledger-" in r.stdout, r.stdout

# -- a backup that is not a ledger: "(... truncated or overwritten).)." (two full stops)

def test_restore_of_a_bad_file_ends_once(tmp_path, data):
    bad = tmp_path/"bad.sqlite"; bad.write_text("not,a,ledger\n")
    line = one_line(run(["ledger", "restore", str(bad)], tmp_path, **data))
    assert ".)." not in line and ").." not in line, line

# -- the tearsheet said "1 symbols"

def test_tearsheet_says_one_symbol(tmp_path, data):
    out = tmp_path/"bt"
    r = run(["backtest", "--start", "2026-03-02", "--end", "2026-03-04", "--symbols", "1", "--out", str(out)], tmp_path, **data)
    assert r.returncode == 0, r.stderr
    html = (out/"tearsheet.html").read_text()
    assert "1 symbols" not in html and "1 symbol," in html
    assert "1 symbols" not in r.stdout and ": 1 symbol," in r.stdout, r.stdout     # the summary the command prints

# -- --calendar was shown and refused lower-cased ('xnys'), and sweep's --calendar had no help

def test_calendar_choices_keep_their_case(tmp_path):
    for cmd in ("backtest", "sweep"):
        h = " ".join(run([cmd, "--help"], tmp_path).stdout.split())
        assert "[XNYS|weekdays|24x7|none]" in h and "xnys" not in h, h
        assert re.search(r"--calendar \[XNYS\|weekdays\|24x7\|none\] \w", h), h          # followed by its help text
    line = one_line(run(["backtest", "--data", "x.csv", "--calendar", "nyse"], tmp_path))
    assert "'XNYS'" in line and "'xnys'" not in line, line
    ok = run(["backtest", "--data", "missing.csv", "--calendar", "xnys"], tmp_path)   # any case is still accepted
    assert "--calendar" not in ok.stderr and "missing.csv" in ok.stderr, ok.stderr

# -- --data with --start after the data's last day: "no bars between 2026-03-20 and 2026-03-13"

def test_data_start_after_its_end_names_the_data(tmp_path):
    import pandas as pd
    t = pd.date_range("2026-03-02 14:30", periods=78, freq="5min", tz="UTC")
    pd.DataFrame({"time": t, "open": 10.0, "high": 10.1, "low": 9.9, "close": 10.0, "volume": 1000}).to_csv(tmp_path/"AAA.csv", index=False)
    line = one_line(run(["backtest", "--data", "AAA.csv", "--start", "2026-03-20"], tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"d")))
    assert "between 2026-03-20 and 2026-03-02" not in line and "2026-03-20" in line and "2026-03-02" in line, line

# -- a restored backup brought its pending commands back to life: a flatten queued when the backup was made (and never
#    carried out) closed every position when the next bot started on the restored ledger, maybe days later

def test_restore_drops_the_backups_pending_commands(tmp_path, data):
    assert run(["halt", "--reason", "qa"], tmp_path, **data).returncode == 0
    assert run(["flatten"], tmp_path, **data).returncode == 0                  # no bot: flatten#2 is pending in the ledger
    bk = tmp_path/"bk.sqlite"
    assert run(["ledger", "backup", "--to", str(bk)], tmp_path, **data).returncode == 0
    other = {**data, "SWINGTRADER_DATA_DIR": str(tmp_path/"other")}
    r = run(["ledger", "restore", str(bk)], tmp_path, **other)
    assert r.returncode == 0 and "halt#1, flatten#2" in r.stdout and "not carried out" in r.stdout, (r.stdout, r.stderr)
    st = run(["status"], tmp_path, **other)
    assert st.returncode == 0 and "pending commands: none" in st.stdout, st.stdout
    assert "trading state: halted (by cli" in st.stdout                        # the halt itself is state, and is kept
    with sqlite3.connect(tmp_path/"other"/"ledger.sqlite") as db:
        rows = db.execute("SELECT kind, status, result FROM commands ORDER BY id").fetchall()
    assert [(k, s) for k, s, _ in rows] == [("halt", "failed"), ("flatten", "failed")] and all("restored" in x for *_, x in rows), rows
    assert run(["ledger", "check"], tmp_path, **other).returncode == 0

# -- status printed raw ISO times with microseconds ("at 2026-12-05T21:39:00.201923+00:00")

def test_status_times_are_to_the_second_with_their_zone(tmp_path, data):
    assert run(["halt", "--reason", "qa"], tmp_path, **data).returncode == 0
    st = run(["status"], tmp_path, **data)
    assert st.returncode == 0 and re.search(r"halted \(by cli at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: qa\)", st.stdout), st.stdout
    assert not re.search(r"\d\d:\d\d:\d\d\.\d+", st.stdout), st.stdout

# -- "pruned 1 audit files", "1 positions fetched"

def test_counts_of_one_are_singular(tmp_path, data):
    old = Path(data["SWINGTRADER_DATA_DIR"])/"audit"/"health"/"2026-01-01.jsonl"
    old.parent.mkdir(parents=True); old.write_text("")
    r = run(["audit-prune", "--today", "2026-06-01"], tmp_path, **data)
    assert r.returncode == 0 and "pruned 1 audit file under" in r.stdout and not old.exists(), r.stdout + r.stderr
    csv = tmp_path/"pos.csv"
    csv.write_text("Symbol,Type,Quantity,Mark\nAAPL,Equity,10,190.00\n")
    r = run(["positions", "--csv", str(csv)], tmp_path, **data)
    assert r.returncode == 0 and "1 position fetched" in r.stdout, r.stdout + r.stderr

# -- UTC times written without an offset (read as New York time): the error named only the calendar as the way out, and
#    a user who took it ran the backtest on bars shifted by five hours

def test_naive_utc_times_point_at_tz(tmp_path):
    import pandas as pd
    t = pd.date_range("2026-03-02 14:30", periods=78, freq="5min")          # UTC, without an offset
    pd.DataFrame({"time": t.strftime("%Y-%m-%d %H:%M:%S"), "open": 10.0, "high": 10.1, "low": 9.9, "close": 10.0, "volume": 1000}).to_csv(tmp_path/"AAA.csv", index=False)
    line = one_line(run(["backtest", "--data", "AAA.csv"], tmp_path, SWINGTRADER_DATA_DIR=str(tmp_path/"d")))
    assert "outside the XNYS sessions" in line and "--tz UTC" in line, line

# -- a second backtest of the same dates (other symbols, other data) wrote its files over the first's, without a word

def test_a_second_backtest_keeps_the_first(tmp_path, data):
    args = ["backtest", "--start", "2026-03-02", "--end", "2026-03-04"]
    r1 = run([*args, "--symbols", "1"], tmp_path, **data)
    r2 = run([*args, "--symbols", "2"], tmp_path, **data)
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    p1, p2 = (Path(r.stdout.strip().rsplit("results: ", 1)[1]) for r in (r1, r2))
    assert p1 != p2 and p2.name == p1.name + "-2", (p1, p2)
    import json
    assert json.loads((p1/"summary.json").read_text())["symbols"] == 1 and json.loads((p2/"summary.json").read_text())["symbols"] == 2
