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
