"""`market_buy_passes` is a shortcut of `check_order` for market buys: when it says True, `check_order` must accept the same
order in the same engine state. Random closes, spreads, slippage, commissions, tick sizes, quantities (whole and
fractional), account types, cash and held positions, including orders at the edge of the buying power."""
from datetime import datetime, timezone
from decimal import Decimal

from hypothesis import given, settings, strategies as st

from swingtrader.models import Asset, OrderRequest, Side
from swingtrader.sim.account import SessionTable, SimAccount, to_ns
from swingtrader.sim.book import EngineConfig, FillMode
from swingtrader.sim.checks import Reject, check_order, market_buy_passes
from swingtrader.sim.engine import MatchingEngine

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)     # 10:00 New York: the session is open
NOW = to_ns(T0) + 60 * 10**9
SESSIONS = SessionTable()


def engine(close, spread, slip, commission, tick, account_type, cash, held):
    e = MatchingEngine({"XYZ": Asset("XYZ", fractionable=True), "W": Asset("W", fractionable=False), "H": Asset("H")},
                       SimAccount(cash=cash, account_type=account_type),
                       EngineConfig(slippage_bps=slip, commission_per_share=commission, fill_at="close" if commission == 0 else "quote"),
                       sessions=SESSIONS, spread_bps={"XYZ": spread, "W": spread, "H": spread})
    for s in ("XYZ", "W"):
        b = e.books[s]
        b.last_close, b.last_vol, b.last_end, b.tick = close, 10_000.0, NOW, tick
    if held:                                                   # a held position, marked up or down
        e.account.apply_fill("H", Side.BUY, Decimal(held), Decimal("50"), Decimal(0), NOW - 10**12, 0, 0)
        e.account.marks["H"] = 50.0 * 1.3
    return e


def accepts(e, req) -> bool:
    try: check_order(e, req, NOW, FillMode())
    except Reject: return False
    return True


@settings(max_examples=400, deadline=None)
@given(close=st.one_of(st.floats(0.0001, 3.0), st.floats(1.0, 5000.0)), spread=st.sampled_from([0.0, 1.0, 10.0, 200.0]),
       slip=st.sampled_from([0.0, 2.5, 50.0]), commission=st.sampled_from([Decimal(0), Decimal("0.005")]),
       tick=st.sampled_from([0.01, 0.0001]), account_type=st.sampled_from(["cash", "margin"]),
       cash=st.integers(0, 200_000), held=st.integers(0, 500), sym=st.sampled_from(["XYZ", "W"]),
       qty=st.one_of(st.integers(1, 100_000).map(Decimal), st.decimals("0.001", "500", places=3)),
       edge=st.booleans())
def test_shortcut_never_accepts_what_check_order_rejects(close, spread, slip, commission, tick, account_type, cash, held, sym, qty, edge):
    e = engine(close, spread, slip, commission, tick, account_type, cash, held)
    if edge:                                                   # the most shares the buying power allows, by `check_order`'s price
        est = e.est_price(OrderRequest(sym, "buy", qty=1), NOW)
        qty = max(Decimal(1), (e.account.buying_power(e.reserved) / est).to_integral_value())
    req = OrderRequest(sym, "buy", qty=qty)
    if market_buy_passes(e, req, NOW): assert accepts(e, req), (req, close, spread, slip)
    assert e.buy_price_bound(sym) >= e.est_price(req, NOW)


def test_shortcut_decides_the_common_case_and_defers_the_rest():
    e = engine(100.0, 10.0, 0.0, Decimal(0), 0.01, "margin", 100_000, 0)
    assert market_buy_passes(e, OrderRequest("XYZ", "buy", qty=10), NOW)
    assert not market_buy_passes(e, OrderRequest("XYZ", "buy", qty=10_000), NOW)               # over the buying power
    assert not market_buy_passes(e, OrderRequest("W", "buy", qty=Decimal("1.5")), NOW)        # fractions of a whole-share asset
    assert not market_buy_passes(e, OrderRequest("XYZ", "sell", qty=1), NOW)                  # not a buy
    assert not market_buy_passes(e, OrderRequest("XYZ", "buy", notional=100), NOW)            # notional
    assert not market_buy_passes(e, OrderRequest("XYZ", "buy", qty=1, type="limit", limit_price="100"), NOW)
    assert not market_buy_passes(e, OrderRequest("XYZ", "buy", qty=1), to_ns(T0) - 6 * 3600 * 10**9)   # before the open
