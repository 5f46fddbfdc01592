"""What one order costs, part by part, against what the 0.5x target of issue 15 leaves for it.

One run, one process, on the issue's data (20 generated symbols x 252 days of 5-minute bars; `--days` for less):
1. the plain-Python reference (`reference_backtest.py`), the canonical backtest with its entries switched off (the same
   machinery stepping the same bars, no order), and the canonical backtest itself — CPU time of each (`time.process_time`);
2. the budget the target leaves per order: (2 x reference - no-order run) / orders, and what an order costs now:
   (canonical - no-order run) / orders;
3. each part of an order's path timed alone on the objects of that run (its sizer, RiskGuard, account, positions), with
   distinct inputs per call: the signal and its ids, sizing, the risk context and verdict, the request, the in-memory
   ledger (intent, fill, submit), the simulated account's fill, the fill/order/update values, the account snapshot.
The parts alone (no glue between them) against the budget show how far a pure-Python decision core can go.
4. one instrumented run: the wall time of the trader's decisions (`Trader.step`, the strategy's signals in it), of the
   fill path (`send`) and of the rest, and so the best ratio a fill path that cost nothing would give.
Run: python bench/bench_order_path.py [--days 252] [--n 4000]
"""
import argparse
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def cpu(fn):
    "CPU seconds of one call of `fn`, and its result."
    c = time.process_time(); r = fn(); return time.process_time() - c, r


def per_call(fn, inputs) -> float:
    "Microseconds per call of `fn(x)` over `inputs` (best of 3 passes)."
    best = float("inf")
    for _ in range(3):
        c = time.perf_counter()
        for x in inputs: fn(x)
        best = min(best, time.perf_counter() - c)
    return best / len(inputs) * 1e6


def where_time_goes(bars, universe) -> dict:
    "Wall seconds of one canonical run (construction, run, result) and of its parts: `Trader.step` (the decisions, with the strategy's `step` in them) and `send` (the fill path)."
    import swingtrader.backtest_events as be
    from swingtrader.canonical import CanonicalBacktest
    acc = {"decisions": 0.0, "strategy": 0.0, "fills": 0.0}
    def timed(fn, part):
        pc = time.perf_counter
        def w(*a):
            c = pc()
            try: return fn(*a)
            finally: acc[part] += pc() - c
        return w
    send0 = be.send
    c = time.perf_counter()
    bt = CanonicalBacktest(bars, universe=universe)
    tr = bt.trader
    tr.step, tr._step = timed(tr.step, "decisions"), timed(tr._step, "strategy")   # instance attributes: the run calls these
    be.send = timed(send0, "fills")
    try: r = bt.run()
    finally: be.send = send0
    float(r.equity["equity"].iloc[-1])
    acc["total"] = time.perf_counter() - c
    return acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=252)
    ap.add_argument("--n", type=int, default=4000, help="calls per part")
    a = ap.parse_args()
    import tempfile
    from bench_backtest import make_data, BAR_NS
    import pickle
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "bars.pkl"
        n_bars = make_data(20, a.days, p)
        u, bars = pickle.loads(p.read_bytes())
    from reference_backtest import run_reference
    from swingtrader.canonical import CanonicalBacktest

    t_ref, (trades, _) = cpu(lambda: run_reference(bars, BAR_NS))
    def quiet():
        bt = CanonicalBacktest(bars, universe=u)
        bt.trader.strategy.entries_until = bt.trader.strategy.entries_until.replace(year=1970)   # no entry: no order
        return bt.run()
    t_none, r0 = cpu(quiet)
    assert len(r0.fills) == 0
    t_full, bt = cpu(lambda: (lambda b: (b.run(), b)[1])(CanonicalBacktest(bars, universe=u)))
    orders = len(bt.result().fills)
    budget = (2 * t_ref - t_none) / orders * 1e6
    now = (t_full - t_none) / orders * 1e6
    print(f"data: {n_bars:,} bars; reference {t_ref:.2f} s CPU ({len(trades):,} trades); swingtrader without orders {t_none:.2f} s; "
          f"canonical {t_full:.2f} s with {orders:,} orders (ratio {t_ref / t_full:.3f})")
    print(f"per order now: {now:.0f} us; the 0.5x target leaves {budget:.0f} us per order "
          f"(2 x {t_ref:.2f} s - {t_none:.2f} s without orders, over {orders:,} orders)")

    split = where_time_goes(bars, u)
    dec, strat, fills, total = split["decisions"], split["strategy"], split["fills"], split["total"]
    print(f"\nwhere the canonical run's time goes (one instrumented run, wall {total:.2f} s): the trader's decisions "
          f"{dec:.2f} s ({dec / total:.0%}), of which the strategy's signals {strat:.2f} s; the fill path (`send`) {fills:.2f} s "
          f"({fills / total:.0%}); the rest (construction, event loop, result) {total - dec - fills:.2f} s ({(total - dec - fills) / total:.0%})")
    rest_cpu = t_full * (total - fills) / total                         # the decisions and the rest, in the uninstrumented run's CPU
    left = 2 * t_ref - rest_cpu
    print(f"the decisions alone take {dec / total * t_full / t_ref:.2f}x the reference's whole run; with a fill path that cost "
          f"nothing the ratio would be at most {t_ref / rest_cpu:.3f}; within the 0.5x target the decisions and the rest leave "
          f"{left:.2f} s for the fill path ({left / orders * 1e6:.1f} us per order; it takes {fills / total * t_full / orders * 1e6:.1f} us now)")

    from swingtrader.backtest import RunLedger
    from swingtrader.backtest_fast import BacktestBook
    from swingtrader.clock import SimClock
    from swingtrader.models import (Fill, Order, OrderEvent, OrderRequest, OrderStatus, OrderType, OrderUpdate, Side, Signal,
                                    SignalAction, TimeInForce)
    from swingtrader.sim.account import SimAccount
    from swingtrader.trader import client_key_for, decision_id
    tr, n = bt.trader, a.n
    held = [s for s, q in tr.positions.items() if q.qty > 0] or list(bt.names[:1])
    sym = sorted(set(bt.names) - set(held))[0] if set(bt.names) - set(held) else bt.names[0]
    t0 = tr.last_time
    acct = bt.broker.snapshot()
    times = [t0 - timedelta(minutes=5 * i) for i in range(n)]
    entries = [Signal(sym, SignalAction.ENTER_LONG, t, 50.0 + i % 7, 0.8, "macd_cross_up", "macd_swing") for i, t in enumerate(times)]
    exits = [Signal(held[0], SignalAction.EXIT_LONG, t, 50.0 + i % 7, 0.8, "macd_cross_down", "macd_swing") for i, t in enumerate(times)]
    keys = [client_key_for(decision_id(s)) for s in entries]
    asset, sizer, guard = tr.asset(sym), tr.sizer, tr.guard
    ctx_in, ctx_out = tr.context(sym, t0), tr.context(held[0], t0, full=False)
    size = sizer.size(entries[0], acct, asset, Decimal(0), whole=tr.broker_stops)
    parts = {}
    parts["signal (its object)"] = (per_call(lambda s: Signal(s.symbol, s.action, s.time, s.price, s.atr, s.reason, s.model_id), entries),) * 2
    parts["decision id + client key"] = (per_call(lambda s: client_key_for(decision_id(s)), entries),) * 2
    parts["sizer"] = (per_call(lambda s: sizer.size(s, acct, asset, Decimal(0), whole=False), entries), 0.0)
    parts["risk context"] = (per_call(lambda s: tr.context(s.symbol, t0), entries), per_call(lambda s: tr.context(s.symbol, t0, full=False), exits))
    parts["RiskGuard.evaluate"] = (per_call(lambda s: guard.evaluate(s, ctx_in, qty=size.qty), entries),
                                   per_call(lambda s: guard.evaluate(s, ctx_out, qty=Decimal(3)), exits))
    reqs = [OrderRequest(sym, Side.BUY, qty=Decimal(5), client_key=k) for k in keys]
    parts["order request"] = (per_call(lambda k: OrderRequest(sym, Side.BUY, qty=Decimal(5), client_key=k), keys),) * 2
    clock = SimClock(t0, mode="manual")
    def book_round(book):
        def one(i):
            r, s = reqs[i], entries[i]
            book.record_intent(s, r)
            o = Order(f"o{i}", r.client_key, sym, Side.BUY, OrderType.MARKET, TimeInForce.DAY, OrderStatus.FILLED, r.qty, None, None, None,
                      r.qty, Decimal("50.25"), t0, t0, "filled")
            book.record_update(OrderUpdate(OrderEvent.FILL, o, t0, Fill(f"f{i}", o.id, sym, Side.BUY, r.qty, Decimal("50.25"), t0, r.client_key)))
            book.note_submitted(r.client_key, o)
        return one
    idx = list(range(n))
    best = float("inf")
    for _ in range(3):                                                  # a fresh book each pass: distinct keys
        book = BacktestBook(RunLedger(clock=clock)); f = book_round(book)
        c = time.perf_counter()
        for i in idx: f(i)
        best = min(best, time.perf_counter() - c)
    values = per_call(lambda i: OrderUpdate(OrderEvent.FILL, Order(f"o{i}", keys[i], sym, Side.BUY, OrderType.MARKET, TimeInForce.DAY,
                      OrderStatus.FILLED, Decimal(5), None, None, None, Decimal(5), Decimal("50.25"), t0, t0, "filled"), t0,
                      Fill(f"f{i}", f"o{i}", sym, Side.BUY, Decimal(5), Decimal("50.25"), t0, keys[i])), idx)
    parts["ledger: intent, fill, submit (in memory)"] = ((best / n * 1e6) - values,) * 2
    parts["fill, order, update values"] = (values,) * 2
    sa = SimAccount(Decimal(100000))
    def round_trip(i):                                                  # a buy and its sale; the proceeds settle (T+1) before the next
        sa.apply_fill(sym, Side.BUY, Decimal(5), Decimal("50.25"), Decimal(0), 2 * i, 2 * i, 2 * i + 1)
        sa.apply_fill(sym, Side.SELL, Decimal(5), Decimal("50.5"), Decimal(0), 2 * i + 1, 2 * i + 1, 2 * i + 2)
        sa.settle(2 * i + 2)
    parts["simulated account: the fill"] = (per_call(round_trip, idx) / 2,) * 2
    sb = SimAccount(Decimal(100000))
    for k, s in enumerate(bt.names[:8]): sb.apply_fill(s, Side.BUY, Decimal(10), Decimal(50), Decimal(0), 0, 0, 0); sb.marks[s] = 50.0 + k
    parts["account snapshot (8 positions)"] = (per_call(lambda i: sb.snapshot(), idx),) * 2
    print(f"\n{'part (timed alone, us per call)':44} {'entry':>8} {'exit':>8}")
    for k, (e, x) in parts.items(): print(f"{k:44} {e:8.1f} {x:8.1f}")
    se, sx = sum(v[0] for v in parts.values()), sum(v[1] for v in parts.values())
    print(f"{'sum of the parts':44} {se:8.1f} {sx:8.1f}   (mean {(se + sx) / 2:.1f} us per order)")
    print(f"per order now {now:.0f} us; budget at 0.5x {budget:.0f} us; the parts alone are {(se + sx) / 2 / budget:.1f}x the budget")


if __name__ == "__main__":
    main()
