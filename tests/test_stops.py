"A stop never moves down, across any price path, including after save/restore round trips."
import json, math
from datetime import datetime, timedelta, timezone
from hypothesis import given, settings, strategies as st

from swingtrader.stops import TrailingStop, StopBook

T0 = datetime(2025, 3, 3, 15, 0, tzinfo=timezone.utc)
step = st.tuples(st.floats(1.0, 1000.0), st.one_of(st.floats(0.0, 50.0), st.just(math.nan)), st.booleans(), st.booleans())

@settings(deadline=None, max_examples=300)
@given(st.floats(1.0, 1000.0), st.floats(0.01, 50.0), st.sampled_from([None, 0.5, 1.0, 2.0]), st.sampled_from([1.0, 2.0, 3.0]),
       st.lists(step, min_size=1, max_size=80))
def test_stop_never_moves_down(entry, atr, be, k, path):
    book = StopBook(k, be)
    ts = book.open("XYZ", entry, atr, T0)
    prev, hi = ts.stop, ts.highest
    for i, (close, a, cross, restore) in enumerate(path):
        if restore:  # a restart: the ledger's JSON comes back
            book = StopBook.from_dict(json.loads(json.dumps(book.to_dict())))
            assert book["XYZ"].stop == prev and book["XYZ"].highest == hi
        t = T0 + timedelta(minutes=5 * (i + 1))
        act = book.update("XYZ", close, a, t, macd_cross_down=cross)
        ts = book["XYZ"]
        assert ts.stop >= prev                                         # never down
        assert ts.highest == max(hi, close)
        if not math.isnan(a): assert ts.stop >= ts.highest - k * a     # trails the highest close
        if be is not None and close >= ts.entry + be * ts.risk: assert ts.breakeven_done and ts.stop >= ts.entry
        if close <= ts.stop: assert act is not None and act.reason != "macd_cross_down" and act.stop == ts.stop
        elif cross: assert act.reason == "macd_cross_down"
        else: assert act is None
        assert ts.updated_at == t
        prev, hi = ts.stop, ts.highest

def test_restore_accepts_strings_and_resumes_identically():
    a = TrailingStop.open("XYZ", "101.37", 1.25, k=2.0, breakeven_r=1.0, time=T0)
    for c, atr in [(102, 1.3), (104.5, 1.1), (103, 1.6)]: a.update(c, atr, T0)
    d = {k: (str(v) if isinstance(v, float) else v) for k, v in a.to_dict().items()}
    b = TrailingStop.from_dict(d)
    assert b.to_dict() == a.to_dict()
    for c in (103.5, 102.0, 101.0):
        ra, rb = a.update(c, 1.2), b.update(c, 1.2)
        assert (ra is None) == (rb is None) and a.stop == b.stop
