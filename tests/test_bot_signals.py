"""SIGINT / SIGTERM stop the bot promptly even on a day whose clock cannot advance (a manual clock, or the emulator's clock
frozen at the end of its calendar): the bot used to wait for the open on the clock, deaf to the stop."""
import asyncio, os, signal, threading
from datetime import date, datetime, timedelta, timezone

import pytest

from swingtrader.config import Settings
from swingtrader.clock import SimClock
from swingtrader.sim.broker import SimBroker
from swingtrader.ledger import Ledger
from swingtrader.session import sim_bot

S = Settings(_env_file=None, macd_fast=6, macd_slow=13, macd_signal=5, trend_ema=20, warmup_bars=30, scan_top=4)
OPEN = datetime(2026, 3, 3, 14, 30, tzinfo=timezone.utc)
BOUND = 60.0      # seconds: a generous bound for a stop that takes well under one (the machine is shared)


def frozen_bot(tmp_path, at):
    "A bot on a simulated market whose clock stands at `at` and never moves (manual, nobody advances it)."
    clock = SimClock(at, mode="manual")
    sim = SimBroker.from_seed(seed=3, symbols=4, start=date(2026, 2, 24), end=date(2026, 3, 3), clock=clock)
    sim.sync()
    ledger = Ledger(tmp_path/"ledger.sqlite", clock=clock)
    return sim_bot(S, sim, ledger, None, command_poll=0.1), ledger


async def until(cond, what):
    loop = asyncio.get_running_loop(); t0 = loop.time()
    while not cond():
        if loop.time() - t0 > BOUND: raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_bot_waiting_for_an_open_that_never_comes(tmp_path, sig):
    "Pre-open done, the clock 10 minutes short of the open and frozen: the signal ends run() (it used to wait forever)."
    assert threading.current_thread() is threading.main_thread()
    bot, ledger = frozen_bot(tmp_path, OPEN - timedelta(minutes=10))
    async def go():
        bot.install_signal_handlers()
        assert signal.getsignal(sig) not in (signal.SIG_DFL, signal.default_int_handler)   # the loop took the signal over
        task = asyncio.create_task(bot.run())
        await until(lambda: task.done() or (bot.day is not None and bot.day.symbols), "the pre-open")
        assert not task.done(), task
        await asyncio.sleep(0.2)                      # waiting for the open
        os.kill(os.getpid(), sig)
        done, _ = await asyncio.wait([task], timeout=BOUND)
        if not done: task.cancel(); await asyncio.gather(task, return_exceptions=True)
        return bool(done)
    try: stopped = asyncio.run(go())
    finally: ledger.close()
    assert stopped, "the bot did not stop on the signal"
    assert bot.stopped and bot.started and bot._tasks == []
    assert bot.clock.now() == OPEN - timedelta(minutes=10)       # it stopped where it stood: no session was traded


def test_stop_is_bounded_even_when_a_day_ignores_it(tmp_path, monkeypatch):
    "Belt and braces: a trading day stuck in a wait that does not watch the stop is cancelled `stop_grace` seconds after it."
    bot, ledger = frozen_bot(tmp_path, OPEN - timedelta(minutes=10))
    async def stuck(open_t, close_t): await asyncio.Event().wait()          # deaf to everything but a cancel
    monkeypatch.setattr(bot, "trading_day", stuck)
    bot.stop_grace = 0.5
    async def go():
        task = asyncio.create_task(bot.run())
        await until(lambda: bot.started, "the start-up")
        bot.stop()
        done, _ = await asyncio.wait([task], timeout=BOUND)
        if not done: task.cancel(); await asyncio.gather(task, return_exceptions=True)
        return bool(done) and task.exception() is None
    try: ok = asyncio.run(go())
    finally: ledger.close()
    assert ok and bot._tasks == []
