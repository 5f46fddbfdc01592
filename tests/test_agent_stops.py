"""A live agent's positions are protected at the broker, as the bot's are: after the agent buys, the broker holds a GTC
stop for the whole shares held at the trailing stop's level; an agent sell cancels it first and the stop comes back for
what is left (while a resting offer works: for what the offer leaves); a stop that filled first keeps the agent's sell from being sent (no share sold twice); a restarted runner
adopts its stops before it sells; on Alpaca, the agent's buys and the stops never meet at the broker (a wash trade).

On the SimBroker over hand-made bars on a manual clock (time moves only when the test says so), and on the Alpaca
emulator through alpaca-py with its wash-trade protection on."""
import threading
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np, pandas as pd

from swingtrader.agent import ActionGrid, AgentAction
from swingtrader.agent_runner import AgentRunner, agent_trader
from swingtrader.audit import AuditLog
from swingtrader.clock import SimClock
from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.models import Bar, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce
from swingtrader.sim.broker import SimBroker
from swingtrader.sim.data import make_universe
from swingtrader.stops import is_protective_key, stop_price

UTC = timezone.utc
OPEN = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)          # Monday 9:30 New York
S = Settings(_env_file=None, broker_stop_min_move=5)      # broker stops on: the default, as for the bot
GRID = ActionGrid()
HOLD = AgentAction("cancel")                              # nothing working: the runner holds


def market(n=390, drop_at=None, drop_to=90.0):
    "One session of 1-minute bars around 100 (a 1-dollar range: an ATR from the first bar), dropping to `drop_to` from minute `drop_at`."
    c = np.full(n, 100.0)
    if drop_at is not None: c[drop_at:] = drop_to
    idx = pd.date_range(OPEN, periods=n, freq="1min", name="start")
    return pd.DataFrame({"open": c, "high": c + 0.5, "low": c - 0.5, "close": c, "volume": 1e6}, index=idx)


def universe():
    u = make_universe(1, 42)
    u.index = pd.Index(["AAA"], name=u.index.name)
    u["price"], u["fractionable"], u["shortable"] = 100.0, False, True   # a margin account: an oversell would be a short
    return u


class Rig:
    "A SimBroker over `bars`, an agent's trader and runner in paper mode; the broker's updates go to the runner as they happen."
    def __init__(self, tmp_path, bars=None, settings=S, ledger=None, broker=None, clock=None, name="t"):
        self.clock = clock or SimClock(OPEN, mode="manual")
        self.bars = market() if bars is None else bars
        self.broker = broker or SimBroker({"AAA": self.bars}, universe(), self.clock, fill_at="quote")
        self.ledger = ledger or Ledger(tmp_path / "agent.sqlite", clock=self.clock)
        self.trader = agent_trader(settings, self.broker, self.ledger, audit=AuditLog(tmp_path / f"audit-{name}", self.clock, fsync=False))
        self.next = HOLD
        self.runner = AgentRunner(settings, self.trader, self.broker, lambda obs: GRID.index(self.next), mode="paper", run_id=name,
                                  ramp=1.0, target_qty=10, feature_ttl=0)
        self.remove = self.broker.add_listener(lambda ev: self.runner.on_update(ev) if isinstance(ev, OrderUpdate) else None)

    def step(self, minute, action=HOLD):
        "Move to `minute` after the open and let the runner decide `action` on the bar just closed."
        self.broker.advance_to(OPEN + timedelta(minutes=minute))
        self.next = action
        start = OPEN + timedelta(minutes=minute - 1)
        r = self.bars.loc[start]
        return self.runner.on_bar(Bar("AAA", start, float(r.open), float(r.high), float(r.low), float(r.close), float(r.volume), "1m"))

    def stops(self):
        return [o for o in self.broker.orders("open") if o.type is OrderType.STOP]

    def held(self):
        return next((p.qty for p in self.broker.positions() if p.symbol == "AAA"), Decimal(0))

    def traded(self, side):
        return sum((o.filled_qty for o in self.broker.orders() if o.side is side), Decimal(0))


def test_a_buy_gets_a_broker_stop_and_a_sell_cancels_it_first_then_a_stop_covers_the_rest(tmp_path):
    r = Rig(tmp_path)
    st = r.step(1, AgentAction("market", 1.0))
    assert st.result == "placed" and r.held() == 10
    (stop,) = r.stops()                                                        # placed in the same batch, after the fill
    trail = r.trader.stops.stops["AAA"]
    assert (stop.side, stop.qty, stop.tif, stop.stop_price) == (Side.SELL, Decimal(10), TimeInForce.GTC, stop_price(trail.stop, Decimal("0.01")))
    assert is_protective_key(stop.client_key) and r.ledger.order(stop.client_key).broker_order_id == stop.id
    assert r.trader.protective["AAA"].order_id == stop.id
    # the agent sells half: the stop is cancelled before the sell is sent, and a stop for the 5 left is placed
    st = r.step(2, AgentAction("market", -0.5))
    assert st.result == "placed" and r.held() == 5
    sell = r.broker.order(st.order_id)
    old = r.broker.order(stop.id)
    assert old.status is OrderStatus.CANCELLED and old.filled_qty == 0 and old.updated_at <= sell.created_at
    (stop2,) = r.stops()
    assert stop2.id != stop.id and stop2.qty == 5 and stop2.side is Side.SELL
    # the agent sells the rest: no stop is left (it could open a short), nothing was sold twice
    st = r.step(3, AgentAction("market", -1.0))
    assert st.result == "placed" and st.qty == 5
    assert r.held() == 0 and r.stops() == [] and r.broker.order(stop2.id).status is OrderStatus.CANCELLED
    assert r.traded(Side.SELL) == r.traded(Side.BUY) == 10
    assert "AAA" not in r.trader.protective


def test_an_add_resizes_the_stop_to_the_whole_position(tmp_path):
    "No wash-trade rule (the simulator, tastytrade): the stop rests while the agent buys more, then covers all of it."
    r = Rig(tmp_path)
    assert not r.runner.wash_rule
    r.step(1, AgentAction("market", 1.0))
    (s1,) = r.stops()
    assert r.step(2, AgentAction("market", 0.5)).result == "placed"
    (s2,) = r.stops()
    assert r.held() == 15 and s2.qty == 15 and s2.stop_price >= s1.stop_price


def test_a_resized_buy_is_whole_shares_and_the_stop_covers_them_all(tmp_path):
    s = S.model_copy(update={"position_cap": 0.0065})           # $650 of room on $100,000: 10 shares resized to 6 (whole)
    r = Rig(tmp_path, settings=s)
    st = r.step(1, AgentAction("market", 1.0))
    assert (st.result, st.decision) == ("placed", "resize") and 0 < st.qty < 10 and st.qty == st.qty.to_integral_value()
    (stop,) = r.stops()
    assert stop.qty == r.held() == st.qty


def test_the_stop_filled_first_so_the_agents_sell_is_not_sent(tmp_path):
    "The agent decides to sell, but the broker stop filled first (its update is late): the sell is dropped, no short."
    bars = market()
    bars.loc[OPEN + timedelta(minutes=20), "low"] = 90.0       # a dip through the stop within the bar (the close, and the trail, stay)
    r = Rig(tmp_path, bars=bars)
    r.runner.ttl = 3600.0                                       # the runner's view of the account: cached
    assert r.step(1, AgentAction("market", 1.0)).result == "placed"
    r.step(2)                                                   # the view after the fill, read once
    (stop,) = r.stops()
    r.remove()                                                  # the stop's fill reaches the runner late
    r.broker.advance_to(OPEN + timedelta(minutes=21))
    assert r.broker.order(stop.id).status is OrderStatus.FILLED and r.held() == 0
    st = r.step(21, AgentAction("market", -1.0))
    assert st.result == "dropped" and st.order_id is None
    assert r.ledger.order(st.client_key).status == "rejected"
    assert [o for o in r.broker.orders() if o.client_key == st.client_key] == []      # never sent
    assert r.held() == 0 and r.traded(Side.SELL) == r.traded(Side.BUY) == 10


def test_a_stop_under_the_stop_level_sells_the_position_once(tmp_path):
    "The market falls through the broker stop: it sells every share once; the runner sees the position closed and sells nothing."
    r = Rig(tmp_path, bars=market(drop_at=20))
    r.step(1, AgentAction("market", 1.0))
    for m in range(2, 24): r.step(m, AgentAction("market", -1.0) if m >= 21 else HOLD)
    assert r.held() == 0 and r.stops() == [] and r.traded(Side.SELL) == 10
    assert len([o for o in r.broker.orders() if o.side is Side.SELL and o.filled_qty]) == 1   # the stop alone (or the trail's exit)
    assert r.trader.held("AAA") == 0 and not r.trader.protective


def test_a_restarted_runner_adopts_its_stop_before_it_sells(tmp_path):
    r = Rig(tmp_path)
    r.step(1, AgentAction("market", 1.0))
    (stop,) = r.stops()
    r.remove()
    r2 = Rig(tmp_path, ledger=r.ledger, broker=r.broker, clock=r.clock, name="t2")   # a new trader and runner on the same ledger
    assert not r2.trader.protective                                               # not in memory: adopted from the broker first
    assert r2.trader.stops.stops["AAA"].to_dict() == r.trader.stops.stops["AAA"].to_dict()   # the trail, from the ledger
    st = r2.step(2, AgentAction("market", -1.0))
    assert st.result == "placed" and r.broker.order(stop.id).status is OrderStatus.CANCELLED   # the stop went first
    assert r.held() == 0 and r.stops() == [] and r.traded(Side.SELL) == 10


def test_a_restarted_runner_takes_the_trail_back_where_it_was(tmp_path):
    "The trail ratchets up with the market; a restart takes it back from the ledger at its last level, not the entry's."
    bars = market()
    bars.loc[bars.index[5]:, ["open", "high", "low", "close"]] += np.arange(len(bars) - 5)[:, None] * 0.5   # rising from minute 5
    r = Rig(tmp_path, bars=bars)
    r.step(1, AgentAction("market", 1.0))
    first = r.trader.stops.stops["AAA"].stop
    for m in range(2, 12): r.step(m)
    moved = r.trader.stops.stops["AAA"].stop
    assert moved > first + 2
    r.remove()
    r2 = Rig(tmp_path, ledger=r.ledger, broker=r.broker, clock=r.clock, name="t2")
    assert r2.trader.stops.stops["AAA"].stop == moved
    r2.step(12)
    (stop,) = r2.stops()
    assert stop.stop_price > stop_price(first + 2, Decimal("0.01")) and stop.qty == 10   # moved up with it, never back down


def test_a_restarted_runner_cancels_the_offer_a_dead_run_left_and_protects_all_of_it(tmp_path):
    "A run dies with its resting offer working (the stop covers the rest): the next run cancels it and grows the stop to all."
    bars = market()
    bars["high"] = bars["close"]                                # no trade above 100: the offer at the ask rests
    r = Rig(tmp_path, bars=bars)
    r.step(1, AgentAction("market", 1.0))
    st = r.step(2, AgentAction("limit_passive", -0.5))
    assert st.result == "placed" and r.broker.order(st.order_id).is_open
    assert [x.qty for x in r.stops()] == [5]                    # while the sell works, the stop covers what it leaves
    r.remove()                                                  # the process dies
    r2 = Rig(tmp_path, ledger=r.ledger, broker=r.broker, clock=r.clock, name="t2")
    r2.step(3)
    assert r.broker.order(st.order_id).status is OrderStatus.CANCELLED
    (stop,) = r2.stops()
    assert stop.qty == r.held() == 10 and r.traded(Side.SELL) == 0


def test_the_trail_hit_under_a_resting_offer_cancels_it_and_the_stop_sells(tmp_path):
    "An agent offer of half rests (a stop on the other half) and the market falls through the trail: the offer goes, the stops sell it all once."
    bars = market(drop_at=20)
    bars["high"] = bars["close"]                                # no trade above the close: the offer at the ask rests
    r = Rig(tmp_path, bars=bars)
    r.step(1, AgentAction("market", 1.0))
    offer = r.step(2, AgentAction("limit_passive", -0.5))
    assert offer.result == "placed" and [x.qty for x in r.stops()] == [5]   # the stop covers what the offer leaves
    busy = AgentAction("market", 0.25)                          # refused while the offer works (a CANCEL would cancel it)
    for m in range(3, 21): assert r.step(m, busy).result == "refused"
    assert r.broker.order(offer.order_id).is_open
    assert r.step(21).result == "hold"                          # the bar at 90, under the trail: the runner cancelled the offer first
    assert r.broker.order(offer.order_id).status is OrderStatus.CANCELLED
    r.step(22); r.step(23)
    assert r.held() == 0 and r.stops() == [] and r.traded(Side.SELL) == r.traded(Side.BUY) == 10
    assert {o.type for o in r.broker.orders() if o.side is Side.SELL and o.filled_qty} <= {OrderType.STOP, OrderType.MARKET}


def test_another_traders_stops_are_left_alone(tmp_path):
    "A protective stop the agent did not place (the bot's, on the same account) is neither adopted nor cancelled."
    from swingtrader.models import OrderRequest
    from swingtrader.stops import protective_key
    r = Rig(tmp_path)
    r.broker.advance_to(OPEN + timedelta(minutes=1))
    r.broker.submit(OrderRequest("AAA", Side.BUY, qty=Decimal(3), client_key="bot-entry"))
    bot_stop = r.broker.submit(OrderRequest("AAA", Side.SELL, qty=Decimal(3), type=OrderType.STOP, tif=TimeInForce.GTC,
                                            stop_price=Decimal(95), client_key=protective_key("AAA", "2026-03-02T14:31:00+00:00", 1)))
    for m in range(2, 5): r.step(m)
    assert r.broker.order(bot_stop.id).is_open and not r.trader.protective


def test_switched_off_no_stop_orders(tmp_path):
    r = Rig(tmp_path, settings=S.model_copy(update={"broker_stops": False}))
    assert r.step(1, AgentAction("market", 1.0)).result == "placed" and r.held() == 10
    r.step(2)
    assert r.stops() == [] and not r.trader.broker_stops


def test_no_atr_no_new_position(tmp_path):
    "A buy that would open a position with no stop level (no ATR yet) is refused while broker stops are on."
    r = Rig(tmp_path)
    r.broker.advance_to(OPEN + timedelta(minutes=1))
    st = r.runner.act("AAA", OPEN + timedelta(minutes=1), AgentAction("market", 1.0), r.broker.latest_quote("AAA"), 100.0)
    assert st.result == "refused" and "no ATR" in st.why and r.broker.orders() == []


# -- Alpaca: its wash-trade protection ----------------------------------------------------------------------------

def test_on_alpaca_buys_and_stops_never_meet(tmp_path):
    """Alpaca refuses a buy opposite a working stop, and a stop opposite a working buy. The agent adds to a position with a
    stop: the stop goes first, then one stop covers the whole position. A resting bid: no stop is sent while it works;
    once it is cancelled, the stop is back. A resting offer: the stop is cancelled first, nothing sold twice."""
    from swingtrader.alpaca.broker import AlpacaBroker
    from swingtrader.session import emulated_alpaca
    day = date(2026, 3, 2)
    s = Settings(_env_file=None, sim_symbols=2, broker_stop_min_move=5, atr_stop_mult=20.0)   # a wide trail: no exit of its own here
    env = emulated_alpaca(s, day, day, speed=1.0, history_days=1)
    env.clock.set_mode("manual")
    assert env.server.call(lambda: env.server.emu.alpaca_trading.wash_trade_check)
    b = AlpacaBroker(env.settings, clock=env.clock, calendar=env.calendar, retry_wait=0.2)
    ledger = Ledger(tmp_path / "l.sqlite", clock=env.clock)
    q, lock = [], threading.Lock()
    def listen(ev):
        if isinstance(ev, OrderUpdate):
            with lock: q.append(ev)
    remove = env.server.call(lambda: env.sim.add_listener(listen))
    try:
        sym = env.sim.symbols[0]
        tr = agent_trader(env.settings, b, ledger, clock=env.clock)
        nxt = [HOLD]
        r = AgentRunner(env.settings, tr, b, lambda obs: GRID.index(nxt[0]), mode="paper", run_id="wash", ramp=1.0, target_qty=10, feature_ttl=0)
        assert r.wash_rule and tr.broker_stops
        o = env.calendar.session(day)[0]
        hist = env.sim.market_bars[sym]
        r.warm_up({sym: hist[hist.index < o]}, "1m")
        def drain():
            with lock: got, q[:] = list(q), []
            for u in got: r.on_update(u)
        def step(minute, action=HOLD):
            t = o + timedelta(minutes=minute)
            env.server.call(lambda: env.sim.advance_to(t))
            drain()
            nxt[0] = action
            row = hist.loc[t - timedelta(minutes=1)]
            st = r.on_bar(Bar(sym, t - timedelta(minutes=1), float(row.open), float(row.high), float(row.low), float(row.close), float(row.volume), "1m"))
            env.server.call(lambda: env.sim.advance_to(t + timedelta(seconds=1)))   # the market order fills
            drain(); r.keep_stops()
            return st
        stops = lambda: [x for x in b.orders("open") if x.type is OrderType.STOP]
        held = lambda: next((p.qty for p in b.positions() if p.symbol == sym), Decimal(0))
        assert step(1, AgentAction("market", 1.0)).result == "placed"
        (s1,) = stops()
        assert (held(), s1.qty) == (10, 10)
        # add 5: the stop is cancelled first (else Alpaca refuses the buy), then one stop covers the 15
        st = step(2, AgentAction("market", 0.5))
        assert st.result == "placed", st
        (s2,) = stops()
        assert held() == 15 and s2.qty == 15 and b.order(s1.id).status is OrderStatus.CANCELLED
        # a resting bid (passive, below the market): no stop while it works (Alpaca would refuse it), none refused by the broker
        st = step(3, AgentAction("limit_passive", 0.5))
        assert st.result == "placed" and b.order(st.order_id).is_open, st
        assert stops() == [] and b.order(s2.id).status is OrderStatus.CANCELLED
        assert step(4, AgentAction("market", 0.5)).result == "refused" and stops() == []   # its order is working: nothing more
        held_back = [x for x in ledger.orders() if is_protective_key(x.client_key) and x.status == "rejected"]
        assert held_back == []                  # the keeper held the stop back (`hold`): nothing sent, no refused row written
        # cancelled: the stop is back for the whole position
        assert step(5, AgentAction("cancel")).result == "cancelled"
        step(6)
        (s3,) = stops()
        assert s3.qty == held() == 15
        # a resting offer for 10 of the 15: the stop goes first, then one covers the 5 the offer leaves (two sells, no
        # wash trade); no share can be sold twice
        st = step(7, AgentAction("limit_passive", -1.0))
        assert st.result == "placed" and b.order(st.order_id).is_open and b.order(s3.id).status is OrderStatus.CANCELLED
        (s4,) = stops()
        assert (st.qty, s4.qty, held()) == (10, 5, 15)
        # nothing the agent sent was refused by the broker (no wash trade), and the ledger agrees with the broker
        refused = [x for x in ledger.orders() if x.status == "rejected"]
        assert not refused, [(x.client_key, x.error) for x in refused]
        for x in b.orders(since=o - timedelta(days=1)):
            assert ledger.order(x.client_key).status == x.status.value, x
    finally:
        env.server.call(remove)
        b.close(); ledger.close(); env.close()


def test_run_parts_leaves_every_position_under_its_stop_and_no_agent_order_working(tmp_path):
    """The async loop (what Alpaca and tastytrade use): a fill gets its stop from the update stream; at the end the agent's
    resting offers are cancelled (no later run manages them, and a working sell keeps the keeper off its shares) and each
    position has one stop for all of it."""
    import asyncio
    from swingtrader.agent_runner import run_parts
    from swingtrader.registry import sim_parts
    s = Settings(_env_file=None, atr_stop_mult=20.0)            # a wide trail: no exit of its own here
    b = SimBroker.from_seed(seed=5, symbols=2, start=date(2026, 3, 2), end=date(2026, 3, 2))
    b.advance_to(b.clock.now() + timedelta(minutes=10))
    b.clock = SimClock(b.clock.now(), mode="scaled", speed=300.0)           # 5 simulated minutes per second
    tr = agent_trader(s, b, Ledger(tmp_path / "l.sqlite", clock=b.clock))
    buy, offer = GRID.index(AgentAction("market", 1.0)), GRID.index(AgentAction("limit_passive", -0.5))
    r = AgentRunner(s, tr, b, lambda obs: buy if obs[6] == 0 else offer, mode="paper", run_id="parts", ramp=1.0, target_qty=4)
    told = []                                                   # the update stream told of every order placed, on the loop's thread
    async def go():
        stop = asyncio.Event()
        drv = asyncio.create_task(b.run(stop))
        parts = sim_parts(s, broker=b)
        parts.order_updates.expect = lambda o: told.append((o.client_key, threading.get_ident()))
        try: return await asyncio.wait_for(run_parts(r, parts, b.symbols, "1m", max_bars=10, warmup=5, batch_window=0.05), 120)
        finally: stop.set(); await drv
    steps = asyncio.run(go())
    keys = {k for k, _ in told}
    assert {x.client_key for x in steps if x.result == "placed"} <= keys and any(is_protective_key(k) for k in keys)
    assert {t for _, t in told} == {threading.get_ident()}
    assert any(x.result == "placed" and x.action.side is Side.SELL for x in steps)          # offers were made
    work = b.orders("open")
    assert all(is_protective_key(o.client_key) and o.type is OrderType.STOP for o in work), work   # no agent order left working
    held = {p.symbol: p.qty for p in b.positions() if p.qty}
    assert held and {o.symbol: o.qty for o in work} == held and len(work) == len(held)
    assert not r.working
