"One bot per data directory and per broker account: OS file locks (filelock), a clear one-line refusal, stale locks of killed bots taken over."
import json, os, signal, subprocess, sys, time
from types import SimpleNamespace
from pathlib import Path
import pytest

from swingtrader.config import Settings
from swingtrader import runs
from proc_support import env, wait_for

BIN = Path(sys.executable).parent/"swingtrader"
TT = {"SWINGTRADER_BROKER": "tastytrade", "TT_CLIENT_SECRET": "not-a-real-secret", "TT_REFRESH_TOKEN": "not-a-real-token",
      "TT_ACCOUNT_NUMBER": "5WT00001"}

HOLD = """
import sys, time
from swingtrader.config import Settings
from swingtrader.runs import start_run
with start_run(Settings(_env_file=None), "run"):
    print("held", flush=True)
    time.sleep(600)
"""

def holder(tmp_path, data="data", **kw):
    "A child process that holds the run (data directory and, on a real broker, account locks) until killed."
    p = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(tmp_path, data, **kw))
    line = p.stdout.readline()
    assert line.strip() == "held", (line, p.stderr.read() if p.poll() is not None else "")
    return p

def one_error_line(r):
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    return lines[0]

def test_second_bot_on_the_data_directory_is_refused_in_one_line(tmp_path):
    h = holder(tmp_path)
    try:
        for args in (["run"], ["daily", "--no-report", "--speed", "3000"]):
            r = subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env(tmp_path), timeout=300)
            assert r.returncode == 2
            line = one_error_line(r)
            assert f"another swingtrader bot holds the data directory {tmp_path/'data'} (pid {h.pid}, started " in line
            assert "another SWINGTRADER_DATA_DIR" in line
        side = json.loads((tmp_path/"data"/".swingtrader.lock.json").read_text())
        assert side["pid"] == h.pid
    finally: h.kill(); h.wait()

def test_second_bot_on_the_account_is_refused_before_it_connects(tmp_path):
    h = holder(tmp_path, "one", **TT)
    try:
        r = subprocess.run([str(BIN), "run"], capture_output=True, text=True, env=env(tmp_path, "two", **TT), timeout=300)
        assert r.returncode == 2
        line = one_error_line(r)
        assert f"another swingtrader bot holds the tastytrade sandbox account 5WT00001 (pid {h.pid}" in line and "one bot trades one account" in line
        assert "not-a-real" not in r.stderr + r.stdout
        assert list((tmp_path/"locks").glob("tastytrade-sandbox-5WT00001.lock"))
    finally: h.kill(); h.wait()

def test_lock_of_a_sigkilled_bot_is_taken_over(tmp_path):
    h = holder(tmp_path)
    s = Settings(_env_file=None, data_dir=tmp_path/"data", lock_dir=tmp_path/"locks")
    assert runs.read_current(s).pid == h.pid and runs.read_current(s).state == "running"
    with pytest.raises(runs.RunLocked, match=f"pid {h.pid}"): runs.data_dir_lock(s).acquire({"pid": os.getpid()}, timeout=0)
    h.send_signal(signal.SIGKILL); h.wait()
    assert (tmp_path/"data"/".swingtrader.lock.json").exists()          # the stale sidecar is still there ...
    assert runs.read_current(s).state == "died"                            # ... but the holder is gone
    t0 = time.monotonic()
    with runs.start_run(s, "daily", label="after-kill") as run:           # ... and the OS released its flock
        took = time.monotonic() - t0
        assert json.loads((tmp_path/"data"/".swingtrader.lock.json").read_text())["pid"] == os.getpid()
        assert runs.read_current(s).token == run.token and run.path.startswith("sim-runs/after-kill-")
    print(f"stale lock taken over in {took * 1000:.0f} ms")
    assert not (tmp_path/"data"/".swingtrader.lock.json").exists()

def test_two_bots_started_together_never_both_trade(tmp_path):
    e = env(tmp_path, SWINGTRADER_SIM_SPEED="600")
    ps = [subprocess.Popen([str(BIN), "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e) for _ in range(2)]
    try:
        loser = wait_for(lambda: next((p for p in ps if p.poll() is not None), None), 180, "one of the two bots to give up")
        winner = next(p for p in ps if p is not loser)
        out, err = loser.communicate()
        assert loser.returncode == 2 and winner.poll() is None, err
        line = one_error_line(SimpleNamespace(stdout=out, stderr=err))
        assert f"(pid {winner.pid}, started" in line
        s = Settings(_env_file=None, data_dir=tmp_path/"data")
        cur = wait_for(lambda: (c := runs.read_current(s)) and c.pid == winner.pid and c, 60, "the winner's run record")
        assert cur.kind == "run" and cur.state == "running"
        assert len(list((tmp_path/"data"/"sim-runs").iterdir())) == 1   # the loser created nothing
    finally:
        for p in ps:
            if p.poll() is None: p.send_signal(signal.SIGTERM)
        for p in ps:
            try: p.wait(timeout=120)
            except subprocess.TimeoutExpired: p.kill(); p.wait()

def test_three_dailies_in_the_same_second(tmp_path):
    "The issue's finding: three `daily` started at once shared one run directory and all exited 0. Now one trades."
    e = env(tmp_path)
    ps = [subprocess.Popen([str(BIN), "daily", "--no-report", "--speed", "3000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=e) for _ in range(3)]
    res = [(p.pid, *p.communicate(timeout=600), p.returncode) for p in ps]
    codes = sorted(r[3] for r in res)
    assert codes == [0, 2, 2], [(r[3], r[2][-500:]) for r in res]
    winner = next(r for r in res if r[3] == 0)
    for pid, out, err, rc in res:
        if rc == 2:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and f"holds the data directory {tmp_path/'data'} (pid {winner[0]}" in lines[0], err
    dirs = list((tmp_path/"data"/"sim-runs").iterdir())
    assert len(dirs) == 1 and dirs[0].name.endswith(f"-p{winner[0]}")
    assert "result:" in winner[1] and "accepted" in winner[1]
