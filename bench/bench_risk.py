"RiskGuard.evaluate latency with 20 open positions, and ledger write throughput (WAL)."
from __future__ import annotations
import statistics, tempfile, time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np

from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.models import Account, Fill, Order, OrderRequest, OrderStatus, Position, Side, Signal, SignalAction
from swingtrader.risk import RiskContext, RiskGuard

T0 = datetime(2025, 3, 3, 20, tzinfo=timezone.utc)

def bench_risk(n=20000):
    rng = np.random.default_rng(0)
    syms = [f"S{i:02d}" for i in range(20)]
    acct = Account("A", Decimal(100000), Decimal(100000), Decimal(100000), Decimal(200000))
    ctx = RiskContext(acct, [Position(s, Decimal(40), Decimal(100)) for s in syms],
                      prices={s: Decimal(100) for s in syms + ["NEW"]}, sectors={s: f"sec{i % 8}" for i, s in enumerate(syms)} | {"NEW": "sec0"},
                      returns={s: rng.normal(0, 0.01, 60) for s in syms + ["NEW"]}, as_of=T0.date())
    guard, sig = RiskGuard(Settings()), Signal("NEW", SignalAction.ENTER_LONG, T0, 100.0)
    t = time.perf_counter(); guard.evaluate(sig, ctx, qty=Decimal(30)); first = (time.perf_counter() - t) * 1e6
    lat = []
    for _ in range(n):
        t = time.perf_counter(); guard.evaluate(sig, ctx, qty=Decimal(30)); lat.append((time.perf_counter() - t) * 1e6)
    lat.sort()
    print(f"RiskGuard.evaluate, 20 open positions: first call (computes 20 correlations) {first:.0f} us; "
          f"cached p50 {lat[len(lat)//2]:.1f} us, p99 {lat[int(len(lat)*0.99)]:.1f} us, mean {statistics.fmean(lat):.1f} us (n={n})")

def bench_ledger(sync: str, n=1000):
    with tempfile.TemporaryDirectory() as d:
        led = Ledger(Path(d) / "bench.db", synchronous=sync)
        t = time.perf_counter()
        for i in range(n):
            req = OrderRequest("AAPL", Side.BUY, qty=Decimal(1), client_key=f"k{i}")
            led.record_intent(None, req)
            o = Order.from_request(req, f"B{i}", OrderStatus.ACCEPTED, T0)
            led.record_submitted(req.client_key, o)
            led.record_fill(Fill(f"F{i}", o.id, "AAPL", Side.BUY, Decimal(1), Decimal(100), T0, req.client_key))
        dt = time.perf_counter() - t
        print(f"Ledger WAL synchronous={sync}: {n} x (intent + submitted + fill) in {dt:.2f} s = "
              f"{n/dt:,.0f} orders/s, {3*n/dt:,.0f} transactions/s; check() problems: {len(led.check())}")
        led.close()

if __name__ == "__main__":
    bench_risk()
    bench_ledger("FULL")
    bench_ledger("NORMAL")
