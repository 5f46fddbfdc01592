"""A broken DATA_DIR/current.json (not JSON, not a run record, or naming a run whose directory is gone) is one clear error
for every command that follows it (`halt` above all): never a silent fallback to another ledger than the running bot's."""
import json, os

import pytest
from click.testing import CliRunner

from swingtrader.config import Settings, SwingtraderError
from swingtrader import runs
from swingtrader.cli import main


@pytest.fixture
def data(clean_env, tmp_path):
    "A data directory with a bot's run in progress (this process plays the bot: its run is `running`)."
    base = tmp_path/"data"
    clean_env.setenv("SWINGTRADER_DATA_DIR", str(base)); clean_env.setenv("SWINGTRADER_LOCK_DIR", str(tmp_path/"locks"))
    s = Settings(_env_file=None, data_dir=base, lock_dir=tmp_path/"locks")
    cm = runs.start_run(s, "daily", label="d", path=base/"out")       # like `daily --out-dir`: a run outside sim-runs/
    run = cm.__enter__()
    saved, tok = runs._ACTIVE.pop(str(runs.data_dir(s))), os.environ.pop(runs.RUN_TOKEN)   # the CLI below is "another process"
    assert runs.current_run(s) == run.dir(base) and run.running
    yield s, base, run
    runs._ACTIVE[str(runs.data_dir(s))], os.environ[runs.RUN_TOKEN] = saved, tok
    cm.__exit__(None, None, None)


def halted_ledgers(base):
    "Every ledger under `base` whose trading state is halted."
    from swingtrader.ledger import Ledger
    out = []
    for p in base.rglob("ledger.sqlite"):
        with Ledger(p, readonly=True) as lg:
            if lg.halt_state().state == "halted": out.append(p)
    return out


BROKEN = {"not JSON": "{half a record", "not an object": "[1, 2]", "not a run record": '{"pid": 1}', "empty": "",
          "wrong types": '{"path": 7, "kind": "daily", "broker": "sim", "pid": "x"}', "not UTF-8": b"\xff\xfe{"}

@pytest.mark.parametrize("what", BROKEN)
def test_halt_refuses_a_broken_current_json(data, what):
    s, base, run = data
    b = BROKEN[what]
    (base/runs.CURRENT).write_bytes(b if isinstance(b, bytes) else b.encode())
    r = CliRunner().invoke(main, ["halt", "--reason", "news"])
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and "Traceback" not in r.output, (r.exit_code, r.output)
    assert lines[0].startswith("error: ") and str(base/runs.CURRENT) in lines[0] and "Fix:" in lines[0], lines[0]
    assert f"pid {os.getpid()}" in lines[0]                 # names the bot that holds the data directory: stop it first
    assert halted_ledgers(base) == [] and not (base/"ledger.sqlite").exists()


def test_halt_refuses_a_current_json_naming_a_missing_run(data):
    s, base, run = data
    d = json.loads((base/runs.CURRENT).read_text()); d["path"] = "sim-runs/gone"
    (base/runs.CURRENT).write_text(json.dumps(d))
    r = CliRunner().invoke(main, ["halt", "--reason", "news"])
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and "sim-runs/gone" in lines[0] and str(base/runs.CURRENT) in lines[0], r.output
    assert halted_ledgers(base) == [] and not (base/"sim-runs"/"gone").exists()


def test_status_and_resume_refuse_it_too(data):
    s, base, run = data
    (base/runs.CURRENT).write_text("{")
    for args in (["status"], ["resume", "--reason", "ok", "--who", "me"], ["flatten"]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and r.stderr.startswith("error: ") and "current.json" in r.stderr, (args, r.output)
    with pytest.raises(SwingtraderError, match="current.json"): runs.run_ledger_path(s)


def test_no_bot_holding_the_directory_says_move_it_aside(clean_env, tmp_path):
    base = tmp_path/"data"; base.mkdir()
    clean_env.setenv("SWINGTRADER_DATA_DIR", str(base))
    (base/runs.CURRENT).write_text("{")
    with pytest.raises(SwingtraderError) as e: runs.current_run(Settings(_env_file=None, data_dir=base))
    assert "move" in str(e.value) and "aside" in str(e.value) and "pid" not in str(e.value)


def test_a_new_run_replaces_a_broken_current_json(tmp_path):
    "Starting a bot is the repair: it writes current.json anew (the data directory's lock keeps a second bot out)."
    s = Settings(_env_file=None, data_dir=tmp_path/"data", lock_dir=tmp_path/"locks")
    (tmp_path/"data").mkdir(); (tmp_path/"data"/runs.CURRENT).write_text("{")
    with runs.start_run(s, "daily", label="d") as r: assert runs.current_run(s) == r.dir(tmp_path/"data")
    assert runs.current_run(s) == r.dir(tmp_path/"data")
