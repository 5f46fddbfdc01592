"""A fast simulated day waits at the open while the bot prepares (scan, backfill): `Bot._hold_at` holds a scaled SimClock
there, so the session's first bars are traded on, not fed as history; it lets go when asked, and holds nothing on a
clock it cannot hold."""
import time
from datetime import datetime, timedelta, timezone

from swingtrader.bot import Bot
from swingtrader.clock import SimClock

OPEN = datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)


class _Bot:
    "Just what `Bot._hold_at` reads: the pacing, the clock, and the bot's own test of the two."
    _holdable, _hold_at = Bot._holdable, Bot._hold_at
    def __init__(self, pace, clock): self.pace, self.clock = pace, clock


def test_a_scaled_clock_waits_at_the_open_until_let_go():
    clk = SimClock(OPEN - timedelta(minutes=30), mode="scaled", speed=100_000)   # 30 simulated minutes = 18 ms
    assert _Bot(timedelta(minutes=15), clk)._hold_at(OPEN)
    deadline = time.monotonic() + 5
    while clk.now() < OPEN and time.monotonic() < deadline: time.sleep(0.01)
    time.sleep(0.2)                                                # 0.2 s real = 5.5 simulated hours without the hold
    assert clk.now() == OPEN
    clk.hold(None)
    time.sleep(0.05)
    assert clk.now() > OPEN + timedelta(minutes=30)


def test_nothing_is_held_without_pacing_or_on_other_clocks_or_past_the_open():
    scaled = SimClock(OPEN - timedelta(minutes=30), mode="scaled", speed=60)
    assert not _Bot(None, scaled)._hold_at(OPEN)
    assert not _Bot(timedelta(minutes=15), SimClock(OPEN - timedelta(hours=1), mode="fast"))._hold_at(OPEN)
    assert not _Bot(timedelta(minutes=15), SimClock(OPEN + timedelta(minutes=1), mode="scaled"))._hold_at(OPEN)
