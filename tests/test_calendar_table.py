"The NYSE sessions the package ships (`assets/xnys_sessions.npz`) are exchange-calendars' own, session for session."
from datetime import date

import numpy as np

from swingtrader.clock import MarketCalendar, xnys_schedule


def test_shipped_table_equals_exchange_calendars():
    shipped = xnys_schedule("2015-01-01", "2030-12-31")
    fresh = xnys_schedule("2015-01-01", "2030-12-31", table=False)
    assert len(shipped[0]) > 4000
    for a, b in zip(shipped, fresh): np.testing.assert_array_equal(a, b)


def test_a_range_inside_the_table_is_its_slice_and_one_outside_asks_exchange_calendars():
    days, opens, closes = xnys_schedule("2026-07-01", "2026-07-10")
    assert [str(np.datetime64(int(d), "D")) for d in days] == ["2026-07-01", "2026-07-02", "2026-07-06", "2026-07-07", "2026-07-08",
                                                               "2026-07-09", "2026-07-10"]          # 3 July 2026: closed
    old = MarketCalendar("2005-01-03", "2005-01-31")                  # before the table: exchange-calendars
    assert old.is_session(date(2005, 1, 3)) and not old.is_session(date(2005, 1, 17))   # Martin Luther King Jr. Day


def test_calendars_from_table_and_from_exchange_calendars_answer_alike(monkeypatch, tmp_path):
    import pandas as pd
    import swingtrader.clock as ck
    fast = MarketCalendar()
    monkeypatch.setattr(ck, "_TABLE", tmp_path/"missing.npz")        # no table: exchange-calendars
    slow = MarketCalendar()
    a, b = fast.sessions(date(2015, 1, 1), date(2030, 12, 31)), slow.sessions(date(2015, 1, 1), date(2030, 12, 31))
    pd.testing.assert_frame_equal(a, b)
    assert a["early_close"].sum() > 30 and len(a) > 4000
    assert fast.session(date(2025, 11, 28)) == slow.session(date(2025, 11, 28))
