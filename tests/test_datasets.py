"Your own bars: `swingtrader backtest --data` on folders of CSV and Parquet files, and one clear line for every malformed input."
import json, os, subprocess, sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from swingtrader.cli import main
from swingtrader.datasets import load_dataset, load_sectors, calendar_for
from swingtrader.sim.data import make_universe, generate_bars, resample_bars

NAMES = ["X2", "BRK.B", "BF-B", "AAPL"]          # digits, a dot and a dash class suffix are tickers too


@pytest.fixture(scope="module")
def frames():
    "Four symbols, two weeks of 5-minute NYSE bars (index = bar open time, UTC)."
    u = make_universe(4, 11)
    gen = generate_bars(u, date(2026, 3, 2), date(2026, 3, 13), 11)
    return {n: resample_bars(df, "5m") for n, df in zip(NAMES, gen.values())}


def naive_ny(df):
    "The frame as a user's CSV would have it: naive New York times in a 'Date' column, capitalised names."
    d = df.copy()
    d.index = d.index.tz_convert("America/New_York").tz_localize(None)
    d.index.name = "Date"
    return d.rename(columns=str.capitalize).reset_index()


def write_csvs(folder, frames, edit=None):
    folder.mkdir(parents=True, exist_ok=True)
    for s, df in frames.items():
        d = naive_ny(df)
        if edit is not None and s == "AAPL": d = edit(d)
        d.to_csv(folder/f"{s}.csv", index=False)
    return folder


def run(args, tmp_path):
    "The installed command as a user runs it."
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_"))}
    return subprocess.run([str(Path(sys.executable).parent/"swingtrader"), *args], capture_output=True, text=True,
                          env={**base, "SWINGTRADER_DATA_DIR": str(tmp_path/"data")}, cwd=tmp_path, timeout=300)


def cli(args, tmp_path, monkeypatch):
    "The command in-process (fast): exit code and stderr lines."
    monkeypatch.setenv("SWINGTRADER_DATA_DIR", str(tmp_path/"data"))
    r = CliRunner().invoke(main, args)
    return r.exit_code, r.stderr.strip().splitlines(), r.stdout


# -- happy paths through the real command ------------------------------------------------------------

def test_csv_folder_backtests(tmp_path, frames):
    d = write_csvs(tmp_path/"csv", frames)
    r = run(["backtest", "--data", str(d), "--out", str(tmp_path/"out")], tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path/"out"/"summary.json").read_text())
    assert out["symbols"] == 4 and out["bars"] == sum(map(len, frames.values()))
    assert (out["start"], out["end"]) == ("2026-03-02", "2026-03-13")
    assert int(out["trades"]) > 0 and "warning" not in r.stderr
    assert (tmp_path/"out"/"trades.csv").exists()


def test_parquet_folder_with_sectors_and_cash(tmp_path, frames):
    d = tmp_path/"pq"; d.mkdir()
    for s, df in frames.items():
        df.rename_axis("timestamp").reset_index().to_parquet(d/f"{s}.parquet")      # time zone-aware UTC column
    (tmp_path/"sectors.csv").write_text("symbol,sector,industry\nX2,Tech,Chips\nBRK.B,Finance,Insurance\n")
    r = run(["backtest", "--data", str(d), "--sectors", str(tmp_path/"sectors.csv"), "--cash", "50000", "--start", "2026-03-09",
             "--canonical", "--out", str(tmp_path/"out")], tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path/"out"/"summary.json").read_text())
    assert (out["start"], out["initial_cash"], out["symbols"]) == ("2026-03-09", 50000.0, 4)


# -- the dataset itself ----------------------------------------------------------------------------

def test_one_file_with_a_symbol_column_and_aliases(tmp_path, frames):
    rows = pd.concat([naive_ny(df).rename(columns={"Date": "datetime", "Open": "o", "High": "H", "Low": "l", "Close": "C", "Volume": "vol"})
                      .assign(Ticker=s) for s, df in frames.items()])
    rows.to_csv(tmp_path/"all.csv", index=False)
    ds = load_dataset(tmp_path/"all.csv", sectors=None)
    assert ds.symbols == sorted(NAMES) and ds.period == pd.Timedelta("5min")
    for s, df in frames.items(): pd.testing.assert_frame_equal(ds.bars[s], df.rename_axis("start"), check_freq=False)
    assert ds.gap_warning() is None and int(ds.gaps["missing_bars"].sum()) == 0


def test_sectors_default_to_a_sector_of_their_own(tmp_path, frames):
    (tmp_path/"s.csv").write_text("Symbol,Sector\nx2,Tech\nAAPL,Tech\n")
    ds = load_dataset(write_csvs(tmp_path/"csv", frames), sectors=tmp_path/"s.csv")
    assert ds.universe["sector"].to_dict() == {"AAPL": "Tech", "BF-B": "BF-B (no sector)", "BRK.B": "BRK.B (no sector)", "X2": "Tech"}


def test_gaps_are_counted_and_warned(tmp_path, frames):
    def holes(d):
        day = d["Date"].dt.date
        d = d[day != date(2026, 3, 10)]                    # a whole session
        return d.drop(d.index[[5, 6]])                    # two bars inside a session
    ds = load_dataset(write_csvs(tmp_path/"csv", frames, holes))
    g = ds.gaps.loc["AAPL"]
    assert (g["missing_bars"], g["missing_sessions"]) == (2, 1)
    assert "2 bar(s) missing before row 6 of AAPL.csv" in g["first_gap"]
    assert ds.gaps.drop("AAPL")["missing_bars"].sum() == 0
    assert ds.gap_warning().startswith("1 of 4 symbols have gaps: 2 missing bars")
    assert load_dataset(write_csvs(tmp_path/"csv2", frames, holes), calendar="none").gap_warning() is None


def test_weekend_bars_need_a_calendar_that_has_them(tmp_path, frames, monkeypatch):
    df = frames["AAPL"]
    shifted = df.set_axis(df.index + pd.Timedelta(days=5))          # Mon..Fri -> Sat..Wed
    d = write_csvs(tmp_path/"csv", {"AAPL": shifted})
    code, err, _ = cli(["backtest", "--data", str(d)], tmp_path, monkeypatch)
    assert code == 2 and len(err) == 1 and "outside the XNYS sessions" in err[0] and "AAPL.csv" in err[0] and "row 1" in err[0]
    ds = load_dataset(d, calendar="24x7")
    assert ds.n_bars == len(df) and ds.calendar_name == "24x7"
    assert calendar_for("24x7").is_open(shifted.index[0].to_pydatetime())
    code, err, out = cli(["backtest", "--data", str(d), "--calendar", "24x7", "--out", str(tmp_path/"o")], tmp_path, monkeypatch)
    assert code == 0, err
    summary = json.loads((tmp_path/"o"/"summary.json").read_text())
    assert summary["bars"] == len(df) and int(summary["trades"]) > 0        # the simulator trades on Saturdays too


# -- malformed input: one line, exit 2, no traceback --------------------------------------------------

def _set(col, i, v):
    def f(d): d = d.copy(); d[col] = d[col].astype(object); d.loc[d.index[i], col] = v; return d
    return f

CASES = [
    ("missing column", lambda d: d.drop(columns=["Close"]), "AAPL.csv: lacks column(s) close"),
    ("bad time", _set("Date", 3, "yesterday"), "AAPL.csv: cannot read the time 'yesterday' at row 4"),
    ("unsorted", lambda d: d.iloc[[0, 2, 1, *range(3, len(d))]], "AAPL.csv: AAPL's bars are not in time order: 2026-03-02 09:35 EST at row 3"),
    ("duplicate", lambda d: pd.concat([d.iloc[:3], d.iloc[[2]], d.iloc[3:]]), "AAPL.csv: AAPL has two bars at 2026-03-02 09:40 EST: row 3 and row 4"),
    ("nan price", _set("Close", 7, np.nan), "AAPL.csv: close is missing or not a number at row 8"),
    ("text price", _set("Open", 7, "n/a"), "AAPL.csv: open is missing or not a number at row 8"),
    ("zero price", _set("Low", 9, 0.0), "AAPL.csv: a price is zero or negative at row 10"),
    ("high below low", _set("High", 11, 1.0), "AAPL.csv: high is below low at row 12"),
    ("close above high", _set("Close", 12, 10_000.0), "AAPL.csv: open or close lies outside high..low at row 13"),
    ("negative volume", _set("Volume", 13, -5), "AAPL.csv: volume is negative at row 14"),
    ("off grid", lambda d: d.assign(Date=d["Date"].where(d.index != 20, d["Date"].iloc[20] + pd.Timedelta(minutes=2))),
     "AAPL.csv: AAPL's bar at row 21 is 0 days 00:07:00 after the one before"),
    ("mixed offsets", lambda d: d.assign(Date=d["Date"].astype(str).where(d.index != 2, "2026-03-02T14:40:00Z")), "AAPL.csv: times mix UTC offsets and local times"),
    ("weekend bar", lambda d: pd.concat([d, d.iloc[[-1]].assign(Date=pd.Timestamp("2026-03-14 10:00"))]), "AAPL.csv: AAPL has a bar at Sat 2026-03-14 10:00 EDT (row 781)"),
]

@pytest.mark.parametrize("name,edit,needle", CASES, ids=[c[0] for c in CASES])
def test_malformed_bars_are_one_line(tmp_path, frames, monkeypatch, name, edit, needle):
    d = write_csvs(tmp_path/"csv", {"AAPL": frames["AAPL"], "X2": frames["X2"]}, edit)
    code, err, out = cli(["backtest", "--data", str(d)], tmp_path, monkeypatch)
    assert code == 2, (out, err)
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert "Fix:" in err[0]


def test_gaps_as_errors(tmp_path, frames, monkeypatch):
    d = write_csvs(tmp_path/"csv", {"AAPL": frames["AAPL"]}, lambda d: d.drop(d.index[[40]]))
    code, err, _ = cli(["backtest", "--data", str(d), "--gaps", "error"], tmp_path, monkeypatch)
    assert code == 2 and len(err) == 1 and "AAPL: 1 bar(s) missing before row 41 of AAPL.csv (bars every 0 days 00:05:00, calendar XNYS)" in err[0], err
    code, err, _ = cli(["backtest", "--data", str(d), "--out", str(tmp_path/"o")], tmp_path, monkeypatch)
    assert code == 0 and err == ["warning: 1 of 1 symbols have gaps: 1 missing bars inside sessions and 0 sessions without bars "
                                 "(first: AAPL 1 bar(s) missing before row 41 of AAPL.csv); the backtest uses the bars that exist."]


def _files_case(tmp_path, frames, kind):
    d = tmp_path/"in"; d.mkdir()
    good = naive_ny(frames["AAPL"])
    if kind == "empty folder": pass
    elif kind == "mixed formats":
        good.to_csv(d/"AAPL.csv", index=False); good.to_parquet(d/"X2.parquet")
    elif kind == "bad ticker": good.to_csv(d/"A$B.csv", index=False)
    elif kind == "same symbol twice":
        good.assign(symbol="AAPL").to_csv(d/"a.csv", index=False); good.to_csv(d/"AAPL.csv", index=False)
    elif kind == "corrupt parquet": (d/"AAPL.parquet").write_bytes(b"PAR1 not really")
    elif kind == "empty csv": (d/"AAPL.csv").write_text("")
    elif kind == "no rows": (d/"AAPL.csv").write_text("date,open,high,low,close,volume\n")
    elif kind == "daily bars":
        daily = good.groupby(good["Date"].dt.date).agg({"Open": "first", "High": "max", "Low": "min", "Close": "last", "Volume": "sum"})
        daily.rename_axis("Date").to_csv(d/"AAPL.csv")
    elif kind == "mixed periods":
        write_csvs(d, {"X2": frames["X2"], "AAPL": resample_bars(frames["AAPL"], "15m")})
    elif kind == "dst gap": good.assign(Date=good["Date"].astype(str).where(good.index != 0, "2026-03-08 02:30:00")).to_csv(d/"AAPL.csv", index=False)
    return d

FILE_CASES = [
    ("empty folder", [], "is a folder without CSV or Parquet files"),
    ("mixed formats", [], "mixes CSV and Parquet files"),
    ("bad ticker", [], "A$B.csv: symbol 'A$B' is not a stock ticker"),
    ("same symbol twice", [], "a.csv: has bars for AAPL, which AAPL.csv has too"),
    ("corrupt parquet", [], "AAPL.parquet: is not a readable Parquet file"),
    ("empty csv", [], "AAPL.csv: is empty"),
    ("no rows", [], "AAPL.csv: has no rows"),
    ("dst gap", [], "AAPL.csv: the local time 2026-03-08 02:30:00 at row 1 does not exist or exists twice in America/New_York"),
    ("daily bars", [], "AAPL.csv: has daily bars (dates without a time of day)"),
    ("mixed periods", [], "AAPL.csv: AAPL has bars every 0 days 00:15:00, the other data every 0 days 00:05:00"),
    ("bad tz", ["--tz", "Mars/Olympus"], "time zone 'Mars/Olympus' is unknown"),
    ("bad calendar", ["--calendar", "LSE"], "'LSE' is not one of"),
    ("coarse bars", [], "do not build the strategy's 1m bars"),
    ("late start", ["--start", "2027-01-01"], "no bars between 2027-01-01"),
    ("symbols with data", ["--symbols", "3"], "--symbols and --seed pick simulated data"),
    ("missing path", [], "does not exist"),
]

@pytest.mark.parametrize("kind,extra,needle", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_files_are_one_line(tmp_path, frames, monkeypatch, kind, extra, needle):
    d = _files_case(tmp_path, frames, kind)
    if kind in ("bad tz", "bad calendar", "late start", "symbols with data", "coarse bars"): write_csvs(d, {"AAPL": frames["AAPL"]})
    if kind == "coarse bars": monkeypatch.setenv("SWINGTRADER_TIMEFRAME", "1m")
    if kind == "missing path": d = d/"nope"
    code, err, out = cli(["backtest", "--data", str(d), *extra], tmp_path, monkeypatch)
    assert code == 2, (out, err)
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err


SECTOR_CASES = [
    ("symbol,industry\nAAPL,x\n", "lacks column(s) sector"),
    ("symbol,sector\nAAPL,Tech\nAAPL,Health\n", "names AAPL twice (again at row 2)"),
    ("symbol,sector\nAAPL,\n", "the sector is empty at row 1"),
    ("symbol,sector\n12345,Tech\n", "symbol '12345' is not a stock ticker"),
]

@pytest.mark.parametrize("text,needle", SECTOR_CASES)
def test_bad_sectors_files_are_one_line(tmp_path, frames, monkeypatch, text, needle):
    d = write_csvs(tmp_path/"csv", {"AAPL": frames["AAPL"]})
    (tmp_path/"sectors.csv").write_text(text)
    code, err, _ = cli(["backtest", "--data", str(d), "--sectors", str(tmp_path/"sectors.csv")], tmp_path, monkeypatch)
    assert code == 2 and len(err) == 1 and needle in err[0] and "sectors.csv" in err[0], err
    with pytest.raises(Exception, match="sectors.csv"): load_sectors(tmp_path/"sectors.csv")


def test_a_malformed_file_gives_no_traceback_in_a_real_process(tmp_path, frames):
    d = write_csvs(tmp_path/"csv", {"AAPL": frames["AAPL"]}, _set("High", 11, 1.0))
    r = run(["backtest", "--data", str(d)], tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "AAPL.csv: high is below low at row 12" in r.stderr
