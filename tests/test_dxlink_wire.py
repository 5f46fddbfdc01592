"dxlink.wire against every captured/spec DXLink fixture, plus round-trip properties."
import json, math, pathlib
import pytest
from hypothesis import given, settings, strategies as st
from swingtrader.dxlink import wire as W

FX = pathlib.Path(__file__).parent / "fixtures" / "tastytrade"
ALL = sorted(FX.glob("dxlink_*.json"))
LEAN = {"Quote": ["eventSymbol", "bidPrice", "askPrice", "bidSize", "askSize"], "Trade": ["eventSymbol", "price", "size", "time"],
        "Summary": ["eventSymbol", "openInterest"],
        "Candle": ["eventFlags", "eventSymbol", "time", "open", "high", "low", "close", "volume", "openInterest"]}

def test_fixture_count(): assert len(ALL) >= 25

@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_every_fixture_parses_and_roundtrips(path):
    m = W.parse_message(path.read_text())
    assert m["type"] in W.MESSAGE_TYPES and isinstance(m["channel"], int)
    again = W.parse_message(W.dumps(m))
    assert W.dumps(again) == W.dumps(m)
    if m["type"] == "FEED_DATA":
        evs = W.decode_feed_data(m, LEAN | {"Quote": LEAN["Quote"]} if "multi" not in path.stem else
                                 {"Quote": ["eventSymbol", "eventType", "bidPrice", "askPrice"], "Trade": ["eventSymbol", "eventType", "price", "size"]})
        assert evs and all(e.eventSymbol for e in evs)

def test_trade_fixture_nan_and_ints():
    evs = W.decode_feed_data(W.loads((FX / "dxlink_feed_data_compact_trade.json").read_text()), LEAN)
    assert [e.eventSymbol for e in evs] == ["AMZN", "TSLA", "AAPL", "SPX", "./ESU25P900:XCME"]
    assert math.isnan(evs[3].size) and evs[0].time == 1748020169744 and isinstance(evs[0].time, int)

def test_summary_and_candle_fixtures():
    s = W.decode_feed_data(W.loads((FX / "dxlink_feed_data_compact_summary.json").read_text()), LEAN)
    assert s[0].openInterest == 34905
    c = W.decode_feed_data(W.loads((FX / "dxlink_feed_data_compact_candle_snapshot.json").read_text()), LEAN)
    assert [e.eventFlags for e in c] == [W.SNAPSHOT_BEGIN, 0, W.SNAPSHOT_END | W.REMOVE_EVENT]
    assert c[0].time == 1750032000000 and c[0].volume == 4.3020691e7

def test_builders_match_fixtures():
    j = lambda n: json.loads((FX / n).read_text())
    assert W.auth_state("UNAUTHORIZED") == j("dxlink_auth_state_unauthorized.json")
    assert W.channel_request(1) == j("dxlink_channel_request_feed_auto.json")
    assert W.keepalive() == j("dxlink_keepalive.json")
    assert W.setup("0.1-DXF-JS/0.3.0", 60, 60) == j("dxlink_setup_request.json")
    assert W.channel_cancel(1) == j("dxlink_spec_channel_cancel.json") and W.channel_closed(1) == j("dxlink_spec_channel_closed.json")
    assert W.feed_subscription(1, reset=True) == j("dxlink_spec_feed_subscription_reset.json")
    assert W.feed_setup(1, {"Quote": ["eventType", "eventSymbol", "bidPrice", "askPrice", "bidSize", "askSize"]}, "COMPACT", 1) == j("dxlink_spec_feed_setup_compact.json")
    assert W.feed_config(1, "COMPACT", 1, {"Quote": ["eventType", "eventSymbol", "bidPrice", "askPrice", "bidSize", "askSize"]}) == j("dxlink_spec_feed_config_compact.json")
    assert W.error("BAD_ACTION", "Protocol violation with an even channel usage.") == j("dxlink_error_bad_action.json")
    assert W.error("TIMEOUT", "The timeout has been reached. The message was last received 60 seconds ago.") == j("dxlink_spec_error_timeout.json")

def test_candle_index_matches_capture_times():
    # the capture's daily candle times sit on whole seconds: index = seconds << 32
    for t in (1750032000000, 1749772800000):
        assert W.candle_index(t) == (t // 1000) << 32 and W.index_time(W.candle_index(t)) == t

vals = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**63, 2**63), st.text(max_size=6), st.none(), st.booleans())

@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.data(), st.booleans())
def test_compact_roundtrip(k, data, per_event):
    fields = [f"f{i}" for i in range(k)]
    evs = data.draw(st.lists(st.fixed_dictionaries({f: vals for f in fields}), max_size=8))
    enc = W.loads(W.dumps(W.encode_compact("Quote", evs, fields, per_event=per_event)))
    dec = W.decode_compact(enc, {"Quote": fields})
    assert len(dec) == len(evs)
    for d, e in zip(dec, evs):
        for f in fields:
            a, b = getattr(d, f), e[f]
            if isinstance(b, float) and math.isnan(b): assert isinstance(a, float) and math.isnan(a)
            elif b == "NaN": assert isinstance(a, float) and math.isnan(a)      # documented: "NaN" text means absent
            elif b in ("Infinity", "-Infinity"): assert a == float(b)
            else: assert a == b

@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_parse_message_only_raises_protocol_errors(s):
    try: W.parse_message(s)
    except W.DXLinkProtocolError as e: assert e.code in W.ERROR_CODES
