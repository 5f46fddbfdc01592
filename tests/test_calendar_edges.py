"""The market calendar's edges (first session 2015-01-02, last 2030-12-31): a correct answer or one clear error, never an
IndexError (`Bot._since` before the first session, `SessionTable.next_open` / `working` past the last one)."""
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from swingtrader.bot import Bot
from swingtrader.clock import MarketCalendar, NY, UTC
from swingtrader.config import Settings, SwingtraderError
from swingtrader.sim.account import SessionTable, to_ns

CAL = MarketCalendar()
FIRST_OPEN = datetime(2015, 1, 2, 9, 30, tzinfo=NY)
LAST_CLOSE = datetime(2030, 12, 31, 16, 0, tzinfo=NY)


def since(now, settings=None):
    "`Bot._since` of a bot with these settings, 5-minute bars and the default calendar (nothing else of a bot is needed)."
    me = SimpleNamespace(settings=settings or Settings(_env_file=None), period=timedelta(minutes=5), calendar=CAL)
    return Bot._since(me, now)


@pytest.mark.parametrize("now,want", [(FIRST_OPEN - timedelta(minutes=30), datetime(2015, 1, 1, tzinfo=NY)),   # its pre-open
                                      (FIRST_OPEN, datetime(2015, 1, 1, tzinfo=NY)),
                                      (FIRST_OPEN + timedelta(hours=1), FIRST_OPEN)])
def test_since_on_the_first_session(now, want):
    "No session opened before it: the backfill starts where the calendar does (was: IndexError); during it: at its open."
    assert since(now) == want.astimezone(UTC)


def test_since_a_few_sessions_in_takes_what_there_is():
    now = datetime(2015, 1, 6, 9, 0, tzinfo=NY)               # two sessions before it: fewer than the warm-up wants
    assert since(now) == FIRST_OPEN.astimezone(UTC)


def test_since_later_is_unchanged():
    now = datetime(2026, 3, 3, 9, 0, tzinfo=NY)
    s = since(now)
    assert s < now and CAL.is_session(s.astimezone(NY).date()) and (now - s) < timedelta(days=30)


def test_session_table_next_open_past_the_last_session_is_one_error():
    st = SessionTable()
    with pytest.raises(SwingtraderError) as e: st.next_open(to_ns(LAST_CLOSE))
    assert "2030-12-31" in str(e.value) and "\n" not in str(e.value)
    assert st.next_open(to_ns(LAST_CLOSE - timedelta(days=1))) == to_ns(datetime(2030, 12, 31, 9, 30, tzinfo=NY))
    assert st.next_open(to_ns(FIRST_OPEN - timedelta(days=1))) == to_ns(FIRST_OPEN)     # the calendar's first day: the first


def test_session_table_working_past_the_last_close_is_one_error():
    st = SessionTable()
    assert st.dates[st.working(to_ns(LAST_CLOSE - timedelta(minutes=1)))].isoformat() == "2030-12-31"
    with pytest.raises(SwingtraderError) as e: st.working(to_ns(LAST_CLOSE))
    assert "2030-12-31" in str(e.value)
    assert st.working(to_ns(FIRST_OPEN - timedelta(days=1))) == 0


@pytest.mark.parametrize("start", [datetime(2031, 1, 2, 14, tzinfo=UTC), datetime(2014, 6, 2, 14, tzinfo=UTC)])
def test_emulator_start_outside_the_calendar_is_one_error(start):
    "run_emulator(start=...) with no session in the 14 days from `start`: one error before anything is built (was: IndexError)."
    import threading
    from swingtrader.emulator.app import run_emulator
    stop = threading.Event(); stop.set()
    with pytest.raises(SwingtraderError) as e: run_emulator(port=0, symbols=2, days=1, start=start, stop=stop)
    assert "market calendar" in str(e.value) and "2015-01-01" in str(e.value)


@pytest.mark.parametrize("cls", ["SimBroker", "CloseFillBroker"])
def test_a_fill_in_the_last_session_is_one_error(cls):
    """A fill in the calendar's last session settles at the next open, which the calendar does not have: one clear error
    from the engine and from the backtest's close-fill broker alike (was: IndexError from `opens[session + 1]`)."""
    from datetime import date
    from decimal import Decimal
    from swingtrader.backtest_fast import CloseFillBroker
    from swingtrader.clock import SimClock
    from swingtrader.models import OrderRequest
    from swingtrader.sim.broker import SimBroker
    day = date(2030, 12, 31)
    t0 = CAL.session(day)[0] + timedelta(minutes=30)
    b = {"SimBroker": SimBroker, "CloseFillBroker": CloseFillBroker}[cls].from_seed(
        5, 2, start=day, end=day, clock=SimClock(t0, mode="manual"), fill_at="close")
    b.engine.quiet_accepts, b.account_updates = True, False
    b.advance_to(t0)
    sym = b.symbols[0]
    with pytest.raises(SwingtraderError) as e:
        b.submit(OrderRequest(sym, "buy", qty=Decimal(1))) if cls == "SimBroker" else b.fill_now(OrderRequest(sym, "buy", qty=Decimal(1)))
        b.advance_to(t0 + timedelta(minutes=5))
    assert "past the market calendar's last session (2030-12-31)" in str(e.value)


# -- before the calendar's first day (2015-01-01): the table knows no session there, so an order or a next open asked
#    about such a time is one clear error (as past the last session); bars from then are history known at their own end.

BEFORE = datetime(2014, 12, 31, 15, 0, tzinfo=UTC)             # a real trading day the calendar does not know


def old_data_broker(t0, cls="SimBroker", **options):
    "A simulator over one symbol with 1-minute bars on 2014-12-30, 2014-12-31 (before the calendar) and 2015-01-02."
    import pandas as pd
    from swingtrader.clock import SimClock
    from swingtrader.sim.broker import SimBroker
    from swingtrader.sim.data import make_universe

    def day(d):
        idx = pd.date_range(pd.Timestamp(f"{d} 14:30", tz="UTC"), periods=390, freq="1min", name="start")
        return pd.DataFrame({"open": 10.0, "high": 10.1, "low": 9.9, "close": 10.0, "volume": 1000.0}, index=idx)
    from swingtrader.backtest_fast import CloseFillBroker
    u = make_universe(1)
    sym = str(u.index[0])
    b = {"SimBroker": SimBroker, "CloseFillBroker": CloseFillBroker}[cls]({sym: pd.concat([day("2014-12-30"), day("2014-12-31"), day("2015-01-02")])}, u,
                  SimClock(t0, mode="manual"), **options)
    b.advance_to(t0)
    return b, sym


def test_session_table_before_the_calendar_is_one_error():
    st = SessionTable()
    for ask in (lambda: st.working(to_ns(BEFORE)), lambda: st.next_open(to_ns(BEFORE))):
        with pytest.raises(SwingtraderError) as e: ask()
        assert "before the market calendar's first day (2015-01-01)" in str(e.value) and "\n" not in str(e.value)
        assert "2014-12-31T15:00:00+00:00" in str(e.value)
    assert not st.is_open(to_ns(BEFORE)) and st.index(to_ns(BEFORE)) == -1       # the cheap questions: no session there
    jan1 = to_ns(datetime(2015, 1, 1, 12, tzinfo=NY))                            # the calendar's first day (a holiday)
    assert st.working(jan1) == 0 and st.next_open(jan1) == to_ns(FIRST_OPEN)


@pytest.mark.parametrize("kind", ["market", "limit"])
@pytest.mark.parametrize("fill_at,cls", [("bar", "SimBroker"), ("close", "SimBroker"), ("close", "CloseFillBroker")])
def test_an_order_before_the_calendar_is_one_error(kind, fill_at, cls):
    """An order at a time the calendar does not know: one clear error naming the calendar (was: a limit order accepted
    to work from 2015-01-02's open, a market order rejected as 'outside regular trading hours' on a trading day)."""
    from decimal import Decimal
    from swingtrader.models import OrderRequest
    b, sym = old_data_broker(BEFORE, cls, fill_at=fill_at)
    req = OrderRequest(sym, "buy", qty=Decimal(1), **({"type": "limit", "limit_price": Decimal("10.05")} if kind == "limit" else {}))
    if cls == "CloseFillBroker":
        assert b.fill_if_now(req) is None                              # the backtest's fast path declines: the engine says why
        with pytest.raises(SwingtraderError) as e: b.fill_now(req)     # and its direct call books nothing (was: a fill in session -1)
        assert "cannot be filled at once" in str(e.value) and b.engine.n_fills == 0
    with pytest.raises(SwingtraderError) as e: b.submit(req)
    assert "before the market calendar's first day (2015-01-01)" in str(e.value)
    assert not b.engine.working and not b.account_state.positions


def test_no_live_quote_before_the_first_session():
    "Before the calendar's first session no session is open: the engine has no live quote (not the last session's)."
    b, sym = old_data_broker(BEFORE, fill_at="quote")
    assert b.engine.quote(sym) is not None                      # bars have traded ...
    assert b.engine._live_quote(sym, b.synced_ns) is None       # ... but no session the calendar knows is open


def test_bars_before_the_calendar_are_known_at_their_own_end():
    """Daily bars from before the calendar are history known a day after they start (was: all of them dated to end at the
    first session's close, so a warm-up on 2015-01-02 saw none of them)."""
    t0 = FIRST_OPEN + timedelta(minutes=5)
    b, sym = old_data_broker(t0)
    days = b.bars(sym, "1d", datetime(2014, 12, 1, tzinfo=UTC), t0)
    assert [t.date().isoformat() for t in days.index] == ["2014-12-30", "2014-12-31"]
    assert len(b.bars(sym, "1m", datetime(2014, 12, 31, tzinfo=UTC), t0)) == 390 + 5
