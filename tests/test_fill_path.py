"""The backtest's fill path in one go (`CloseFillBroker.fill_if_now`: the checks of `can_fill_now` and the booking of
`fill_now` in one call, the lazy `_bring` setting a book's last bar itself, each time's facts once) books exactly what a
`SimBroker` whose engine sees every bar books: over random clock moves (in UTC and in another zone), market, notional and
oversized orders, in margin and cash accounts (sales' proceeds pending, paid from unsettled funds), the same orders, fills,
updates, balances, lots and pending proceeds at every step. And the book's submitted note after a fill's leaves the
same rows as noting it again."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings, strategies as st

from swingtrader.backtest import RunLedger
from swingtrader.backtest_fast import BacktestBook
from swingtrader.broker import OrderRejected
from swingtrader.clock import SimClock
from swingtrader.models import Fill, Order, OrderEvent, OrderRequest, OrderStatus, OrderUpdate, Side, Signal, SignalAction

from close_fill_support import broker_pair

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)                          # 10:00 New York


def pair(account_type:str):
    "A SimBroker and a CloseFillBroker over the same market, run as a backtest runs them."
    return broker_pair(T0, account_type=account_type, cash=Decimal(20_000))


def account_state(b) -> dict:
    a = b.account_state
    return dict(cash=a.cash, pending=[list(p) for p in a.pending], commissions=a.commissions, realized=a.realized_pl,
                positions={s: (p.qty, p.avg, [(l.qty, l.price, l.session, l.time_ns, l.unsettled_used, l.funds_settle_ns) for l in p.lots])
                           for s, p in a.positions.items()}, gfvs=list(a.gfvs), day_trades=list(a.day_trades))


market = st.tuples(st.just("market"), st.integers(0, 3), st.sampled_from(["buy", "buy", "sell"]), st.integers(1, 300))
action = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from([5, 5, 15, 60, 600, 1080]), st.booleans()),   # minutes (overnight too); in New York time?
    market, market,
    st.tuples(st.just("oversell"), st.integers(0, 3), st.integers(1, 50)),             # more than is held: the engine decides
    st.tuples(st.just("notional"), st.integers(0, 3), st.integers(50, 9000)),
    st.tuples(st.just("snapshot"),),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["margin", "cash"]), st.lists(action, min_size=5, max_size=40))
def test_fill_if_now_books_what_the_engine_books(account_type, actions):
    (full, got_full), (fast, got_fast) = pair(account_type)
    syms, t, n, fast_n = full.symbols, T0, 0, 0
    for act in actions:
        n += 1
        kind = act[0]
        if kind == "advance":
            t += timedelta(minutes=act[1])
            at = t.astimezone(NY) if act[2] else t                                   # the same instant, in another zone
            assert full.advance_to(at) == fast.advance_to(at)
            continue
        if kind == "snapshot":
            assert full.snapshot() == fast.snapshot()
            continue
        sym = syms[act[1]]
        held = full.account_state.positions.get(sym)
        if kind == "market":
            side = Side.BUY if act[2] == "buy" else Side.SELL
            if side is Side.SELL:
                if held is None or held.qty <= 0: continue
                qty = min(Decimal(act[3]), held.qty)
            else: qty = Decimal(act[3])
            req = OrderRequest(sym, side, qty=qty, client_key=f"k{n}")
        elif kind == "oversell":
            req = OrderRequest(sym, Side.SELL, qty=max(held.qty if held is not None else 0, 0) + act[2], client_key=f"k{n}")
        else:
            req = OrderRequest(sym, Side.BUY, notional=Decimal(act[2]), client_key=f"k{n}")
        can = fast.can_fill_now(req)
        b = fast.fill_if_now(req)
        assert (b is not None) == can                                                # `can_fill_now`'s verdict, in one go
        try: a = full.submit(req)
        except OrderRejected as x: a = x.order
        if b is None:
            try: b = fast.submit(req)
            except OrderRejected as x: b = x.order
        else:
            fast_n += 1
            assert b.created_at.tzinfo is UTC and b.created_at == a.created_at
            k1, k2 = full.engine.books[sym], fast.engine.books[sym]                  # its book brought up as the engine keeps it
            assert (k1.last_close, k1.last_vol, k1.last_end) == (k2.last_close, k2.last_vol, k2.last_end)
        assert a == b
        assert got_full == got_fast                                                  # every update, in order
        assert account_state(full) == account_state(fast)                            # lots and pending proceeds too
    assert full.snapshot() == fast.snapshot()
    assert fast.fast_fills == fast_n
    fast.sync()
    assert {s: (k.last_close, k.last_vol, k.last_end) for s, k in full.engine.books.items()} == \
           {s: (k.last_close, k.last_vol, k.last_end) for s, k in fast.engine.books.items()}
    assert full.account() == fast.account() and full.positions() == fast.positions()
    assert list(full.engine.orders.values()) == list(fast.engine.orders.values()) and full.engine.fills == fast.engine.fills


def test_a_fill_time_is_utc_even_when_the_clock_is_not():
    (full, _), (fast, _) = pair("margin")
    at = datetime(2026, 3, 2, 11, 0, tzinfo=NY)                                      # 16:00 UTC
    for b in (full, fast): b.advance_to(at)
    req = OrderRequest(full.symbols[0], Side.BUY, qty=Decimal(3), client_key="k")
    o = fast.fill_if_now(req)
    assert o is not None and o.created_at.tzinfo is UTC and o.created_at == at
    assert full.submit(req) == o and repr(full.engine.fills) == repr(fast.engine.fills)


def test_the_submitted_note_after_a_fill_changes_no_row():
    "`note_submitted` right after the fill update of the same order at the same time notes nothing: the rows are those of noting it."
    def run(skip:bool):
        clk = SimClock(T0, mode="manual")
        led = RunLedger(clock=clk)
        book = BacktestBook(led)
        for i, side in enumerate([Side.BUY, Side.SELL, Side.BUY]):
            clk.set(T0 + timedelta(minutes=5 * i))
            t = clk.now()
            req = OrderRequest("AAA", side, qty=Decimal(4), client_key=f"z{i}")
            book.note_intent(Signal("AAA", SignalAction.ENTER_LONG if side is Side.BUY else SignalAction.EXIT_LONG, t, 10.0, 1.0, "r", "m", id=f"s{i}"), req)
            o = Order(f"o{i}", req.client_key, "AAA", side, req.type, req.tif, OrderStatus.FILLED, req.qty, None, None, None, req.qty,
                      Decimal("10.5"), t, t, "filled")
            assert book.record_update(OrderUpdate(OrderEvent.FILL, o, t, Fill(f"f{i}", o.id, "AAA", side, req.qty, Decimal("10.5"), t, req.client_key)))
            n = len(book._log)
            book.note_submitted(req.client_key, o)
            assert len(book._log) == n                                               # nothing noted: it would change nothing
            if not skip: book._log.append((book._rows[req.client_key], o, None, t))  # what was noted before
        book.flush()
        return {tb: [tuple(r) for r in led.db.raw.execute(f"SELECT * FROM {tb} ORDER BY rowid")] for tb in ("orders", "fills", "positions", "trades")}
    assert run(True) == run(False)


from swingtrader.models import Asset
from swingtrader.sim import checks
from swingtrader.sim.account import SessionTable, SimAccount, SimPosition, to_ns
from swingtrader.sim.book import EngineConfig, FillMode
from swingtrader.sim.checks import Reject, check_order, market_buy_passes
from swingtrader.sim.engine import MatchingEngine

_SESSIONS = SessionTable()
holding = st.tuples(st.integers(-50, 200), st.sampled_from([None, 0.0, 3.5, 80.25, -1.0, float("inf"), float("nan")]), st.integers(1, 500))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["margin", "cash"]), st.sampled_from([1, 2, 4]), st.integers(0, 50_000), st.integers(0, 20_000),
       st.lists(holding, max_size=4), st.integers(1, 3000))
def test_market_buy_passes_long_only_shortcut_changes_no_answer(kind, mult, cash, reserved, holdings, qty):
    "Margin buying power >= m x cash - reserved when all that is held is long at finite prices >= 0: the shortcut answers as valuing them does."
    e = MatchingEngine({"XYZ": Asset("XYZ", fractionable=True, shortable=True)}, SimAccount(cash=cash, account_type=kind, margin_multiplier=mult),
                       EngineConfig(), sessions=_SESSIONS, spread_bps={"XYZ": 10.0})
    t0 = to_ns(T0)
    bk = e.books["XYZ"]; bk.last_close, bk.last_vol, bk.last_end = 100.0, 5000.0, t0
    e.reserved = Decimal(reserved)
    for i, (q, mark, avg) in enumerate(holdings):
        if q == 0: continue
        s = f"H{i}"
        e.account.positions[s] = SimPosition(Decimal(q), Decimal(avg))
        if mark is not None: e.account.marks[s] = mark
    req = OrderRequest("XYZ", Side.BUY, qty=Decimal(qty))
    def answer():
        try: return ("ok", market_buy_passes(e, req, t0))
        except Exception as x: return ("raises", type(x))
    got = answer()
    keep, checks._long_only = checks._long_only, lambda acct: False             # every position valued, as before the shortcut
    try: old = answer()
    finally: checks._long_only = keep
    assert got == old
    if got == ("ok", True):                                                      # and the engine's own check agrees
        try: check_order(e, req, t0, FillMode())
        except Reject as r: raise AssertionError(f"market_buy_passes said yes, check_order: {r.code}")
