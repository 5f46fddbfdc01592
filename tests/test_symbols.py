"Symbol parsing: round trips for OCC options and futures, and clear errors for everything else."
from datetime import date
from decimal import Decimal
import pytest
from hypothesis import given, settings, strategies as st
from swingtrader.models import (parse_symbol, OptionSymbol, FutureSymbol, FutureOptionSymbol, EquitySymbol,
                                InvalidSymbol, MONTH_CODES)
from swingtrader.config import SwingtraderError

roots = st.from_regex(r"[A-Z]{1,6}", fullmatch=True)
expiries = st.dates(date(2000, 1, 1), date(2068, 12, 31))
strikes = st.integers(1, 99_999_999).map(lambda n: Decimal(n) / 1000)

@settings(max_examples=300, deadline=None)
@given(roots, expiries, st.sampled_from("CP"), strikes)
def test_occ_round_trip(root, exp, right, strike):
    o = OptionSymbol(root, exp, right, strike)
    assert len(o.occ) == 21 and o.occ[:6] == f"{root:<6}"
    assert parse_symbol(o.occ) == o
    assert parse_symbol(o.streamer) == o
    assert parse_symbol(o.occ.replace(" ", "")) == o  # single-spaced/unpadded forms seen in docs

@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[A-Z]{1,3}", fullmatch=True), st.integers(1, 12), st.integers(2024, 2033), st.integers(2024, 2031))
def test_future_round_trip(product, month, year, ref):
    f = FutureSymbol(product, month, year)
    assert parse_symbol(f.streamer) == f
    assert parse_symbol(f.streamer + ":XCME") == f
    if ref - 2 <= year <= ref + 7: assert parse_symbol(f.code, ref_year=ref) == f
    assert f.root == f"/{product}" and f.code == f"/{product}{MONTH_CODES[month-1]}{year % 10}"

@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[A-Z]{1,2}", fullmatch=True), st.integers(1, 12), expiries.filter(lambda d: d.year >= 2003),
       st.sampled_from("CP"), st.integers(1, 99999).map(Decimal))
def test_future_option_round_trip(product, month, exp, right, strike):
    fut = FutureSymbol(product, month, exp.year)
    fo = FutureOptionSymbol(fut, f"E{product}{MONTH_CODES[month-1]}{exp.year % 10}", exp, right, strike)
    assert parse_symbol(fo.occ) == fo

@pytest.mark.parametrize("s,expected", [
    ("AAPL", EquitySymbol("AAPL")), (" msft ", EquitySymbol("MSFT")), ("BRK/B", EquitySymbol("BRK/B")), ("BRK.B", EquitySymbol("BRK.B")),
    ("SPY   230731C00393000", OptionSymbol("SPY", date(2023, 7, 31), "C", Decimal(393))),
    (".SPXW240119P4975", OptionSymbol("SPXW", date(2024, 1, 19), "P", Decimal(4975))),
    (".AAPL230818C197.5", OptionSymbol("AAPL", date(2023, 8, 18), "C", Decimal("197.5"))),
    ("/ESZ25:XCME", FutureSymbol("ES", 12, 2025)),
    ("./GCQ5 OGN5  250625P2095", FutureOptionSymbol(FutureSymbol("GC", 8, 2025), "OGN5", date(2025, 6, 25), "P", Decimal(2095))),
])
def test_reference_examples(s, expected):
    assert parse_symbol(s) == expected

def test_one_digit_year_follows_reference_year():
    assert parse_symbol("/ESZ5", ref_year=2026).year == 2025
    assert parse_symbol("/ESZ5", ref_year=2033).year == 2035
    assert parse_symbol("/ESH9", ref_year=2026).year == 2029

@pytest.mark.parametrize("bad", ["", "   ", "AAPL$", "TOOLONGTICKER", "12345", "/ES", "/ESA5", ".AAPL2401C150",
                                 "AAPL  240132C00150000", "AAPL  240119X00150000", "./ESZ9", None, 42])
def test_invalid_symbols_get_clear_errors(bad):
    with pytest.raises(InvalidSymbol) as e: parse_symbol(bad)
    assert "Fix:" in str(e.value)

@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30))
def test_garbage_never_crashes_unexpectedly(s):
    try: parse_symbol(s)
    except SwingtraderError: pass
