"SIGKILL a process writing to the ledger at random moments; the ledger must reopen consistent every time."
from __future__ import annotations
import os, random, signal, subprocess, sys, textwrap, time
from decimal import Decimal

from swingtrader.ledger import Ledger, UNRESOLVED

WRITER = textwrap.dedent(r'''
    import sys, random
    from datetime import datetime, timezone
    from decimal import Decimal
    from swingtrader.ledger import Ledger
    from swingtrader.models import Fill, Order, OrderEvent, OrderRequest, OrderStatus, OrderUpdate, Side

    path, run = sys.argv[1], sys.argv[2]
    led = Ledger(path)
    for o in led.unresolved_intents():          # recovery, as the bot does: ask the broker (here: it never got them)
        led.resolve_intent(o.client_key, None)
    print("ready", flush=True)
    rng, t, i = random.Random(run), datetime(2025, 3, 3, 15, tzinfo=timezone.utc), 0
    while True:
        i += 1
        key, sym = f"{run}-{i}", rng.choice(["AAPL", "MSFT", "NVDA"])
        held = led.position(sym)
        side = Side.SELL if held is not None and held.qty >= 4 and rng.random() < 0.4 else Side.BUY
        qty = Decimal(4)
        req = OrderRequest(sym, side, qty=qty, client_key=key)
        led.record_intent(None, req); print("I", key, flush=True)
        if rng.random() < 0.1:
            led.record_submit_failed(key, "read timeout", definite=False); print("U", key, flush=True); continue
        o = Order.from_request(req, f"B{key}", OrderStatus.ACCEPTED, t)
        led.record_submitted(key, o); print("S", key, flush=True)
        px = Decimal(100 + rng.randint(-500, 500)) / 10
        f1 = Fill(f"F{key}a", o.id, sym, side, Decimal(1), px, t, key)
        led.record_update(OrderUpdate(OrderEvent.PARTIAL_FILL, Order.from_request(req, o.id, OrderStatus.PARTIALLY_FILLED, t,
                                      filled_qty=Decimal(1)), t, f1)); print("F", f1.fill_id, flush=True)
        led.record_fill(f1)                         # a duplicate: must be a no-op
        f2 = Fill(f"F{key}b", o.id, sym, side, Decimal(3), px, t, key)
        led.record_fill(f2); print("F", f2.fill_id, flush=True)
        led.record_update(OrderUpdate(OrderEvent.FILL, Order.from_request(req, o.id, OrderStatus.FILLED, t, filled_qty=qty), t))
        print("D", key, flush=True)
        led.record_equity(Decimal(100000 + i))
''')

def test_sigkill_at_random_points_leaves_ledger_consistent(tmp_path):
    script, db = tmp_path / "writer.py", tmp_path / "ledger.db"
    script.write_text(WRITER)
    rng, seen = random.Random(7), {"I": set(), "S": set(), "F": set(), "D": set(), "U": set()}
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    kills = 0
    for run in range(20):
        p = subprocess.Popen([sys.executable, str(script), str(db), f"r{run}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
            time.sleep(rng.uniform(0.005, 0.2))
            os.kill(p.pid, signal.SIGKILL); kills += 1
            out, err = p.communicate(timeout=10)
        finally:
            if p.poll() is None: p.kill(); p.wait()
        assert p.returncode == -signal.SIGKILL, err
        for line in out.splitlines(keepends=True):
            if not line.endswith("\n"): continue                              # cut by the kill (PYTHONUNBUFFERED writes print's parts one by one)
            kind, _, ident = line.strip().partition(" ")
            if kind in seen: seen[kind].add(ident)

        led = Ledger(db)
        try:
            assert led.check() == []                                        # integrity_check, orphan fills, positions == replay
            assert led.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            keys = {o.client_key: o for o in led.orders()}
            assert seen["I"] <= set(keys), "an acknowledged intent was lost"
            assert all(keys[k].status not in UNRESOLVED for k in seen["S"])
            assert all(keys[k].status == "filled" and keys[k].filled_qty == 4 for k in seen["D"])
            fills = led.fills()
            assert seen["F"] <= {f.fill_id for f in fills}, "an acknowledged fill was lost"
            assert len(fills) == len({f.fill_id for f in fills})
            assert all(f.client_key in keys for f in fills)                   # every fill belongs to a known order
            net: dict[str, Decimal] = {}
            for f in fills: net[f.symbol] = net.get(f.symbol, Decimal(0)) + (f.qty if f.side.value == "buy" else -f.qty)
            assert {p.symbol: p.qty for p in led.positions()} == {s: q for s, q in net.items() if q != 0}
            for o in keys.values():                                          # filled qty never exceeds the order
                assert sum((f.qty for f in fills if f.client_key == o.client_key), Decimal(0)) <= (o.qty or Decimal("Infinity"))
        finally: led.close()
    assert kills >= 20
    assert len(seen["D"]) > 20 and len(seen["I"]) > len(seen["D"])           # the writer made real progress between kills
