"The NYSE calendar against known 2025-2026 holidays and early closes."
from datetime import date, datetime
import pytest
from swingtrader.clock import MarketCalendar, NY, UTC

cal = MarketCalendar()

HOLIDAYS = [date(2025, 1, 1), date(2025, 1, 9), date(2025, 1, 20), date(2025, 2, 17), date(2025, 4, 18), date(2025, 5, 26),
            date(2025, 6, 19), date(2025, 7, 4), date(2025, 9, 1), date(2025, 11, 27), date(2025, 12, 25),
            date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 4, 3), date(2026, 5, 25), date(2026, 6, 19),
            date(2026, 7, 3), date(2026, 9, 7), date(2026, 11, 26), date(2026, 12, 25)]
EARLY = [date(2025, 7, 3), date(2025, 11, 28), date(2025, 12, 24), date(2026, 11, 27), date(2026, 12, 24)]

def test_holidays_2025_2026():
    assert cal.holidays(date(2025, 1, 1), date(2026, 12, 31)) == HOLIDAYS

@pytest.mark.parametrize("d", EARLY)
def test_early_closes_at_13(d):
    o, c = cal.session(d)
    assert (o.hour, o.minute, c.hour, c.minute) == (9, 30, 13, 0)
    assert cal.sessions(d, d)["early_close"].item()

def test_early_closes_are_exactly_these():
    s = cal.sessions(date(2025, 1, 1), date(2026, 12, 31))
    assert [d for d, e in s["early_close"].items() if e] == EARLY
    assert len(s) == 250 + 251  # trading days in 2025 and 2026

def test_open_close_edges_and_dst():
    assert cal.is_open(datetime(2026, 3, 9, 9, 30, tzinfo=NY))          # first Monday after DST starts
    assert not cal.is_open(datetime(2026, 3, 9, 9, 29, 59, tzinfo=NY))
    assert cal.is_open(datetime(2026, 3, 9, 13, 30, tzinfo=UTC))        # 09:30 EDT
    assert not cal.is_open(datetime(2026, 3, 9, 16, 0, tzinfo=NY))
    assert cal.next_open(datetime(2026, 11, 25, 16, 0, tzinfo=NY)) == datetime(2026, 11, 27, 9, 30, tzinfo=NY)
    assert cal.next_close(datetime(2026, 11, 27, 8, 0, tzinfo=NY)) == datetime(2026, 11, 27, 13, 0, tzinfo=NY)

def test_weekend_and_naive_times():
    sat = datetime(2026, 3, 7, 12, 0, tzinfo=NY)
    assert not cal.is_open(sat) and cal.next_open(sat) == datetime(2026, 3, 9, 9, 30, tzinfo=NY)
    with pytest.raises(Exception, match="no timezone"): cal.is_open(datetime(2026, 3, 9, 10, 0))

# --- outside the supported range: an error naming the range, never a wrong answer ------------------------------
from datetime import date as _date
from click.testing import CliRunner
from swingtrader.config import SwingtraderError

OUTSIDE = [datetime(9999, 12, 31, 23, 59, tzinfo=NY), datetime(9999, 12, 31, 23, 59, tzinfo=UTC), datetime(2031, 1, 2, 10, tzinfo=NY),
           datetime(2014, 12, 31, 10, tzinfo=NY), datetime(1, 1, 1, tzinfo=UTC), datetime(2100, 6, 1, tzinfo=UTC)]

@pytest.mark.parametrize("at", OUTSIDE)
@pytest.mark.parametrize("ask", ["is_open", "next_open", "next_close"])
def test_times_outside_the_calendar_raise(at, ask):
    with pytest.raises(SwingtraderError, match="supported range 2015-01-01 to 2030-12-31"): getattr(cal, ask)(at)

def test_next_open_after_the_last_session_raises():
    last_close = datetime(2030, 12, 31, 16, 0, tzinfo=NY)
    assert cal.next_close(datetime(2030, 12, 31, 10, tzinfo=NY)) == last_close
    with pytest.raises(SwingtraderError, match="next open after"): cal.next_open(datetime(2030, 12, 31, 10, tzinfo=NY))
    with pytest.raises(SwingtraderError, match="next close after"): cal.next_close(datetime(2030, 12, 31, 17, tzinfo=NY))

def test_days_outside_the_calendar_raise_and_ranges_are_clamped():
    for d in (_date(9999, 12, 31), _date(2014, 12, 31), _date(2031, 1, 2)):
        with pytest.raises(SwingtraderError, match="supported range"): cal.is_session(d)
        with pytest.raises(SwingtraderError, match="supported range"): cal.session(d)
    assert cal.holidays(_date(2030, 12, 24), _date(2031, 1, 9)) == [_date(2030, 12, 25)]   # not every 2031 weekday
    assert cal.sessions(_date(2030, 12, 30), _date(2031, 1, 9)).index[-1] == _date(2030, 12, 31)

def test_first_session_is_still_answered():
    at = datetime(2015, 1, 1, 12, tzinfo=NY)          # New Year's Day: closed; the next open is known
    assert not cal.is_open(at) and cal.next_open(at) == datetime(2015, 1, 2, 9, 30, tzinfo=NY)

@pytest.mark.parametrize("at", ["9999-12-31T23:59:59+00:00", "2031-06-01T12:00-04:00", "1999-01-04T10:00-05:00"])
def test_market_command_names_the_range(clean_env, at):
    from swingtrader.cli import main
    r = CliRunner().invoke(main, ["market", "--at", at])
    assert r.exit_code == 2, r.output
    assert "supported range 2015-01-01 to 2030-12-31" in r.output and "Traceback" not in r.output and "2015-01-02" not in r.output
