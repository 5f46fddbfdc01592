"""The ledger's rooms: sizes, no import circle, no private name used outside its module, and the public reads
agree with the tables they read (the dashboard, reports and backtest use only these)."""
import ast, subprocess, sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from swingtrader.clock import SimClock
from swingtrader.ledger import Ledger, OPEN_STATUSES, UNRESOLVED
from swingtrader.models import Fill, Order, OrderRequest, OrderStatus, OrderType, Side, TimeInForce

PKG = Path(__file__).resolve().parents[1] / "swingtrader"
ROOMS = ["store", "book", "state", "core", "reconcile"]

def test_rooms_are_small():
    sizes = {r: len((PKG / "ledger" / f"{r}.py").read_text().splitlines()) for r in ROOMS}
    assert all(n <= 450 for n in sizes.values()), sizes
    for m in ["dashboard", "dashboard_page", "dashboard_server", "dashboard_trading"]:
        assert len((PKG / f"{m}.py").read_text().splitlines()) <= 450, m

@pytest.mark.parametrize("room", ROOMS)
def test_each_room_imports_alone(room):
    "Imported first in a fresh interpreter, each room loads (no import circle through the package)."
    r = subprocess.run([sys.executable, "-c", f"import swingtrader.ledger.{room}"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]

def _private_uses(path: Path):
    "`from swingtrader.ledger... import _x`, and `<something>._x` on names that are not self/cls (ledger._q, ledger._tx, ...)."
    tree, out = ast.parse(path.read_text()), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").lstrip(".").startswith(("ledger", "swingtrader.ledger")):
            out += [f"import {a.name}" for a in node.names if a.name.startswith("_")]
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            if isinstance(base, ast.Attribute) and base.attr == "ledger": out.append(f"ledger.{node.attr}")
            elif isinstance(base, ast.Name) and base.id in ("ledger", "lg", "led"): out.append(f"{base.id}.{node.attr}")
    return out

def test_no_private_ledger_names_outside_their_room():
    "Outside the ledger, and in the rooms built on top of the store (store.py's transaction helper is the Store's own)."
    files = [p for p in PKG.rglob("*.py") if p.name != "_modidx.py" and p != PKG / "ledger" / "store.py"]
    found = {str(p.relative_to(PKG)): u for p in files if (u := _private_uses(p))}
    assert found == {}, found

def test_ledger_rooms_use_no_other_rooms_private_helpers():
    for r in ROOMS:
        tree = ast.parse((PKG / "ledger" / f"{r}.py").read_text())
        imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]
        assert not [n for n in imported if n.startswith("_") and n != "annotations"], (r, imported)

@pytest.fixture
def led():
    clock = SimClock(datetime(2025, 3, 3, 15, tzinfo=timezone.utc))
    lg = Ledger(":memory:", clock)
    for i, (sym, side, qty, price, status) in enumerate([("AAPL", Side.BUY, 10, 100, OrderStatus.FILLED), ("AAPL", Side.SELL, 4, 110, OrderStatus.FILLED),
                                                         ("MSFT", Side.BUY, 3, 400, OrderStatus.FILLED), ("NVDA", Side.BUY, 2, 90, OrderStatus.ACCEPTED)]):
        clock.advance(60)
        req = OrderRequest(sym, side, qty=Decimal(qty), client_key=f"k{i}")
        lg.record_intent(None, req)
        lg.record_submitted(req.client_key, Order.from_request(req, f"B{i}", status, clock.now(), filled_qty=Decimal(qty) if status is OrderStatus.FILLED else Decimal(0)))
        if status is OrderStatus.FILLED:
            lg.record_fill(Fill(f"F{i}", f"B{i}", sym, side, Decimal(qty), Decimal(price), clock.now(), req.client_key, Decimal("0.5")))
    clock.advance(60)
    lg.record_intent(None, OrderRequest("TSLA", Side.BUY, qty=Decimal(1), client_key="k-pending"))
    lg.record_equity(Decimal(100000), Decimal(50000)); clock.advance(3600); lg.record_equity(Decimal(100250), Decimal(49000))
    return lg

def test_open_and_recent_orders(led):
    working = [o.client_key for o in led.open_orders()]
    assert working == ["k-pending", "k3"]
    assert sorted(working) == sorted(o.client_key for o in led.orders(OPEN_STATUSES + UNRESOLVED))
    assert [o.client_key for o in led.recent_orders(2)] == ["k2", "k1"]
    assert [o.client_key for o in led.recent_orders()] == ["k2", "k1", "k0"]

def test_fill_reads(led):
    assert [f.fill_id for f in led.recent_fills(2)] == ["F2", "F1"]
    assert led.recent_fills(10) == list(reversed(led.fills()))
    h = led.fill_history()
    assert [r["fill_id"] for r in h] == ["F0", "F1", "F2"] and h[1]["price"] == Decimal(110) and h[1]["side"] == "sell"
    assert [datetime.fromisoformat(r["time"]) for r in h] == [f.time for f in led.fills()]
    assert led.last_fill_prices() == {"AAPL": Decimal(110), "MSFT": Decimal(400)}

def test_realized_and_marks(led):
    r = led.realized_by_symbol()
    assert r == {"AAPL": Decimal(4 * 10) - Decimal("1.0"), "MSFT": Decimal("-0.5")}
    assert sum(r.values()) == led.realized_pl()
    m = led.latest_mark()
    assert (m["equity"], m["start_equity"], m["cash"], m["day"]) == (Decimal(100250), Decimal(100000), Decimal(49000), led.marks()[-1]["day"])
    assert Ledger(":memory:").latest_mark() is None

def test_fill_marks_and_adoption(led):
    seq = led.last_fill_seq()
    assert led.symbols_filled_since(seq) == set()
    with led.transaction():
        o = Order("X1", "adopt-X1", "AMD", Side.BUY, OrderType.MARKET, TimeInForce.DAY, OrderStatus.FILLED, qty=Decimal(5), filled_qty=Decimal(5))
        assert led.adopt_order(o, "test") == "adopt-X1"
        led.record_fill(Fill("FX", "X1", "AMD", Side.BUY, Decimal(5), Decimal(100), led.clock.now(), "adopt-X1"))
    assert led.symbols_filled_since(seq) == {"AMD"} and led.last_fill_seq() > seq
    assert led.order("adopt-X1").adopted and led.check() == []
    assert led.events("adopt_order")[-1]["why"] == "test"
