"""The install a user gets: build the sdist and the wheel from the checkout's files, install the wheel into a
fresh venv in a temporary folder outside the checkout, and run the commands from an empty folder with nothing
of the checkout on the import path. Built and installed once per module (about a minute, mostly pip)."""
import os, re, shutil, subprocess, sys, tarfile, time, venv, zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(1800)   # building and installing into a fresh venv, on a loaded machine
SUBPACKAGES = sorted(p.parent.relative_to(ROOT).as_posix() for p in (ROOT/"swingtrader").rglob("__init__.py"))
_t0 = {}

def outputs(nb_path) -> str:
    "The text outputs of an executed notebook."
    nb = nbformat.read(nb_path, as_version=4)
    return "\n".join(o.get("text") or str(o.get("data", {}).get("text/plain", "")) for c in nb.cells for o in c.get("outputs", []))

def _say(msg):
    "Progress and timings on the terminal (pytest -s shows them; they are also in the captured output of a failure)."
    print(f"[packaging] {msg}", flush=True)

def _source_copy(dst:Path) -> Path:
    "The files a clone has (tracked plus new, not ignored), copied to `dst`: the build sees neither stale build/ dirs nor junk."
    try:
        out = subprocess.run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True).stdout
        files = [f for f in out.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file()
                 and not {".git", ".venv", "build", "dist", "__pycache__"} & set(p.relative_to(ROOT).parts)]
    for f in files:
        if (ROOT/f).is_file():
            (dst/f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT/f, dst/f)
    return dst

@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    "The sdist and the wheel, built (`python -m build`: the wheel from the sdist) in a temporary folder."
    base = tmp_path_factory.mktemp("pack")
    assert not base.resolve().is_relative_to(ROOT)
    src, out = _source_copy(base/"src"), base/"dist"
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(src)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    _t0["build"] = time.monotonic() - t
    _say(f"built sdist + wheel in {_t0['build']:.1f}s")
    (whl,), (sdist,) = out.glob("*.whl"), out.glob("*.tar.gz")
    return whl, sdist

@pytest.fixture(scope="module")
def user(dist, tmp_path_factory):
    "A fresh venv outside the checkout with the wheel installed, an empty working folder and a data directory."
    base = tmp_path_factory.mktemp("user")
    t = time.monotonic()
    venv.EnvBuilder(with_pip=True).create(base/"venv")
    py = base/"venv"/"bin"/"python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", str(dist[0])], capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    _t0["install"] = time.monotonic() - t
    _say(f"fresh venv + pip install of the wheel in {_t0['install']:.1f}s")
    cwd, data = base/"cwd", base/"data"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_", "PYTHON", "VIRTUAL_ENV", "JUPYTER_"))}
    env.update(PATH=f"{py.parent}{os.pathsep}{env.get('PATH', '')}", SWINGTRADER_DATA_DIR=str(data))

    def run(*args, timeout=900):
        t = time.monotonic()
        exe = [str(py), *args] if args[0] == "-m" or args[0] == "-c" else [str(py.parent/args[0]), *args[1:]]
        r = subprocess.run(exe, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
        _say(f"{' '.join(args)[:60]}: exit {r.returncode} in {time.monotonic() - t:.1f}s")
        return r
    run.venv, run.cwd, run.data = base/"venv", cwd, data
    return run

def test_packaged_notebooks_are_the_scheduled_ones():
    "The installed command runs swingtrader/scheduled/; they are the same files people edit in scheduled/."
    mine = sorted(p.name for p in (ROOT/"scheduled").glob("*.ipynb"))
    assert mine == sorted(p.name for p in (ROOT/"swingtrader"/"scheduled").glob("*.ipynb")) and mine
    for n in mine: assert (ROOT/"scheduled"/n).read_bytes() == (ROOT/"swingtrader"/"scheduled"/n).read_bytes(), n

def test_wheel_and_sdist_contents(dist):
    whl, sdist = dist
    names = set(zipfile.ZipFile(whl).namelist())
    for pkg in SUBPACKAGES: assert f"{pkg}/__init__.py" in names, pkg
    mods = {p.relative_to(ROOT).as_posix() for p in (ROOT/"swingtrader").rglob("*.py")}
    assert mods <= names, sorted(mods - names)
    for f in ["swingtrader/py.typed", "swingtrader/__main__.py", "swingtrader/scheduled/daily_run.ipynb",
              "swingtrader/scheduled/smoke_test.ipynb", "swingtrader/assets/xnys_sessions.npz", "swingtrader/assets/example_ppo.onnx"]:
        assert f in names, f
    assert not [n for n in names if n.startswith(("tests/", "nbs/", "tools/", "bench/"))]
    meta = zipfile.ZipFile(whl).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    reqs = [l.split(":", 1)[1].strip() for l in meta.splitlines() if l.startswith("Requires-Dist:")]
    runtime = {re.match(r"[\w.-]+", r)[0].lower() for r in reqs if "extra ==" not in r}
    dev = {re.match(r"[\w.-]+", r)[0].lower() for r in reqs if 'extra == "dev"' in r}
    assert {"filelock", "apprise", "papermill", "ipykernel", "tastytrade-sdk", "panel"} <= runtime, runtime
    assert {"pytest", "nbdev", "ruff", "hypothesis", "jupytext", "selenium"} <= dev and not dev & runtime, (dev, runtime)
    top = sdist.name.removesuffix(".tar.gz")
    snames = set(tarfile.open(sdist).getnames())
    for f in ["pyproject.toml", "README.md", "swingtrader/py.typed", "swingtrader/scheduled/daily_run.ipynb",
              *(f"{p}/__init__.py" for p in SUBPACKAGES)]:
        assert f"{top}/{f}" in snames, f
    assert not [n for n in snames if n.startswith(f"{top}/tests/")]

def test_installed_outside_the_checkout(user):
    r = user("-c", "import swingtrader, swingtrader.sim, swingtrader.tastytrade, swingtrader.dxlink, swingtrader.emulator, "
                   "swingtrader.cli as c; print(swingtrader.__file__); print(c._scheduled('daily_run'))")
    assert r.returncode == 0, r.stderr[-3000:]
    pkg, nb = (Path(l) for l in r.stdout.split())
    assert pkg.is_relative_to(user.venv) and not pkg.is_relative_to(ROOT)
    assert nb.is_relative_to(user.venv) and nb.name == "daily_run.ipynb"

def test_help(user):
    for args in [("swingtrader", "--help"), ("-m", "swingtrader", "--help")]:
        r = user(*args)
        assert r.returncode == 0 and "daily" in r.stdout and "smoke" in r.stdout, (args, r.stdout, r.stderr[-2000:])
    assert "Usage: python -m swingtrader" in r.stdout

def test_daily_then_status(user):
    "The README's main job from the installed package, then the operator's view of the same data directory."
    r = user("swingtrader", "daily", "--speed", "2000")
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    rep = Path(next(l.split(None, 1)[1] for l in r.stdout.splitlines() if l.startswith("notebook:")))
    assert rep.exists() and rep.is_relative_to(user.data), rep
    assert Path(next(l.split(None, 1)[1] for l in r.stdout.splitlines() if l.startswith("report:"))) == rep.with_suffix(".html")
    text = outputs(rep)
    assert "2026-03-02" in text and "ledger consistency: ok" in text, text[-2000:]
    assert "result:" in r.stdout and "fills" in r.stdout
    # status follows the current run: the one daily just made, in its own sim-runs directory
    run_dir = Path(next(l.split(None, 1)[1] for l in r.stdout.splitlines() if l.startswith("ledger:"))).parent
    s = user("swingtrader", "status")
    assert s.returncode == 0 and "trading state:" in s.stdout and str(run_dir) in s.stdout, (s.stdout, s.stderr)
    assert run_dir.parent == user.data/"sim-runs"

def test_halt_then_status(user):
    "An operator halts the current run; status shows it."
    h = user("swingtrader", "halt", "--reason", "test")
    assert h.returncode == 0 and "halted" in h.stdout, (h.stdout, h.stderr)
    s = user("swingtrader", "status")
    assert s.returncode == 0 and "trading state: halted" in s.stdout and "test" in s.stdout, (s.stdout, s.stderr)

def test_smoke_report(user):
    r = user("swingtrader", "smoke", "--report")
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    rep = Path(r.stdout.strip().rsplit("(notebook: ", 1)[1].rstrip(")"))
    assert rep.exists() and rep.is_relative_to(user.data) and rep.with_suffix(".html").exists()
    text = outputs(rep)
    assert "PASSED" in text and "cancelled, nothing filled" in text, text[-2000:]

def test_backtest(user):
    r = user("swingtrader", "backtest", "--start", "2026-03-02", "--end", "2026-03-06", "--symbols", "5")
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    out = Path(r.stdout.strip().rsplit("results: ", 1)[1])
    assert out.is_relative_to(user.data) and (out/"summary.json").exists() and (out/"trades.csv").exists()
    assert "final equity" in r.stdout and (out/"tearsheet.html").exists()

def test_dashboard(user):
    "`swingtrader dashboard --port N` from the installed package serves the current run's page behind its token."
    import socket, urllib.error, urllib.request
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    exe = [str(user.venv/"bin"/"swingtrader"), "dashboard", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(SWINGTRADER_DATA_DIR=str(user.data))
    p = subprocess.Popen(exe, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=user.cwd)
    try:
        lines, url = [], None
        for line in p.stdout:                      # the command prints the private URL once, then serves
            lines.append(line)
            if line.strip().startswith("open http://"): url = line.split("open ", 1)[1].strip(); break
        assert url and url.startswith(f"http://127.0.0.1:{port}/"), lines
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k): return None
        with pytest.raises(urllib.error.HTTPError) as e:            # without the token: sent to the login form
            urllib.request.build_opener(NoRedirect).open(url.split("?")[0], timeout=60)
        assert e.value.code == 302 and "/login" in e.value.headers["Location"]
        page = urllib.request.urlopen(url, timeout=60).read().decode()
        assert "<title>swingtrader" in page and "bokeh" in page.lower()
    finally:
        p.terminate()
        try: p.wait(timeout=30)
        except subprocess.TimeoutExpired: p.kill()

def test_nothing_written_into_the_checkout_or_cwd(user):
    "Runs from the installed package leave the working folder empty: everything goes to SWINGTRADER_DATA_DIR."
    assert list(user.cwd.iterdir()) == []
    _say("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in _t0.items()))

def test_path_check_flags_machine_paths_only():
    "tools/check_paths.py: absolute paths of some machine are findings; URLs and relative paths are not."
    sys.path.insert(0, str(ROOT/"tools"))
    try: from check_paths import ABS
    finally: sys.path.remove(str(ROOT/"tools"))
    r = "/"   # the roots spelled apart, or this file would be a finding itself
    bad = [f'FX = Path("{r}work/data/fixtures")', f"open('{r}tmp/x.json')", f"cd {r}home/me/swingtrader", f"p={r}root/.cache/x"]
    good = ["https://example.org/tmp/x", "tests/fixtures/tmp/x.json", "a/home/b", "Path(__file__).parent/'work'", "/srv/app"]
    assert [b for b in bad if not ABS.search(b)] == [] and [g for g in good if ABS.search(g)] == []
