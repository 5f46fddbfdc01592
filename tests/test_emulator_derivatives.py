"""The emulator's options and futures: instruments and chains on REST (keys and types as in tastytrade's captured
replies), seeded positions with marks, market metrics, the official tastytrade-sdk's symbol translation through these
endpoints, and DXLink Greeks/Quote/Summary/Profile events over the real websocket with independently computed greeks."""
from __future__ import annotations
import asyncio, json, math
from datetime import date, datetime, time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from scipy.stats import norm

import emu_support
from swingtrader.instruments import OptionSymbol, parse_future_option

pytestmark = pytest.mark.timeout(120)
FX = Path(__file__).parent / "fixtures" / "tastytrade"
NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def srv():
    with emu_support.serve(broker=emu_support.make_broker(symbols=3)) as s:
        yield s


@pytest.fixture(scope="module")
def client(srv):
    return emu_support.Client(srv)


def _shape(fix, got, path=""):
    "Every key of the fixture is in `got` with a value of the same JSON type (recursively for objects, first list item)."
    assert isinstance(got, type(fix)) or (isinstance(fix, (int, float)) and isinstance(got, (int, float)) and not isinstance(got, bool)), \
        f"{path}: {type(got).__name__} where tastytrade sends {type(fix).__name__}"
    if isinstance(fix, dict):
        missing = sorted(set(fix) - set(got))
        assert not missing, f"{path}: missing keys {missing}"
        for k in fix: _shape(fix[k], got[k], f"{path}.{k}")
    elif isinstance(fix, list) and fix and got:
        _shape(fix[0], got[0], f"{path}[0]")


def test_future_instrument_matches_tastytrades_keys_and_types(srv, client):
    fix = json.loads((FX / "rest_get_instruments_futures_RBM5.json").read_text())["data"]
    fut = srv.emu.derivatives.futures()[0]
    r = client.req("GET", "/instruments/futures/" + fut.symbol.replace("/", "%2F"))
    assert r.status_code == 200, r.text
    _shape(fix, r.json()["data"])
    j = r.json()["data"]
    assert (j["symbol"], j["notional-multiplier"], j["tick-size"], j["streamer-symbol"]) == (fut.symbol, "50.0", "0.25", fut.streamer())
    lst = client.req("GET", "/instruments/futures", params={"product-code[]": "ES"}).json()["data"]["items"]
    assert [x["symbol"] for x in lst] == [f.symbol for f in srv.emu.derivatives.futures()] and lst[0]["active-month"] is True


def test_future_option_chain_matches_tastytrades_keys_and_types(srv, client):
    fix = json.loads((FX / "rest_get_futures_option_chains_GC.json").read_text())["data"]["items"][0]
    r = client.req("GET", "/futures-option-chains/ES")
    assert r.status_code == 200, r.text
    items = r.json()["data"]["items"]
    assert len(items) > 10
    _shape(fix, items[0])
    for it in items[:20]:
        fo = parse_future_option(it["symbol"])
        assert fo.streamer() == it["streamer-symbol"] and it["underlying-symbol"] == fo.future.symbol
    one = client.req("GET", "/instruments/future-options/" + items[0]["symbol"].replace("/", "%2F").replace(" ", "%20"))
    assert one.status_code == 200 and one.json()["data"]["symbol"] == items[0]["symbol"]
    nested = client.req("GET", "/futures-option-chains/ES/nested").json()["data"]
    exp = nested["option-chains"][0]["expirations"][0]
    assert nested["futures"][0]["active-month"] is True and exp["strikes"][0]["call-streamer-symbol"].startswith("./")


def test_equity_option_chain_nested_and_instruments(srv, client):
    dv = srv.emu.derivatives
    u = dv.underlyings()[0]
    r = client.req("GET", f"/option-chains/{u}/nested")
    assert r.status_code == 200, r.text
    item = r.json()["data"]["items"][0]
    assert item["underlying-symbol"] == u and item["shares-per-contract"] == 100
    e = item["expirations"][0]
    s = e["strikes"][0]
    o = OptionSymbol(u, date.fromisoformat(e["expiration-date"]), "C", __import__("decimal").Decimal(s["strike-price"]))
    assert (s["call"], s["call-streamer-symbol"]) == (o.occ, o.streamer)
    got = client.req("GET", "/instruments/equity-options", params=[("symbol[]", s["call"]), ("symbol[]", s["put"]), ("symbol[]", "NOPE")]).json()["data"]["items"]
    assert [g["symbol"] for g in got] == [s["call"], s["put"]]
    assert got[0]["streamer-symbol"] == s["call-streamer-symbol"] and got[0]["option-type"] == "C" and got[0]["shares-per-contract"] == 100
    assert client.req("GET", "/instruments/equity-options/" + s["call"].replace(" ", "%20")).status_code == 200
    assert client.req("GET", "/option-chains/NOPE/nested").status_code == 404
    assert client.req("GET", "/instruments/futures/%2FZZZ9").status_code == 404


def test_derivative_routes_need_a_bearer(srv):
    import requests
    r = requests.get(srv.api_url + "/futures-option-chains/ES", headers=emu_support.UA, timeout=10)
    assert r.status_code == 401


def test_seeded_positions_with_marks_and_metrics(srv, client):
    dv = srv.emu.derivatives
    u = dv.underlyings()[0]
    occ = dv.option_chain(u)[7].occ
    fut = dv.futures()[0].symbol
    import requests
    seed = lambda body: requests.post(srv.api_url + "/_emulator/derivative-positions", json=body, headers=srv.control_headers, timeout=10)
    assert seed([{"symbol": occ, "quantity": -2, "price": 1.25}, {"symbol": fut, "quantity": 1}]).status_code == 200
    bad = seed({"symbol": "ZZZZ  990101C00001000", "quantity": 1})
    assert bad.status_code == 422 and "not an instrument" in bad.json()["error"]["message"]
    items = client.req("GET", f"/accounts/{srv.account_number}/positions", params={"include-marks": "true"}).json()["data"]["items"]
    by = {i["symbol"]: i for i in items}
    o = by[occ]
    assert (o["instrument-type"], o["quantity"], o["quantity-direction"], o["multiplier"], o["average-open-price"]) == ("Equity Option", 2, "Short", 100, "1.25")
    assert float(o["mark"]) == pytest.approx(float(o["mark-price"]) * 2 * 100, abs=0.01) and o["streamer-symbol"].startswith(".")
    f = by[fut]
    assert (f["instrument-type"], f["multiplier"], f["underlying-symbol"]) == ("Future", 50, fut) and "mark-price" in f
    plain = client.req("GET", f"/accounts/{srv.account_number}/positions").json()["data"]["items"]
    assert all("mark" not in p for p in plain)
    m = client.req("GET", "/market-metrics", params={"symbols": f"{u},SPY,/ES"}).json()["data"]["items"]
    ms = {x["symbol"]: x for x in m}
    assert set(ms) == {u, "SPY", "/ES"}
    for x in ms.values():
        assert 0 <= float(x["implied-volatility-index-rank"]) <= 1 and float(x["beta"]) > 0 and "market-cap" in x


def test_the_official_sdk_translates_option_and_future_symbols(tmp_path, monkeypatch):
    """tastytrade-sdk's own Api and StreamerSymbolTranslationsFactory (which MarketData.subscribe uses) read
    /instruments/{equities,futures,equity-options,future-options} over TLS; as in test_emulator_sdk_marketdata.py the
    OAuth token is set on the SDK's requests session (its own login calls the removed POST /sessions)."""
    import requests
    from tastytrade_sdk import Tastytrade
    from tastytrade_sdk.api import RequestsSession
    from tastytrade_sdk.market_data.streamer_symbol_translation import StreamerSymbolTranslationsFactory
    with emu_support.serve(broker=emu_support.make_broker(symbols=2), tls=True, tmp_path=tmp_path) as tsrv:
        ca = str(tsrv.ca_file)
        dv = tsrv.emu.derivatives
        u = dv.underlyings()[0]
        o, fut, fo = dv.option_chain(u)[3], dv.futures()[0], dv.future_options()[2]
        tok = requests.post(tsrv.api_url + "/oauth/token", json={"grant_type": "refresh_token", "client_secret": "a", "refresh_token": "b"},
                            headers=emu_support.UA, verify=ca, timeout=10).json()["access_token"]
        session = RequestsSession._RequestsSession__session
        old = dict(session.headers), session.verify
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
        session.headers["Authorization"] = f"Bearer {tok}"; session.verify = ca
        try:
            tt = Tastytrade(api_base_url=tsrv.api_url.removeprefix("https://"))
            tr = StreamerSymbolTranslationsFactory(tt.api).create([u, o.occ, fut.symbol, fo.symbol])
        finally:
            session.headers.clear(); session.headers.update(old[0]); session.verify = old[1]
    assert tr.get_streamer_symbol(u) == u
    assert tr.get_streamer_symbol(o.occ) == o.streamer
    assert tr.get_streamer_symbol(fut.symbol) == fut.streamer()
    assert tr.get_streamer_symbol(fo.symbol) == fo.streamer()
    assert tr.get_original_symbol(fo.streamer()) == fo.symbol


def _bs(S, K, T, r, vol, cp, q=0.0):
    "Black-Scholes-Merton written out independently: price, delta, gamma, theta/day, vega per vol point."
    d1 = (math.log(S / K) + (r - q + vol ** 2 / 2) * T) / (vol * math.sqrt(T)); d2 = d1 - vol * math.sqrt(T)
    if cp == "C":
        price = S * math.exp(-q * T) * norm.cdf(d1) - K * math.exp(-r * T) * norm.cdf(d2); delta = math.exp(-q * T) * norm.cdf(d1)
        theta = -S * math.exp(-q * T) * norm.pdf(d1) * vol / (2 * math.sqrt(T)) - r * K * math.exp(-r * T) * norm.cdf(d2) + q * S * math.exp(-q * T) * norm.cdf(d1)
    else:
        price = K * math.exp(-r * T) * norm.cdf(-d2) - S * math.exp(-q * T) * norm.cdf(-d1); delta = -math.exp(-q * T) * norm.cdf(-d1)
        theta = -S * math.exp(-q * T) * norm.pdf(d1) * vol / (2 * math.sqrt(T)) + r * K * math.exp(-r * T) * norm.cdf(-d2) - q * S * math.exp(-q * T) * norm.cdf(-d1)
    gamma = math.exp(-q * T) * norm.pdf(d1) / (S * vol * math.sqrt(T))
    vega = S * math.exp(-q * T) * norm.pdf(d1) * math.sqrt(T) / 100
    return {"price": price, "delta": delta, "gamma": gamma, "theta": theta / 365, "vega": vega}


def _vol(base, K, F, T):
    "The documented surface: atm(T) = base (1 + 0.15 e^-4T); x (1 - 0.6 m + 1.2 m^2), m = ln K/F; clamped to [0.05, 3]."
    m = math.log(K / F)
    return min(3.0, max(0.05, base * (1 + 0.15 * math.exp(-4 * T)) * (1 - 0.6 * m + 1.2 * m * m)))


def expected_greeks(emu, kind, sym_obj, underlying_price):
    r = 0.04
    exp = sym_obj.expiry
    T = max((datetime.combine(exp, dtime(16), NY) - emu.clock.now()).total_seconds(), 60) / (365 * 86400)
    K = float(sym_obj.strike)
    if kind == "Equity Option":
        base = float(emu.broker.universe.loc[sym_obj.root, "vol"])
        return _bs(underlying_price, K, T, r, _vol(base, K, underlying_price * math.exp(r * T), T), sym_obj.call_put)
    return _bs(underlying_price, K, T, r, _vol(0.16, K, underlying_price, T), sym_obj.call_put, q=r)   # Black-76


def test_dxlink_greeks_quote_summary_profile_over_the_websocket(srv):
    from swingtrader.dxlink.streamer import DXLinkStreamer
    dv = srv.emu.derivatives
    u = dv.underlyings()[0]
    o = dv.option_chain(u)[11]
    fut = dv.futures()[0]
    fo = dv.future_options()[9]
    syms = [o.streamer, fut.streamer(), fo.streamer()]
    body = emu_support.Client(srv).req("GET", "/api-quote-tokens").json()["data"]

    async def go():
        st = DXLinkStreamer(lambda: body)
        got = {}
        await st.start()
        ev = st.events({"Greeks", "Quote", "Summary", "Profile"}, conflate=False).__aiter__()
        for t in ("Greeks", "Quote", "Summary", "Profile"): await st.subscribe(t, syms + [u, "SPY"])
        want = {(t, s) for t in ("Quote", "Summary", "Profile") for s in syms} | {("Greeks", o.streamer), ("Greeks", fo.streamer()), ("Quote", "SPY"), ("Quote", u)}
        try:
            while not want <= got.keys():
                e = await asyncio.wait_for(ev.__anext__(), 30)
                got[(type(e).__name__, e.eventSymbol)] = e
        finally: await st.close()
        return got
    got = asyncio.run(go())
    S = (got[("Quote", u)].bidPrice + got[("Quote", u)].askPrice) / 2
    exp = expected_greeks(srv.emu, "Equity Option", o, S)
    g = got[("Greeks", o.streamer)]
    for k in ("price", "delta", "gamma", "theta", "vega"): assert getattr(g, k) == pytest.approx(exp[k], abs=1e-6), k
    F = dv.future_price(fut)
    assert (got[("Quote", fut.streamer())].bidPrice + got[("Quote", fut.streamer())].askPrice) / 2 == pytest.approx(F, abs=0.25)
    exp = expected_greeks(srv.emu, "Future Option", fo, F)
    g = got[("Greeks", fo.streamer())]
    for k in ("price", "delta", "gamma", "theta", "vega"): assert getattr(g, k) == pytest.approx(exp[k], abs=1e-6), k
    q = got[("Quote", o.streamer)]
    assert q.bidPrice < got[("Greeks", o.streamer)].price < q.askPrice or q.bidPrice == 0
    assert got[("Summary", o.streamer)].openInterest > 0 and got[("Profile", fo.streamer())].tradingStatus == "ACTIVE"
    spy = got[("Quote", "SPY")]
    assert 0 < spy.bidPrice < spy.askPrice


def _leg(sym, it="Equity Option", q=1, act="Buy to Open"): return {"instrument-type": it, "symbol": sym, "quantity": q, "action": act}


@pytest.mark.parametrize("make,code", [
    (lambda o, f: {"order-type": "Limit", "price": "1", "price-effect": "Debit", "legs": [_leg(o[0])] * 2}, "duplicate_legs"),
    (lambda o, f: {"order-type": "Limit", "price": "1", "price-effect": "Debit", "legs": [_leg(x) for x in o[:5]]}, "invalid_legs"),
    (lambda o, f: {"order-type": "Market", "legs": [_leg(o[0]), _leg(o[1])]}, "invalid_order_type"),
    (lambda o, f: {"order-type": "Market", "time-in-force": "GTC", "legs": [_leg(o[0])]}, "gtc_market_orders_not_supported"),
    (lambda o, f: {"order-type": "Stop", "stop-trigger": "1", "legs": [_leg(o[0])]}, "order_type_not_supported"),
    (lambda o, f: {"order-type": "Limit", "price": "1", "legs": [_leg(o[0])]}, "invalid_price_effect"),
    (lambda o, f: {"order-type": "Limit", "price": "1", "price-effect": "Debit", "legs": [_leg(o[0], act="Sell to Open")]}, "cant_sell_for_debit"),
    (lambda o, f: {"order-type": "Limit", "price": "1", "price-effect": "Debit", "legs": [_leg(o[0], q=1.5)]}, "invalid_quantity"),
    (lambda o, f: {"order-type": "Limit", "price": "1", "price-effect": "Debit", "legs": [_leg(o[0], act="Buy")]}, "invalid_action"),
    (lambda o, f: {"order-type": "Limit", "price": "1", "price-effect": "Debit", "legs": [_leg(o[0], it="Future Option")]}, "invalid_instrument_type"),
    (lambda o, f: {"order-type": "Market", "legs": [_leg("ZZZZ  990101C00001000")]}, "invalid_symbol"),
    (lambda o, f: {"order-type": "Market", "legs": [_leg(f, it="Future", act="Buy"), _leg(o[0])]}, "invalid_legs"),
])
def test_derivative_order_preflight_rejections(srv, client, make, code):
    dv = srv.emu.derivatives
    opts = [o.occ for o in dv.option_chain(dv.underlyings()[1])[:6]]
    before = dict(dv.seeded)
    r = client.req("POST", f"/accounts/{srv.account_number}/orders", json=make(opts, dv.futures()[0].symbol))
    assert r.status_code == 422, r.text
    e = r.json()["error"]
    assert e["code"] == "preflight_check_failure" and e["errors"][0]["code"] == code, e
    assert dv.seeded == before


def test_a_limit_that_is_not_marketable_stays_live_and_does_not_fill(srv, client):
    dv = srv.emu.derivatives
    o = dv.option_chain(dv.underlyings()[2])[20]
    r = client.req("POST", f"/accounts/{srv.account_number}/orders",
                   json={"order-type": "Limit", "time-in-force": "Day", "price": "0.0", "price-effect": "Debit", "legs": [_leg(o.occ)]})
    assert r.status_code == 201, r.text
    assert r.json()["data"]["order"]["status"] == "Live" and o.occ not in dv.seeded


def test_greeks_follow_the_simulated_market():
    "Live updates: as simulated time passes, a subscribed option's Greeks and Quote events arrive again with new values."
    from swingtrader.dxlink.streamer import DXLinkStreamer
    from datetime import timedelta
    with emu_support.serve(broker=emu_support.make_broker(symbols=2)) as srv:
        dv, emu = srv.emu.derivatives, srv.emu
        o = dv.option_chain(dv.underlyings()[0])[20]
        body = emu_support.Client(srv).req("GET", "/api-quote-tokens").json()["data"]

        async def go():
            st = DXLinkStreamer(lambda: body)
            seen = []
            await st.start()
            q = asyncio.Queue()
            async def pump():
                async for e in st.events({"Greeks"}, conflate=False): q.put_nowait(e)
            task = asyncio.create_task(pump())
            await st.subscribe("Greeks", [o.streamer])
            try:
                seen.append(await asyncio.wait_for(q.get(), 30))
                loop = asyncio.get_running_loop(); end = loop.time() + 60
                while loop.time() < end and len({(e.time, e.price) for e in seen}) < 3:
                    await asyncio.to_thread(srv.call, lambda: emu.broker.advance_to(emu.clock.now() + timedelta(minutes=5)))
                    try: seen.append(await asyncio.wait_for(q.get(), 2))
                    except asyncio.TimeoutError: pass
            finally:
                await st.close(); task.cancel()
            return seen
        seen = asyncio.run(go())
    assert len({(e.time, e.price) for e in seen}) >= 3, seen
    assert all(e.eventSymbol == o.streamer and 0 < e.delta < 1 for e in seen)
