"The scheduled papermill notebooks, run the way the scheduler and `make run` run them: through the CLI."
import os, subprocess, sys
from pathlib import Path
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def run(args, data_dir, timeout=600):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_"))}
    env["SWINGTRADER_DATA_DIR"] = str(data_dir)
    return subprocess.run([str(BIN/"swingtrader"), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)

def outputs(nb_path) -> str:
    nb = nbformat.read(nb_path, as_version=4)
    txt = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            txt.append(o.get("text") or str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(txt)

@pytest.mark.parametrize("name", ["daily_run", "smoke_test"])
def test_notebooks_keep_their_parameters_cell(name):
    nb = nbformat.read(ROOT/"scheduled"/f"{name}.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")

def test_daily_run_report(tmp_path):
    r = run(["daily", "--speed", "2000"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = Path(next(l.split(None, 1)[1] for l in r.stdout.splitlines() if l.startswith("notebook:")))
    ledger = Path(next(l.split(None, 1)[1] for l in r.stdout.splitlines() if l.startswith("ledger:")))
    assert rep.exists() and ledger.exists() and rep.parent == tmp_path/"reports"
    text = outputs(rep)
    assert "2026-03-02" in text and "ledger consistency: ok" in text
    assert "result:" in r.stdout and "fills" in r.stdout
    # the ledger the report describes is consistent and non-trivial
    from swingtrader.ledger import Ledger
    with Ledger(ledger, readonly=True) as lg:
        assert lg.check() == [] and len(lg.fills()) > 0

def test_smoke_report(tmp_path):
    r = run(["smoke", "--report"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = Path(r.stdout.strip().rsplit("(notebook: ", 1)[1].rstrip(")"))
    text = outputs(rep)
    assert "PASSED" in text and "cancelled, nothing filled" in text

def test_smoke_failure_is_exit_1(tmp_path):
    r = run(["smoke", "--symbol", "ZZZZ"], tmp_path)
    assert r.returncode == 1 and "FAILED" in r.stdout and "FAIL instrument" in r.stdout and "Traceback" not in r.stderr

@pytest.mark.parametrize("args,needle", [
    (["backtest", "--start", "2026-03-06", "--end", "2026-03-02"], "is before --start"),
    (["backtest", "--start", "March 2", "--end", "2026-03-06"], "is not a date"),
    (["backtest", "--start", "2026-03-02", "--end", "2026-03-03", "--fill-at", "open"], "'open' is not one of"),
    (["daily", "--day", "2026-13-01"], "is not a date"),
])
def test_bad_job_arguments(tmp_path, args, needle):
    r = run(args, tmp_path)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, (r.stdout, r.stderr)

def test_backtest_command_saves_results(tmp_path):
    r = run(["backtest", "--start", "2026-03-02", "--end", "2026-03-04", "--symbols", "4", "--out", str(tmp_path/"bt")], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path/"bt"/"summary.json").exists() and (tmp_path/"bt"/"trades.csv").exists()
    assert "final equity" in r.stdout and "tearsheet.html" in r.stdout
