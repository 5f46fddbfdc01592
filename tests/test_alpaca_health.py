"""Preservation mode on the Alpaca emulator: failed broker calls (5xx, 429 beyond alpaca-py's retries) counted by the health
monitor through the bot's own `Bot.call`; above `health_error_threshold` in `health_error_window` the kill switch goes REDUCING
(no new entries, exits allowed) with an alert; once calls succeed again and the failures age out of the window it is ACTIVE
again (the monitor's own REDUCING only: a person's stays)."""
import asyncio, time
from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from swingtrader.config import Settings
from swingtrader.clock import MarketCalendar
from swingtrader.bot import Bot
from swingtrader.health import HealthMonitor
from swingtrader.ledger import Ledger
from swingtrader.notify import Notifier
from swingtrader.risk import KillSwitch, KillState
from swingtrader.session import emulated_alpaca
from swingtrader.alpaca.broker import AlpacaBroker

pytest.importorskip("swingtrader.emulator.alpaca_trading", reason="the emulator's Alpaca trading side is not merged here")
DAY = date(2026, 3, 2)


@pytest.fixture()
def env():
    cal = MarketCalendar()
    e = emulated_alpaca(Settings(_env_file=None, sim_symbols=2), DAY, DAY, speed=60.0, start=cal.session(DAY)[0] + timedelta(minutes=30))
    yield e
    e.close()


def test_broker_errors_above_the_threshold_reduce_and_recovery_resumes(env, tmp_path):
    s = env.settings.model_copy(update=dict(health_error_threshold=3, health_error_window=120.0))
    broker = AlpacaBroker(s, clock=env.clock, calendar=env.calendar, read_attempts=1, retry_wait=0.05)
    ledger, note = Ledger(tmp_path / "ledger.sqlite", clock=env.clock), Notifier(tag="")
    ks = KillSwitch(ledger, env.clock, s, notifier=note)
    hm = HealthMonitor(env.clock, s, kill_switch=ks)
    bot = SimpleNamespace(health=hm, _last_call=None)         # what `Bot.call` uses: the bot's own classification of a call

    def call(fn, *args, what="call"):
        try: return asyncio.run(Bot.call(bot, fn, *args, what=what)), None
        except Exception as e: return None, e
    try:
        assert call(broker.positions, what="positions")[1] is None and ks.state is KillState.ACTIVE
        faults = env.server.emu.faults
        # the failures happen at one simulated instant: how long they take in real time (alpaca-py's retries, a loaded
        # machine) must not also run the 60x clock past the kill switch's connectivity timeout (30 simulated s = 0.5 s real)
        env.server.call(lambda: env.clock.set_mode("manual"))
        env.server.call(lambda: faults.update(server_error_next=2, retry_after=0.05))
        errs = [call(broker.positions, what="positions")[1] for _ in range(2)]
        env.server.call(lambda: faults.update(rate_limit_next=20))    # more 429s than alpaca-py retries
        errs += [call(broker.account, what="account")[1]]
        broker.invalidate()
        errs += [call(broker.positions, what="positions")[1]]
        assert all(e is not None for e in errs), errs
        assert len(hm.call_errors) == 4
        assert ks.state is KillState.REDUCING and not ks.allows_entries
        assert ledger.halt_state().who == "health_monitor" and hm.levels["broker_errors"] == "critical"
        assert any("preservation mode" in a.body for a in note.history)
        env.server.call(lambda: faults.update(rate_limit_next=0, server_error_next=0))
        env.server.call(lambda: env.clock.set_mode("scaled", 60.0))   # time runs again: the failures age out of the window
        last = env.clock.now()
        assert call(broker.positions, what="positions")[1] is None
        assert ks.state is KillState.REDUCING                          # the failures are still in the window
        end = time.monotonic() + 60
        while env.clock.now() < last + timedelta(seconds=121):       # the window passes (simulated time, 60x)
            assert time.monotonic() < end; time.sleep(0.1)
        assert call(broker.positions, what="positions")[1] is None
        assert ks.state is KillState.ACTIVE and hm.levels["broker_errors"] == "ok"
        assert [h.who for h in ledger.halt_history()][-2:] == ["health_monitor", "health_monitor"]
    finally:
        broker.close(); ledger.close()
