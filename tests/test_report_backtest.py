"Backtest results for a person: the statistics against hand-computed ones, the HTML tearsheet, the command's flags and output."
import json, math, os, re, subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swingtrader.config import Settings
from swingtrader.backtest import Backtest
from swingtrader.tearsheet import stats, tearsheet_html, daily_returns

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECTIONS = ["Statistics", "Rules", "Equity vs buy &amp; hold", "Monthly returns", "Trade P&amp;L distribution", "Per symbol", "Candles: "]

@pytest.fixture(scope="module")
def res():
    "Four weeks over a month end (Good Friday off), so monthly returns have two months; trading throughout (no kill switch)."
    return Backtest.from_seed(Settings(warmup_bars=30), symbols=5, start="2026-03-23", end="2026-04-17", seed=5, kill_switch=False).run()

def test_statistics_match_hand_computed(res):
    st, eq = stats(res), res.equity
    init = res.info["initial_cash"]
    daily = eq["equity"].groupby(eq.index.tz_convert("America/New_York").date).last().to_numpy()
    r = np.diff(np.concatenate([[init], daily])) / np.concatenate([[init], daily[:-1]])
    assert len(r) == 19 and st["days"] == 19 and (r != 0).sum() > 10
    assert st["total_return"] == pytest.approx(daily[-1] / init - 1)
    assert st["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    down = math.sqrt(np.mean(np.minimum(r, 0) ** 2)) * math.sqrt(252)
    assert st["sortino"] == pytest.approx(r.mean() * 252 / down)
    growth = np.prod(1 + r)
    assert st["cagr"] == pytest.approx(growth ** (252 / len(r)) - 1)
    wealth = np.cumprod(1 + r)
    dd_daily = np.min(wealth / np.maximum.accumulate(np.concatenate([[1.0], wealth]))[1:] - 1)
    assert st["calmar"] == pytest.approx((growth ** (252 / len(r)) - 1) / abs(dd_daily))
    e = eq["equity"].to_numpy()
    assert st["max_drawdown"] == pytest.approx(np.min(e / np.maximum.accumulate(e) - 1))
    pl = res.trades["pl"].to_numpy()
    assert st["trades"] == len(pl) > 5
    assert st["win_rate"] == pytest.approx((pl > 0).mean())
    assert st["profit_factor"] == pytest.approx(pl[pl > 0].sum() / -pl[pl < 0].sum())
    assert st["expectancy"] == pytest.approx(pl.mean())
    assert st["exposure"] == pytest.approx((eq["gross"] > 0).mean())
    hold = (res.trades["exit_time"] - res.trades["entry_time"]).dt.total_seconds().mean() / 3600
    assert st["avg_hold_hours"] == pytest.approx(hold)
    # buy & hold: the starting cash split equally at each symbol's first close, marked at the last close
    bh = np.mean([df["close"].iloc[-1] / df["close"].iloc[0] for df in res.bars.values()]) - 1
    assert st["buy_hold_return"] == pytest.approx(bh)
    assert list(daily_returns(eq["equity"], init).to_numpy()) == pytest.approx(list(r))

def test_drawdown_duration_by_hand():
    from swingtrader.tearsheet import drawdown_duration
    t = pd.date_range("2026-03-02 15:00", periods=6, freq="1D", tz="UTC")
    dur, peak, back = drawdown_duration(pd.Series([100, 105, 101, 104, 106, 103.0], index=t))
    assert (dur, peak, back) == (pd.Timedelta(days=3), t[1], t[4])

def test_tearsheet_is_self_contained_with_every_section(res, tmp_path):
    out = res.save(tmp_path / "bt")
    doc = (out / "tearsheet.html").read_text()
    assert doc.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\bsrc\s*=", doc, re.I)
    assert doc.count("plotly.js v") == 1
    for s in SECTIONS: assert f"<h2>{s}" in doc, s
    assert doc.count("Plotly.newPlot") == 3                          # equity/drawdown, P&L distribution, candles
    assert "import " not in doc.split("<script", 1)[0] and "def " not in doc.split("<script", 1)[0]
    assert '"rangebreaks":[{"bounds":' in doc                      # nights and weekends taken out of the time axes
    assert "Mar</th>" in doc and "Apr</th>" in doc                  # monthly returns over the month end
    assert "SWINGTRADER_MAX_LOSING_STREAK" in doc and "--no-kill-switch" in doc
    sm = json.loads((out / "summary.json").read_text())
    assert sm["rules"]["kill_switch"] is False and sm["rules"]["stops"] is True and sm["table"]["Sharpe"] == f"{sm['sharpe']:.2f}"
    assert re.fullmatch(r"[-+]\d+\.\d\d%", sm["table"]["return"]) and re.fullmatch(r"\$[\d,]+\.\d\d", sm["table"]["final equity"])

def test_tearsheet_candles_for_a_chosen_symbol(res):
    sym = sorted(res.bars)[-1]
    doc = tearsheet_html(res, symbol=sym)
    assert f"<h2>Candles: {sym}</h2>" in doc

def run(args, data_dir, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_"))}
    env["SWINGTRADER_DATA_DIR"] = str(data_dir)
    return subprocess.run([str(BIN/"swingtrader"), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)

def test_backtest_command_flags_and_output(tmp_path):
    base = ["backtest", "--start", "2026-03-02", "--end", "2026-03-13", "--symbols", "6", "--seed", "5"]
    on = run(base + ["--out", str(tmp_path/"on")], tmp_path)
    off = run(base + ["--out", str(tmp_path/"off"), "--no-kill-switch", "--no-stops", "--no-caps", "--chart", "ra"], tmp_path)
    assert on.returncode == 0 and off.returncode == 0, (on.stderr[-2000:], off.stderr[-2000:])
    assert "rules: kill switch on" in on.stdout and "stops on" in on.stdout and "kill switch tripped" in on.stdout
    assert "rules: kill switch OFF" in off.stdout and "stops OFF" in off.stdout and "position 100%" in off.stdout
    assert "kill switch tripped" not in off.stdout and "Traceback" not in on.stderr + off.stderr
    assert "HALTED" not in on.stderr                                # the trip is in the results, not a live alert
    for label in ("return", "buy & hold", "CAGR", "Sharpe", "Sortino", "Calmar", "max drawdown", "longest drawdown", "win rate",
                  "profit factor", "expectancy", "time in the market", "trades", "average hold"):
        assert re.search(rf"^  {re.escape(label)}", on.stdout, re.M), label
    wrote = [Path(l.strip()) for l in on.stdout.split("wrote:\n", 1)[1].splitlines() if l.startswith("  ")]
    assert {p.name for p in wrote} >= {"tearsheet.html", "summary.json", "trades.csv"} and all(p.exists() for p in wrote)
    s_on, s_off = (json.loads((tmp_path/d/"summary.json").read_text()) for d in ("on", "off"))
    assert (s_on["rules"]["kill_switch"], s_off["rules"]["kill_switch"], s_off["rules"]["stops"]) == (True, False, False)
    assert s_off["rules"]["position_cap"] == 1.0 and s_on["halt"] == "halted" and s_off["halt"] == "active"
    assert s_off["trades"] > s_on["trades"]
    assert "<h2>Candles: RA</h2>" in (tmp_path/"off"/"tearsheet.html").read_text()
    bad = run(base[:3] + ["--end", "2026-03-03", "--symbols", "2", "--chart", "NOPE", "--out", str(tmp_path/"bad")], tmp_path)
    assert bad.returncode == 2 and "--chart NOPE is not one of the backtest's symbols" in bad.stderr
