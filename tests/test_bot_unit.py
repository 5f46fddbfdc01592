"""Bot loop on an in-process SimBroker with a manual clock: commands within a second, graceful shutdown, surviving a failing
handler and a malformed update, health transitions."""
import asyncio, time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from swingtrader.config import Settings
from swingtrader.clock import SimClock
from swingtrader.sim.broker import SimBroker
from swingtrader.ledger import Ledger
from swingtrader.audit import AuditLog
from swingtrader.risk import KillState
from swingtrader.bot import BotError
from swingtrader.session import sim_bot
from swingtrader.risk import halt, reset_halt as resume

S = Settings(_env_file=None, macd_fast=6, macd_slow=13, macd_signal=5, trend_ema=20, warmup_bars=30, scan_top=4)
OPEN = datetime(2026, 3, 3, 14, 30, tzinfo=timezone.utc)

@pytest.fixture
def parts(tmp_path):
    clock = SimClock(OPEN + timedelta(minutes=30), mode="manual")
    sim = SimBroker.from_seed(seed=3, symbols=4, start=date(2026, 2, 24), end=date(2026, 3, 3), clock=clock)
    sim.sync()
    ledger = Ledger(tmp_path / "ledger.sqlite", clock=clock)
    audit = AuditLog(tmp_path / "audit", clock, fsync=False)
    bot = sim_bot(S, sim, ledger, audit, command_poll=0.1)
    yield clock, sim, ledger, audit, bot
    audit.close(); ledger.close()

def health(audit, clock):
    return [r["details"] for r in audit.read("health", clock.now().date())]

def test_a_flatten_asked_for_while_no_bot_ran_is_closed_without_selling(parts):
    """A flatten queued while no bot ran (the CLI or dashboard with the bot off, maybe days ago) is closed, not carried out,
    when a bot starts: no sale starts on an old request; it is logged, audited and named. A halt queued then still applies."""
    from swingtrader.risk import flatten
    clock, sim, ledger, audit, bot = parts
    halt(ledger, "news", who="alice")
    fid = flatten(ledger, who="bob", reason="get out")
    async def go():
        task = asyncio.create_task(bot.run())
        t0 = time.monotonic()
        while any(c.status in ("pending", "taken") for c in ledger.commands()) and time.monotonic() - t0 < 60: await asyncio.sleep(0.02)
        bot.stop(); await asyncio.wait_for(task, 60)
    asyncio.run(go())
    got = {c.kind: c for c in ledger.commands()}
    assert got["flatten"].id == fid and got["flatten"].status == "failed" and "not carried out" in got["flatten"].result
    assert "Flatten again now" in got["flatten"].result and got["halt"].status == "done"
    assert [o for o in sim.orders() if o.side.value == "sell"] == []
    assert any(d.get("kind") == "flatten" and d.get("level") == "warning" and "not carried out" in d.get("message", "") for d in health(audit, clock))

def test_commands_obeyed_by_the_running_bot(parts):
    "A halt and a resume asked for while the bot runs are carried out (how fast: bench/bench_command_latency.py; no timed assertion here)."
    clock, sim, ledger, audit, bot = parts
    def settled():
        return all(c.status not in ("pending", "taken") for c in ledger.commands())
    async def until(pred, what):
        t0 = time.monotonic()
        while not pred():
            assert time.monotonic() - t0 < 60, f"the bot never {what}"      # a hang, not a speed limit
            await asyncio.sleep(0.02)
    async def go():
        task = asyncio.create_task(bot.run())
        await until(lambda: task.done() or bot._tasks, "started")
        halt(ledger, "news", who="alice")
        await until(settled, "carried out the halt")
        resume(ledger, "news priced in", who="alice")
        await until(settled, "carried out the resume")
        bot.stop(); await asyncio.wait_for(task, 60)
    asyncio.run(go())
    kinds = [(c.kind, c.status) for c in ledger.commands()]
    assert ("halt", "done") in kinds and ("resume", "done") in kinds
    assert ledger.halt_state().state == "active"
    assert any(h.who == "kill_switch:manual" for h in ledger.halt_history())

def test_graceful_shutdown_flattens_and_closes(parts):
    clock, sim, ledger, audit, bot = parts
    async def go():
        task = asyncio.create_task(bot.run())
        await asyncio.sleep(0.3)
        assert bot.started
        # a position to flatten
        from swingtrader.models import OrderRequest, Side
        sim.submit(OrderRequest(sim.symbols[0], Side.BUY, qty=Decimal(3)))
        bot.stop(flatten=True)
        await asyncio.wait_for(task, 10)
    asyncio.run(go())
    assert bot._tasks == []
    assert not any(p.qty for p in sim.positions())
    assert any(d.get("what") == "shutdown" and d.get("flatten") for d in health(audit, clock))

def test_loop_survives_failing_handler_and_malformed_update(parts):
    clock, sim, ledger, audit, bot = parts
    boom = {"n": 0}
    def bad_on_bar(bar):
        boom["n"] += 1
        raise ValueError("strategy blew up")
    async def go():
        task = asyncio.create_task(bot.run())
        await asyncio.sleep(0.3)
        bot.trader.on_bar = bad_on_bar
        bot.order_updates.queue.put_nowait({"not": "an update"})        # malformed broker message
        for _ in range(12):
            sim.advance_to(clock.now() + timedelta(minutes=5)); await asyncio.sleep(0.05)
        alive = not task.done()
        bot.stop(); await asyncio.wait_for(task, 10)
        return alive
    assert asyncio.run(go())
    assert boom["n"] >= 4                          # the loop kept feeding bars after the first failure
    errs = [d for d in health(audit, clock) if d.get("what") == "error"]
    assert any("malformed" in d["message"] for d in errs)
    assert any("strategy blew up" in d["message"] for d in errs)

def test_health_error_rate_goes_reducing(parts):
    clock, sim, ledger, audit, bot = parts
    bot.health.max_errors = 3
    for i in range(5): bot._fail("on_bar", RuntimeError(f"e{i}"))
    assert bot.kill_switch.state is KillState.REDUCING
    assert bot.health.levels["errors"] == "critical"
    with pytest.raises(BotError, match="malformed"): bot.on_update("garbage")


def test_flatten_of_one_symbol_keeps_the_other_positions_stops():
    "A per-position close (the dashboard's) cancels only that position's protective stop; the others stay at the broker."
    from swingtrader.models import Bar, OrderType
    from swingtrader.risk import flatten
    s = Settings(_env_file=None, macd_fast=6, macd_slow=13, macd_signal=5, trend_ema=20, warmup_bars=30)
    op = datetime(2026, 3, 3, 14, 30, tzinfo=timezone.utc)
    sim = SimBroker.from_seed(seed=3, symbols=4, start=date(2026, 3, 2), end=date(2026, 3, 4), clock=SimClock(op, mode="manual"))
    bot = sim_bot(s, sim, Ledger(":memory:", clock=sim.clock), universe=sim.symbols)
    def stops():
        return {o.symbol: o for o in sim.orders(status="open") if o.type is OrderType.STOP}
    async def go():
        await bot.startup()
        t = op
        while len(stops()) < 2 and t < op + timedelta(hours=6):
            t += timedelta(minutes=5); sim.advance_to(t)
            for sym in sim.symbols:
                for st, r in sim.bars(sym, "5m", t - timedelta(minutes=5), t).iterrows():
                    if st + timedelta(minutes=5) == t:
                        await bot.on_bar(Bar(sym, st.to_pydatetime(), *(float(r[c]) for c in ("open", "high", "low", "close", "volume")), "5m"))
            for _ in range(5): await asyncio.sleep(0)
        held = stops()
        assert len(held) >= 2, f"two protected positions by {t}: {list(held)}"
        one, other = sorted(held)[:2]
        flatten(bot.ledger, who="test", reason="close one", symbols=[one])
        done = await bot.obey_commands()
        for _ in range(5): await asyncio.sleep(0)
        await bot.shutdown()
        return one, other, held, done
    one, other, held, done = asyncio.run(go())
    assert [c.status for c in done] == ["done"], [(c.status, c.result) for c in done]
    assert sim.order(held[other].id).status.is_open                          # the other position keeps its broker stop
    assert not sim.order(held[one].id).status.is_open                        # the closed one's stop is gone
    assert not any(p.symbol == one and p.qty for p in sim.positions()) and any(p.symbol == other and p.qty for p in sim.positions()), (one, other, sim.positions(), done)


def test_close_applies_the_cancel_answer_without_waiting_for_the_stream(tmp_path):
    "At the bell the bot cancels working day orders and books each cancel from the broker's own answer: the ledger (and so the\n    protective-stop sync right after) no longer depends on the update stream's timing."
    from decimal import Decimal
    from swingtrader.bot import DaySummary
    from swingtrader.models import OrderRequest, Side
    op = datetime(2026, 3, 3, 14, 30, tzinfo=timezone.utc)
    sim = SimBroker.from_seed(seed=3, symbols=2, start=date(2026, 3, 2), end=date(2026, 3, 3), clock=SimClock(op, mode="manual"))
    sim.advance_to(op + timedelta(minutes=30))
    ledger = Ledger(tmp_path / "l.sqlite", clock=sim.clock)
    bot = sim_bot(S, sim, ledger)                       # no start-up: no update consumer runs, only the close's own answers
    sym = sim.symbols[0]
    req = OrderRequest(sym, Side.BUY, qty=Decimal(1), type="limit", limit_price=round(sim.latest_quote(sym).bid * 0.9, 2))
    ledger.record_intent(None, req); ledger.record_submitted(req.client_key, sim.submit(req))
    assert ledger.order(req.client_key).status == "accepted"
    bot.day = DaySummary(date(2026, 3, 3))
    asyncio.run(bot.at_close(date(2026, 3, 3)))                                   # before the bell: cancelled by the close
    assert ledger.order(req.client_key).status == "cancelled"
    req2 = OrderRequest(sym, Side.BUY, qty=Decimal(1), type="limit", limit_price=round(sim.latest_quote(sym).bid * 0.9, 2))
    ledger.record_intent(None, req2); ledger.record_submitted(req2.client_key, sim.submit(req2))
    sim.advance_to(datetime(2026, 3, 3, 21, 1, tzinfo=timezone.utc))               # after the bell: it expired at the broker
    asyncio.run(bot.at_close(date(2026, 3, 3)))
    assert ledger.order(req2.client_key).status == "expired"
    ledger.close()
