"The decision core's shortcuts give what the long way gives: signals named once, requests set slot by slot, sizing rules judged when read."
import random
from decimal import Decimal

import pytest

from swingtrader.config import Settings, SwingtraderError
from swingtrader.backtest import Backtest
from swingtrader.models import OrderRequest, Side
from swingtrader.risk import RuleResult, _fit, _loss_text, _room_text, _written, _Unwritten
from swingtrader.trader import Trader, decision_id


def _eager_fit(rooms, want):
    "The sizing rules' results as `_fit` wrote them before it kept them unwritten."
    out, allowed, binding = [], want, []
    for rule, room, what, args in rooms:
        if room < 0: room = Decimal(0)
        if want <= room: out.append(RuleResult(rule, True, _room_text(want, "fits", room, what, args)))
        else:
            out.append(RuleResult(rule, False, _room_text(want, "exceeds", room, what, args)))
            binding.append(rule); allowed = min(allowed, room)
    return tuple(out), allowed, binding


def test_sizing_rules_judged_when_read_equal_the_eager_ones():
    rng = random.Random(3)
    for _ in range(2000):
        rooms = [(f"r{i}", Decimal(rng.randint(-500, 5000)) / rng.choice([1, 3, 100]), "{} holds {}".format, (f"S{i}", rng.randint(0, 9)))
                 for i in range(rng.randint(0, 6))]
        if rng.random() < 0.2: rooms.append(("open", Decimal("Infinity"), "x{}".format, (1,)))
        want = Decimal(rng.randint(0, 4000)) / rng.choice([1, 7])
        rules = _Unwritten([("kill_switch", True, "{}".format, ("active",))])
        allowed, binding = _fit(rooms, want, rules)
        eager, a2, b2 = _eager_fit(rooms, want)
        assert (allowed, binding) == (a2, b2)
        assert _written(rules) == (RuleResult("kill_switch", True, "active"), *eager)


def test_the_daily_loss_text_under_an_infinite_limit():
    rng = random.Random(4)
    for _ in range(500):
        eq, pl, limit = Decimal(rng.randint(-100, 100000)), Decimal(rng.randint(-5000, 5000)), Decimal("Infinity")
        start = eq - pl
        loss = -pl / start if start > 0 else Decimal(0)
        assert _loss_text(eq, pl, limit) == "day P&L {:.2%} loss of {:.2%} allowed".format(loss, limit)


@pytest.mark.parametrize("args", [("AAPL", Side.BUY, Decimal(5), None), ("aapl", Side.SELL, None, Decimal("12.5")), ("msft", "buy", 3, None),
                                  ("AAPL", Side.BUY, Decimal(0), None), ("AAPL", Side.BUY, Decimal(1), Decimal(2)), ("AAPL", Side.BUY, None, None),
                                  ("AAPL", Side.BUY, Decimal("NaN"), None), ("", Side.BUY, Decimal(1), None), ("AAPL", "hold", Decimal(1), None)])
@pytest.mark.parametrize("key", ["k" * 32, "bad key", ""])
def test_day_market_is_the_constructor(args, key):
    sym, side, qty, notional = args
    def make(f):
        try: return f()
        except SwingtraderError as e: return (type(e).__name__, str(e))
    made = make(lambda: OrderRequest.day_market(sym, side, qty, notional, key))
    assert made == make(lambda: OrderRequest(sym, side, qty=qty, notional=notional, client_key=key))
    assert made == make(lambda: OrderRequest.day_market(sym, side, qty, notional, key))     # a ticker seen before: the short way


def _run(makes:bool):
    bt = Backtest.from_seed(Settings(warmup_bars=30), start="2026-03-02", end="2026-03-06", fill_at="close", symbols=6, seed=7)
    assert bt.trader._makes                # MacdSwing.step takes `make`: the trader names its signals once
    bt.trader._makes = makes               # False: the strategy's own Signal, named again by the trader (the long way)
    seen, record = [], Trader._record
    def spy(self, sig, req, decision, size, est, at=None):
        seen.append((sig, at, req, decision, None if size is None else (size.qty, size.notional, size.binding, size.reasons), est))
        return record(self, sig, req, decision, size, est, at)
    bt.trader._record = spy.__get__(bt.trader)
    r = bt.run()
    return seen, r.trades.to_dict("records"), bt.trader.skipped


def test_signals_made_once_decide_as_signals_named_again():
    (a, ta, sa), (b, tb, sb) = _run(True), _run(False)
    assert len(a) > 10 and a == b and ta == tb and sa == sb
    assert all(sig.id == decision_id(sig) and at == sig.time.isoformat() for sig, at, *_ in a)
