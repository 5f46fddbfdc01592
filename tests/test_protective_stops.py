"""Protective stop orders at the broker: placed after the entry fill, moved with the trail (throttled), resized on
partial fills, cancelled before exits, filled at the broker without a second exit, reconciled after a restart.
On the SimBroker, and once through the emulator with the real tastytrade client."""
import dataclasses, threading
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np, pandas as pd
import pytest

from swingtrader.config import Settings
from swingtrader.clock import SimClock
from swingtrader.models import OrderEvent, OrderRequest, OrderStatus, OrderType, OrderUpdate, Side, Signal, SignalAction, TimeInForce
from swingtrader.strategy import MacdSwing
from swingtrader.sizer import Sizer
from swingtrader.stops import StopBook, PROTECTIVE, is_protective_key, protective_key, stop_price
from swingtrader.risk import RiskGuard
from swingtrader.ledger import Ledger
from swingtrader.sim.broker import SimBroker
from swingtrader.sim.data import make_universe
from swingtrader.trader import Trader

UTC = timezone.utc
OPEN = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)          # Monday 9:30 New York
S = Settings(_env_file=None, warmup_bars=30, broker_stop_min_move=5)


def market(n=390, volume=1e6, drop_at=None, drop_to=90.0):
    "One session of 1-minute bars at 100, dropping to `drop_to` from minute `drop_at`."
    c = np.full(n, 100.0)
    if drop_at is not None: c[drop_at:] = drop_to
    idx = pd.date_range(OPEN, periods=n, freq="1min", name="start")
    return pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": float(volume)}, index=idx)


def universe():
    u = make_universe(2, 42)
    u.index = pd.Index(["AAA", "BBB"], name=u.index.name)
    u["price"], u["fractionable"] = 100.0, False
    return u


class Rig:
    "A SimBroker over hand-made bars, a ledger and a Trader with broker stops, its order updates routed in-process."
    def __init__(self, bars=None, broker=None, ledger=None, clock=None):
        self.clock = clock or SimClock(OPEN, mode="manual")
        bars = market() if bars is None else bars
        self.broker = broker or SimBroker({"AAA": bars, "BBB": bars.copy()}, universe(), self.clock, fill_at="quote")
        self.ledger = ledger or Ledger(":memory:", clock=self.clock)
        self.events = []
        self.trader = self.make()
        self.remove = self.broker.add_listener(self.on_event)

    def make(self):
        return Trader(S, MacdSwing.from_settings(S), Sizer.from_settings(S), RiskGuard(S), StopBook.from_settings(S), self.ledger,
                      clock=self.clock, assets=self.broker.asset, account_provider=lambda: (self.broker.account(), self.broker.positions()),
                      broker_stops=True)

    def on_event(self, ev):
        if isinstance(ev, OrderUpdate):
            self.events.append(ev); self.trader.on_update(ev)

    def at(self, minute, seconds=0): self.broker.advance_to(OPEN + timedelta(minutes=minute, seconds=seconds))

    def signal(self, action, sym="AAA", atr=1.0):
        t = self.clock.now()
        self.trader.last[sym] = 100.0; self.trader.last_time = t
        return Signal(sym, action, t, 100.0, atr)

    def enter(self, sym="AAA"):
        (it,) = self.trader._entry(self.signal(SignalAction.ENTER_LONG, sym))
        return self.trader.submit(it, self.broker)

    def stops(self, sym="AAA"):
        return [o for o in self.broker.orders("open") if o.symbol == sym and o.type is OrderType.STOP]

    def held(self, sym="AAA"):
        return next((p.qty for p in self.broker.positions() if p.symbol == sym), Decimal(0))


def test_entry_fill_places_one_broker_stop_at_the_trail_level():
    r = Rig(); r.at(1)
    r.enter(); r.at(2)
    assert r.held() > 0 and r.trader.stops.stops["AAA"]
    done = r.trader.sync_stops(r.broker)
    assert [c.kind for c, _ in done] == ["place"]
    (o,) = r.stops()
    ts = r.trader.stops.stops["AAA"]
    assert (o.side, o.tif, o.qty, o.stop_price) == (Side.SELL, TimeInForce.GTC, r.held(), stop_price(ts.stop))
    assert is_protective_key(o.client_key)
    row = r.ledger.order(o.client_key)
    assert (row.signal_id, row.status, row.broker_order_id) == (PROTECTIVE, "accepted", o.id)
    assert r.trader.sync_stops(r.broker) == []                 # nothing to do: no second order
    assert len(r.stops()) == 1


def test_trail_ratchet_replaces_the_stop_throttled():
    r = Rig(); r.at(1); r.enter(); r.at(2); r.trader.sync_stops(r.broker)
    ts = r.trader.stops.stops["AAA"]
    (first,) = r.stops()
    n0 = r.broker.engine.n_replaces
    ts.stop += 0.03                                             # 3 ticks < 5: not worth a replace
    r.at(4); assert r.trader.sync_stops(r.broker) == []
    ts.stop += 0.5                                              # worth it
    assert [c.kind for c, _ in r.trader.sync_stops(r.broker)] == ["replace"]
    (second,) = r.stops()
    assert second.replaces == first.id and second.stop_price == stop_price(ts.stop) and second.qty == first.qty
    assert r.ledger.order(first.client_key).status == "cancelled" and r.ledger.order(second.client_key).signal_id == PROTECTIVE
    ts.stop += 0.5                                              # again, within the same minute: throttled
    r.at(4, 30); assert r.trader.sync_stops(r.broker) == []
    assert r.stops()[0].id == second.id
    r.at(5, 5)                                                  # a minute later it moves
    assert [c.kind for c, _ in r.trader.sync_stops(r.broker)] == ["replace"]
    (third,) = r.stops()
    assert third.stop_price == stop_price(ts.stop)
    assert r.broker.engine.n_replaces - n0 == 2
    assert len({o.client_key for o in r.ledger.orders() if o.signal_id == PROTECTIVE}) == 3
    ts.stop -= 2.0                                              # never down (the code-side stop only ratchets up anyway)
    r.at(8); assert r.trader.sync_stops(r.broker) == []


def test_exit_cancels_the_stop_before_the_exit_order():
    r = Rig(); r.at(1); r.enter(); r.at(2); r.trader.sync_stops(r.broker)
    (stop,) = r.stops()
    r.at(3)
    r.events.clear()
    (it,) = r.trader._exit(r.signal(SignalAction.EXIT_LONG))
    assert r.trader.sync_stops(r.broker) == []                  # an exit is pending: no stop is placed or moved
    o = r.trader.submit(it, r.broker)
    seq = [(u.order.client_key, u.event) for u in r.events]
    assert seq.index((stop.client_key, OrderEvent.CANCELLED)) < seq.index((it.client_key, OrderEvent.ACCEPTED))
    assert o.status is OrderStatus.FILLED and r.held() == 0 and r.stops() == []
    assert r.trader.trades[-1]["exit_reason"] != PROTECTIVE and "AAA" not in r.trader.protective
    assert r.trader.sync_stops(r.broker) == [] and r.broker.orders("open") == []


def test_partial_fills_resize_the_stop():
    r = Rig(bars=market(volume=200))                           # 10 % participation: 20 shares a bar
    r.at(1); r.enter()
    sizes = []
    for m in range(2, 12):
        r.at(m)
        r.trader.sync_stops(r.broker)
        if r.stops(): sizes.append(r.stops()[0].qty)
        assert len(r.stops()) <= 1
        assert not r.stops() or r.stops()[0].qty == r.held()     # the stop always covers exactly the position
    assert len(set(sizes)) > 1 and sizes == sorted(sizes) and sizes[-1] == r.held()


def test_broker_stop_fill_closes_the_position_without_a_second_exit():
    r = Rig(bars=market(drop_at=20)); r.at(1); r.enter(); r.at(2); r.trader.sync_stops(r.broker)
    (stop,) = r.stops()
    n_orders = len(r.ledger.orders())
    r.at(21)                                                    # the market gaps below the stop: the broker stop fills
    assert r.held() == 0 and r.trader.positions == {}
    assert r.ledger.order(stop.client_key).status == "filled"
    t = r.trader.trades[-1]
    assert (t["exit_reason"], t["symbol"]) == (PROTECTIVE, "AAA")
    assert "AAA" not in r.trader.stops.stops and r.ledger.stops() == {} and "AAA" not in r.trader.protective
    assert not r.trader.strategy.is_long("AAA")
    # the code-side stop would now say "exit": nothing is held, so no order is sent
    assert r.trader._exit(r.signal(SignalAction.EXIT_LONG)) == []
    assert r.trader.sync_stops(r.broker) == []
    assert len(r.ledger.orders()) == n_orders and r.broker.orders("open") == []
    assert r.ledger.check() == []


def test_stop_filled_before_the_exit_drops_the_exit():
    "The exit was decided, but the broker stop filled first: the cancel finds it filled and the exit is not sent."
    r = Rig(bars=market(drop_at=20)); r.at(1); r.enter(); r.at(2); r.trader.sync_stops(r.broker)
    (it,) = r.trader._exit(r.signal(SignalAction.EXIT_LONG))
    r.remove()                                                  # the fill's update is late
    r.at(21)
    assert r.held() == 0
    assert r.trader.submit(it, r.broker) is None
    assert r.ledger.order(it.client_key).status == "rejected" and it.client_key not in r.trader.pending
    assert [o for o in r.broker.orders() if o.client_key == it.client_key] == []    # never sent: no short
    assert r.held() == 0


def _restart(r):
    "Checkpoint, stop listening, and return a function that resumes a new trader on the same ledger and broker."
    r.trader.checkpoint(); r.remove()
    def resume():
        t = Trader.resume(S, r.ledger, assets=r.broker.asset, clock=r.clock, broker_stops=True,
                          account_provider=lambda: (r.broker.account(), r.broker.positions()))
        t.set_account(r.broker.account(), r.broker.positions())
        r.trader = t; r.remove = r.broker.add_listener(r.on_event)
        return t
    return resume


def test_restart_creates_a_missing_stop():
    r = Rig(); r.at(1); r.enter(); r.at(2); r.trader.sync_stops(r.broker)
    (stop,) = r.stops()
    resume = _restart(r)
    r.broker.cancel(stop.id)                                    # cancelled while the bot was down
    t = resume()
    t.sync_stops(r.broker)
    (new,) = r.stops()
    assert new.id != stop.id and new.qty == r.held() and new.client_key not in (stop.client_key,)
    assert t.sync_stops(r.broker) == [] and len(r.stops()) == 1


def test_restart_cancels_a_duplicate_and_an_orphan():
    r = Rig(); r.at(1); r.enter(); r.at(2); r.trader.sync_stops(r.broker)
    (stop,) = r.stops()
    resume = _restart(r)
    # while the bot is down: a second protective stop for AAA (a crash between broker ack and ledger record) …
    dup = r.broker.submit(OrderRequest("AAA", Side.SELL, qty=r.held(), type=OrderType.STOP, tif=TimeInForce.GTC,
                                       stop_price=stop.stop_price - 1, client_key=protective_key("AAA", "x", 99)))
    # … and BBB bought, protected, then sold by hand: its stop is an orphan that could open a short
    r.broker.submit(OrderRequest("BBB", Side.BUY, qty=Decimal(10)))
    orphan = r.broker.submit(OrderRequest("BBB", Side.SELL, qty=Decimal(10), type=OrderType.STOP, tif=TimeInForce.GTC,
                                          stop_price=Decimal(95), client_key=protective_key("BBB", "y", 1)))
    r.broker.submit(OrderRequest("BBB", Side.SELL, qty=Decimal(10)))
    r.at(3)
    assert r.held("BBB") == 0 and len(r.stops("AAA")) == 2 and len(r.stops("BBB")) == 1
    t = resume()
    done = t.sync_stops(r.broker)
    assert sorted(c.order_id for c, _ in done if c.kind == "cancel") == sorted([dup.id, orphan.id])
    (kept,) = r.stops("AAA")
    assert kept.id == stop.id and kept.qty == r.held()
    assert r.stops("BBB") == [] and r.broker.order(orphan.id).status is OrderStatus.CANCELLED
    assert "BBB" not in t.protective
    assert t.sync_stops(r.broker) == []


def test_restart_after_a_closed_position_leaves_no_stop():
    r = Rig(); r.at(1); r.enter(); r.at(2); r.trader.sync_stops(r.broker)
    (stop,) = r.stops()
    resume = _restart(r)
    r.broker.submit(OrderRequest("AAA", Side.SELL, qty=r.held()))   # closed by hand while the bot was down
    r.at(3)
    t = resume()
    t.sync_stops(r.broker)
    assert r.held() == 0 and r.stops() == [] and r.broker.order(stop.id).status is OrderStatus.CANCELLED


def test_restart_without_the_trail_keeps_the_broker_stop():
    "The code-side stop state was lost (an old ledger backup): the broker stop is the only protection left, so it stays."
    r = Rig(); r.at(1); r.enter(); r.at(2); r.trader.sync_stops(r.broker)
    (stop,) = r.stops()
    resume = _restart(r)
    r.ledger.replace_stops({})
    t = resume()
    assert "AAA" not in t.stops.stops
    assert t.sync_stops(r.broker) == [] and [o.id for o in r.stops()] == [stop.id]


def test_switched_off_no_broker_orders():
    r = Rig()
    r.trader.broker_stops = False
    r.at(1); r.enter(); r.at(2)
    assert r.trader.sync_stops(r.broker) == [] and r.stops() == []


# -- once through the emulator with the real tastytrade client --------------------------------------------

def test_through_the_emulator_with_the_tastytrade_client():
    from swingtrader.clock import WallClock
    from swingtrader.tastytrade.broker import TastytradeBroker
    from emu_support import make_emulator, serve
    clock = SimClock(OPEN, mode="manual")
    sim = SimBroker({"AAA": market(drop_at=30), "BBB": market()}, universe(), clock, fill_at="quote")
    emu = make_emulator(sim)
    stack = ExitStack(); srv = stack.enter_context(serve(emu=emu))
    tt = None
    try:
        settings = Settings(_env_file=None, broker="tastytrade", TT_CLIENT_SECRET="s", TT_REFRESH_TOKEN="r",
                            TT_API_URL=srv.api_url, TT_STREAMER_URL=srv.streamer_url, warmup_bars=30)
        tt = TastytradeBroker(settings, clock=WallClock(), verify=srv.ca_file)
        ledger = Ledger(":memory:", clock=clock)
        trader = Trader(S, MacdSwing.from_settings(S), Sizer.from_settings(S), RiskGuard(S), StopBook.from_settings(S), ledger,
                        clock=clock, assets=tt.asset, account_provider=lambda: (tt.account(), tt.positions()), broker_stops=True,
                        broker_name="tastytrade")
        lock, inbox = threading.Lock(), []
        def as_tt(o):
            return dataclasses.replace(o, id=str(emu.tt_id(o.id)), replaces=str(emu.tt_id(o.replaces)) if o.replaces else None)
        def on_event(ev):                                       # the simulator's events, as the account streamer would show them
            if isinstance(ev, OrderUpdate):
                f = dataclasses.replace(ev.fill, order_id=str(emu.tt_id(ev.fill.order_id))) if ev.fill else None
                with lock: inbox.append(dataclasses.replace(ev, order=as_tt(ev.order), fill=f))
        sim.add_listener(on_event)
        def drain():
            with lock: evs, inbox[:] = list(inbox), []
            for u in evs: trader.on_update(u)
        def at(m, s=0): sim.advance_to(OPEN + timedelta(minutes=m, seconds=s)); drain()
        def stops(): return [o for o in tt.orders("open") if o.symbol == "AAA" and o.type is OrderType.STOP]
        at(1)
        trader.last["AAA"], trader.last_time = 100.0, clock.now()
        (it,) = trader._entry(Signal("AAA", SignalAction.ENTER_LONG, clock.now(), 100.0, 1.0))
        trader.submit(it, tt); at(2)
        held = trader.held("AAA")
        assert held > 0
        assert [c.kind for c, _ in trader.sync_stops(tt)] == ["place"]; drain()
        (s1,) = stops()
        assert (s1.qty, s1.tif, s1.stop_price, is_protective_key(s1.client_key)) == (held, TimeInForce.GTC, stop_price(trader.stops.stops["AAA"].stop), True)
        trader.stops.stops["AAA"].stop += 0.5
        at(4)
        assert [c.kind for c, _ in trader.sync_stops(tt)] == ["replace"]; drain()
        (s2,) = stops()
        assert (s2.replaces, s2.client_key, s2.stop_price) == (s1.id, trader.protective["AAA"].key, s1.stop_price + Decimal("0.50"))
        assert ledger.order(s2.client_key).broker_order_id == s2.id
        trader.stops.stops["AAA"].stop += 0.5
        assert trader.sync_stops(tt) == []                      # throttled: same minute
        at(31)                                                  # the market drops through the stop: it fills at the broker
        assert trader.held("AAA") == 0 and tt.positions() == [] and stops() == []
        assert trader.trades[-1]["exit_reason"] == PROTECTIVE and ledger.order(s2.client_key).status == "filled"
        assert trader.sync_stops(tt) == [] and tt.orders("open") == []
        assert len([o for o in sim.orders() if o.symbol == "AAA"]) == 3    # entry, stop, its replacement: no exit order
    finally:
        if tt is not None: tt.close()
        stack.close()


# -- the bot ----------------------------------------------------------------------------------------------

BOT_S = Settings(_env_file=None, macd_fast=6, macd_slow=13, macd_signal=5, trend_ema=20, warmup_bars=30, scan_top=6,
                 max_losing_streak=1000, daily_loss_halt=0.05)


def test_bot_keeps_one_stop_per_position_and_never_overlaps_an_exit(tmp_path):
    "Three simulated days through the bot on the SimBroker: stops follow positions; no exit works while a stop does."
    import asyncio
    from datetime import date
    from swingtrader.audit import AuditLog
    from swingtrader.session import sim_bot
    clock = SimClock(datetime(2026, 3, 2, 13, 0, tzinfo=UTC), mode="fast")
    sim = SimBroker.from_seed(seed=3, symbols=6, start=date(2026, 2, 24), end=date(2026, 3, 4), clock=clock)
    sim.sync()
    ledger = Ledger(tmp_path / "ledger.sqlite", clock=clock)
    audit = AuditLog(tmp_path / "audit", clock, fsync=False)
    bot = sim_bot(BOT_S, sim, ledger, audit, last_day=date(2026, 3, 4), fast_forward_idle=True)
    try: days = asyncio.run(asyncio.wait_for(bot.run(), 300))
    finally: audit.close()
    assert [d.errors for d in days] == [0, 0, 0]
    orders = sim.orders()
    prot = [o for o in orders if is_protective_key(o.client_key)]
    assert prot and all(o.type is OrderType.STOP and o.tif is TimeInForce.GTC and o.side is Side.SELL for o in prot)
    assert all(ledger.order(o.client_key).signal_id == PROTECTIVE for o in prot)
    # at the end: exactly one stop per open (whole-share) position, for its whole shares; none elsewhere
    held = {p.symbol: p.qty for p in sim.positions() if p.qty}
    working = [o for o in prot if o.is_open]
    want = {s: q.to_integral_value(rounding="ROUND_FLOOR") for s, q in held.items() if s in bot.trader.stops.stops}
    assert sorted(o.symbol for o in working) == sorted(s for s, q in want.items() if q >= 1)
    assert all(o.remaining_qty == want[o.symbol] for o in working)
    # never an exit working next to a protective stop of the same symbol (cancel first), never a short
    far = datetime.max.replace(tzinfo=UTC)
    for x in orders:
        if x.side is not Side.SELL or is_protective_key(x.client_key): continue
        for o in prot:
            if o.symbol != x.symbol: continue
            end = o.updated_at if o.status.is_terminal else far
            assert not (o.created_at <= x.created_at < end), (x, o)
    assert all(p.qty >= 0 for p in ledger.positions()) and ledger.check() == []
    assert OrderStatus.CANCELLED in {o.status for o in prot} and len(bot.trader.trades) > 3
    ledger.close()


def test_bot_flatten_cancels_the_stops_first(tmp_path):
    import asyncio
    from swingtrader.session import sim_bot
    from swingtrader.risk import flatten
    r = Rig(); r.at(1)
    r.remove()
    bot = sim_bot(S, r.broker, r.ledger, trader=r.trader, universe=["AAA", "BBB"])
    r.remove = r.broker.add_listener(r.on_event)
    r.enter(); r.at(2)
    async def go():
        await bot.sync_stops()
        (stop,) = r.stops()
        flatten(r.ledger, who="tester", reason="test")
        r.events.clear()
        done = await bot.obey_commands()
        return stop, done
    stop, done = asyncio.run(go())
    assert done[0].status == "done", done[0].result
    seq = [(u.order.client_key, u.event) for u in r.events]
    sells = [i for i, (k, e) in enumerate(seq) if e is OrderEvent.ACCEPTED and not is_protective_key(k)]
    assert seq.index((stop.client_key, OrderEvent.CANCELLED)) < sells[0]
    r.at(3)
    assert r.held() == 0 and r.broker.orders("open") == [] and r.stops() == []


def test_tastytrade_bot_day_one_stop_per_position(tmp_path):
    "A simulated day of the real tastytrade bot on the emulator: at the close every held position has exactly one broker stop."
    import asyncio
    from datetime import date
    from swingtrader.audit import AuditLog
    from swingtrader.session import emulated_tastytrade, tastytrade_bot
    s = Settings(_env_file=None, data_dir=tmp_path, sim_symbols=8, sim_seed=42, scan_top=8, scan_min_avg_volume=0,
                 macd_fast=6, macd_slow=13, macd_signal=5, trend_ema=20, warmup_bars=30, max_losing_streak=1000, daily_loss_halt=0.5)
    env = emulated_tastytrade(s, date(2026, 3, 2), date(2026, 3, 2), 2000.0)
    ledger = Ledger(tmp_path / "ledger.sqlite", clock=env.clock)
    audit = AuditLog(tmp_path / "audit", env.clock, env.settings.secret_values())
    bot = tastytrade_bot(env.settings, env.clock, ledger, audit, scan_url=env.scan_url(), calendar=env.calendar,
                         last_day=date(2026, 3, 2), fast_forward_idle=True)
    try:
        days = asyncio.run(asyncio.wait_for(bot.run(), 300))
        orders = env.server.call(lambda: env.sim.orders())
        held = {p.symbol: p.qty for p in env.server.call(lambda: env.sim.positions()) if p.qty}
    finally:
        bot.broker.close(); env.close(); audit.close()
    assert days and days[-1].errors == 0
    prot = [o for o in orders if is_protective_key(o.client_key)]
    assert prot, "no protective stop was placed"
    working = [o for o in prot if o.is_open]
    whole = {sym: q.to_integral_value(rounding="ROUND_FLOOR") for sym, q in held.items()}
    assert sorted(o.symbol for o in working) == sorted(sym for sym, q in whole.items() if q >= 1)
    assert all(o.remaining_qty == whole[o.symbol] for o in working)
    keys = [o.client_key for o in orders]
    assert len(keys) == len(set(keys))
    for o in prot:                                             # every protective order is in the ledger, as the broker has it
        lo = ledger.order(o.client_key)
        assert lo is not None and lo.signal_id == PROTECTIVE and (lo.status, lo.filled_qty) == (o.status.value, o.filled_qty), (lo, o)
    assert ledger.check() == [] and not ledger.unresolved_intents()
    ledger.close()


def test_tastytrade_protective_stop_cannot_open_a_short():
    "A protective stop goes to tastytrade as `Sell to Close` with strict position-effect validation: without shares it is refused."
    from swingtrader.clock import WallClock
    from swingtrader.broker import OrderRejected
    from swingtrader.tastytrade.broker import TastytradeBroker
    from emu_support import serve
    clock = SimClock(OPEN, mode="manual")
    sim = SimBroker({"AAA": market(), "BBB": market()}, universe(), clock, fill_at="quote")
    sim.advance_to(OPEN + timedelta(minutes=1))
    stack = ExitStack(); srv = stack.enter_context(serve(broker=sim))
    tt = None
    try:
        settings = Settings(_env_file=None, broker="tastytrade", TT_CLIENT_SECRET="s", TT_REFRESH_TOKEN="r",
                            TT_API_URL=srv.api_url, TT_STREAMER_URL=srv.streamer_url)
        tt = TastytradeBroker(settings, clock=WallClock(), verify=srv.ca_file)
        stop = lambda key, qty: OrderRequest("AAA", Side.SELL, qty=Decimal(qty), type=OrderType.STOP, tif=TimeInForce.GTC,
                                             stop_price=Decimal(95), client_key=key)
        # refused by the adapter (a sell beyond the position), else by tastytrade (strict position effect): never placed
        with pytest.raises(OrderRejected, match="would open a short|no position to close"): tt.submit(stop(protective_key("AAA", "z", 1), 10))
        assert sim.orders("open") == []
        tt.submit(OrderRequest("AAA", Side.BUY, qty=Decimal(10)))
        o = tt.submit(stop(protective_key("AAA", "z", 2), 10))                       # with the shares: accepted, a closing order
        leg = tt._call("get", f"{tt._acct}/orders/{o.id}")["data"]["legs"][0]
        assert o.status is OrderStatus.ACCEPTED and leg["action"] == "Sell to Close"
        body = tt._body(stop(protective_key("AAA", "z", 4), 10))[1]                 # and tastytrade would check it too
        assert body["advanced-instructions"] == {"strict-position-effect-validation": True}
        with pytest.raises(OrderRejected, match="would open a short|no position to close"): tt.submit(stop(protective_key("AAA", "z", 3), 11))  # more than held
    finally:
        if tt is not None: tt.close()
        stack.close()

