"The backtest's ledger: one transaction per bar time that writes; an error rolls back that bar time only, and the ledger stays usable."
from __future__ import annotations
import sqlite3

import pytest

from swingtrader.config import Settings
from swingtrader.backtest import Backtest, RunLedger

def test_error_rolls_back_only_the_failing_bar_time(tmp_path):
    s = Settings(warmup_bars=30)
    bt = Backtest.from_seed(s, symbols=6, start="2026-03-02", end="2026-03-13", seed=5, ledger=tmp_path / "l.db")
    assert isinstance(bt.ledger, RunLedger) and bt.ledger.journal is False
    real, n = bt.broker.submit, [0]
    def flaky(req):
        n[0] += 1
        if n[0] == 7: raise RuntimeError("broker exploded")
        return real(req)
    bt.broker.submit = flaky
    with pytest.raises(RuntimeError, match="broker exploded"): bt.run()
    other = sqlite3.connect(tmp_path / "l.db")                                  # what a crash would leave on disk
    keys = [r[0] for r in other.execute("SELECT client_key FROM orders ORDER BY rowid")]
    assert len(keys) == 6                                                       # the six earlier orders' bar times committed
    assert other.execute("SELECT COUNT(*) FROM fills").fetchone()[0] >= 6
    assert bt.ledger.orders()[-1].client_key == keys[-1]                        # the 7th intent's bar time was rolled back
    assert bt.ledger.check() == []
    bt.ledger.set_halt("halted", "test", "still writable")                      # no transaction or lock left behind
    assert other.execute("SELECT state FROM halt").fetchone()[0] == "halted"
    other.close()

def test_quiet_bar_times_commit_nothing(monkeypatch):
    "Bar times without ledger writes cost no commit: commits == bar times that wrote."
    bt = Backtest.from_seed(Settings(warmup_bars=30), symbols=4, start="2026-03-02", end="2026-03-06", seed=5)
    sql = []
    bt.ledger.db.set_trace_callback(sql.append)
    bt.run()
    commits = sum(1 for q in sql if q == "COMMIT")
    writes = {q.split()[0] for q in sql if q not in ("BEGIN IMMEDIATE", "COMMIT")}
    assert writes <= {"INSERT", "UPDATE", "DELETE", "SELECT"}
    assert 0 < commits <= len(bt.ledger.orders()) + 1 < len(bt._times)        # far fewer commits than bar times
    assert len(bt.result().trades) > 0
