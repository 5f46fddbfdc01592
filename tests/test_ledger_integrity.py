"""Ledger integrity before write: a corrupt, truncated or empty ledger is never written to nor silently replaced;
new ledgers appear whole even when several processes create one at once; check / backup / restore work."""
from __future__ import annotations
import os, random, sqlite3, subprocess, sys, textwrap, time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from swingtrader.cli import main
from swingtrader.ledger import (MIGRATIONS, Ledger, LedgerError, backup_ledger, check_ledger, ledger_in_use, restore_ledger)
from swingtrader.models import Fill, Order, OrderRequest, OrderStatus, Side

T = datetime(2025, 3, 3, 15, tzinfo=timezone.utc)
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}

def _filled_ledger(path:Path, n:int=150) -> Path:
    "A ledger with enough rows to span many pages, closed (WAL checkpointed into the file)."
    with Ledger(path, synchronous="OFF") as led:
        for i in range(n):
            key = f"k-{i}"
            req = OrderRequest("AAPL", Side.BUY, qty=Decimal(1), client_key=key)
            led.record_intent(None, req)
            led.record_submitted(key, Order.from_request(req, f"B{i}", OrderStatus.FILLED, T, filled_qty=Decimal(1)))
            led.record_fill(Fill(f"F{i}", f"B{i}", "AAPL", Side.BUY, Decimal(1), Decimal("100.5"), T, key))
        led.set_halt("halted", "test", "before corruption")
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path

def _garble(path:Path, page:int=None):
    "Overwrite one page in the middle of the file with random bytes (garbage inside a valid-looking SQLite file)."
    data = bytearray(path.read_bytes())
    psize = int.from_bytes(data[16:18], "big") or 65536
    pages = len(data) // psize
    page = page if page is not None else pages // 2
    rnd = random.Random(7)
    data[page * psize:(page + 1) * psize] = bytes(rnd.randrange(256) for _ in range(psize))
    path.write_bytes(bytes(data))

def _snapshot(path:Path):
    "The ledger's bytes and any write-ahead log content (SQLite may create an empty -wal/-shm when it reads)."
    wal = Path(f"{path}-wal")
    return path.read_bytes(), wal.read_bytes() if wal.exists() and wal.stat().st_size else b""

@pytest.fixture
def data_dir(clean_env, tmp_path):
    d = tmp_path/"data"; d.mkdir()
    clean_env.setenv("SWINGTRADER_DATA_DIR", str(d))
    return d

def _corruptions(d:Path):  # kind -> how to damage a ledger at a path
    yield "garbage inside", lambda p: _garble(_filled_ledger(p))
    yield "zero bytes", lambda p: p.write_bytes(b"")
    yield "truncated", lambda p: p.write_bytes(_filled_ledger(p).read_bytes()[:1000])
    yield "overwritten header", lambda p: p.write_bytes(b"\0" * 100 + _filled_ledger(p).read_bytes()[100:])

@pytest.mark.parametrize("kind", ["garbage inside", "zero bytes", "truncated", "overwritten header"])
def test_corrupt_ledger_is_refused_and_left_untouched(data_dir, kind):
    p = data_dir/"ledger.sqlite"
    dict(_corruptions(data_dir))[kind](p)
    before = _snapshot(p)
    for ro in (False, True):
        with pytest.raises(LedgerError) as e: Ledger(p, readonly=ro)
        msg = str(e.value)
        assert str(p) in msg and "swingtrader ledger check" in msg and "swingtrader ledger restore" in msg, msg
        assert "\n" not in msg
    assert _snapshot(p) == before          # never written to, never replaced by a new empty ledger

@pytest.mark.parametrize("kind", ["garbage inside", "zero bytes", "truncated"])
@pytest.mark.parametrize("cmd", [["halt", "--reason", "x"], ["flatten"], ["status"], ["reset-halt", "--reason", "x", "--who", "me"]])
def test_commands_on_a_corrupt_ledger_are_one_error_line(data_dir, kind, cmd):
    p = data_dir/"ledger.sqlite"
    dict(_corruptions(data_dir))[kind](p)
    before = _snapshot(p)
    r = CliRunner().invoke(main, cmd)
    assert r.exit_code == 2, (r.output, r.exception)
    errs = [l for l in r.output.splitlines() if l.startswith("error:")]
    assert len(errs) == 1 and str(p) in errs[0] and "swingtrader ledger" in errs[0], r.output
    assert _snapshot(p) == before

def test_a_new_path_still_gets_a_fresh_ledger(tmp_path):
    p = tmp_path/"deep"/"dir"/"ledger.sqlite"
    with Ledger(p) as led:
        assert led.version == len(MIGRATIONS) and led.halt_state().state == "active"
    assert sorted(x.name for x in p.parent.iterdir() if not x.name.startswith("ledger.sqlite")) == []   # no temp files left

def test_foreign_sqlite_database_is_refused(tmp_path):
    p = tmp_path/"ledger.sqlite"
    c = sqlite3.connect(p); c.execute("CREATE TABLE photos(x)"); c.commit(); c.close()
    with pytest.raises(LedgerError, match="not a swingtrader ledger"): Ledger(p)

OPENER = textwrap.dedent(r'''
    import sys, time
    from pathlib import Path
    from swingtrader.ledger import Ledger
    path, go = sys.argv[1], Path(sys.argv[2])
    while not go.exists(): time.sleep(0.001)
    led = Ledger(path)
    led.log_event("opened", {"pid": __import__("os").getpid()})
    print(led.version, led.halt_state().state, flush=True)
''')

def _race(path:Path, tmp_path:Path, n:int=6) -> list[str]:
    go = tmp_path/"go"
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(path), str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=ENV) for _ in range(n)]
    time.sleep(0.5); go.write_text("go")
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    return [o[0].strip() for o in outs]

def test_processes_creating_a_new_ledger_at_once_all_succeed(tmp_path):
    p = tmp_path/"ledger.sqlite"
    outs = _race(p, tmp_path)
    assert outs == [f"{len(MIGRATIONS)} active"] * len(outs)
    with Ledger(p, readonly=True) as led:
        assert len(led.events("opened")) == len(outs) and led.check() == []
        assert led.db.execute("SELECT count(*) FROM halt").fetchone()[0] == 1

def test_processes_migrating_an_old_ledger_at_once_all_succeed(tmp_path):
    p = tmp_path/"ledger.sqlite"
    c = sqlite3.connect(p, isolation_level=None); c.execute("PRAGMA journal_mode=WAL")
    c.executescript(MIGRATIONS[0]); c.execute("PRAGMA user_version=1"); c.close()
    outs = _race(p, tmp_path)
    assert outs == [f"{len(MIGRATIONS)} active"] * len(outs)

def test_ledger_check_command(data_dir):
    p = _filled_ledger(data_dir/"ledger.sqlite", 20)
    r = CliRunner().invoke(main, ["ledger", "check"])
    assert r.exit_code == 0 and ": ok" in r.output and "fills 20" in r.output, r.output
    _garble(p, 2)
    r = CliRunner().invoke(main, ["ledger", "check"])
    assert r.exit_code == 1 and "NOT OK" in r.output and "problem:" in r.output, r.output
    p.write_bytes(b"")
    r = CliRunner().invoke(main, ["ledger", "check"])
    assert r.exit_code == 1 and "0 bytes" in r.output
    r = CliRunner().invoke(main, ["ledger", "check", str(data_dir/"nope.sqlite")])
    assert r.exit_code == 2 and r.output.startswith("error: no ledger at")

WRITER = textwrap.dedent(r'''
    import sys
    from swingtrader.ledger import Ledger
    led = Ledger(sys.argv[1])
    print("ready", flush=True)
    i = 0
    while True:
        i += 1; led.log_event("tick", {"i": i})
''')

def test_backup_while_another_process_writes(data_dir):
    p = _filled_ledger(data_dir/"ledger.sqlite", 50)
    w = subprocess.Popen([sys.executable, "-c", WRITER, str(p)], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert w.stdout.readline().strip() == "ready"
        r = CliRunner().invoke(main, ["ledger", "backup", "--to", str(data_dir/"b1.sqlite")])
        assert r.exit_code == 0 and "backup written" in r.output, r.output
    finally: w.kill(); w.wait()
    chk = check_ledger(data_dir/"b1.sqlite")
    assert chk.ok and dict(chk.counts)["fills"] == 50
    r = CliRunner().invoke(main, ["ledger", "backup"])
    assert r.exit_code == 0 and len(list((data_dir/"backups").glob("ledger-*.sqlite"))) == 1

def test_backup_of_a_corrupt_ledger_is_a_raw_copy(data_dir):
    p = data_dir/"ledger.sqlite"; _garble(_filled_ledger(p))
    dest, verified = backup_ledger(p, data_dir/"raw.sqlite")
    assert not verified and dest.read_bytes() == p.read_bytes()

HOLDER = textwrap.dedent(r'''
    import sys, time
    from swingtrader.ledger import Ledger
    led = Ledger(sys.argv[1]); led.halt_state()
    print("holding", flush=True)
    sys.stdin.readline()
''')

def test_restore_refuses_while_held_then_restores_and_keeps_the_old_file(data_dir):
    p = _filled_ledger(data_dir/"ledger.sqlite", 30)
    good, _ = backup_ledger(p, data_dir/"good.sqlite")
    _garble(p)
    with pytest.raises(LedgerError): Ledger(p)
    h = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir/"other.sqlite")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)
    try:   # a process holding a *different* ledger does not block
        assert h.stdout.readline().strip() == "holding"
        assert ledger_in_use(p) == []
    finally: h.communicate("\n", timeout=60)
    restore_ledger(good, data_dir/"healthy.sqlite")              # make a healthy ledger a bot can hold open
    h = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir/"healthy.sqlite")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert h.stdout.readline().strip() == "holding"
        with pytest.raises(LedgerError, match="is in use by"): restore_ledger(good, data_dir/"healthy.sqlite")
        with Ledger(data_dir/"healthy.sqlite") as mine:          # ... and so does a connection in this very process
            mine.halt_state()
            h.communicate("\n", timeout=60)
            with pytest.raises(LedgerError, match="is in use by"): restore_ledger(good, data_dir/"healthy.sqlite")
    finally:
        if h.poll() is None: h.kill(); h.wait()
    corrupt = p.read_bytes()
    r = CliRunner().invoke(main, ["ledger", "restore", str(good)])
    assert r.exit_code == 0 and "replaced file is kept as" in r.output, r.output
    kept = [x for x in data_dir.iterdir() if x.name.startswith("ledger.sqlite.replaced-") and not x.name.endswith("-wal")]
    assert len(kept) == 1 and kept[0].read_bytes() == corrupt
    with Ledger(p) as led:
        assert len(led.fills()) == 30 and led.position("AAPL").qty == 30
        assert led.check() == [] and led.halt_state().reason == "before corruption"

def test_restore_refuses_a_bad_backup(data_dir):
    p = _filled_ledger(data_dir/"ledger.sqlite", 5)
    before = p.read_bytes()
    (data_dir/"bad.sqlite").write_bytes(b"garbage" * 1000)
    r = CliRunner().invoke(main, ["ledger", "restore", str(data_dir/"bad.sqlite")])
    assert r.exit_code == 2 and "is not a healthy ledger" in r.output, r.output
    assert p.read_bytes() == before
