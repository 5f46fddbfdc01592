"Hypothesis properties of the simulator over random order sequences."
from collections import defaultdict
from datetime import date, datetime, timezone, timedelta
from decimal import Decimal
import math

from hypothesis import given, settings, strategies as st, HealthCheck

from swingtrader.broker import OrderRejected
from swingtrader.clock import SimClock
from swingtrader.models import OrderRequest, OrderStatus, OrderUpdate
from swingtrader.sim.broker import SimBroker
from swingtrader.sim.data import make_universe, generate_bars

UTC = timezone.utc
OPEN = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
UNIVERSE = make_universe(3, 11)
BARS = generate_bars(UNIVERSE, date(2026, 3, 2), date(2026, 3, 3), 11)
SYMS = list(UNIVERSE.index)
PART = 0.1
VOL = {s: {t: v for t, v in zip(df.index.to_pydatetime(), df.volume)} for s, df in BARS.items()}

submit = st.tuples(st.just("submit"), st.integers(0, 2), st.sampled_from(["buy", "buy", "sell"]),
                   st.sampled_from(["market", "limit", "stop", "stop_limit", "notional"]),
                   st.integers(1, 1500), st.floats(-0.01, 0.01), st.sampled_from(["day", "gtc"]))
action = st.one_of(
    submit, submit,
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("replace"), st.integers(0, 50), st.floats(-0.02, 0.02)),
    st.tuples(st.just("resubmit"), st.integers(0, 50)),
    st.tuples(st.just("advance"), st.integers(1, 120)),
)


def tick(x): return Decimal(str(round(max(x, 0.02), 2)))


def check_invariants(b, events):
    acct, a = b.account(), b.account_state
    marked = sum((p.qty * a.mark(p.symbol) for p in b.positions()), Decimal(0))
    assert acct.equity == acct.cash + marked                                   # equity == cash + marked positions
    assert acct.settled_cash + acct.unsettled_cash == acct.cash                # settled + unsettled == cash
    assert all(x > 0 for _, x in a.pending)
    by_order = defaultdict(Decimal)
    for f in b.engine.fills:
        by_order[f.order_id] += f.qty
        assert f.qty > 0
    for oid, q in by_order.items():
        o = b.engine.orders[oid]
        assert o.filled_qty == q                                              # every fill counted once
        if o.qty is not None: assert q <= o.qty                               # never beyond the order
        else: assert sum(f.qty * f.price for f in b.engine.fills if f.order_id == oid) <= o.notional
    assert len({f.fill_id for f in b.engine.fills}) == len(b.engine.fills)
    terminal_seen = set()
    for e in events:                                                           # no event after a terminal one
        if not isinstance(e, OrderUpdate): continue
        assert e.order.id not in terminal_seen, (e.event, e.order.id)
        if e.order.status.is_terminal: terminal_seen.add(e.order.id)
    assert len(b.engine.by_key) == len(b.engine.orders)                        # one order per client key


def check_volume(b):
    "Bar fills per (symbol, bar) stay within the participation share of that bar's volume."
    per_bar = defaultdict(Decimal)
    for f in b.engine.fills:
        if f.time in VOL[f.symbol] and f.time.second == 0 and b.engine.config.fill_at == "bar":
            per_bar[(f.symbol, f.time)] += f.qty
    for (s, t), q in per_bar.items():
        assert q <= math.floor(VOL[s][t] * PART), (s, t, q)
    for f in b.engine.fills:                                                   # any single fill: within one bar's share
        caps = [math.floor(v * PART) for t, v in VOL[f.symbol].items() if f.time - timedelta(minutes=1) <= t <= f.time]
        assert f.qty <= max(caps), (f, caps)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=st.lists(action, min_size=3, max_size=40), fill_at=st.sampled_from(["quote", "bar"]),
       account_type=st.sampled_from(["cash", "margin"]))
def test_random_order_sequences_keep_the_books_straight(actions, fill_at, account_type):
    b = SimBroker(BARS, UNIVERSE, SimClock(OPEN, mode="manual"), cash=Decimal(50_000), account_type=account_type,
                  fill_at=fill_at, participation=PART, commission_per_share="0.005", commission_min="1", slippage_bps=1)
    events, reqs, cancelled = [], [], {}
    b.add_listener(events.append)
    b.advance_to(OPEN + timedelta(minutes=1))
    for a in actions:
        kind = a[0]
        ids = [o.id for o in b.orders("open")] or list(b.engine.orders)
        if kind == "submit":
            _, si, side, typ, qty, off, tif = a
            sym = SYMS[si]
            px = b.latest_quote(sym).ask
            kw = dict(qty=qty, tif=tif)
            if typ == "notional": kw = dict(notional=Decimal(qty * 10))
            elif typ == "limit": kw.update(type="limit", limit_price=tick(px * (1 + off)))
            elif typ == "stop": kw.update(type="stop", stop_price=tick(px * (1 + off)))
            elif typ == "stop_limit": kw.update(type="stop_limit", stop_price=tick(px * (1 + off)), limit_price=tick(px * (1 + off + 0.002)))
            req = OrderRequest(sym, side, **kw)
            reqs.append(req)
            try: b.submit(req)
            except OrderRejected as r: assert r.order.status is OrderStatus.REJECTED and r.reason
        elif kind == "cancel" and ids:
            oid = ids[a[1] % len(ids)]
            o = b.cancel(oid)
            if o.status is OrderStatus.CANCELLED: cancelled.setdefault(oid, o.filled_qty)
        elif kind == "replace" and ids:
            oid = ids[a[1] % len(ids)]
            o = b.order(oid)
            try:
                n = b.replace(oid, limit_price=tick(float(o.limit_price) * (1 + a[2])) if o.limit_price is not None else None)
                assert n.replaces == oid and b.order(oid).status is OrderStatus.CANCELLED
                cancelled.setdefault(oid, b.order(oid).filled_qty)
            except OrderRejected as r: assert r.reason
        elif kind == "resubmit" and reqs:
            req = reqs[a[1] % len(reqs)]
            n_before = len(b.engine.orders)
            prior = b.order_by_client_key(req.client_key)
            try: got = b.submit(req)
            except OrderRejected as r: got = r.order
            assert len(b.engine.orders) == n_before and got.id == prior.id   # a repeated key never creates an order
        elif kind == "advance":
            t = min(b.clock.now() + timedelta(minutes=a[1]), datetime(2026, 3, 3, 21, tzinfo=UTC))
            if t > b.clock.now(): b.advance_to(t)
        check_invariants(b, events)
    b.advance_to(datetime(2026, 3, 3, 21, 30, tzinfo=UTC))
    check_invariants(b, events)
    check_volume(b)
    for oid, filled in cancelled.items():                                      # a cancelled order never fills afterwards
        assert b.order(oid).filled_qty == filled and b.order(oid).status is OrderStatus.CANCELLED
    assert all(not o.is_open or o.tif.value == "gtc" for o in b.orders())   # day orders ended with their session
