"Sizer properties: never above any cap, never negative, never spends unsettled cash in a cash account."
from datetime import datetime, timezone
from decimal import Decimal
import pytest
from hypothesis import given, settings, strategies as st

from swingtrader.models import Account, Asset, Signal, SignalAction, D
from swingtrader.sizer import Sizer, SizingError

T = datetime(2025, 3, 3, 15, 0, tzinfo=timezone.utc)
money = st.decimals(min_value=0, max_value=5_000_000, places=2, allow_nan=False, allow_infinity=False)
price = st.floats(0.5, 5000, allow_nan=False).map(lambda x: round(x, 2))
atrv = st.floats(0.001, 500, allow_nan=False)

@st.composite
def cases(draw):
    equity = draw(money.filter(lambda x: x > 0))
    cash = draw(money); settled = min(cash, draw(money)); bp = draw(money)
    kind = draw(st.sampled_from(["cash", "margin"]))
    acct = Account("A", equity=equity, cash=cash, settled_cash=settled, buying_power=bp, account_type=kind)
    sizer = Sizer(risk_per_trade=draw(st.sampled_from(["0.005", "0.01", "0.02"])), position_cap=draw(st.sampled_from(["0.05", "0.1", "1"])),
                  atr_stop_mult=draw(st.sampled_from(["1", "2", "3.5"])), fractional=draw(st.booleans()),
                  account_type=draw(st.sampled_from([None, "cash", "margin"])))
    asset = Asset("XYZ", fractionable=draw(st.booleans()))
    sig = Signal("XYZ", SignalAction.ENTER_LONG, T, draw(price), draw(atrv))
    committed = draw(st.sampled_from([Decimal(0), Decimal("1000.00")]))
    return sizer, acct, asset, sig, committed

@settings(deadline=None, max_examples=400)
@given(cases())
def test_size_respects_every_cap(c):
    sizer, acct, asset, sig, committed = c
    d = sizer.size(sig, acct, asset, committed)
    p, a = D(sig.price), D(sig.atr)
    cash_rules = acct.account_type == "cash" or sizer.account_type == "cash"
    funds = (min(acct.settled_cash, acct.buying_power) if cash_rules else acct.buying_power) - committed
    assert (d.qty is None) != (d.notional is None) or (d.qty == 0 and d.notional is None)
    spend = d.notional if d.notional is not None else d.qty * p
    assert spend >= 0
    assert spend <= max(funds, Decimal(0))                        # never more than available (settled) funds
    if cash_rules: assert spend <= acct.settled_cash             # never unsettled cash
    assert spend <= sizer.cap * acct.equity                      # position cap
    shares = d.qty if d.qty is not None else d.notional / p
    assert shares * sizer.k * a <= sizer.risk * acct.equity * (1 + Decimal("1e-20"))   # risk budget
    if d.qty is not None: assert d.qty == d.qty.to_integral_value()                  # whole shares
    if d.notional is not None:
        assert asset.fractionable and sizer.fractional
        assert d.notional == d.notional.quantize(Decimal("0.01")) and d.notional >= 1
    assert d.reasons and d.binding
    # maximality: one more share (or cent) would break a cap
    if d.qty is not None and d.qty > 0:
        q = d.qty + 1
        assert q * p > sizer.cap * acct.equity or q * p > funds or q * sizer.k * a > sizer.risk * acct.equity
    if not d.ok: assert d.binding in {"risk", "position_cap", "funds", "equity"}

def test_zero_reason_names_wide_stop():
    acct = Account("A", equity=D(10_000), cash=D(10_000), settled_cash=D(10_000), buying_power=D(10_000))
    d = Sizer().size(Signal("XYZ", SignalAction.ENTER_LONG, T, 100.0, 80.0), acct, Asset("XYZ"))
    assert d.qty == 0 and d.binding == "risk" and "ATR stop distance too wide for 1 % risk" in d.reasons[0]
    d = Sizer().size(Signal("XYZ", SignalAction.ENTER_LONG, T, 100.0, 80.0), acct, Asset("XYZ", fractionable=True))
    assert d.ok and d.binding == "risk" and d.notional == D("62.50")   # 100/160 share x $100
    d = Sizer().size(Signal("XYZ", SignalAction.ENTER_LONG, T, 100.0, 8000.0), acct, Asset("XYZ", fractionable=True))
    assert not d.ok and "minimum notional" in d.reasons[0]

def test_cash_account_ignores_unsettled_proceeds():
    acct = Account("C", equity=D(50_000), cash=D(20_000), settled_cash=D(0), buying_power=D(20_000), account_type="cash")
    d = Sizer().size(Signal("XYZ", SignalAction.ENTER_LONG, T, 50.0, 1.0), acct, Asset("XYZ"))
    assert d.qty == 0 and d.binding == "funds" and "settled cash" in d.reasons[0]

def test_bad_settings_and_exit_signal():
    with pytest.raises(SizingError, match="outside"): Sizer(risk_per_trade="1.5")
    with pytest.raises(SizingError, match="positive"): Sizer(atr_stop_mult="0")
    acct = Account("A", equity=D(1), cash=D(1), settled_cash=D(1), buying_power=D(1))
    with pytest.raises(SizingError, match="size entries only"):
        Sizer().size(Signal("XYZ", SignalAction.EXIT_LONG, T, 10.0, 1.0), acct, Asset("XYZ"))
