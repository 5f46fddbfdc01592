"""A close-fill backtest's broker (`CloseFillBroker`) feeds its engine only what it reads while no order is open (a symbol's
last bar for a fill, the held symbols' for balances) and every bar at `sync`. Over random sequences of clock moves, close
fills, orders that rest at the engine, cancels and rejections it must be indistinguishable from a `SimBroker` whose engine
sees every bar: the same orders, fills, updates and balances at every step, and the same engine, account and saved state
once synced."""
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings, strategies as st

from swingtrader.backtest_fast import CloseFillBroker
from swingtrader.broker import OrderRejected
from swingtrader.clock import SimClock
from swingtrader.models import OrderRequest, OrderType, Side

from close_fill_support import broker_pair

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def pair():
    "A SimBroker and a CloseFillBroker over the same market, run as a backtest runs them."
    return broker_pair(T0)


def engine_state(b) -> dict:
    e, a = b.engine, b.account_state
    return dict(books={s: (k.last_close, k.last_vol, k.last_end) for s, k in e.books.items()}, marks=dict(a.marks),
                cash=a.cash, unsettled=a.unsettled_cash, positions={s: (p.qty, p.avg) for s, p in a.positions.items()},
                orders=list(e.orders.values()), fills=list(e.fills), working=sorted(e.working), reserved=e.reserved, pos=b.tape.pos)


action = st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 400)),                                  # minutes (overnight too)
    st.tuples(st.just("market"), st.integers(0, 3), st.sampled_from(["buy", "buy", "sell"]), st.integers(1, 400)),
    st.tuples(st.just("notional"), st.integers(0, 3), st.integers(50, 5000)),
    st.tuples(st.just("limit"), st.integers(0, 3), st.sampled_from(["buy", "sell"]), st.floats(-0.02, 0.02)),
    st.tuples(st.just("cancel_all"),),
    st.tuples(st.just("snapshot"),),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, min_size=5, max_size=40))
def test_lazy_engine_is_indistinguishable(actions):
    (full, got_full), (fast, got_fast) = pair()
    syms, t, n = full.symbols, T0, 0
    for act in actions:
        n += 1
        kind = act[0]
        if kind == "advance":
            t += timedelta(minutes=act[1])
            assert full.advance_to(t) == fast.advance_to(t)
        elif kind == "snapshot":
            assert full.snapshot() == fast.snapshot()
        elif kind == "cancel_all":
            assert full.cancel_all() == fast.cancel_all()
        else:
            sym = syms[act[1]]
            if kind == "market":
                side = Side.BUY if act[2] == "buy" else Side.SELL
                if side is Side.SELL:
                    pos = full.account_state.positions.get(sym)
                    if pos is None or pos.qty <= 0: continue
                    qty = min(Decimal(act[3]), pos.qty)
                else: qty = Decimal(act[3])
                req = OrderRequest(sym, side, qty=qty, client_key=f"k{n}")
            elif kind == "notional":
                req = OrderRequest(sym, Side.BUY, notional=Decimal(act[2]), client_key=f"k{n}")
            else:
                q = full.engine.quote(sym)
                if q is None: continue
                side = Side.BUY if act[2] == "buy" else Side.SELL
                if side is Side.SELL and sym not in full.account_state.positions: continue
                px = Decimal(str(round(max(q[1] * (1 + act[3]), 0.02), 2)))
                req = OrderRequest(sym, side, qty=Decimal(1), type=OrderType.LIMIT, limit_price=px, client_key=f"k{n}")
            if fast.can_fill_now(req):
                a, b = full.submit(req), fast.fill_now(req)
            else:
                try: a = full.submit(req)
                except OrderRejected as x: a = x.order
                try: b = fast.submit(req)
                except OrderRejected as x: b = x.order
            assert a == b
        assert got_full == got_fast                                          # every update, in order
    assert full.snapshot() == fast.snapshot()
    fast.sync()
    assert not fast.behind
    assert engine_state(full) == engine_state(fast)
    assert full.account() == fast.account() and full.positions() == fast.positions()


def test_saved_state_after_a_lazy_stretch_is_the_full_one(tmp_path):
    "`save` syncs first: a lazily advanced broker saves what a fully fed one saves, and restores to it."
    (full, _), (fast, _) = pair()
    t = T0 + timedelta(minutes=90)
    for b in (full, fast): b.advance_to(t)
    for i, s in enumerate(full.symbols[:3]):
        r = OrderRequest(s, Side.BUY, qty=Decimal(10 + i), client_key=f"b{i}")
        assert fast.can_fill_now(r)
        assert full.submit(r) == fast.fill_now(r)
    t += timedelta(days=1, hours=2)                                          # overnight: the sales settle, bars pass
    for b in (full, fast): b.advance_to(t)
    assert fast.behind and fast.tape.pos < full.tape.pos
    r = OrderRequest(full.symbols[0], Side.SELL, qty=Decimal(10), client_key="s0")
    assert fast.can_fill_now(r)
    assert full.submit(r) == fast.fill_now(r)
    pa, pb = full.save(tmp_path / "full.json"), fast.save(tmp_path / "fast.json")
    sa, sb = json.loads(pa.read_text()), json.loads(pb.read_text())
    # next_due may differ: the engine's day orders set it to their session's close too (a no-op wake-up), a close fill does not
    assert sa["engine"].pop("next_due") <= sb["engine"].pop("next_due")
    assert sa == sb
    back = CloseFillBroker.restore(pb, clock=SimClock(t, mode="manual"))
    assert back.account() == full.account() and back.next_event_time() == full.next_event_time()


def test_an_open_order_makes_the_engine_see_every_bar():
    "A resting limit order: the broker syncs as `SimBroker` does (the order can fill on any bar), and fills the same."
    (full, got_full), (fast, got_fast) = pair()
    t = T0 + timedelta(minutes=30)
    for b in (full, fast): b.advance_to(t)
    sym = full.symbols[1]
    px = Decimal(str(round(full.engine.quote(sym)[0] * 0.995, 2)))
    req = OrderRequest(sym, Side.BUY, qty=Decimal(5), type=OrderType.LIMIT, limit_price=px, client_key="l1")
    assert not fast.can_fill_now(req)
    assert full.submit(req) == fast.submit(req)
    open_steps = 0
    for _ in range(60):
        t += timedelta(minutes=7)
        assert full.advance_to(t) == fast.advance_to(t)
        if fast.engine.working: open_steps += 1; assert not fast.behind      # an open order: every bar is fed
    assert open_steps > 3 and not fast.engine.working and len(fast.engine.fills) == 1   # it rested, then filled
    assert got_full == got_fast
    fast.sync()                                                              # no order open since the fill: lazy again until now
    assert engine_state(full) == engine_state(fast)
