"Round trips of tastytrade symbology (order symbol <-> parsed <-> DXLink streamer symbol) and clear errors."
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from swingtrader.config import SwingtraderError
from swingtrader.instruments import (FUTURES, MONTH_CODES, FutureOptionSymbol, FutureSymbol, InstrumentKind, OptionSymbol,
    SymbolError, active_month, from_streamer, instrument_from_tt, instrument_of, kind_of, parse_future, parse_future_option,
    parse_future_option_streamer, parse_future_streamer, parse_occ, parse_option_streamer, parse_symbol, to_streamer)

FX = Path(__file__).parent / "fixtures" / "tastytrade"

roots = st.from_regex(r"[A-Z]{1,5}", fullmatch=True)
expiries = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
cps = st.sampled_from("CP")
strikes = st.integers(min_value=1, max_value=99_999_999).map(lambda n: Decimal(n) / 1000)
fut_roots = st.sampled_from(sorted(FUTURES))
months = st.sampled_from(MONTH_CODES)


@settings(max_examples=300, deadline=None)
@given(roots, expiries, cps, strikes)
def test_occ_round_trip(root, exp, cp, k):
    o = OptionSymbol(root, exp, cp, k)
    assert len(o.occ) == 21
    assert parse_occ(o.occ) == o
    assert parse_option_streamer(o.streamer) == o
    assert to_streamer(o.occ) == o.streamer
    assert from_streamer(o.streamer) == o.occ
    assert kind_of(o.occ) is InstrumentKind.EQUITY_OPTION


@settings(max_examples=200, deadline=None)
@given(fut_roots, months, st.integers(2021, 2035), st.dates(date(2021, 1, 1), date(2035, 12, 31)))
def test_future_round_trip(root, m, year, ref):
    f = FutureSymbol(root, m, year)
    # the one-digit year reads back as `year` when `ref` is within (year-9, year+1]
    if year - 8 <= ref.year <= year + 1:
        assert parse_future(f.symbol, ref) == f
    assert parse_future_streamer(f.streamer()) == (f, FUTURES[root].exchange)
    assert from_streamer(f.streamer()) == f.symbol
    assert parse_future(f"{root}{m}{year % 100:02d}") == f


@settings(max_examples=200, deadline=None)
@given(fut_roots, months, st.from_regex(r"[A-Z][A-Z0-9]{0,2}", fullmatch=True), months,
       st.dates(date(2021, 1, 1), date(2029, 12, 31)), cps, st.integers(1, 999_999).map(lambda n: Decimal(n) / 4))
def test_future_option_round_trip(root, fm, code, om, exp, cp, k):
    fut = FutureSymbol(root, fm, exp.year)
    fo = FutureOptionSymbol(fut, code, om, exp.year, exp, cp, k)
    assert parse_future_option(fo.symbol) == fo
    s = parse_future_option_streamer(fo.streamer())
    assert (s.code, s.month, s.year, s.call_put, s.strike) == (code, om, exp.year, cp, k)
    assert from_streamer(fo.streamer(), {fo.streamer(): fo.symbol}) == fo.symbol
    assert kind_of(fo.symbol) is InstrumentKind.FUTURE_OPTION


def test_examples_from_the_issue():
    assert parse_occ("AAPL  260116C00150000").streamer == ".AAPL260116C150"
    assert to_streamer("/ESZ5", ref=date(2025, 10, 1)) == "/ESZ25:XCME"
    assert to_streamer("./ESH6 E2CF6 260114P5990") == "./E2CF26P5990:XCME"
    assert active_month("/ES", date(2025, 10, 1)).symbol == "/ESZ5"
    assert instrument_of("/ESZ5").multiplier == 50 and instrument_of("/ESZ5").tick_size == Decimal("0.25")


@pytest.mark.parametrize("bad", ["", "   ", "aapl 2601", "AAPL  261316C00150000", "AAPL  260116X00150000", "/ES", "/ESA5",
                                 "./ESH6", "./ESH6 E2CF6 260114Q5990", "123456789012345678", "$$$"])
def test_malformed_symbols_are_clear_errors(bad):
    with pytest.raises(SwingtraderError) as e:
        parse_symbol(bad)
    assert isinstance(e.value, SymbolError)
    assert repr(bad.strip().upper())[1:-1][:4] in str(e.value) or repr(bad) in str(e.value)


@pytest.mark.parametrize("bad", ["AAPL", ".AAPL", "/ESZ5", "./E2CF26P5990", ".AAPL260116C0"])
def test_malformed_streamer_symbols(bad):
    if bad == "AAPL":
        assert from_streamer(bad) == "AAPL"
        return
    with pytest.raises(SymbolError):
        from_streamer(bad)


def test_instruments_from_fixtures():
    rb = instrument_from_tt(json.loads((FX / "rest_get_instruments_futures_RBM5.json").read_text())["data"])
    assert (rb.kind, rb.multiplier, rb.tick_size, rb.streamer_symbol) == (InstrumentKind.FUTURE, 42000, Decimal("0.0001"), "/RBM25:XNYM")
    og = instrument_from_tt(json.loads((FX / "rest_get_futures_option_chains_GC.json").read_text())["data"]["items"][0])
    assert (og.symbol, og.underlying, og.expiry, og.call_put) == ("./GCQ5 OGN5  250625P2095", "/GCQ5", date(2025, 6, 25), "P")
    assert parse_future_option(og.symbol).streamer() == og.streamer_symbol
