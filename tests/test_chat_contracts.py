"""Option and futures orders from chat on the real tastytrade adapter against the broker emulator: the command forms
(`SPY 2026-12-18 600C`, OCC, `/ESZ6`) go through the same engine — risk guard, the broker's dry run, a single-use
token, the executor — and reach the emulator's derivatives desk; mistakes and what the executor cannot do are one line."""
import asyncio, threading, time
from contextlib import contextmanager
from decimal import Decimal

import pytest

from swingtrader.chat import ChatEngine
from swingtrader.instruments import option_tick
from swingtrader.ledger import Ledger
from swingtrader.models import DerivativeOrder

pytestmark = pytest.mark.timeout(300)
ALLOW = "100:trade:7 100:read:8"

@pytest.fixture
def sim_spec():
    "A big account behind the emulator: one /ES contract (about 280,000 notional) fits its risk caps."
    return {"cash": Decimal(10_000_000)}

@pytest.fixture
def desk(tmp_path, tt_client, tt_settings, sim_broker, emulator):
    def make(**settings):
        s = tt_settings.model_copy(update={"chat_allow": ALLOW, **settings})
        return ChatEngine.build(s, tt_client, Ledger(tmp_path / f"l{len(settings)}.sqlite", clock=sim_broker.clock), clock=sim_broker.clock)
    return make, emulator.emu.derivatives, tt_client

@contextmanager
def order_updates(engine, broker):
    "tastytrade's account stream (from the emulator) feeding `engine.on_update`, as `chat.follow` does in the bot."
    from swingtrader.tastytrade.order_updates import TastytradeOrderUpdates
    stop, up = threading.Event(), threading.Event()
    async def pump():
        ups = await TastytradeOrderUpdates(broker, poll_interval=0.5).start()
        up.set()
        try:
            while not stop.is_set():
                if (u := await ups.next(timeout=0.2)) is not None: await asyncio.to_thread(engine.on_update, u)
        finally: await ups.close()
    t = threading.Thread(target=lambda: asyncio.run(pump()), daemon=True); t.start()
    assert up.wait(60)
    try: yield
    finally: stop.set(); t.join(60)

def _until(cond, what, timeout=60.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)

def _words(o):
    "An OptionSymbol as people write it: SPY 2026-03-20 600C."
    return f"{o.root} {o.expiry.isoformat()} {format(o.strike.normalize(), 'f')}{o.call_put}"

def _limit(mark):
    p = Decimal(str(mark))
    t = option_tick(p)
    return (p // t) * t

def test_an_option_limit_order_previews_confirms_and_reaches_the_desk(desk):
    make, dv, tt = desk
    e = make()
    o = next(x for x in dv.option_chain("SPY") if 1 < dv.mark_price(x.occ) < 40)
    px = _limit(dv.mark_price(o.occ))
    p = e.handle("7", "100", f"buy {_words(o)} 1 limit {px}")
    assert p.kind == "preview", p.text
    assert p.text.startswith(f"[SANDBOX] BUY 1 contract {_words(o)} limit {px}") and "est. cost" in p.text
    assert p.order["symbol"] == o.occ and tt.orders() == []
    r = e.handle("7", "100", f"confirm {p.token}")
    assert r.kind == "placed", r.text
    [placed] = tt.orders(since=e.clock.now().replace(hour=0))
    assert isinstance(placed, DerivativeOrder) and placed.symbol == o.occ and placed.client_key == p.order["client_key"]
    assert e.chat_order(placed.id)["shape"] == f"{o.occ}|buy|limit|day"
    assert e.handle("7", "100", f"confirm {p.token}").kind == "refused"           # single use, for options too
    if placed.is_open:                                                         # below the mark: it works; orders, cancel
        assert f"{placed.id}: buy 1 {_words(o)} limit" in e.handle("8", "100", "orders").text
        gone = e.handle("7", "100", f"cancel {placed.id}")
        assert gone.kind == "ok" and f"(buy 1 {_words(o)}) is cancelled" in gone.text, gone.text
        assert f"{o.occ}|buy|limit|day" in e.tested_shapes()
    else: assert f"{_words(o)} 1 @" in e.handle("8", "100", "positions").text
    same = e.handle("7", "100", f"buy {o.occ.replace(' ', '')} 1 limit {px}")  # the OCC form: the same order
    assert same.kind == "preview" and same.order["symbol"] == o.occ

def test_a_future_counts_its_multiplier_against_the_cap_then_opens_and_closes(desk):
    make, dv, tt = desk
    fut = dv.futures()[0].symbol
    small = make()
    r = small.handle("7", "100", f"buy {fut} 1")
    assert r.kind == "refused" and "chat cap" in r.text and "x 50)" in r.text and tt.positions() == []
    ask = tt.latest_quote(dv.futures()[0].streamer()).ask                     # valued at the ask of its DXLink quote
    assert f"(1 x {Decimal(str(ask))} x 50)" in r.text, r.text
    e = make(chat_notional_cap=Decimal(10**7))
    sent = []
    e.notify = lambda ch, text: sent.append((ch, text))
    with order_updates(e, tt):
        p = e.handle("7", "100", f"buy {fut} 1")
        assert p.kind == "preview" and p.order["type"] == "market" and p.text.startswith(f"[SANDBOX] BUY 1 contract {fut} market"), p.text
        r = e.handle("7", "100", f"confirm {p.token}")
        assert r.kind == "placed", r.text
        assert {x.symbol: x.qty for x in tt.positions()} == {fut: Decimal(1)}
        _until(lambda: {x.symbol: x.qty for x in e.ledger.positions()} == {fut: Decimal(1)}, "the fill in the ledger")
        _until(lambda: any(ch == "100" and f"filled 1 {fut}" in t for ch, t in sent), "the fill reported to the channel")
        c = e.handle("7", "100", f"close {fut}")
        assert c.kind == "preview" and c.order["side"] == "sell" and c.order["qty"] == "1", c.text
        assert e.handle("7", "100", f"confirm {c.token}").kind == "placed"
        assert tt.positions() == []
        _until(lambda: e.ledger.positions() == [], "the closing fill in the ledger")
    assert f"{fut}|buy|market|day" in e.tested_shapes() and f"{fut}|sell|market|day" in e.tested_shapes()
    prod = ChatEngine(e.settings, e.trader, tt, environment="production", allow=e.allow, shapes_ledger=e.ledger)
    ok = prod.handle("7", "100", f"buy {fut} 2")                                 # the shape ran in the sandbox today: any size
    assert ok.kind == "preview" and ok.text.startswith(f"[PRODUCTION] BUY 1 contract {fut}"), ok.text
    assert "the risk guard allows 1 of the 2 asked" in ok.text                   # 2 x 280,000 is over the 5 % position cap
    gate = prod.handle("7", "100", f"buy {fut} 1 limit 5000")                    # a limit order on it did not
    assert gate.kind == "refused" and "has not run cleanly in the sandbox today" in gate.text

def test_contract_mistakes_and_limits_are_one_line_each(desk, monkeypatch):
    make, dv, tt = desk
    e = make()
    o = dv.option_chain("SPY")[10]
    for text, says in [(f"buy {_words(o)} 1", "need a limit price"), (f"buy {_words(o)} 2.5 limit 1.00", "whole contracts"),
                       (f"buy {_words(o)} 1 limit 1.03", "tick"), (f"buy {o.root} 2026-02-30 600C 1 limit 1", "not a date"),
                       (f"buy {o.root} {o.expiry.isoformat()} 600X 1 limit 1", "C or P"), ("buy /ESZ6 1 stop 5000", "stop orders"),
                       ("buy /ESZ6 1 limit 5000 chase", "does not replace"), ("buy /QQZ6 1", "unknown")]:
        r = e.handle("7", "100", text)
        assert r.kind == "invalid" and "\n" not in r.text and says in r.text, (text, r.text)
    old = e.handle("7", "100", "buy SPY 2026-01-16 600C 1 limit 1.00")              # before the emulator's today
    assert old.kind == "refused" and "expired on 2026-01-16" in old.text
    held = e.handle("7", "100", f"close {_words(o)}")
    assert held.kind == "refused" and "holds no" in held.text
    assert e.handle("8", "100", f"buy {_words(o)} 1 limit 1.00").kind == "denied"
    from swingtrader.broker import BrokerError
    def no_quote(sym): raise BrokerError(f"No quote for {sym} arrived from DXLink within 5 s.", "check the feed.")
    monkeypatch.setattr(tt, "latest_quote", no_quote)                          # a market order on a future needs its quote
    blind = e.handle("7", "100", f"buy {dv.futures()[0].symbol} 1")
    assert blind.kind == "refused" and "no quote for /ES" in blind.text and "give a limit price" in blind.text, blind.text
    assert tt.orders() == []

def test_the_sim_broker_says_it_places_no_contracts(tmp_path):
    from swingtrader.config import Settings
    from swingtrader.sim.broker import SimBroker
    b = SimBroker.from_seed(symbols=2); b.clock.advance(300)
    e = ChatEngine.build(Settings(_env_file=None, chat_allow=ALLOW), b, Ledger(tmp_path / "l.sqlite", clock=b.clock))
    for text in ("buy /ESZ6 1", "buy SPY 2026-12-18 600C 1 limit 2.50", "close /ESZ6"):
        r = e.handle("7", "100", text)
        assert r.kind == "refused" and "only tastytrade's" in r.text and "SWINGTRADER_BROKER=tastytrade" in r.text, r.text
    assert b.orders() == []

def test_a_future_option_in_tastytrades_own_form(desk):
    make, dv, tt = desk
    e = make()
    fo = next(x for x in dv.future_options() if 2 < dv.mark_price(x.symbol) < 60)
    px = (Decimal(str(dv.mark_price(fo.symbol))) / Decimal("0.25")).to_integral_value() * Decimal("0.25")
    p = e.handle("7", "100", f"buy {fo.symbol} 1 limit {px}")
    assert p.kind == "preview" and p.order["symbol"] == fo.symbol, p.text
    assert e.handle("7", "100", f"confirm {p.token}").kind == "placed"
    [o] = tt.orders(since=e.clock.now().replace(hour=0))
    assert o.symbol == fo.symbol and o.legs[0].instrument_type == "Future Option"
    off = e.handle("7", "100", f"buy {fo.symbol} 1 limit {px + Decimal('0.1')}")
    assert off.kind == "invalid" and "0.25 tick" in off.text

def test_the_order_api_takes_the_same_contract_forms(desk):
    "POST /orders with an OCC symbol and with a future: the same engine, the same token flow, over HTTP."
    import httpx
    from swingtrader.order_api import ApiServer, ApiTokens, build_app, hash_token
    make, dv, tt = desk
    tokens = ApiTokens.parse(f"bot:trade:{hash_token('tok-1')}")
    e = make()
    e.allow = tokens.allowlist()
    o = next(x for x in dv.option_chain("SPY") if 1 < dv.mark_price(x.occ) < 40)
    px = str(_limit(dv.mark_price(o.occ)))
    auth = {"Authorization": "Bearer tok-1"}
    with ApiServer(build_app(e, tokens)) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        p = c.post("/orders", headers=auth, json={"symbol": o.occ, "side": "buy", "qty": "1", "limit_price": px})
        assert p.status_code == 201 and p.json()["order"]["symbol"] == o.occ, p.text
        r = c.post("/orders/confirm", headers={**auth, "Idempotency-Key": "a"}, json={"token": p.json()["token"]})
        again = c.post("/orders/confirm", headers={**auth, "Idempotency-Key": "a"}, json={"token": p.json()["token"]})
        assert r.status_code == 200 and again.json()["replayed"] is True and again.json()["order"]["id"] == r.json()["order"]["id"]
        assert c.get(f"/orders/{r.json()['order']['id']}", headers=auth).json()["order"]["symbol"] == o.occ
        bad = c.post("/orders", headers=auth, json={"symbol": o.occ, "side": "buy", "qty": "1"})
        assert bad.status_code == 422 and "need a limit price" in bad.json()["detail"]["message"]
        fut = c.post("/orders", headers=auth, json={"symbol": dv.futures()[0].symbol, "side": "buy", "qty": "1", "stop_price": "5000"})
        assert fut.status_code == 422 and "stop orders" in fut.json()["detail"]["message"]
    assert len(tt.orders(since=e.clock.now().replace(hour=0))) == 1
