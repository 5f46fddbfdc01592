"Simulator market data: generator statistics, calendar conformance, resampling, quotes, loaders, recorder replay."
from datetime import date, datetime, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from swingtrader.broker import BAR_COLUMNS, UnknownSymbol
from swingtrader.clock import MarketCalendar, NY
from swingtrader.config import SwingtraderError
from swingtrader.models import Bar
from swingtrader.sim.data import (BarRecorder, DataFileError, asset_for, generate_bars, iter_bars, load_csv, load_parquet,
                                  make_universe, parse_timeframe, quotes_from_bars, resample_bars)

CAL = MarketCalendar()
UTC = timezone.utc


@pytest.fixture(scope="module")
def uni():
    return make_universe(40, seed=42)


@pytest.fixture(scope="module")
def year(uni):
    "One year x 40 symbols of 1-minute bars (the benchmark's workload)."
    return generate_bars(uni, date(2025, 1, 1), date(2025, 12, 31), seed=42, calendar=CAL)


@pytest.fixture(scope="module")
def daily(year):
    return {s: resample_bars(f, "1d", CAL) for s, f in year.items()}


# ---------------------------------------------------------------- universe

def test_universe_shape_and_determinism(uni):
    assert uni.index.name == "symbol" and uni.index.is_unique and len(uni) == 40
    assert list(uni.columns) == ["name", "sector", "price", "fractionable", "shortable", "tick_size", "spread_bps",
                                 "avg_volume", "beta", "vol"]
    assert all(s.isalpha() and s.isupper() and 2 <= len(s) <= 5 for s in uni.index)
    assert uni.sector.nunique() == 8
    assert uni.price.between(10, 500).all() and (uni.tick_size == 0.01).all()
    assert uni.spread_bps.between(1, 20).all()
    assert 0 < (uni.avg_volume < 1e6).sum() < (uni.avg_volume > 1e6).sum()
    assert (uni.vol > uni.beta * 0.16).all()
    pd.testing.assert_frame_equal(make_universe(40, seed=42), uni)
    pd.testing.assert_frame_equal(make_universe(45, seed=42).iloc[:40], uni)
    assert not make_universe(40, seed=1).index.equals(uni.index)
    assert make_universe(20, n_sectors=3).sector.nunique() == 3


def test_universe_errors():
    with pytest.raises(SwingtraderError, match="n_sectors=12"): make_universe(10, n_sectors=12)
    with pytest.raises(SwingtraderError, match="too few"): make_universe(0)


def test_asset_for(uni):
    sym = uni.index[3]
    a = asset_for(uni, sym)
    assert a.symbol == sym and a.tick_size == Decimal("0.01") and isinstance(a.tick_size, Decimal)
    assert a.sector == uni.sector[sym] and a.name == uni.name[sym]
    assert a.fractionable == bool(uni.fractionable[sym]) and a.shortable == bool(uni.shortable[sym])
    with pytest.raises(UnknownSymbol, match="not in the simulated universe"): asset_for(uni, "ZZZZ")


# ---------------------------------------------------------------- determinism

def test_same_seed_same_bars_other_seed_other_bars(uni):
    sub = uni.iloc[:4]
    a = generate_bars(sub, date(2026, 3, 2), date(2026, 3, 6), seed=7, calendar=CAL)
    b = generate_bars(sub, date(2026, 3, 2), date(2026, 3, 6), seed=7, calendar=CAL)
    c = generate_bars(sub, date(2026, 3, 2), date(2026, 3, 6), seed=8, calendar=CAL)
    assert list(a) == list(sub.index)
    for s in a:
        pd.testing.assert_frame_equal(a[s], b[s])
        assert not np.allclose(a[s].close.values, c[s].close.values)


def test_symbol_data_independent_of_other_symbols(uni, year):
    "Per-symbol child seeds: a symbol's bars are the same alone, in a subset, or in the whole universe."
    s = uni.index[17]
    alone = generate_bars(uni.loc[[s]], date(2025, 1, 1), date(2025, 12, 31), seed=42, calendar=CAL)[s]
    pd.testing.assert_frame_equal(alone, year[s])
    bigger = pd.concat([uni, make_universe(45, seed=42).iloc[40:]])
    more = generate_bars(bigger, date(2025, 6, 2), date(2025, 6, 3), seed=42, calendar=CAL)
    fewer = generate_bars(uni, date(2025, 6, 2), date(2025, 6, 3), seed=42, calendar=CAL)
    for sym in uni.index: pd.testing.assert_frame_equal(more[sym], fewer[sym])


def test_generate_errors(uni):
    with pytest.raises(SwingtraderError, match="no NYSE sessions"): generate_bars(uni, date(2026, 7, 3), date(2026, 7, 5))
    with pytest.raises(SwingtraderError, match="no beta"): generate_bars(uni.drop(columns="beta"), date(2026, 3, 2), date(2026, 3, 2))
    with pytest.raises(SwingtraderError, match="non-positive"): generate_bars(uni.assign(price=0.0), date(2026, 3, 2), date(2026, 3, 2))


# ---------------------------------------------------------------- calendar conformance

def test_calendar_holidays_early_close_and_dst(uni):
    sub = uni.iloc[:2]
    f = generate_bars(sub, "2026-06-29", "2026-07-07", calendar=CAL)[sub.index[0]]
    ny = f.index.tz_convert(NY)
    days = sorted(set(ny.date))
    assert date(2026, 7, 3) not in days
    assert days == [date(2026, 6, 29), date(2026, 6, 30), date(2026, 7, 1), date(2026, 7, 2), date(2026, 7, 6), date(2026, 7, 7)]
    per_day = pd.Series(1, index=ny.date).groupby(level=0).size()
    assert (per_day == 390).all()
    assert f.index.is_monotonic_increasing and f.index.is_unique and str(f.index.tz) == "UTC" and f.index.name == "start"
    assert (f.index.second == 0).all()

    g = generate_bars(sub, "2025-11-26", "2025-12-01", calendar=CAL)[sub.index[0]]
    ny = g.index.tz_convert(NY)
    assert date(2025, 11, 27) not in set(ny.date)
    fri = ny[ny.date == date(2025, 11, 28)]
    assert len(fri) == 210 and fri[0].strftime("%H:%M") == "09:30" and fri[-1].strftime("%H:%M") == "12:59"
    assert ny[-1].strftime("%Y-%m-%d %H:%M") == "2025-12-01 15:59"

    h = generate_bars(sub, "2026-03-06", "2026-03-09", calendar=CAL)[sub.index[0]]   # DST starts 2026-03-08
    firsts = h.index.to_series().groupby(h.index.tz_convert(NY).date).first()
    assert [t.strftime("%H:%M") for t in firsts] == ["14:30", "13:30"]


def test_every_year_session_is_generated(year):
    f = next(iter(year.values()))
    ny = f.index.tz_convert(NY)
    sessions = CAL.sessions(date(2025, 1, 1), date(2025, 12, 31))
    counts = pd.Series(1, index=ny.date).groupby(level=0).size()
    assert list(counts.index) == list(sessions.index)
    expected = ((sessions.close - sessions.open).dt.total_seconds() // 60).astype(int)
    assert (counts.values == expected.values).all()
    assert sessions.early_close.sum() >= 2 and (counts[sessions.early_close.values] == 210).all()


# ---------------------------------------------------------------- bar consistency and statistics

def test_ohlc_consistency_for_a_year(uni, year):
    for s, f in year.items():
        o, h, l, c, v = (f[k].to_numpy() for k in BAR_COLUMNS)
        assert f.dtypes.eq(np.float64).all() and not np.isnan(f.to_numpy()).any()
        assert (l <= np.minimum(o, c)).all() and (h >= np.maximum(o, c)).all() and (l > 0).all()
        assert np.allclose(np.round(c * 100), c * 100, atol=1e-6) and np.allclose(np.round(l * 100), l * 100, atol=1e-6)
        assert (v >= 1).all() and (v == np.round(v)).all()
        assert o[0] == uni.price[s]
        assert 0.1 < c[-1] / o[0] < 10          # plausible over a year
    f = year[uni.index[0]]
    same = f.index.tz_convert(NY).date
    cont = same[1:] == same[:-1]
    assert (f.open.values[1:][cont] == f.close.values[:-1][cont]).all()
    for t, row in f.iloc[::5000].iterrows():   # valid Bar values
        Bar(uni.index[0], t.to_pydatetime(), *row.tolist(), timeframe="1m")


def test_realised_vol_matches_universe_and_volume_matches_adv(uni, daily):
    cl = pd.DataFrame({s: d.close for s, d in daily.items()})
    rv = np.log(cl).diff().std() * np.sqrt(252)
    ratio = (rv / uni.vol)
    assert 0.85 < ratio.mean() < 1.15 and ratio.between(0.6, 1.5).all()
    adv = pd.Series({s: d.volume.mean() for s, d in daily.items()})
    assert ((adv / uni.avg_volume).between(0.8, 1.25)).all()


def test_correlation_structure(uni, daily):
    r = np.log(pd.DataFrame({s: d.close for s, d in daily.items()})).diff().dropna()
    c = r.corr().to_numpy()
    sec = uni.sector.to_numpy()
    i, j = np.triu_indices(len(sec), 1)
    same = sec[i] == sec[j]
    assert c[i, j][same].mean() > c[i, j][~same].mean() + 0.08
    assert c[i, j][~same].mean() > 0.1         # the market factor
    # sector concentration: a stock's average correlation is highest with its own sector
    avg_own = np.mean([c[k][(sec == sec[k]) & (np.arange(len(sec)) != k)].mean() for k in range(len(sec)) if (sec == sec[k]).sum() > 1])
    assert avg_own > c[i, j].mean()


def test_volatility_clustering(daily):
    r = np.log(pd.DataFrame({s: d.close for s, d in daily.items()})).diff().dropna()
    m = r.mean(axis=1)                         # roughly the market factor
    acf_sq = [pd.Series(m**2).autocorr(k) for k in range(1, 6)]
    assert np.mean(acf_sq) > 0.05              # squared returns cluster ...
    assert abs(m.autocorr(1)) < 0.2            # ... returns themselves do not


def test_overnight_gaps(daily):
    cl = pd.DataFrame({s: d.close for s, d in daily.items()})
    op = pd.DataFrame({s: d.open for s, d in daily.items()})
    gap = np.log(op / cl.shift()).iloc[1:]
    tot = np.log(cl).diff().iloc[1:]
    assert (gap.abs() > 0).to_numpy().mean() > 0.9
    share = (gap.var() / tot.var()).mean()
    assert 0.1 < share < 0.35


def test_u_shaped_intraday_volume(year):
    for f in list(year.values())[:10]:
        ny = f.index.tz_convert(NY)
        mins = (ny.hour * 60 + ny.minute - 570).to_numpy()
        full = pd.Series(1, index=ny.date).groupby(level=0).transform("size").to_numpy() == 390
        v = f.volume.to_numpy()[full]; m = mins[full]
        first, mid, last = v[m < 30].mean(), v[(m >= 150) & (m < 240)].mean(), v[m >= 360].mean()
        assert first > 1.5 * mid and last > 1.3 * mid


# ---------------------------------------------------------------- resampling

def test_parse_timeframe():
    assert parse_timeframe("1m") == (1, "min") and parse_timeframe("5Min") == (5, "min") and parse_timeframe("15 min") == (15, "min")
    assert parse_timeframe("1h") == (60, "min") and parse_timeframe("2Hour") == (120, "min")
    assert parse_timeframe("1d") == (1, "d") and parse_timeframe("1Day") == (1, "d")
    for bad in ("", "5", "0m", "2d", "1w", "m5"):
        with pytest.raises(SwingtraderError, match="not understood"): parse_timeframe(bad)


def _pandas_reference(f, rule, offset=None):
    agg = f.resample(rule, offset=offset, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    return agg.dropna()


def test_resample_matches_pandas_reference(year):
    f = next(iter(year.values())).loc["2025-03-03":"2025-03-14"]      # spans the DST change
    for tf, rule in (("5m", "5min"), ("15m", "15min"), ("30m", "30min")):
        pd.testing.assert_frame_equal(resample_bars(f, tf, CAL), _pandas_reference(f, rule), check_freq=False)
    pd.testing.assert_frame_equal(resample_bars(f, "1h", CAL), _pandas_reference(f, "1h", "30min"), check_freq=False)
    pd.testing.assert_frame_equal(resample_bars(f, "1h", CAL, anchor="clock"), _pandas_reference(f, "1h"), check_freq=False)
    pd.testing.assert_frame_equal(resample_bars(f, "1m", CAL), f, check_freq=False)


def test_resample_daily_and_never_crosses_sessions(year):
    f = next(iter(year.values())).loc["2025-11-24":"2025-12-02"]
    d = resample_bars(f, "1d", CAL)
    s = CAL.sessions(date(2025, 11, 24), date(2025, 12, 2))
    assert list(d.index) == [pd.Timestamp(o).tz_convert("UTC") for o in s.open]
    ny = f.index.tz_convert(NY)
    for day, g in f.groupby(ny.date):
        row = d.loc[pd.Timestamp(s.open[day]).tz_convert("UTC")]
        assert row.tolist() == [g.open.iloc[0], g.high.max(), g.low.min(), g.close.iloc[-1], g.volume.sum()]
    for tf in ("4h", "2h", "1h"):
        r = resample_bars(f, tf, CAL)
        labels_day = r.index.tz_convert(NY).date
        # each bucket's volume equals the sum of its day's minutes inside it: nothing leaks across sessions
        assert r.volume.groupby(labels_day).sum().to_dict() == f.volume.groupby(ny.date).sum().to_dict()
    fri = resample_bars(f, "1h", CAL)
    last = fri.index.tz_convert(NY)[fri.index.tz_convert(NY).date == date(2025, 11, 28)]
    assert [t.strftime("%H:%M") for t in last] == ["09:30", "10:30", "11:30", "12:30"]


def test_resample_gaps_unsorted_and_empty(year):
    f = next(iter(year.values())).loc["2025-04-01":"2025-04-02"]
    holey = f.drop(f.index[3:12])
    r = resample_bars(holey.sample(frac=1, random_state=1), "5m", CAL)
    assert r.index.is_monotonic_increasing
    assert r.volume.sum() == holey.volume.sum()
    assert pd.Timestamp("2025-04-01 13:35", tz="UTC") not in r.index     # 09:35-09:39 fully missing -> no bar
    assert r.loc["2025-04-01 13:30"].open == f.open.iloc[0]
    e = resample_bars(f.iloc[:0], "5m", CAL)
    assert e.empty and list(e.columns) == BAR_COLUMNS and str(e.index.tz) == "UTC"
    with pytest.raises(SwingtraderError, match="anchor"): resample_bars(f, "5m", anchor="midnight")
    with pytest.raises(SwingtraderError, match="lack column"): resample_bars(f.drop(columns="volume"), "5m")
    with pytest.raises(SwingtraderError, match="timezone-aware"): resample_bars(f.tz_localize(None), "5m")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keep=st.lists(st.booleans(), min_size=780, max_size=780), tf=st.sampled_from(["5m", "15m", "1h", "1d"]))
def test_resample_conserves_totals_with_random_gaps(year, keep, tf):
    f = next(iter(year.values())).iloc[:780]
    g = f[np.array(keep)]
    r = resample_bars(g, tf, CAL)
    if g.empty:
        assert r.empty; return
    assert r.volume.sum() == g.volume.sum() and r.high.max() == g.high.max() and r.low.min() == g.low.min()
    assert (r.low <= r[["open", "close"]].min(axis=1)).all() and (r.high >= r[["open", "close"]].max(axis=1)).all()
    assert r.open.iloc[0] == g.open.iloc[0] and r.close.iloc[-1] == g.close.iloc[-1]


# ---------------------------------------------------------------- quotes

def test_quotes_from_bars(uni, year):
    s = uni.index[5]
    f = year[s].iloc[:5000]
    q = quotes_from_bars(f, uni.spread_bps[s])
    assert q.index.equals(f.index) and list(q.columns) == ["bid", "ask", "bid_size", "ask_size"]
    assert (q.bid < q.ask).all() and (q.bid <= f.close).all() and (q.ask >= f.close).all()
    ticks = np.round((q.ask - q.bid) / 0.01)
    assert (ticks >= 1).all()
    assert np.allclose(ticks, np.maximum(np.round(f.close * uni.spread_bps[s] / 1e4 / 0.01), 1))
    assert ((q.bid_size % 100) == 0).all() and (q.ask_size >= 100).all()
    up = f.close > f.open
    assert (q.bid_size[up] >= q.ask_size[up]).all()
    wide = quotes_from_bars(f, np.full(len(f), 40.0))
    assert ((wide.ask - wide.bid) > (q.ask - q.bid)).mean() > 0.9


# ---------------------------------------------------------------- loaders: round trips

@pytest.fixture(scope="module")
def two(uni, year):
    return {s: year[s].loc["2025-03-07":"2025-03-10"] for s in uni.index[:2]}   # spans DST (2025-03-09)


def test_csv_roundtrip_naive_new_york_multi_symbol_unsorted(tmp_path, two):
    long = pd.concat([f.assign(Symbol=s) for s, f in two.items()])
    long.index = long.index.tz_convert(NY).tz_localize(None).rename("Time")
    long.rename(columns=str.upper).sample(frac=1, random_state=3).to_csv(tmp_path / "bars.csv")
    back = load_csv(tmp_path / "bars.csv")
    assert set(back) == set(two)
    for s in two: pd.testing.assert_frame_equal(back[s], two[s], check_freq=False)
    one = load_csv(tmp_path / "bars.csv", symbol=list(two)[1])
    pd.testing.assert_frame_equal(one, two[list(two)[1]], check_freq=False)


@pytest.mark.parametrize("fmt", ["Z", "offset", "epoch_s", "epoch_ms", "utc_naive"])
def test_csv_timestamp_forms(tmp_path, two, fmt):
    f = next(iter(two.values()))
    t = f.index
    col = {"Z": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
           "offset": t.tz_convert(NY).strftime("%Y-%m-%d %H:%M:%S%z").str.replace(r"(\d\d)$", r":\1", regex=True),
           "epoch_s": t.asi8 // 10**9, "epoch_ms": t.asi8 // 10**6,
           "utc_naive": t.strftime("%Y-%m-%d %H:%M")}[fmt]
    pd.DataFrame({"timestamp": col, **{c: f[c].values for c in BAR_COLUMNS}}).to_csv(tmp_path / "t.csv", index=False)
    back = load_csv(tmp_path / "t.csv", tz="UTC" if fmt == "utc_naive" else "America/New_York")
    pd.testing.assert_frame_equal(back, f, check_freq=False)


def test_csv_daily_dates(tmp_path):
    (tmp_path / "d.csv").write_text("Date,Open,High,Low,Close,Volume\n20260105,10,11,9,10.5,1000\n2026-01-02,9,10,8.5,9.5,900\n".replace("2026-01-02", "20260102"))
    d = load_csv(tmp_path / "d.csv")
    assert list(d.index) == [pd.Timestamp("2026-01-02 05:00", tz="UTC"), pd.Timestamp("2026-01-05 05:00", tz="UTC")]


def test_parquet_roundtrip_tz_aware_and_naive(tmp_path, two):
    f = next(iter(two.values()))
    f.to_parquet(tmp_path / "aware.parquet")
    pd.testing.assert_frame_equal(load_parquet(tmp_path / "aware.parquet"), f, check_freq=False)
    f.tz_convert(NY).to_parquet(tmp_path / "ny.parquet")
    pd.testing.assert_frame_equal(load_parquet(tmp_path / "ny.parquet"), f, check_freq=False)
    f.tz_convert(NY).tz_localize(None).reset_index().rename(columns={"start": "Date"}).to_parquet(tmp_path / "naive.parquet")
    pd.testing.assert_frame_equal(load_parquet(tmp_path / "naive.parquet", tz="America/New_York"), f, check_freq=False)
    long = pd.concat([g.assign(ticker=s) for s, g in two.items()]).reset_index()
    long.to_parquet(tmp_path / "multi.parquet")
    back = load_parquet(tmp_path / "multi.parquet")
    for s in two: pd.testing.assert_frame_equal(back[s], two[s], check_freq=False)


def test_gaps_are_kept_and_duplicates_resolved_on_request(tmp_path, two):
    f = next(iter(two.values()))
    holey = f.drop(f.index[100:160])
    holey.to_parquet(tmp_path / "h.parquet")
    back = load_parquet(tmp_path / "h.parquet")
    assert len(back) == len(f) - 60 and not back.index.isin(f.index[100:160]).any()
    dup = pd.concat([f.iloc[:10], f.iloc[5:6].assign(close=f.close.iloc[5] + 0.0)]).reset_index()
    dup.loc[10, "volume"] = 12345.0
    dup.to_parquet(tmp_path / "d.parquet")
    with pytest.raises(DataFileError, match="sharing a timestamp"): load_parquet(tmp_path / "d.parquet")
    assert load_parquet(tmp_path / "d.parquet", on_duplicate="last").volume.iloc[5] == 12345.0
    assert load_parquet(tmp_path / "d.parquet", on_duplicate="first").volume.iloc[5] == f.volume.iloc[5]
    assert len(load_parquet(tmp_path / "d.parquet", on_duplicate="last")) == 10


# ---------------------------------------------------------------- loaders: every error path

HDR = "time,open,high,low,close,volume\n"
ROW = "2026-01-02 09:30,10,11,9,10.5,100\n"


def _write(tmp_path, name, text):
    p = tmp_path / name
    (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
    return p


@pytest.mark.parametrize("name,text,kw,match", [
    ("empty.csv", "", {}, "is empty"),
    ("header.csv", HDR, {}, "has no rows"),
    ("notime.csv", "when,open,high,low,close,volume\n2026-01-02 09:30,1,1,1,1,1\n", {}, "has no time column"),
    ("nohl.csv", "time,open,close,volume\n2026-01-02 09:30,1,1,1\n", {}, "missing column(s) high, low"),
    ("badtime.csv", HDR + ROW + "2026-13-45 99:99,10,11,9,10.5,100\n", {}, "cannot parse time '2026-13-45 99:99' at row 2"),
    ("blanktime.csv", HDR + ROW + ",10,11,9,10.5,100\n", {}, "time column is empty at row 2"),
    ("mixedtz.csv", HDR + "2026-01-02T14:30:00Z,10,11,9,10.5,100\n2026-01-02 09:31,10,11,9,10.5,100\n", {}, "mix UTC offsets and local times"),
    ("nan.csv", HDR + ROW + "2026-01-02 09:31,10,,9,10.5,100\n", {}, "high is missing or not a number at row 2"),
    ("text.csv", HDR + ROW + "2026-01-02 09:31,ten,11,9,10.5,100\n", {}, "open is missing or not a number at row 2 ('ten')"),
    ("neg.csv", HDR + ROW + "2026-01-02 09:31,-1,11,-2,10.5,100\n", {}, "price is zero or negative at row 2"),
    ("hl.csv", HDR + "2026-01-02 09:30,10,9,11,10,5\n", {}, "high is below low at row 1"),
    ("outside.csv", HDR + "2026-01-02 09:30,12,11,9,10,5\n", {}, "open or close lies outside high..low"),
    ("negvol.csv", HDR + ROW + "2026-01-02 09:31,10,11,9,10.5,-3\n", {}, "volume is negative at row 2"),
    ("dup.csv", HDR + ROW + ROW, {}, "2 rows sharing a timestamp, first at 2026-01-02 14:30 UTC"),
    ("dst.csv", HDR + "2026-11-01 01:30,10,11,9,10.5,100\n", {}, "DST change"),
    ("gap.csv", HDR + "2026-03-08 02:30,10,11,9,10.5,100\n", {}, "DST change"),
    ("tz.csv", HDR + ROW, {"tz": "Mars/Olympus"}, "timezone 'Mars/Olympus' is unknown"),
    ("sym.csv", "symbol," + HDR + "AAA," + ROW, {"symbol": "BBB"}, "has no rows for 'BBB'"),
    ("tfs.csv", "timeframe," + HDR + "1m," + ROW + "5m," + ROW, {}, "mixes timeframes 1m, 5m"),
    ("tf.csv", "timeframe," + HDR + "1m," + ROW, {"timeframe": "5m"}, "has no '5m' bars"),
    ("binary.csv", b"\xff\xfe\x00\x01\x80\x81garbage\x00", {}, "not readable CSV"),
])
def test_csv_errors_name_file_problem_and_fix(tmp_path, name, text, kw, match):
    p = _write(tmp_path, name, text)
    with pytest.raises(DataFileError) as ei: load_csv(p, **kw)
    msg = str(ei.value)
    assert match in msg, msg
    assert str(p) in msg and "Fix:" in msg and ei.value.fix
    assert isinstance(ei.value, SwingtraderError)


def test_fix_ohlc_widens_high_low(tmp_path):
    p = _write(tmp_path, "outside.csv", HDR + "2026-01-02 09:30,12,11,9,8,5\n")
    f = load_csv(p, fix_ohlc=True)
    assert f.iloc[0].tolist() == [12.0, 12.0, 8.0, 8.0, 5.0]


def test_missing_file_and_bad_options(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"): load_csv(tmp_path / "nope.csv")
    with pytest.raises(DataFileError, match="does not exist"): load_parquet(tmp_path / "nope.parquet")
    p = _write(tmp_path, "ok.csv", HDR + ROW)
    with pytest.raises(SwingtraderError, match="on_duplicate='keep'"): load_csv(p, on_duplicate="keep")


def test_parquet_errors(tmp_path):
    _write(tmp_path, "corrupt.parquet", b"PAR1 not really parquet")
    with pytest.raises(DataFileError, match="not a readable Parquet file") as ei: load_parquet(tmp_path / "corrupt.parquet")
    assert "corrupt.parquet" in str(ei.value) and "Fix:" in str(ei.value)
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(DataFileError, match="no .parquet files"): load_parquet(tmp_path / "emptydir")
    pd.DataFrame({"time": pd.date_range("2026-01-02 14:30", periods=2, freq="min", tz="UTC"), "open": [1.0, 2.0],
                  "high": [1.0, 1.5], "low": [1.0, 1.0], "close": [1.0, 1.0], "volume": [1.0, 1.0]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataFileError, match="open or close lies outside high..low at row 2"): load_parquet(tmp_path / "bad.parquet")


# ---------------------------------------------------------------- recorder -> loader replay

def test_recorder_replay_roundtrip(tmp_path, uni, year):
    frames = {s: resample_bars(year[s].loc["2025-05-05":"2025-05-06"], "5m", CAL) for s in uni.index[:3]}
    d = tmp_path / "rec"
    with BarRecorder(d, flush_every=100) as rec:
        n = 0
        for b in iter_bars(frames, "5m"):
            assert rec.record(b); n += 1
        assert not rec.record(b) and rec.dropped == 1      # a reconnect's repeat
        assert rec.flush() is not None and rec.flush() is None
    assert rec.recorded == n == 3 * 156 and len(rec.parts) == -(-n // 100)
    assert sorted(p.name for p in d.iterdir()) == sorted(p.name for p in rec.parts)   # no temp files left
    back = load_parquet(d, timeframe="5m")
    for s, f in frames.items(): pd.testing.assert_frame_equal(back[s], f, check_freq=False)
    with pytest.raises(SwingtraderError, match="is closed"): rec.record(b)


def test_recorder_restart_appends_and_loader_handles_duplicates(tmp_path, uni, year):
    s = uni.index[0]
    f = year[s].iloc[:60]
    bars = list(iter_bars({s: f}))
    d = tmp_path / "rec"
    with BarRecorder(d) as r1:
        for b in bars[:40]: r1.record(b)
    (d / ".part-000099-crash.parquet.tmp").write_bytes(b"half a file")   # a crash mid-write leaves only a hidden temp file
    with BarRecorder(d) as r2:
        for b in bars[30:]: r2.record(b)                 # a restarted session backfills 10 bars it already had
    assert r2.parts[0].name.startswith("part-000001-")
    with pytest.raises(DataFileError, match="20 rows sharing a timestamp"): load_parquet(d)
    back = load_parquet(d, on_duplicate="last")
    pd.testing.assert_frame_equal(back[s], f, check_freq=False)
    # mixed timeframes need a choice
    with BarRecorder(d) as r3:
        r3.record(Bar(s, datetime(2025, 1, 2, 14, 30, tzinfo=UTC), 1, 1, 1, 1, 1, timeframe="5m"))
    with pytest.raises(DataFileError, match="mixes timeframes 1m, 5m"): load_parquet(d, on_duplicate="last")
    assert len(load_parquet(d, timeframe="5m")[s]) == 1


def test_recorder_rejects_non_bars_and_file_paths(tmp_path):
    with pytest.raises(SwingtraderError, match="not a Bar"): BarRecorder(tmp_path / "r").record({"symbol": "X"})
    (tmp_path / "file").write_text("x")
    with pytest.raises(SwingtraderError, match="not a directory"): BarRecorder(tmp_path / "file")


def test_iter_bars_time_order(uni, year):
    frames = {s: year[s].iloc[:3] for s in uni.index[:3]}
    out = list(iter_bars(frames))
    assert [b.symbol for b in out] == list(uni.index[:3]) * 3
    assert [b.start for b in out] == sorted(b.start for b in out)
    assert out[0].open == frames[uni.index[0]].open.iloc[0] and out[0].timeframe == "1m"
    assert out[0].start.tzinfo is not None
