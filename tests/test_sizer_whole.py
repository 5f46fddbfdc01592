"""Whole-share entries: with broker-side stops on (a stop order at the broker covers whole shares), the sizer sizes whole
shares even for a fractionable asset, and an entry below one share is skipped with its reason — no order is sent, so the
broker never refuses it. The Trader asks for whole shares whenever it keeps broker stops (the bot, on any broker)."""
import json
from datetime import date, datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from swingtrader.audit import AuditLog
from swingtrader.clock import SimClock
from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.models import Account, Asset, Signal, SignalAction, D
from swingtrader.risk import RiskGuard
from swingtrader.session import sim_bot
from swingtrader.sim.broker import SimBroker
from swingtrader.sizer import Sizer
from swingtrader.stops import StopBook
from swingtrader.strategy import MacdSwing
from swingtrader.trader import Trader

T = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
S = Settings(_env_file=None, warmup_bars=30)
ACCT = Account("A", equity=D(100_000), cash=D(60_000), settled_cash=D(60_000), buying_power=D(60_000))
FRAC = Asset("XYZ", fractionable=True)


@settings(deadline=None, max_examples=200)
@given(st.floats(0.5, 8000, allow_nan=False).map(lambda x: round(x, 2)), st.floats(0.01, 300, allow_nan=False),
       st.decimals(min_value=0, max_value=200_000, places=2), st.booleans())
def test_whole_is_the_whole_share_size(price, atr, funds, fractional):
    "whole=True: never a notional; exactly the size a fractional-off sizer gives, the same binding cap."
    acct = Account("A", equity=D(100_000), cash=funds, settled_cash=funds, buying_power=funds)
    sig = Signal("XYZ", SignalAction.ENTER_LONG, T, price, atr)
    d = Sizer(fractional=fractional).size(sig, acct, FRAC, whole=True)
    ref = Sizer(fractional=False).size(sig, acct, FRAC)
    assert d.notional is None and d.qty == d.qty.to_integral_value() and d.qty >= 0
    assert (d.qty, d.binding, d.ok) == (ref.qty, ref.binding, ref.ok)
    if not d.ok: assert d.reasons[0].startswith("below one whole share: ")
    if fractional: assert d.reasons[-1] == "broker-side stops cover whole shares only: whole shares."


def test_below_one_share_is_zero_with_its_reason():
    sig = Signal("XYZ", SignalAction.ENTER_LONG, T, 6000.0, 30.0)            # one share is above the 5 % cap of $100,000
    d = Sizer().size(sig, ACCT, FRAC)
    assert d.ok and d.notional == D("5000.00") and d.qty is None             # fractional: a $5,000 notional
    d = Sizer().size(sig, ACCT, FRAC, whole=True)
    assert not d.ok and d.qty == 0 and d.notional is None and d.binding == "position_cap"
    assert d.reasons[0] == "below one whole share: one share at $6,000.00 is above the 5 % position cap $5,000.00"
    d = Sizer().size(Signal("XYZ", SignalAction.ENTER_LONG, T, 40.0, 0.5), ACCT, FRAC, whole=True)
    assert (d.qty, d.notional, d.binding) == (D(125), None, "position_cap")  # $5,000 / $40
    assert str(d.qty) == "125"


def test_whole_shares_print_plainly():
    "A quotient like 60,000 / 6,000.0 is 10 shares, not 1E+1."
    d = Sizer(position_cap="1").size(Signal("XYZ", SignalAction.ENTER_LONG, T, 6000.0, 1.0), ACCT, Asset("XYZ"))
    assert (str(d.qty), d.binding) == ("10", "funds") and "→ 10 shares (binding)" in d.reasons[0]


def test_contracts_ignore_whole():
    call = "AAPL  260116C00150000"
    d = Sizer().size(Signal(call, SignalAction.ENTER_LONG, T, 2.50, None), ACCT, Asset(call), whole=True)
    assert (d.qty, d.binding) == (D(4), "risk")


def _trader(tmp_path, broker_stops:bool, audit=None):
    clock = SimClock(T)
    tr = Trader(S, MacdSwing.from_settings(S), Sizer.from_settings(S), RiskGuard(S), StopBook.from_settings(S),
                Ledger(tmp_path / f"l{int(broker_stops)}.sqlite", clock), audit=audit, clock=clock,
                assets={"XYZ": FRAC, "BIG": Asset("BIG", fractionable=True)}, broker_stops=broker_stops)
    tr.set_account(ACCT, [])
    for s, p in (("XYZ", 40.0), ("BIG", 6000.0)): tr.last[s] = p
    tr.last_time = T
    return tr


def test_trader_with_broker_stops_sends_whole_shares(tmp_path):
    off = _trader(tmp_path, broker_stops=False)
    [it] = off._entry(Signal("XYZ", SignalAction.ENTER_LONG, T, 40.0, 0.5))
    assert it.request.notional == D("5000.00") and it.request.qty is None       # no broker stops: fractional, as before
    on = _trader(tmp_path, broker_stops=True)
    assert on.broker_stops
    [it] = on._entry(Signal("XYZ", SignalAction.ENTER_LONG, T, 40.0, 0.5))
    assert it.request.qty == D(125) and it.request.notional is None
    assert on.ledger.order(it.client_key).qty == D(125)


def test_entry_below_one_share_is_skipped_not_sent(tmp_path):
    clock = SimClock(T)
    audit = AuditLog(tmp_path / "audit", clock, fsync=False)
    try:
        tr = _trader(tmp_path, broker_stops=True, audit=audit)
        assert tr._entry(Signal("BIG", SignalAction.ENTER_LONG, T, 6000.0, 30.0)) == []
        assert tr.ledger.orders() == [] and tr.pending == {}                       # no order, so nothing to reject
        assert tr.skipped[-1]["symbol"] == "BIG" and tr.skipped[-1]["why"] == "size is zero (position_cap)"
        assert not tr.strategy.is_long("BIG")
        [rc] = audit.read("risk_check", T.date())
        assert "below one whole share" in json.dumps(rc["risk_check_result"])
        assert audit.read("order", T.date()) == []
    finally:
        audit.close()


def test_sim_bot_with_broker_stops_sizes_whole_shares(tmp_path):
    "broker=sim: the bot's trader keeps broker stops, so its entries are whole shares like on a real broker."
    clock = SimClock(datetime(2026, 3, 3, 15, 0, tzinfo=timezone.utc), mode="manual")
    sim = SimBroker.from_seed(seed=3, symbols=4, start=date(2026, 2, 24), end=date(2026, 3, 3), clock=clock)
    sim.sync()
    ledger = Ledger(tmp_path / "ledger.sqlite", clock=clock)
    audit = AuditLog(tmp_path / "audit", clock, fsync=False)
    try:
        s = Settings(_env_file=None, warmup_bars=30, fractional=True)
        assert s.broker_stops
        tr = sim_bot(s, sim, ledger, audit).trader
        assert tr.broker_stops
        sym = next(a.symbol for a in map(sim.asset, sim.universe.index) if a.fractionable)
        price = float(sim.latest_quote(sym).ask)
        tr.set_account(sim.account(), []); tr.last[sym] = price; tr.last_time = clock.now()
        [it] = tr._entry(Signal(sym, SignalAction.ENTER_LONG, clock.now() - timedelta(minutes=1), price, price / 100))
        assert it.request.notional is None and it.request.qty >= 1 and it.request.qty == it.request.qty.to_integral_value()
        assert tr.sizer.size(it.signal, sim.account(), sim.asset(sym)).notional is not None   # without whole=True: a notional
    finally:
        audit.close(); ledger.close()
