"""swingtrader.positions end to end against the emulator: equities (bought in the simulator and seeded), equity calls and
puts long and short, a future and a future option, read through the tastytrade client and DXLink. Greeks are checked
against Black-Scholes written out in test_emulator_derivatives (1e-6), β-delta against its formula, totals against the
rows, and the API table against the same portfolio's CSV export. Then the CSV reader, errors and the CLI."""
from __future__ import annotations
import json, math
from datetime import timedelta
from decimal import Decimal

import pandas as pd
import pytest
from click.testing import CliRunner

import emu_support
from test_emulator_derivatives import expected_greeks
from swingtrader.config import Settings, SwingtraderError
from swingtrader.instruments import parse_future_option, parse_occ
from swingtrader.models import OrderRequest, Side
from swingtrader.positions import (PositionsError, band_warning, fetch_portfolio, read_positions_csv, totals, write_positions_csv)
from swingtrader.tastytrade.broker import TastytradeBroker

pytestmark = pytest.mark.timeout(180)


def _settings(srv, **kw):
    return Settings(broker="tastytrade", TT_CLIENT_SECRET="a", TT_REFRESH_TOKEN="b", TT_API_URL=srv.api_url, TT_STREAMER_URL=srv.streamer_url, **kw)


@pytest.fixture(scope="module")
def portfolio():
    "A served emulator with a mixed portfolio, and its positions table read through the tastytrade client."
    with emu_support.serve(broker=emu_support.make_broker(symbols=3)) as srv:
        emu, dv = srv.emu, srv.emu.derivatives
        u0, u1 = dv.underlyings()[:2]
        srv.call(lambda: emu.broker.submit(OrderRequest(u1, Side.BUY, Decimal(10))))      # an equity held in the simulator
        srv.call(lambda: emu.broker.advance_to(emu.clock.now() + timedelta(minutes=1)))
        exps, ks = dv.expirations(), dv.strikes(dv.spot(u0))
        n = len(ks) // 2
        rows = [(u0, 50, None), (parse_occ_sym(u0, exps[2], "C", ks[n + 1]), 2, 1.10), (parse_occ_sym(u0, exps[3], "P", ks[n - 2]), -3, 2.35),
                (parse_occ_sym(u0, exps[1], "C", ks[n + 3]), -1, 0.5), (parse_occ_sym(u0, exps[4], "P", ks[n]), 1, 3.0),
                (dv.futures()[0].symbol, 1, 5500.0), ([f for f in dv.future_options() if f.call_put == "P"][30].symbol, -2, 25.0)]
        for sym, q, p in rows: srv.call(lambda: dv.seed(sym, q, p))
        with TastytradeBroker(_settings(srv), clock=emu.clock) as b:
            pf = fetch_portfolio(b, wait=20)
        srv.seeded = {sym: p for sym, q, p in rows if p is not None}
        yield srv, pf


def parse_occ_sym(root, exp, cp, k):
    from swingtrader.instruments import OptionSymbol
    return OptionSymbol(root, exp, cp, k).occ


def test_every_position_is_normalised(portfolio):
    srv, pf = portfolio
    df = pf.table
    assert pf.fetched == len(df) == 8 and pf.problems == []
    assert sorted(df["asset_type"].value_counts().items()) == [("Equity", 2), ("Equity Option", 4), ("Future", 1), ("Future Option", 1)]
    assert (df["note"] == "").all() and df[["delta", "gamma", "theta", "vega", "mark", "underlying_price", "beta", "beta_delta"]].notna().all().all()
    opt = df[df["asset_type"] == "Equity Option"]
    assert set(opt["call_put"]) == {"C", "P"} and (opt["quantity"] > 0).any() and (opt["quantity"] < 0).any()
    assert (opt["multiplier"] == 100).all() and (df.loc[df["asset_type"].str.startswith("Future"), "multiplier"] == 50).all()
    assert pf.balances is not None and pf.account == srv.account_number


def test_greeks_match_black_scholes_to_1e_6(portfolio):
    srv, pf = portfolio
    for _, r in pf.table.iterrows():
        if r["asset_type"] == "Equity Option": sym = parse_occ(r["symbol"])
        elif r["asset_type"] == "Future Option": sym = parse_future_option(r["symbol"])
        else:
            assert (r["delta"], r["gamma"], r["theta"], r["vega"]) == (1.0, 0.0, 0.0, 0.0)
            continue
        exp = expected_greeks(srv.emu, r["asset_type"], sym, r["underlying_price"])
        for k in ("delta", "gamma", "theta", "vega"): assert r[k] == pytest.approx(exp[k], abs=1e-6), (r["symbol"], k)
        assert r["bid"] <= exp["price"] + 1e-9 and exp["price"] <= r["ask"] + 1e-9
        assert r["dte"] == (sym.expiry - srv.emu.clock.now().date()).days


def test_beta_delta_formula_and_totals(portfolio):
    srv, pf = portfolio
    df, spy = pf.table, pf.spy_price
    u = srv.emu.broker.universe
    assert 300 < spy < 900
    for _, r in df.iterrows():
        beta = 1.0 if r["root"] in ("/ES", "SPY") else float(u.loc[r["root"], "beta"])
        assert r["beta"] == pytest.approx(beta)
        assert r["beta_delta"] == pytest.approx(beta * r["underlying_price"] * r["delta"] * r["multiplier"] * r["quantity"] / spy, rel=1e-12)
        if r["symbol"] in srv.seeded: assert r["cost"] == pytest.approx(srv.seeded[r["symbol"]] * r["quantity"] * r["multiplier"])
        assert r["pl_open"] == pytest.approx(r["mark"] * r["quantity"] * r["multiplier"] - r["cost"])
    t = totals(df)
    size = df["quantity"] * df["multiplier"]
    for g in ("delta", "gamma", "theta", "vega"):
        assert t["overall"][g] == pytest.approx((df[g] * size).sum())
        assert t["by_underlying"][g].sum() == pytest.approx(t["overall"][g]) and t["by_expiry"][g].sum() == pytest.approx(t["overall"][g])
    assert t["overall"]["beta_delta"] == pytest.approx(df["beta_delta"].sum())
    assert t["overall"]["positions"] == 8 and t["by_underlying"]["positions"].sum() == 8
    assert set(t["by_underlying"].index) == set(df["root"])
    assert band_warning(t["overall"]["beta_delta"], -1e9, 1e9) is None
    w = band_warning(t["overall"]["beta_delta"], -0.5, 0.5)
    assert w.startswith("warning: β-weighted delta ") and "the band [-0.5, 0.5]" in w
    with pytest.raises(SwingtraderError): band_warning(1.0, 1.0, 1.0)


def test_api_and_csv_export_agree(portfolio, tmp_path):
    srv, pf = portfolio
    f = tmp_path / "positions.csv"
    f.write_text(write_positions_csv(pf.table))
    back = read_positions_csv(f, today=srv.emu.clock.now().date(), spy_price=pf.spy_price)
    a, b = pf.table.drop(columns="note"), back.drop(columns="note")
    assert list(a["symbol"]) == list(b["symbol"]) and list(a["asset_type"]) == list(b["asset_type"])
    assert list(a["exp_date"]) == list(b["exp_date"]) and list(a["dte"]) == list(b["dte"])
    num = [c for c in a.columns if c not in ("symbol", "root", "asset_type", "exp_date", "dte", "call_put")]
    pd.testing.assert_frame_equal(a[num].astype(float), b[num].astype(float), rtol=1e-8)


def test_a_position_whose_greeks_do_not_arrive_is_reported_not_dropped(tmp_path):
    with emu_support.serve(broker=emu_support.make_broker(symbols=2)) as srv:
        dv = srv.emu.derivatives
        occ = dv.option_chain(dv.underlyings()[0])[5].occ
        srv.call(lambda: dv.seed(occ, 1, 1.0))
        srv.call(lambda: srv.emu.update_faults(ws_drop_rate=1.0))     # DXLink says nothing
        with TastytradeBroker(_settings(srv), clock=srv.emu.clock) as b:
            pf = fetch_portfolio(b, wait=1.0)
    assert list(pf.table["symbol"]) == [occ]
    r = pf.table.iloc[0]
    assert math.isnan(r["delta"]) and "did not arrive within 1 s" in r["note"]
    assert r["mark"] > 0 and r["multiplier"] == 100                      # the REST facts are still there
    assert any(s == "SPY" for s, _ in pf.problems)


REALISTIC = """Account,Symbol,Type,Quantity,Exp Date,DTE,Strike Price,Call/Put,Underlying Last Price,P/L Open,P/L Day,Trade Price,IV Rank,Delta,Bid (Sell),Ask (Buy),D's Opn,β Delta,Days To Expiration,Indicators,Mark,Theta,Vega,Gamma,Beta
5WT00001,AAPL,STOCK,100,,,,,"$231.50","$1,150.00",$12.00,220.00,23.1,100,231.45,231.55,12,"118.12",,,231.50,0,0,0,1.19
5WT00001,AAPL  260116C00250000,OPTION,2,1/16/26,42,250,CALL,231.50,(120.00),-5.00,4.10,23.1,70.0,3.40,3.60,5,82.68,42d,,3.50,-8.0,42.0,1.9,1.19
5WT00001,SPY   260220P00500000,OPTION,-1,2/20/26,77,500,PUT,560.00,85.00,3.00,6.00,15.0,25.0,5.10,5.20,9,25.0,77d,,5.15,4.5,-60.0,-0.8,1.0
5WT00001,/ESH6,FUTURE,1,3/20/26,105,,,5620.00,"2,500.00",,5570.00,,50,5619.75,5620.25,3,502.5,,,5620.00,0,0,0,1.0
5WT00001,./ESH6 EW2H6 260313P5500,FUTURES OPTION,-1,3/13/26,98,5500,PUT,5620.00,300.00,,31.00,,12.5,24.75,25.25,2,125.4,,,25.00,80,-150,-0.05,1.0
"""


def test_a_realistic_tastytrade_export(tmp_path):
    from datetime import date
    f = tmp_path / "tastytrade_positions_2025-12-05.csv"
    f.write_text("\ufeff" + REALISTIC, encoding="utf-8")
    df = read_positions_csv(f, today=date(2025, 12, 5))
    assert list(df["asset_type"]) == ["Equity", "Equity Option", "Equity Option", "Future", "Future Option"]
    assert list(df["quantity"]) == [100, 2, -1, 1, -1] and list(df["multiplier"]) == [1, 100, 100, 50, 50]
    c = df.iloc[1]
    assert (c["strike"], c["call_put"], c["dte"], c["mark"], c["underlying_price"]) == (250.0, "C", 42, 3.5, 231.5)
    assert c["delta"] == pytest.approx(70 / 200) and c["theta"] == pytest.approx(-8 / 200) and c["beta_delta"] == pytest.approx(82.68)
    assert c["cost"] == pytest.approx(820.0) and c["pl_open"] == pytest.approx((3.5 - 4.1) * 200)
    assert df.iloc[2]["delta"] == pytest.approx(25 / -100) and df.iloc[4]["root"] == "/ES"
    assert df.iloc[0]["delta"] == 1.0 and df.iloc[3]["underlying_price"] == 5620.0
    t = totals(df)
    assert t["overall"]["beta_delta"] == pytest.approx(118.12 + 82.68 + 25.0 + 502.5 + 125.4)


@pytest.mark.parametrize("text,line,words", [
    ("Symbol,Quantity\nAAPL,10\nMSFT,ten\n", 3, "quantity 'ten' is not a number"),
    ("Symbol,Quantity,Exp Date\nAAPL,10,\nAAPL  260116C00250000,1,16.01.2026\n", 3, "is not a date"),
    ("Symbol,Quantity\nAAPL,10\n\nAAPL 260116X250,1\n", 4, "not a symbol"),
    ("Symbol,Type,Quantity\n/ESH6,STOCK,1\n", 2, "is a Future, not 'STOCK'"),
    ("Symbol,Quantity\nAAPL,\n", 2, "has no quantity"),
    ("Ticker,Shares\nAAPL,10\n", 1, "no symbol or quantity column"),
])
def test_malformed_csv_rows_are_named_with_their_line(tmp_path, text, line, words):
    f = tmp_path / "p.csv"; f.write_text(text)
    with pytest.raises(PositionsError) as e: read_positions_csv(f)
    assert f"line {line}" in e.value.problem and words in e.value.problem, e.value.problem


def test_csv_file_problems(tmp_path):
    with pytest.raises(PositionsError, match="Cannot read"): read_positions_csv(tmp_path / "missing.csv")
    (tmp_path / "e.csv").write_text("\n\n")
    with pytest.raises(PositionsError, match="is empty"): read_positions_csv(tmp_path / "e.csv")


# -- the CLI

def _cli(args, clean_env, **env):
    from swingtrader import cli
    for k, v in env.items(): clean_env.setenv(k, v)
    return CliRunner().invoke(cli.main, args)


def test_cli_csv_table_and_json(tmp_path, clean_env):
    f = tmp_path / "pos.csv"; f.write_text(REALISTIC)
    r = _cli(["positions", "--csv", str(f)], clean_env)
    assert r.exit_code == 0, r.output
    assert "5 positions fetched, 5 normalised" in r.output and "Future Option" in r.output and "by expiry:" in r.output
    r = _cli(["positions", "--csv", str(f), "--json"], clean_env)
    j = json.loads(r.output)
    assert j["normalised"] == 5 and j["positions"][1]["symbol"] == "AAPL  260116C00250000" and j["totals"]["overall"]["positions"] == 5


def test_cli_bad_csv_is_one_error_line(tmp_path, clean_env):
    f = tmp_path / "pos.csv"; f.write_text("Symbol,Quantity\nAAPL,10\nMSFT,lots\n")
    r = _cli(["positions", "--csv", str(f)], clean_env)
    assert r.exit_code == 2 and r.output.strip().count("\n") == 0 and r.output.startswith("error: ") and "line 3" in r.output, r.output


def test_cli_band_warning(tmp_path, clean_env):
    f = tmp_path / "pos.csv"; f.write_text(REALISTIC)
    r = _cli(["positions", "--csv", str(f)], clean_env, SWINGTRADER_POSITIONS_BETA_DELTA_BAND="100")
    assert r.exit_code == 0 and "warning: β-weighted delta 853.7 SPY shares is above the band [-100, 100]" in r.output, r.output


def test_cli_demo_on_the_simulator_by_default(clean_env):
    r = _cli(["positions", "--json"], clean_env)
    assert r.exit_code == 0, r.output
    j = json.loads(r.output)
    kinds = {p["asset_type"] for p in j["positions"]}
    assert j["source"] == "demo" and kinds == {"Equity", "Equity Option", "Future", "Future Option"} and j["problems"] == []
    assert all(p["delta"] is not None for p in j["positions"])


def test_cli_against_tastytrade_unknown_account_empty_account_and_credentials(clean_env):
    with emu_support.serve(broker=emu_support.make_broker(symbols=2)) as srv:
        env = dict(SWINGTRADER_BROKER="tastytrade", TT_CLIENT_SECRET="a", TT_REFRESH_TOKEN="b", TT_API_URL=srv.api_url, TT_STREAMER_URL=srv.streamer_url,
                   SWINGTRADER_POSITIONS_GREEKS_WAIT="2")
        r = _cli(["positions", "--account", "5WT99999"], clean_env, **env)
        assert r.exit_code == 2 and "5WT99999" in r.output and srv.account_number in r.output and r.output.startswith("error: "), r.output
        r = _cli(["positions"], clean_env, **env)
        assert r.exit_code == 0 and "0 positions fetched" in r.output and r.output.rstrip().endswith("no positions"), r.output
    clean_env.delenv("TT_CLIENT_SECRET"); clean_env.delenv("TT_REFRESH_TOKEN")
    r = _cli(["positions"], clean_env)
    assert r.exit_code == 2 and "TT_CLIENT_SECRET" in r.output and "Traceback" not in r.output, r.output


def test_an_option_order_through_the_official_sdk_becomes_a_position_with_greeks(tmp_path, monkeypatch):
    "tastytrade-sdk's Api posts a two-leg option order and a futures order to the emulator (TLS); both fill and show up with greeks."
    import requests
    from tastytrade_sdk import Tastytrade
    from tastytrade_sdk.api import RequestsSession, Unprocessable
    from swingtrader.instruments import OptionSymbol
    with emu_support.serve(broker=emu_support.make_broker(symbols=2), tls=True, tmp_path=tmp_path) as srv:
        ca, dv = str(srv.ca_file), srv.emu.derivatives
        u = dv.underlyings()[0]
        ks, exp = dv.strikes(dv.spot(u)), dv.expirations()[2]
        call, put = OptionSymbol(u, exp, "C", ks[11]), OptionSymbol(u, exp, "P", ks[9])
        fut = dv.futures()[0]
        tok = requests.post(srv.api_url + "/oauth/token", json={"grant_type": "refresh_token", "client_secret": "a", "refresh_token": "b"},
                            headers=emu_support.UA, verify=ca, timeout=10).json()["access_token"]
        session = RequestsSession._RequestsSession__session
        old = dict(session.headers), session.verify
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
        session.headers["Authorization"] = f"Bearer {tok}"; session.verify = ca
        try:
            api = Tastytrade(api_base_url=srv.api_url.removeprefix("https://")).api
            path = f"/accounts/{srv.account_number}/orders"
            strangle = {"time-in-force": "Day", "order-type": "Limit", "price": "0.05", "price-effect": "Credit", "legs": [
                {"instrument-type": "Equity Option", "symbol": call.occ, "quantity": 2, "action": "Sell to Open"},
                {"instrument-type": "Equity Option", "symbol": put.occ, "quantity": 2, "action": "Sell to Open"}]}
            dry = api.post(path + "/dry-run", data=strangle)["data"]
            assert dry["order"]["status"] == "Received" and "id" not in dry["order"] and call.occ not in dv.seeded
            placed = api.post(path, data=strangle)["data"]["order"]
            assert placed["status"] == "Filled" and placed["size"] == 2 and all(len(leg["fills"]) == 1 for leg in placed["legs"])
            f = api.post(path, data={"time-in-force": "Day", "order-type": "Market", "legs": [
                {"instrument-type": "Future", "symbol": fut.symbol, "quantity": 1, "action": "Buy"}]})["data"]["order"]
            assert f["status"] == "Filled" and f["underlying-instrument-type"] == "Future"
            with pytest.raises(Unprocessable):   # buying for a credit is refused, as tastytrade does
                api.post(path, data=strangle | {"legs": [dict(leg, action="Buy to Open") for leg in strangle["legs"]]})
        finally:
            session.headers.clear(); session.headers.update(old[0]); session.verify = old[1]
        with TastytradeBroker(_settings(srv), clock=srv.emu.clock, verify=ca) as b:
            pf = fetch_portfolio(b, wait=20)
    df = pf.table.set_index("symbol")
    assert list(df.loc[[call.occ, put.occ, fut.symbol], "quantity"]) == [-2, -2, 1]
    assert df.loc[[call.occ, put.occ], ["delta", "gamma", "theta", "vega"]].notna().all().all() and (df["note"] == "").all()
    assert df.loc[call.occ, "delta"] > 0 > df.loc[put.occ, "delta"]


class _FakeApi:
    "Canned tastytrade replies for a portfolio the emulator cannot list (unknown products, crypto)."
    def __init__(self, replies): self.replies, self.calls = replies, []
    def get(self, path, params=()):
        self.calls.append((path, list(params)))
        return self.replies.get(path, {"data": {"items": []}})


class _FakeBroker:
    def __init__(self, positions):
        from types import SimpleNamespace
        from swingtrader.clock import SimClock
        from datetime import datetime, timezone
        self.account_number = "5WT00042"
        self.clock = SimClock(datetime(2026, 3, 2, 15, tzinfo=timezone.utc))
        self.transport = SimpleNamespace(session=SimpleNamespace(verify=True))
        self.api = _FakeApi({f"/accounts/{self.account_number}/positions": {"data": {"items": positions}},
                             "/api-quote-tokens": {"data": {"token": "t", "dxlink-url": "ws://127.0.0.1:9/none", "level": "api"}}})
    def account(self): return None


def _pos(sym, it, q, mult=None, **kw):
    d = {"symbol": sym, "instrument-type": it, "quantity": q, "quantity-direction": "Long", "average-open-price": "1.0", "mark-price": "1.5"}
    if mult is not None: d["multiplier"] = mult
    return d | kw


def test_positions_that_cannot_be_normalised_are_listed_with_the_reason():
    b = _FakeBroker([_pos("AAPL", "Equity", 10, 1), _pos("BTC/USD", "Cryptocurrency", "0.5"), _pos("/ZBH6", "Future", 1),
                     _pos("./ZBH6 OZBH6 260220C118", "Future Option", 2, 1000, **{"streamer-symbol": "./OZBH26C118:XCBT"}),
                     _pos("AAPL  260116C00150000", "Equity Option", 1, 100), _pos("MSFT", "Equity", 0, 1, **{"quantity-direction": "Zero"})])
    pf = fetch_portfolio(b, wait=0.5)
    reasons = dict(pf.problems)
    assert pf.fetched == 5 and pf.normalised == 3                # the closed MSFT line is not a position
    assert "not a symbol" in reasons["BTC/USD"] and "/ZB" in reasons["/ZBH6"] and reasons["/ZBH6"].startswith("left out")
    df = pf.table.set_index("symbol")
    fo = df.loc["./ZBH6 OZBH6 260220C118"]
    assert (fo["multiplier"], fo["strike"], fo["call_put"], fo["root"]) == (1000.0, 118.0, "C", "/ZB")     # the position's multiplier wins
    assert "did not arrive" in fo["note"] and "did not arrive" in df.loc["AAPL  260116C00150000", "note"]  # no DXLink here: reported, kept
    assert df.loc["AAPL", "delta"] == 1.0 and df.loc["AAPL", "pl_open"] == pytest.approx(5.0)
    assert ("/instruments/equity-options", [("symbol[]", "AAPL  260116C00150000")]) in b.api.calls
