"SimBroker: Broker protocol conformance and behaviour, time driving, no look-ahead, listeners, streams, save/restore."
import asyncio
from datetime import date, datetime, timezone, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from swingtrader.broker import Broker, OrderRejected, OrderNotFound, UnknownSymbol, BAR_COLUMNS
from swingtrader.clock import SimClock
from swingtrader.config import SwingtraderError
from swingtrader.models import Bar, Quote, OrderRequest, OrderStatus, OrderUpdate, OrderEvent, Account, Position, OrderPreview
from swingtrader.sim.broker import SimBroker, AccountUpdate
from swingtrader.sim.data import make_universe, generate_bars, resample_bars

UTC = timezone.utc
OPEN = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
UNIVERSE = make_universe(4, 3)
BARS = generate_bars(UNIVERSE, date(2026, 3, 2), date(2026, 3, 4), 3)
SYMS = list(UNIVERSE.index)


def broker(mode="manual", at=OPEN, **kw):
    return SimBroker(BARS, UNIVERSE, SimClock(at, mode=mode), **kw)


def mins(k): return OPEN + timedelta(minutes=k)


def test_protocol_conformance_and_types():
    b = broker()
    assert isinstance(b, Broker) and b.name == "sim"
    b.advance_to(mins(5))
    assert isinstance(b.account(), Account) and b.positions() == []
    o = b.submit(OrderRequest(SYMS[0], "buy", qty=3))
    assert o.status is OrderStatus.FILLED and isinstance(b.positions()[0], Position)
    assert isinstance(b.dry_run(OrderRequest(SYMS[0], "buy", qty=1)), OrderPreview)
    assert b.order(o.id) == o and b.order_by_client_key(o.client_key) == o and b.order_by_client_key("missing") is None
    assert b.asset(SYMS[0]).symbol == SYMS[0]
    assert isinstance(b.latest_quote(SYMS[0]), Quote)
    assert list(b.bars(SYMS[0], "1m", OPEN, mins(60)).columns) == BAR_COLUMNS


def test_unknown_symbol_everywhere():
    b = broker()
    for f in (lambda: b.asset("QQQQQ"), lambda: b.bars("QQQQQ", "1m", OPEN, mins(1)), lambda: b.latest_quote("QQQQQ")):
        with pytest.raises(UnknownSymbol): f()
    with pytest.raises(OrderRejected) as ex: b.submit(OrderRequest("QQQQQ", "buy", qty=1))
    assert ex.value.reason == "unknown_symbol"


def test_sync_processes_only_closed_bars_in_time_order():
    b = broker()
    seen = []
    b.subscribe(SYMS, ("1m",))
    b.add_listener(lambda e: seen.append(e) if isinstance(e, Bar) else None)
    b.advance_to(mins(3) + timedelta(seconds=59))
    assert len(seen) == 3 * len(SYMS)
    assert [x.start for x in seen] == sorted(x.start for x in seen)
    assert all(x.start + timedelta(minutes=1) <= b.clock.now() for x in seen)
    assert b.sync() == []                                               # idempotent


@pytest.mark.parametrize("tf", ["1m", "5m", "1h", "1d"])
def test_history_never_looks_ahead(tf):
    b = broker()
    rng = np.random.default_rng(0)
    full = resample_bars(BARS[SYMS[1]], tf) if tf != "1m" else BARS[SYMS[1]]
    for k in sorted(rng.integers(0, 3 * 390, 6)):
        t = OPEN + timedelta(minutes=int(k) + int(k) // 390 * (24 * 60 - 390))
        if t > b.clock.now(): b.advance_to(t)
        h = b.bars(SYMS[1], tf, OPEN - timedelta(days=1), OPEN + timedelta(days=10))
        if tf == "1d": assert all(b.calendar.next_close(s) <= b.clock.now() for s in h.index.to_pydatetime())
        else: assert (h.index + pd.Timedelta(tf.replace("m", "min")) <= b.clock.now()).all()
        pd.testing.assert_frame_equal(h, full.loc[h.index], check_freq=False)
        q = b.latest_quote(SYMS[1])
        assert q.time <= b.clock.now()


def test_aggregated_stream_bars_match_history():
    b = broker()
    got = []
    b.subscribe([SYMS[0]], ("5m", "1d"))
    b.add_listener(lambda e: got.append(e) if isinstance(e, Bar) else None)
    b.advance_to(datetime(2026, 3, 3, 22, tzinfo=UTC))
    five = [x for x in got if x.timeframe == "5m"]
    hist = b.bars(SYMS[0], "5m", OPEN, datetime(2026, 3, 4, tzinfo=UTC))
    assert len(five) == len(hist) == 2 * 78
    assert [(x.open, x.high, x.low, x.close, x.volume) for x in five] == [tuple(r) for r in hist[BAR_COLUMNS].itertuples(index=False)]
    days = [x for x in got if x.timeframe == "1d"]
    assert [d.start for d in days] == list(b.bars(SYMS[0], "1d", OPEN, datetime(2026, 3, 4, tzinfo=UTC)).index.to_pydatetime())


def test_listener_events_order_and_remove():
    b = broker()
    b.advance_to(mins(2))
    ev = []
    remove = b.add_listener(ev.append)
    b.submit(OrderRequest(SYMS[0], "buy", qty=1))
    assert [type(e) for e in ev] == [OrderUpdate, OrderUpdate, AccountUpdate]
    assert [e.event for e in ev[:2]] == [OrderEvent.ACCEPTED, OrderEvent.FILL] and ev[2].reason == "fill"
    remove()
    b.submit(OrderRequest(SYMS[0], "buy", qty=1))
    assert len(ev) == 3


def test_failing_listener_does_not_break_the_broker():
    b = broker()
    b.add_listener(lambda e: 1 / 0)
    b.advance_to(mins(2))
    assert b.submit(OrderRequest(SYMS[0], "buy", qty=1)).status is OrderStatus.FILLED


def test_orders_filters_and_cancel_all():
    b = broker()
    b.advance_to(mins(2))
    f = b.submit(OrderRequest(SYMS[0], "buy", qty=1))
    rest = [b.submit(OrderRequest(s, "buy", qty=1, type="limit", limit_price="1.00")) for s in SYMS[:3]]
    assert {o.id for o in b.orders("open")} == {o.id for o in rest}
    assert [o.id for o in b.orders(OrderStatus.FILLED)] == [f.id] and b.orders("closed") == [b.order(f.id)]
    assert b.orders(since=mins(3)) == []
    with pytest.raises(SwingtraderError): b.orders("weird")
    out = b.cancel_all()
    assert {o.status for o in out} == {OrderStatus.CANCELLED} and b.orders("open") == []
    with pytest.raises(OrderNotFound): b.order("sim-99999999")


def test_day_orders_expire_and_settlement_via_sync():
    b = broker(account_type="cash")
    b.advance_to(mins(1))
    b.submit(OrderRequest(SYMS[0], "buy", qty=10))
    lim = b.submit(OrderRequest(SYMS[0], "buy", qty=1, type="limit", limit_price="1.00"))
    b.advance_to(mins(30))
    s = b.submit(OrderRequest(SYMS[0], "sell", qty=10))
    acct = b.account()
    assert acct.unsettled_cash == s.filled_qty * s.avg_fill_price and acct.settled_cash + acct.unsettled_cash == acct.cash
    ev = b.advance_to(datetime(2026, 3, 3, 14, 31, tzinfo=UTC))
    assert b.order(lim.id).status is OrderStatus.EXPIRED and b.account().unsettled_cash == 0
    assert any(isinstance(e, AccountUpdate) and e.reason == "settlement" for e in ev)


def test_gfv_through_the_broker():
    b = broker(account_type="cash", cash=Decimal(2000))
    sym = min(SYMS, key=lambda s: UNIVERSE.price[s])
    b.advance_to(mins(1))
    q = int(1500 / b.latest_quote(sym).ask)
    b.submit(OrderRequest(sym, "buy", qty=q))
    b.advance_to(datetime(2026, 3, 3, 14, 35, tzinfo=UTC))
    b.submit(OrderRequest(sym, "sell", qty=q))                          # proceeds unsettled until Wed
    q2 = int(float(b.account().cash) * 0.95 / b.latest_quote(sym).ask)
    b.submit(OrderRequest(sym, "buy", qty=q2))                          # uses unsettled proceeds
    b.advance_to(datetime(2026, 3, 3, 15, 0, tzinfo=UTC))
    b.submit(OrderRequest(sym, "sell", qty=q2))                         # sold before they settle
    assert len(b.account_state.gfvs) == 1 and b.account_state.gfvs[0].symbol == sym


def test_fill_mode_through_broker_and_replace():
    b = broker()
    b.advance_to(mins(1))
    b.set_fill_mode("never", key=SYMS[0])
    o = b.submit(OrderRequest(SYMS[0], "buy", qty=1, client_key="a1"))
    assert o.status is OrderStatus.ACCEPTED
    b.clear_fill_modes()
    n = b.replace(o.id, qty=Decimal(2))
    assert n.replaces == o.id and b.order(o.id).status is OrderStatus.CANCELLED and n.filled_qty == 2


def test_replace_under_a_given_client_key_is_once_per_key():
    b = broker()
    b.advance_to(mins(1))
    b.submit(OrderRequest(SYMS[0], "buy", qty=5))
    st = b.submit(OrderRequest(SYMS[0], "sell", qty=5, type="stop", tif="gtc", stop_price=Decimal("1.00"), client_key="ps-1"))
    r = b.replace(st.id, stop_price=Decimal("1.10"), client_key="ps-2")
    assert (r.client_key, r.replaces, r.stop_price, r.qty) == ("ps-2", st.id, Decimal("1.10"), Decimal(5))
    assert b.replace(st.id, stop_price=Decimal("1.10"), client_key="ps-2").id == r.id     # a repeat: the same order
    assert [o.client_key for o in b.orders("open")] == ["ps-2"]


def test_order_updates_stream_fast_clock_and_thread_submit():
    b = broker(mode="fast", at=mins(1))

    async def main():
        s = b.order_updates()
        got = []
        # a trading thread submits while the stream waits (the bot calls the broker through to_thread)
        await asyncio.to_thread(b.submit, OrderRequest(SYMS[0], "buy", qty=5, type="limit", limit_price="1.00", client_key="t1"))
        async for u in s:
            got.append(u)
            if len(got) == 2: s.close()
        return got
    got = asyncio.run(asyncio.wait_for(main(), 30))
    assert [u.event for u in got] == [OrderEvent.ACCEPTED, OrderEvent.EXPIRED]   # the fast clock ran to the close
    assert b.clock.now() >= datetime(2026, 3, 2, 21, tzinfo=UTC)


def test_stream_quotes_and_bars_in_manual_mode():
    b = broker()

    async def main():
        qs, bs = b.stream_quotes([SYMS[2]]), b.stream_bars([SYMS[2]], "1m")
        async def mover():
            for k in range(1, 4):
                await asyncio.sleep(0.01); b.advance_to(mins(k))
        task = asyncio.create_task(mover())
        q = [await qs.__anext__() for _ in range(3)]
        x = [await bs.__anext__() for _ in range(3)]
        await task; qs.close(); bs.close()
        return q, x
    q, x = asyncio.run(asyncio.wait_for(main(), 30))
    assert [e.time for e in q] == [mins(1), mins(2), mins(3)] and all(e.bid < e.ask for e in q)
    assert [e.start for e in x] == [OPEN, mins(1), mins(2)] and x[0].close == BARS[SYMS[2]].close.iloc[0]
    assert not b._bar_subs and not b._quote_subs                    # closing unsubscribes


def test_run_to_end_of_data_fast():
    b = broker(mode="fast")
    b.submit(OrderRequest(SYMS[0], "buy", qty=1, type="limit", limit_price="1.00", tif="gtc"))
    asyncio.run(asyncio.wait_for(b.run(), 60))
    assert b.next_event_time() is None and b.tape.pos == len(b.tape)
    assert b.orders("open")[0].tif.value == "gtc"


def test_save_restore_continues_identically(tmp_path):
    a = broker(account_type="cash", commission_per_share="0.005", commission_min=1, slippage_bps=2)
    a.advance_to(mins(10))
    a.submit(OrderRequest(SYMS[0], "buy", qty=20))
    a.submit(OrderRequest(SYMS[1], "buy", qty=5, type="limit", limit_price=str(round(a.latest_quote(SYMS[1]).bid * 0.999, 2)), tif="gtc"))
    a.submit(OrderRequest(SYMS[2], "buy", qty=5, type="stop", stop_price=str(round(a.latest_quote(SYMS[2]).ask * 1.002, 2))))
    a.set_fill_mode("delayed:3", key="slow")
    a.submit(OrderRequest(SYMS[3], "buy", qty=2, client_key="slow"))
    a.advance_to(mins(40))
    a.submit(OrderRequest(SYMS[0], "sell", qty=10))
    p = a.save(tmp_path / "state.json")
    b = SimBroker.restore(p, BARS, UNIVERSE)
    assert b.clock.now() == a.clock.now() and b.account() == a.account() and b.orders() == a.orders()
    assert b.positions() == a.positions() and b.engine.fills == a.engine.fills and b.engine.reserved == a.engine.reserved
    for t in (mins(41), mins(200), datetime(2026, 3, 3, 15, tzinfo=UTC), datetime(2026, 3, 4, 21, tzinfo=UTC)):
        a.advance_to(t); b.advance_to(t)
        for br in (a, b): br.submit(OrderRequest(SYMS[t.minute % 4], "buy", qty=1, type="limit", limit_price="1.00", client_key=f"k{t.day}{t.hour}{t.minute}"))
        assert b.account() == a.account() and b.orders() == a.orders() and b.engine.fills == a.engine.fills
    assert b.submit(OrderRequest(SYMS[0], "buy", qty=1, client_key="slow")).id == a.order_by_client_key("slow").id


def test_restore_needs_bars_unless_seeded(tmp_path):
    p = broker().save(tmp_path / "s.json")
    with pytest.raises(SwingtraderError, match="pass market_bars"): SimBroker.restore(p)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SwingtraderError, match="Cannot read"): SimBroker.restore(tmp_path / "bad.json", BARS, UNIVERSE)


def test_from_seed_save_restore_without_bars(tmp_path):
    s = SimBroker.from_seed(seed=5, symbols=3, start=date(2026, 3, 2), end=date(2026, 3, 2), cash=Decimal(5000))
    s.advance_to(mins(5))
    s.submit(OrderRequest(s.symbols[0], "buy", qty=2))
    r = SimBroker.restore(s.save(tmp_path / "x.json"))
    assert r.account() == s.account() and r.symbols == s.symbols and r.account().account_id == "SIM-0001"


def test_coarser_base_bars_no_look_ahead_and_matching():
    five = {s: resample_bars(df, "5m") for s, df in BARS.items()}
    b = SimBroker(five, UNIVERSE, SimClock(OPEN, mode="manual"), bar_seconds=300, fill_at="bar")
    assert b.base_timeframe == "5m"
    o = b.submit(OrderRequest(SYMS[0], "buy", qty=1))
    b.advance_to(mins(32))
    for tf, n in (("1m", 6), ("5m", 6), ("15m", 2)):
        h = b.bars(SYMS[0], tf, OPEN, mins(60))
        assert len(h) == n and (h.index + pd.Timedelta(minutes=max(5, int(tf[:-1])))).max() <= b.clock.now()
    assert b.order(o.id).avg_fill_price == Decimal(str(five[SYMS[0]].open.iloc[0]))
