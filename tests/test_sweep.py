"""Parameter sweeps on Dask: the `swingtrader sweep` command on a private LocalCluster (grid, resume, heatmap), through a
scheduler and a worker started as separate processes on loopback, an Optuna search, walk-forward folds, a papermill notebook
sweep, and the one-line errors."""
import json, os, subprocess, sys, time
from datetime import date

import nbformat
import pandas as pd
import pytest

from swingtrader.config import Settings
from swingtrader.sim.data import make_universe, generate_bars
from swingtrader import sweep as sw

FAST = {"SWINGTRADER_MACD_FAST": "6", "SWINGTRADER_MACD_SLOW": "13", "SWINGTRADER_MACD_SIGNAL": "5",
        "SWINGTRADER_TREND_EMA": "20", "SWINGTRADER_WARMUP_BARS": "30"}
RANGE = ["--start", "2026-03-02", "--end", "2026-03-06", "--symbols", "3", "--seed", "7"]


def cli(tmp_path, *args, timeout=240):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWINGTRADER_")} | FAST | {"SWINGTRADER_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([sys.executable, "-m", "swingtrader", "sweep", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def test_grid_on_a_local_cluster_ranks_stores_and_resumes(tmp_path):
    out = tmp_path / "sweep"
    args = ["--param", "atr_stop_mult=2,3", "--param", "macd_signal=5,7", *RANGE, "--workers", "2", "--metric", "total_return", "--out", str(out)]
    r = cli(tmp_path, *args)
    assert r.returncode == 0, r.stderr
    assert "4 parameter sets (4 computed, 0 reused)" in r.stdout and f"results: {out}" in r.stdout
    df = pd.read_csv(out / "results.csv", index_col="rank")
    assert len(df) == 4 and set(df["atr_stop_mult"]) == {2, 3} and set(df["macd_signal"]) == {5, 7}
    assert df["oos_total_return"].is_monotonic_decreasing                         # ranked by the out-of-sample figure
    assert {"is_sharpe", "oos_sharpe", "is_trades", "oos_max_drawdown"} <= set(df.columns)
    html = (out / "heatmap.html").read_text()
    assert "Plotly" in html and 'src="https://' not in html                        # plotly inlined: opens offline
    spec = json.loads((out / "sweep.json").read_text())
    assert spec["windows"][0]["oos_start"] == "2026-03-05" and spec["computed"] == 4
    assert len(list((out / "tasks").glob("*.json"))) == 4
    again = cli(tmp_path, *args)                                                  # everything stored: nothing runs again
    assert again.returncode == 0 and "(0 computed, 4 reused)" in again.stdout, again.stdout + again.stderr
    assert pd.read_csv(out / "results.csv", index_col="rank").equals(df)


def test_through_a_scheduler_and_a_worker_in_their_own_processes(tmp_path):
    sched_file = tmp_path / "scheduler.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWINGTRADER_")}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        end = time.monotonic() + 90
        while not sched_file.exists() and time.monotonic() < end: time.sleep(0.1)
        assert sched_file.exists(), "the scheduler did not start"
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(sched_file),
                                       "--nworkers", "1", "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        from distributed import Client
        with Client(address, timeout=60) as c: c.wait_for_workers(1, timeout=90)
        out = tmp_path / "sweep"
        r = cli(tmp_path, "--param", "atr_stop_mult=2,3", *RANGE, "--scheduler", address, "--out", str(out))
        assert r.returncode == 0, r.stderr
        assert "2 parameter sets (2 computed, 0 reused)" in r.stdout
        with Client(address, timeout=60) as c:                                     # the tasks ran on that cluster's worker
            assert len(c.scheduler_info()["workers"]) == 1
    finally:
        for p in reversed(procs):
            p.terminate()
            try: p.wait(20)
            except subprocess.TimeoutExpired: p.kill(); p.wait(10)


@pytest.fixture(scope="module")
def market():
    u = make_universe(3, 7)
    s = Settings(_env_file=None, macd_fast=6, macd_slow=13, macd_signal=5, trend_ema=20, warmup_bars=30)
    return generate_bars(u, date(2026, 3, 2), date(2026, 3, 6), 7), u, s


def test_optuna_search_and_walk_forward(tmp_path, market):
    bars, u, s = market
    days = sw.sessions_of(bars)
    folds = sw.walk_forward(days, 2)
    client = sw.cluster(workers=1)
    try:
        r = sw.run_sweep(bars, u, s, [sw.parse_param("atr_stop_mult=1.5:3.5"), sw.parse_param("macd_signal=4:8")], folds,
                         tmp_path / "opt", metric="total_return", trials=4, seed=1, client=client)
        assert r.computed + r.reused == 4 and not r.failed
        stored = sw.ResultStore(tmp_path / "opt").all()
        assert all(len(x["folds"]) == 2 and all("oos" in f for f in x["folds"]) for x in stored)
        assert all(1.5 <= float(x["params"]["atr_stop_mult"]) <= 3.5 and 4 <= int(x["params"]["macd_signal"]) <= 8 for x in stored)
        again = sw.run_sweep(bars, u, s, [sw.parse_param("atr_stop_mult=1.5:3.5"), sw.parse_param("macd_signal=4:8")], folds,
                             tmp_path / "opt", metric="total_return", trials=4, seed=1, client=client)
        assert again.computed == 0 and again.reused == 4                          # same seed, same trials: all stored
    finally: sw.close_cluster(client)


def test_notebook_sweep_runs_one_kernel_per_task(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1\nout_dir = '.'", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import json, os, pathlib\n"
                                          "m = {k: float(x) for k in ('total_return', 'sharpe', 'max_drawdown', 'trades', 'win_rate', 'final_equity')}\n"
                                          "pathlib.Path(out_dir, 'summary.json').write_text(json.dumps(m | {'pid': os.getpid()}))")]
    path = tmp_path / "nb.ipynb"; nbformat.write(nb, path)
    r = sw.notebook_sweep(path, [sw.parse_param("x=1,3", setting=False)], tmp_path / "out", workers=1)
    assert r.computed == 2 and not r.failed and list(r.table["x"].astype(int)) == [3, 1]
    runs = sorted((tmp_path / "out" / "notebooks").iterdir())
    assert len(runs) == 2 and all((d / "executed.ipynb").exists() for d in runs)    # a folder of its own per task
    pids = {json.loads((d / "summary.json").read_text())["pid"] for d in runs}
    assert len(pids) == 2 and os.getpid() not in pids                             # each ran in its own kernel process


@pytest.mark.parametrize("args, message", [
    (["--param", "macd_fats=8,12", *RANGE], "error: --param macd_fats is not a swingtrader setting. Fix: did you mean macd_fast"),
    (["--param", "macd_fast=40", "--param", "macd_slow=26", *RANGE], "must be larger than"),
    (["--param", "macd_fast=8:16", *RANGE], "has no step, which a grid needs"),
    (["--param", "macd_fast=8,12", *RANGE, "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
    (["--param", "macd_fast=8,12", *RANGE, "--split", "1"], "error: --split 1.0 is not a fraction between 0 and 1"),
    ([*RANGE], "error: no --param given."),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    r = cli(tmp_path, *args, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr + r.stdout and "Traceback" not in r.stderr
