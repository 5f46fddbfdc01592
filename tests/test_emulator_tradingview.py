"TradingView scan endpoint: tradingview-screener's real Query against the real Emulator + SimBroker on loopback."
import sys, pathlib
import pytest, requests
from tradingview_screener import Query, Column, And, Or

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from datetime import date
from dxlink_harness import live, make_broker

pytestmark = pytest.mark.timeout(60)

@pytest.fixture(scope="module")
def server():
    broker = make_broker(symbols=12, end=date(2026, 3, 6))
    with live(broker) as srv:
        srv.jump(days=2)              # day 3: two complete sessions of history
        yield srv, srv.http

def q(base, query, market="america"):
    query.url = f"{base}/{market}/scan"
    return query

def test_default_query_all_columns(server):
    emu, base = server
    n, df = q(base, Query()).get_scanner_data()
    assert n == 12 and len(df) == 12
    assert list(df.columns)[:3] == ["ticker", "name", "close"]
    assert df["market_cap_basic"].is_monotonic_decreasing        # default sort
    assert df["ticker"].str.contains(":").all() and (df["type"] == "stock").all()

def test_where_order_limit_offset(server):
    emu, base = server
    cols = ("name", "close", "volume", "average_volume_10d_calc", "relative_volume_10d_calc", "sector", "change")
    n_all, full = q(base, Query().select(*cols).limit(100)).get_scanner_data()
    med = full["close"].median()
    n, df = q(base, Query().select(*cols).where(Column("close") > med, Column("volume") >= 0)
              .order_by("volume", ascending=False).offset(1).limit(4)).get_scanner_data()
    expect = full[full["close"] > med].sort_values("volume", ascending=False)
    assert n == len(expect) and list(df["name"]) == list(expect["name"].iloc[1:4])
    assert (df["close"] > med).all()
    # column-vs-column comparisons and derived columns agree with the bars
    row = full.iloc[0]; sym = row["name"]
    bars = emu.broker.bars(sym, "1d", emu.clock.now() - __import__("datetime").timedelta(days=30), emu.clock.now())
    today = emu.clock.now().astimezone(__import__("zoneinfo").ZoneInfo("America/New_York")).date()
    complete = bars[[t.tz_convert("America/New_York").date() < today for t in bars.index]]   # SimBroker: complete sessions only
    assert len(complete) == 2
    assert row["average_volume_10d_calc"] == pytest.approx(complete["volume"].iloc[-10:].mean())
    assert row["change"] == pytest.approx((row["close"] / complete["close"].iloc[-1] - 1) * 100)

def test_filter2_and_or_isin(server):
    emu, base = server
    sectors = sorted(set(q(base, Query().select("sector").limit(100)).get_scanner_data()[1]["sector"]))[:2]
    n, df = q(base, Query().select("name", "sector", "close").where2(
        Or(And(Column("sector").isin(sectors), Column("close") > 0), Column("name") == "NOPE"))).get_scanner_data()
    assert n > 0 and set(df["sector"]) <= set(sectors)
    n2, df2 = q(base, Query().select("name").where(Column("sector").not_in(sectors)).limit(100)).get_scanner_data()
    assert n + n2 == 12

def test_unknown_column_is_400_with_tradingview_text(server):
    emu, base = server
    with pytest.raises(requests.HTTPError) as e:
        q(base, Query().select("name", "MACD.macd")).get_scanner_data()
    assert e.value.response.status_code == 400 and 'Unknown field \\"MACD.macd\\"' in e.value.response.text
    with pytest.raises(requests.HTTPError) as e:
        q(base, Query().select("name").where(Column("close").crosses(Column("open")))).get_scanner_data()
    assert e.value.response.status_code == 400 and "Unsupported operation" in e.value.response.text
    n, df = q(base, Query().select("name", "MACD.macd").set_property("ignore_unknown_fields", True)).get_scanner_data()
    assert n == 12 and df["MACD.macd"].isna().all()
    r = requests.post(f"{base}/america/scan", data=b"{not json")
    assert r.status_code == 400

def test_tickers_and_other_markets(server):
    emu, base = server
    _, full = q(base, Query().select("name")).get_scanner_data()
    t = full["ticker"].iloc[0]
    qq = Query().select("name", "close").set_tickers(t); qq.url = f"{base}/global/scan"
    n, df = qq.get_scanner_data()
    assert n == 1 and df["ticker"].iloc[0] == t
    n, df = q(base, Query("italy").select("name"), market="italy").get_scanner_data()
    assert n == 0 and df.empty
