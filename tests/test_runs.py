"One data directory with one meaning: every command follows DATA_DIR/current.json to the same run; `halt` reaches a running simulated day."
import os, signal, subprocess, sys, time
from pathlib import Path

from swingtrader.config import Settings
from swingtrader.ledger import Ledger, LedgerError
from swingtrader.models import OrderRequest
from swingtrader import runs
from proc_support import env, wait_for

BIN = Path(sys.executable).parent/"swingtrader"

def cli(args, tmp_path, **kw):
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env(tmp_path, **kw), cwd=tmp_path, timeout=300)

def read_ledger(path, fn):
    "fn(ledger) on a read-only ledger, or None while it is still being created."
    if not Path(path).exists(): return None
    try:
        with Ledger(path, readonly=True) as lg: return fn(lg)
    except (LedgerError, Exception): return None

def test_halt_reaches_the_running_simulated_day(tmp_path):
    "`swingtrader halt` while `swingtrader daily` (sim) trades: that run's bot takes the command and halts."
    s = Settings(_env_file=None, data_dir=tmp_path/"data")
    bot = subprocess.Popen([str(BIN), "daily", "--speed", "200", "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env(tmp_path), cwd=tmp_path)
    try:
        cur = wait_for(lambda: (c := runs.read_current(s)) and c.pid == bot.pid and c, what="the run record")
        ledger = cur.dir(tmp_path/"data")/"ledger.sqlite"
        wait_for(lambda: bot.poll() is not None or read_ledger(ledger, lambda lg: len(lg.orders()) > 0), what="the bot to trade")
        assert bot.poll() is None, bot.communicate()
        st = cli(["status"], tmp_path)
        assert st.returncode == 0 and f"run: {cur.dir(tmp_path/'data')} (daily on sim, running, pid {bot.pid}" in st.stdout, st.stdout + st.stderr
        t_start = time.monotonic()
        r = cli(["halt", "--reason", "test"], tmp_path)
        t0 = time.monotonic()
        assert r.returncode == 0 and "trading state: halted (by cli: test)" in r.stdout and f"pid {bot.pid}" in r.stdout, r.stdout + r.stderr
        done = wait_for(lambda: read_ledger(ledger, lambda lg: next((c for c in lg.commands() if c.kind == "halt" and c.status == "done"), None)),
                        60, "the bot to carry out the halt")
        t1 = time.monotonic()
        latency = t1 - t0
        print(f"halt carried out by the running bot {latency * 1000:.0f} ms after `swingtrader halt` returned "
              f"({(t1 - t_start) * 1000:.0f} ms after it was started, CLI start-up included)")
        assert latency < 30
        assert done.requested_by == "cli" and done.result.startswith("halted")
        assert read_ledger(ledger, lambda lg: lg.halt_state().state) == "halted"
        audit = cur.dir(tmp_path/"data")/"audit"
        wait_for(lambda: any('"command"' in p.read_text() and '"halt"' in p.read_text() for p in audit.rglob("*") if p.is_file()),
                 60, "the command's audit record")
    finally:
        if bot.poll() is None: bot.send_signal(signal.SIGTERM)
        try: bot.wait(timeout=180)
        except subprocess.TimeoutExpired: bot.kill(); bot.wait()
    assert "Traceback" not in bot.stderr.read()
    assert runs.read_current(s).state != "running"

def test_status_after_a_daily_shows_that_run(tmp_path):
    "The issue's finding: after `make run`, `status` said 'no ledger'. Now it shows the run and lists past runs."
    r = cli(["daily", "--speed", "3000", "--no-report"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    led = Path(next(l.split(None, 1)[1] for l in r.stdout.splitlines() if l.startswith("ledger:")))
    st = cli(["status"], tmp_path)
    assert st.returncode == 0, st.stderr
    assert f"ledger: {led}" in st.stdout and "(daily on sim, ok," in st.stdout and "runs (newest first):" in st.stdout
    s = Settings(_env_file=None, data_dir=tmp_path/"data")
    assert runs.run_ledger_path(s) == led and runs.run_audit_dir(s) == led.parent/"audit"
    assert [p.path for p in runs.past_runs(s)] == [str(led.parent.relative_to(tmp_path/"data"))]

def test_current_run_rules(tmp_path):
    s = Settings(_env_file=None, data_dir=tmp_path/"data")
    base = tmp_path/"data"
    assert runs.current_run(s) == base                                     # nothing recorded yet
    with runs.start_run(s, "daily", label="d1") as r1: pass
    assert runs.current_run(s) == r1.dir(base)                             # sim: the latest simulated run
    live = s.model_copy(update={"broker": "tastytrade"})
    assert runs.current_run(live) == base                                  # a live broker: its persistent ledger
    with runs.start_run(s, "daily", label="d2") as r2:
        assert runs.current_run(live) == r2.dir(base)                      # but a running bot is always current
        assert runs.run_ledger_path(live) == r2.dir(base)/"ledger.sqlite"
    assert [r.label for r in runs.past_runs(s)] == ["d2", "d1"] and r1.dir(base) != r2.dir(base)

def test_day_with_every_order_rejected_is_a_failure(tmp_path):
    "The issue's finding: every order rejected, yet exit 0 with 'errors 0'. The daily command now reports and exits 1."
    from swingtrader.cli import _day_result
    s = Settings(_env_file=None, data_dir=tmp_path/"run")
    with Ledger(s.ledger_path) as lg:
        for sym in ("AAA", "BBB"):
            q = OrderRequest(sym, "buy", qty=1)
            lg.record_intent(None, q); lg.record_submit_failed(q.client_key, "insufficient cash", definite=True)
    problem = _day_result(s)
    assert problem and "accepted none of the run's 2 orders" in problem and "insufficient cash" in problem

def test_all_rejected_daily_exits_1(tmp_path, monkeypatch):
    "Through the command: `daily` prints its result, then one error line, exit 1 (run recorded as failed)."
    from click.testing import CliRunner
    from swingtrader import cli, jobs
    def fake_daily(settings, day=None, speed=None):
        with runs.start_run(settings, "daily") as r:                      # joins the command's run
            d = settings.model_copy(update={"data_dir": r.dir(runs.data_dir(settings))})
            with Ledger(d.ledger_path) as lg:
                q = OrderRequest("AAA", "buy", qty=1)
                lg.record_intent(None, q); lg.record_submit_failed(q.client_key, "account closed", definite=True)
        return None
    monkeypatch.setattr(jobs, "daily", fake_daily)
    for k in [k for k in os.environ if k.startswith(("SWINGTRADER_", "TT_", "ALPACA_"))]: monkeypatch.delenv(k)
    monkeypatch.setenv("SWINGTRADER_DATA_DIR", str(tmp_path/"data")); monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli.main, ["daily", "--no-report"])
    assert r.exit_code == 0 and "nothing traded" in r.output                # no session: nothing to judge
    def fake_daily2(settings, day=None, speed=None):
        fake_daily(settings); return type("S", (), {})()
    monkeypatch.setattr(jobs, "daily", fake_daily2)
    monkeypatch.setattr(jobs, "summary_frame", lambda s: type("F", (), {"to_string": lambda self: "summary"})())
    r = CliRunner().invoke(cli.main, ["daily", "--no-report"])
    assert r.exit_code == 1, r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the broker accepted none of the run's 1 orders (first refusal: account closed)")
    assert "1 orders (0 accepted, 1 not)" in r.stdout
    assert runs.read_current(Settings(_env_file=None, data_dir=tmp_path/"data")).outcome == "failed"

def test_sim_day_is_one_constant():
    "The default simulated session lives in one place (runs.SIM_DAY); the CLI, jobs and session entry points use it."
    root = Path(__file__).resolve().parents[1]
    for mod in ("cli", "jobs"):
        assert "date(2026, 3, 2)" not in (root/"swingtrader"/f"{mod}.py").read_text()
    src = (root/"swingtrader"/"session.py").read_text()
    assert "date(2026, 3, 2)" not in src[src.index("def open_state"):]
