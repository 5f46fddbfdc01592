"Audit log: every stream's record validates against AUDIT_SCHEMA, secrets never reach disk, day files, retention, torn lines."
from __future__ import annotations
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from swingtrader.audit import AUDIT_SCHEMA, EVENT_TYPES, RETENTION_DAYS, AuditError, AuditLog, validate_record
from swingtrader.clock import SimClock
from swingtrader.config import Settings
from swingtrader.models import Fill, Order, OrderStatus, OrderType, Side, Signal, SignalAction, TimeInForce
from swingtrader.risk import RiskContext, RiskGuard
from swingtrader.models import Account

T0 = datetime(2025, 3, 3, 23, 59, 59, tzinfo=timezone.utc)
SECRET = "rt-0123456789abcdef"

@pytest.fixture
def log(tmp_path):
    clock = SimClock(T0)
    s = Settings(TT_REFRESH_TOKEN=SECRET)
    a = AuditLog.from_settings(s.model_copy(update={"data_dir": tmp_path}), clock)
    yield a, clock, tmp_path
    a.close()

def test_every_stream_writes_valid_records_to_day_files(log):
    a, clock, root = log
    sig = Signal("AAPL", SignalAction.ENTER_LONG, T0, 100.0, atr=2.0, reason=f"Bearer {SECRET}")
    acct = Account("A", Decimal(100000), Decimal(100000), Decimal(100000), Decimal(100000))
    d = RiskGuard(Settings()).evaluate(sig, RiskContext(acct, prices={"AAPL": Decimal(100)}), qty=Decimal(60))
    o = Order("B1", "ck1", "AAPL", Side.BUY, OrderType.MARKET, TimeInForce.DAY, OrderStatus.ACCEPTED, qty=Decimal(50))
    f = Fill("F1", "B1", "AAPL", Side.BUY, Decimal("0.123456789"), Decimal("100.05"), T0, "ck1")
    a.signal(sig); a.risk_check(sig, d, quantity=Decimal(50)); a.order(o, "sim", signal_id=sig.id, latency_ms=3.2)
    clock.advance(2)                                                  # crosses midnight UTC: the fill goes to the next day's file
    a.fill(f, "sim", expected_price=100.0, signal_id=sig.id); a.cancel(o, "sim", reason=f"token={SECRET}")
    a.health("connectivity", {"error": f"Authorization: Bearer {SECRET}"})
    files = sorted(p.relative_to(root / "audit").as_posix() for p in (root / "audit").rglob("*.jsonl"))
    assert files == ["cancel/2025-03-04.jsonl", "fill/2025-03-04.jsonl", "health/2025-03-04.jsonl", "order/2025-03-03.jsonl",
                     "risk_check/2025-03-03.jsonl", "signal/2025-03-03.jsonl"]
    for p in (root / "audit").rglob("*.jsonl"):
        text = p.read_text()
        assert SECRET not in text
        for line in text.splitlines():
            rec = validate_record(json.loads(line))
            assert list(rec)[:13] == AUDIT_SCHEMA["required"]
    rc = a.read("risk_check", date(2025, 3, 3))[0]["risk_check_result"]
    assert rc["action_taken"] == "resize" and rc["passed"] and any(r["rule"] == "position_cap" and not r["passed"] for r in rc["rules_evaluated"])
    fill = a.read("fill", date(2025, 3, 4))[0]
    assert fill["quantity"] == 0.123456789 and fill["execution_price"] == 100.05 and fill["slippage_bps"] == 5.0
    assert fill["timestamp"] == "2025-03-04T00:00:01Z"

@pytest.mark.parametrize("bad,msg", [
    (dict(signal_id="not-a-uuid"), "signal_id"), (dict(latency_ms=-1), "latency_ms"), (dict(direction="up"), "direction"),
    (dict(risk_check_result={"passed": True}), "risk_check_result"), (dict(quantity="10"), "quantity"),
])
def test_invalid_records_are_refused(log, bad, msg):
    a, clock, root = log
    with pytest.raises(AuditError, match=msg): a.write("order", **bad)
    assert not (root / "audit" / "order").exists() or a.read("order", T0.date()) == []

def test_torn_last_line_is_skipped(log):
    a, clock, root = log
    a.health("x"); a.close()
    with open(a.path("health", T0.date()), "a") as fh: fh.write('{"timestamp": "2025-')
    assert len(a.read("health", T0.date())) == 1
    a.health("y")                                                     # appending after a torn line still works
    assert [r["details"]["what"] for r in a.read("health", T0.date())] == ["x", "y"]   # the new record starts on its own line

@pytest.mark.parametrize("stream", EVENT_TYPES)
def test_retention_boundary(log, stream):
    a, clock, root = log
    today, keep = date(2025, 3, 3), RETENTION_DAYS[stream]
    d = root / "audit" / stream; d.mkdir(parents=True, exist_ok=True)
    for age in (keep - 1, keep, keep + 1):
        (d / f"{(today - timedelta(days=age)).isoformat()}.jsonl").write_text("{}\n")
    (d / "notes.txt").write_text("not ours")
    gone = a.prune(today)
    assert [p.stem for p in gone] == [(today - timedelta(days=keep + 1)).isoformat()]
    assert (d / "notes.txt").exists() and len(list(d.glob("*.jsonl"))) == 2
