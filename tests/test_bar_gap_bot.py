"""A slow bot on a simulated market in scaled time gets every bar of its day, in its session, once each, and no deadlock:
it is still starting 20 simulated minutes into the session (the bars that closed meanwhile come first, from the gap fill)
and then takes each bar slower than the clock runs (the session holds the simulated clock: `Bot(pace=...)`,
`SimClock.hold`). The -n 6 flake of tests/test_bot_e2e.py on purpose, for tastytrade (DXLink) and Alpaca (bars stream)."""
import asyncio
from collections import Counter
from datetime import date, timedelta

import pytest

from swingtrader.audit import AuditLog
from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.session import build_bot, emulated_alpaca, emulated_tastytrade

DAY = date(2026, 3, 3)
SPEED = 4000.0          # a session is under 6 real seconds: a bot taking 40 ms per bar would fall behind by half
SYMBOLS = 4
pytestmark = pytest.mark.timeout(600)


@pytest.mark.parametrize("broker", ["tastytrade", "alpaca"])
def test_a_slow_bot_gets_every_bar_of_its_day(tmp_path, broker):
    s = Settings(_env_file=None, data_dir=tmp_path, sim_symbols=SYMBOLS, sim_seed=42, scan_top=SYMBOLS, scan_min_avg_volume=0,
                 macd_fast=6, macd_slow=13, macd_signal=5, trend_ema=20, warmup_bars=30)
    env = (emulated_alpaca if broker == "alpaca" else emulated_tastytrade)(s, DAY, DAY, SPEED)
    ledger = Ledger(tmp_path / "ledger.sqlite", clock=env.clock)
    audit = AuditLog(tmp_path / "audit", env.clock, env.settings.secret_values())
    bot = build_bot(env.settings, env.clock, ledger, audit, scan_url=env.scan_url(), calendar=env.calendar,
                    last_day=DAY, fast_forward_idle=True)
    open_t, close_t = env.calendar.session(DAY)
    got = []            # (symbol, bar start, simulated time it reached the bot)
    backfilled = {}     # symbol -> start of the newest bar of the pre-open backfill (late in a starved pre-open)
    pre_open, on_bar, backfill = bot.pre_open, bot.on_bar, bot.market_data.backfill
    async def recorded_backfill(symbols, since, timeframe):
        frames = await backfill(symbols, since, timeframe)
        backfilled.update({sym: df.index[-1].to_pydatetime() for sym, df in frames.items() if len(df)})
        return frames
    bot.market_data.backfill = recorded_backfill
    async def slow_start(t):
        await pre_open(t)
        await env.clock.sleep_until(open_t + timedelta(minutes=20))   # still starting 20 minutes into the session
    async def slow_bar(bar, session_close=None):
        got.append((bar.symbol, bar.start, env.clock.now()))
        await asyncio.sleep(0.04)                                     # a starved bot (a floor: load only makes it slower)
        return await on_bar(bar, session_close)
    bot.pre_open, bot.on_bar = slow_start, slow_bar
    try:
        days = asyncio.run(asyncio.wait_for(bot.run(), 500))
    finally:
        bot.broker.close(); env.close(); audit.close(); ledger.close()
    assert [d.day for d in days] == [DAY] and days[0].errors == 0
    syms = days[0].symbols
    assert len(syms) == SYMBOLS
    period = bot.period
    starts = [open_t + period * i for i in range(int((close_t - open_t) / period))]
    assert not [k for k, n in Counter((sym, t) for sym, t, _ in got).items() if n > 1]       # none twice
    in_session = [(sym, t) for sym, t, at in got if at <= close_t + timedelta(seconds=60)]
    for sym in syms:
        mine = [t for x, t in in_session if x == sym and t >= open_t]
        assert mine == sorted(mine), sym                                # in time order
        live = [t for t in starts if t > backfilled[sym]]               # what the backfill did not give (the gap fill's first)
        assert mine[:len(live) - 1] == live[:-1], (sym, backfilled[sym], mine[:5])   # every bar of the session, the bell's aside
    last = [sym for sym, t in in_session if t == starts[-1]]
    assert last, "the bar closing at the bell came in the session"       # the clock waited for it at the bell
    assert got[0][2] >= open_t + timedelta(minutes=20)                  # it did start late
    assert env.clock.holds > 0                                          # and the market waited for it
