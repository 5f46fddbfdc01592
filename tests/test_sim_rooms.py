"""The simulator's rooms talk through public names only, and the backtest reads the SimBroker through its public API."""
import ast
from datetime import date
from decimal import Decimal
from pathlib import Path

from swingtrader.sim.broker import SimBroker

PKG = Path(__file__).resolve().parent.parent / "swingtrader"
ROOMS = sorted((PKG / "sim").glob("*.py")) + [PKG / "backtest.py"]

def test_no_private_imports_between_sim_modules():
    bad = []
    for f in ROOMS:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and ("sim" in node.module or node.level):
                bad += [f"{f.name}: {a.name}" for a in node.names if a.name.startswith("_") and a.name != "__future__"]
    assert bad == []

def test_backtest_touches_no_private_broker_state():
    src = (PKG / "backtest.py").read_text()
    for name in ("broker._", "b._lock", "b._snapshot", "b._now", "._options", "._synced_ns"):
        assert name not in src, name

def test_snapshot_initial_cash_options_synced_ns():
    sb = SimBroker.from_seed(seed=3, symbols=2, start=date(2026, 3, 2), end=date(2026, 3, 2), cash="25000")
    acct = sb.account()                       # syncs
    assert sb.snapshot() == acct
    assert sb.initial_cash == Decimal(25000)
    opts = sb.options
    opts["cash"] = "1"                        # a copy: the broker keeps its own
    assert sb.options["cash"] == "25000" and sb.initial_cash == Decimal(25000)
    assert sb.synced_ns == int(sb.clock.now().timestamp()) * 10**9
