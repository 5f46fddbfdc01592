"""Sizing and risk of options and futures by notional (contracts × price × multiplier); equities unchanged."""
from __future__ import annotations
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from swingtrader.config import Settings, SwingtraderError
from swingtrader.models import Account, Asset, Position, Signal, SignalAction
from swingtrader.risk import RiskAction, RiskContext, RiskGuard, exposure_context
from swingtrader.sizer import Sizer, SizingError, contract_multiplier

T = datetime(2026, 1, 5, 21, tzinfo=timezone.utc)
ACCT = Account("A1", equity=Decimal(100_000), cash=Decimal(100_000), settled_cash=Decimal(100_000), buying_power=Decimal(200_000))
CALL, FUT, FOP = "AAPL  260116C00150000", "/ESZ5", "./ESH6 E2CF6 260114P5990"


def enter(sym, price, atr=None): return Signal(sym, SignalAction.ENTER_LONG, T, price, atr)


def test_multipliers():
    assert [contract_multiplier(s) for s in ("AAPL", CALL, FUT, FOP, "BRK/B")] == [None, 100, 50, 50, None]
    with pytest.raises(SizingError, match="unknown") as e: contract_multiplier("/QQQZ5")
    assert "\n" not in str(e.value) and contract_multiplier("/QQQZ5", {"/QQQZ5": 20}) == 20


def test_sizer_counts_contracts_by_price_times_multiplier():
    s = Sizer(risk_per_trade="0.02", position_cap="0.05")
    d = s.size(enter(CALL, 4.0), ACCT, Asset(CALL))
    # risk: 2,000 / (4 × 100) = 5 contracts; cap: 5,000 / 400 = 12; funds 200,000 / 400 = 500
    assert (d.qty, d.notional, d.binding) == (5, None, "risk") and "$400.00/contract" in d.reasons[0]
    d = Sizer(risk_per_trade="0.1").size(enter(CALL, 4.0), ACCT, Asset(CALL))
    assert (d.qty, d.binding) == (12, "position_cap")
    poor = replace(ACCT, buying_power=Decimal(1_000))
    d = Sizer(risk_per_trade="0.1").size(enter(CALL, 4.0), poor, Asset(CALL))
    assert (d.qty, d.binding) == (2, "funds")
    # a future: full contract value 4,000 × 50 = 200,000 > the cap → zero, with the reason
    d = Sizer(risk_per_trade="0.5", position_cap="1").size(enter(FUT, 4000.0, 20.0), ACCT, Asset(FUT))
    assert (d.qty, d.binding) == (0, "position_cap")          # risk 25, cap 100,000 / 200,000 = 0, funds 1
    assert not d.ok and "contract" in d.reasons[0]
    big = replace(ACCT, equity=Decimal(2_000_000), buying_power=Decimal(4_000_000))
    d = Sizer(risk_per_trade="0.01", position_cap="0.5").size(enter(FUT, 4000.0, 20.0), big, Asset(FUT))
    # risk: 20,000 / (2 × 20 × 50 = 2,000) = 10; cap: 1,000,000 / 200,000 = 5
    assert (d.qty, d.binding) == (5, "position_cap")
    assert Sizer().size(enter(FUT, 4000.0, None), big, Asset(FUT)).binding == "atr"


def test_equity_sizing_is_unchanged():
    d = Sizer().size(enter("XYZ", 100.0, 1.5), ACCT, Asset("XYZ"))
    assert (d.qty, d.binding) == (50, "position_cap")


def test_riskguard_entry_in_contracts_by_notional():
    g = RiskGuard(Settings(_env_file=None))
    ctx = RiskContext(ACCT, prices={CALL: Decimal(3)}, sectors={"AAPL": "Technology"})
    assert g.evaluate(enter(CALL, 3.0), ctx, qty=16).action is RiskAction.PASS          # 4,800 ≤ 5,000
    d = g.evaluate(enter(CALL, 3.0), ctx, qty=17)                                       # 5,100 > 5,000
    assert (d.action, d.qty, d.notional) == (RiskAction.RESIZE, 16, None)
    assert d.rules_evaluated[2].rule == "contract_notional" and "5,100.00" in d.rules_evaluated[2].detail
    with pytest.raises(SwingtraderError, match="contracts"): g.evaluate(enter(CALL, 3.0), ctx, notional=Decimal(500))
    fctx = RiskContext(ACCT, prices={FUT: Decimal(4000)})
    d = g.evaluate(enter(FUT, 4000.0), fctx, qty=1)
    assert d.action is RiskAction.REJECT and "200,000.00 notional" in d.reason


def test_caps_count_held_derivatives_by_notional():
    g = RiskGuard(Settings(_env_file=None))
    pos = [Position(CALL, Decimal(40), Decimal(2), Decimal(5)), Position("MSFT", Decimal(10), Decimal(100))]
    ctx = RiskContext(ACCT, pos, prices={CALL: Decimal(5), "MSFT": Decimal(100), "AAPL": Decimal(100)},
                      sectors={"AAPL": "Technology", "MSFT": "Technology"})
    x = exposure_context(ctx)
    assert [p.qty for p in x.positions] == [4000, 10] and x.sectors[CALL] == "Technology"
    d = g.evaluate(enter("AAPL", 100.0), ctx, qty=10)
    sector = next(r for r in d.rules_evaluated if r.rule == "sector_cap")
    assert "holds 21,000.00" in sector.detail           # 40 calls × $5 × 100 = 20,000 + 1,000 of MSFT
    lev = next(r for r in d.rules_evaluated if r.rule == "leverage")
    assert "gross 21,000.00" in lev.detail
    # the same call held: the position cap sees $20,000 of it, so no more fits
    d = g.evaluate(enter(CALL, 5.0), ctx, qty=1)
    assert d.action is RiskAction.REJECT and "position_cap" in d.reason
    # exits are judged in contracts against the contracts held
    assert g.evaluate(Signal(CALL, SignalAction.EXIT_LONG, T, 5.0), ctx, qty=40).action is RiskAction.PASS
    assert g.evaluate(Signal(CALL, SignalAction.EXIT_LONG, T, 5.0), ctx, qty=50).qty == 40


def test_equity_decisions_are_unchanged_without_derivatives():
    g = RiskGuard(Settings(_env_file=None))
    ctx = RiskContext(ACCT, [Position("MSFT", Decimal(10), Decimal(100))], prices={"MSFT": Decimal(100), "AAPL": Decimal(100)})
    assert exposure_context(ctx) is ctx
    assert g.evaluate(enter("AAPL", 100.0), ctx, qty=10).action is RiskAction.PASS
    d = g.evaluate(enter("AAPL", 100.0), ctx, qty=60)
    assert (d.action, d.qty) == (RiskAction.RESIZE, 50) and [r.rule for r in d.rules_evaluated] == [
        "kill_switch", "daily_loss", "position_cap", "sector_cap", "correlated_cap", "leverage"]
    d = g.evaluate(enter("AAPL", 100.0), ctx, notional=Decimal(3000))
    assert (d.action, d.notional) == (RiskAction.PASS, 3000)
