"""Chat command engine: every command, one-line mistakes, permissions (deny by default, audited), confirmations
(single use, bound to the order and the environment, 60 s on an injected clock), the production gate, the notional cap,
read-only mode, the kill switch, fill chasing — on the SimBroker."""
from datetime import timedelta
from decimal import Decimal


from swingtrader.audit import AuditLog
from swingtrader.chat import ChatEngine, Allowlist, Confirmations, shape_of
from swingtrader.config import Settings
from swingtrader.ledger import Ledger, trading_day
from swingtrader.models import OrderUpdate
from swingtrader.sim.broker import SimBroker

ALLOW = "100:trade:7 100:read:8 100:control:9 dm:trade:7"

def _engine(tmp_path, allow=ALLOW, environment=None, broker=None, shapes_ledger=None, ledger_name="ledger.sqlite", **settings):
    b = broker or SimBroker.from_seed(symbols=3)
    if broker is None: b.clock.advance(300)
    sent = []
    s = Settings(chat_allow=allow, **settings)
    audit = AuditLog(tmp_path / "audit", b.clock, fsync=False)
    e = ChatEngine.build(s, b, Ledger(tmp_path / ledger_name, clock=b.clock), audit=audit, environment=environment,
                         shapes_ledger=shapes_ledger, notify=lambda ch, t: sent.append((ch, t)))
    b.add_listener(lambda ev: e.on_update(ev) if isinstance(ev, OrderUpdate) else None)
    e.sent = sent
    return e, b, b.symbols[0]

def test_buy_preview_confirm_fill(tmp_path):
    e, b, sym = _engine(tmp_path)
    p = e.handle("7", "100", f"buy {sym} 3")
    assert p.kind == "preview" and p.text.startswith("[SANDBOX] BUY 3 " + sym) and "est. cost" in p.text and "buying power" in p.text
    assert b.orders() == [] and e.ledger.orders() == []           # a preview places and records nothing
    r = e.handle("7", "100", f"confirm {p.token}")
    assert r.kind == "placed" and r.order["status"] == "filled" and r.text.startswith("[SANDBOX] placed")
    assert len(b.orders()) == 1 and e.ledger.orders()[0].status == "filled"
    assert {p.symbol: p.qty for p in b.positions()} == {sym: Decimal(3)}
    assert e.chat_order(r.order["id"])["user"] == "7"
    # the order went through the audit log with the chat model id, and the token never did
    audit = (tmp_path / "audit").rglob("*.jsonl")
    text = "".join(f.read_text() for f in audit)
    assert '"model_id":"chat:7"' in text and p.token not in text

def test_sell_and_close_need_a_position(tmp_path):
    e, b, sym = _engine(tmp_path)
    r = e.handle("7", "100", f"sell {sym} 2")
    assert r.kind == "refused" and "no long position" in r.text
    assert e.handle("7", "100", f"close {sym}").kind == "refused"
    e.handle("7", "100", f"confirm {e.handle('7', '100', f'buy {sym} 4').token}")
    p = e.handle("7", "100", f"sell {sym} 10")                    # more than held: the guard resizes it
    assert p.kind == "preview" and p.order["qty"] == "4"
    c = e.handle("7", "100", f"close {sym}")
    assert c.kind == "preview" and c.order["side"] == "sell" and c.order["qty"] == "4"
    assert e.handle("7", "100", f"confirm {c.token}").kind == "placed"
    assert b.positions() == [] and e.handle("7", "100", "positions").text.endswith("no open positions")

def test_limit_order_cancel_and_orders(tmp_path):
    e, b, sym = _engine(tmp_path)
    q = b.latest_quote(sym)
    px = (Decimal(str(q.bid)) * Decimal("0.9")).quantize(Decimal("0.01"))
    p = e.handle("7", "100", f"buy {sym} 2 limit {px} gtc")
    assert p.order["type"] == "limit" and p.order["tif"] == "gtc" and p.order["limit_price"] == str(px)
    r = e.handle("7", "100", f"confirm {p.token}")
    assert r.order["status"] == "accepted"
    oid = r.order["id"]
    assert oid in e.handle("8", "100", "orders").text
    assert e.handle("8", "100", f"cancel {oid}").kind == "denied"        # read-only user
    assert e.handle("7", "100", "cancel nope").kind == "refused"
    c = e.handle("7", "100", f"cancel {oid}")
    assert c.kind == "ok" and "cancelled" in c.text and b.order(oid).status.value == "cancelled"
    assert e.handle("7", "100", "orders").text.endswith("no chat orders open")
    assert f"{sym}|buy|limit|gtc" in e.tested_shapes()                  # cancelled cleanly: the shape is tested

def test_status_help_and_bad_syntax(tmp_path):
    e, b, sym = _engine(tmp_path)
    st = e.handle("8", "100", "status")
    assert st.kind == "ok" and "kill switch active" in st.text and "equity" in st.text
    assert "buy SYM QTY" in e.handle("8", "100", "help").text
    for bad in ("buy", f"buy {sym}", f"buy {sym} x", f"buy {sym} 1 limit", f"sell {sym} 1 fast", "frobnicate", "cancel",
                "halt", "orders please", "close 1X"):
        r = e.handle("7", "100", bad)
        assert r.kind == "invalid" and "\n" not in r.text and ("usage:" in r.text or "use one of" in r.text or "help" in r.text), (bad, r.text)

def test_permissions_deny_by_default_and_are_audited(tmp_path):
    e, b, sym = _engine(tmp_path)
    assert e.handle("7", "999", "status") is None                      # not a configured channel: silence
    r = e.handle("42", "100", f"buy {sym} 1")
    assert r.kind == "denied" and r.text.startswith("[SANDBOX] sorry")
    assert e.handle("8", "100", f"buy {sym} 1").kind == "denied"      # read role cannot trade
    assert e.handle("7", "100", "halt x").kind == "denied"            # trade role cannot halt
    assert e.handle("42", "100", "anyone around?") is None             # chatter from someone with no role: silence, nothing logged
    assert e.handle("42", "dm", "frobnicate") is None
    assert e.handle("7", "dm", "status").kind == "ok"                 # DMs from an allowlisted user
    assert e.handle("8", "dm", "status").kind == "denied"
    audit = "".join(f.read_text() for f in (tmp_path / "audit").rglob("*.jsonl"))
    assert audit.count("chat_denied") == 4 and "anyone around" not in audit and "frobnicate" not in audit
    empty, _, _ = _engine(tmp_path / "e", allow="")
    assert empty.handle("7", "100", "status") is None and empty.allow.channels == set()
    nobody = ChatEngine(Settings(), e.trader, b, allow=Allowlist.parse("100:read:1"))
    assert nobody.handle("7", "100", "status").kind == "denied"

def test_confirmation_single_use_bound_and_timed(tmp_path):
    e, b, sym = _engine(tmp_path)
    p = e.handle("7", "100", f"buy {sym} 1")
    assert e.confirm("7", "100", p.token, order={**p.order, "qty": "2"}).kind == "refused"      # changed order
    assert e.confirm("7", "100", p.token, order=p.order).kind == "placed"                      # the exact order
    again = e.confirm("7", "100", p.token)
    assert again.kind == "refused" and "already used" in again.text and len(b.orders()) == 1
    p2 = e.handle("7", "100", f"buy {sym} 1")
    other = e.confirm("7", "dm", p2.token)                      # another channel, same person: still theirs
    assert other.kind == "placed"
    p3 = e.handle("7", "100", f"buy {sym} 1")
    b.clock.advance(61)
    late = e.confirm("7", "100", p3.token)
    assert late.kind == "refused" and "expired" in late.text
    p4 = e.handle("7", "100", f"buy {sym} 1")
    assert e.confirm("8", "100", p4.token).kind == "denied"
    prod = ChatEngine(e.settings, e.trader, b, environment="production", allow=e.allow)
    wrong_env = prod.confirm("7", "100", p4.token)
    assert wrong_env.kind == "refused" and "for sandbox" in wrong_env.text
    assert e.reject("7", "100", p4.token).kind == "ok" and e.confirm("7", "100", p4.token).kind == "refused"
    assert e.confirm("7", "100", "made-up").kind == "refused"
    assert len(b.orders()) == 2

def test_production_gate_needs_the_shape_run_in_the_sandbox_today(tmp_path):
    sand, b, sym = _engine(tmp_path)
    prod, _, _ = _engine(tmp_path, environment="production", broker=b, shapes_ledger=sand.ledger, ledger_name="prod.sqlite")
    r = prod.handle("7", "100", f"buy {sym} 1")
    assert r.kind == "refused" and r.text.startswith("[PRODUCTION]") and "sandbox" in r.text
    sand.handle("7", "100", f"confirm {sand.handle('7', '100', f'buy {sym} 5').token}")
    assert shape_of(b.orders()[0]) in prod.tested_shapes()
    ok = prod.handle("7", "100", f"buy {sym} 2")                       # size differs: the shape counts
    assert ok.kind == "preview" and ok.text.startswith("[PRODUCTION]")
    assert prod.handle("7", "100", f"buy {sym} 2 limit 1.00").kind == "refused"   # another type: not tested
    assert prod.tested_shapes(trading_day(b.clock.now()) + timedelta(days=1)) == set()   # tomorrow: again

def test_notional_cap_read_only_and_halt(tmp_path):
    e, b, sym = _engine(tmp_path, chat_notional_cap=Decimal(100))
    big = e.handle("7", "100", f"buy {sym} 1000")
    assert big.kind == "refused" and "chat cap" in big.text
    ro, _, _ = _engine(tmp_path / "ro", chat_read_only=True)
    assert ro.handle("7", "100", f"buy {sym} 1").kind == "refused" and ro.handle("7", "100", "status").text.count("read-only") == 1
    h = e.handle("9", "100", "halt fat finger")
    assert h.kind == "ok" and e.ledger.halt_state().state == "halted" and e.ledger.halt_state().who == "chat:9"
    assert [c.kind for c in e.ledger.take_pending_commands()] == ["halt"]     # the running bot hears it
    refused = e.handle("7", "100", f"buy {sym} 1")
    assert refused.kind == "refused" and "halted" in refused.text
    assert e.handle("9", "100", "resume checked").kind == "ok" and e.ledger.halt_state().state == "active"
    assert e.handle("7", "100", f"buy {sym} 1").kind == "preview"

def test_fill_chase_steps_then_cancels(tmp_path):
    e, b, sym = _engine(tmp_path, chat_chase_step_seconds=5, chat_chase_max_ticks=3, chat_chase_max_seconds=600)
    b.set_fill_mode("never")
    p = e.handle("7", "100", f"buy {sym} 2 chase")
    assert p.order["type"] == "limit" and "fill chase" in p.text
    r = e.confirm("7", "100", p.token)
    first = Decimal(r.order["limit_price"])
    assert e.tick() == []                                   # not due yet
    prices = []
    for _ in range(3):
        b.clock.advance(5)
        lines = e.tick()
        assert len(lines) == 1 and "step" in lines[0]
        prices.append(b.orders("open")[0].limit_price)
    assert prices == [first + Decimal("0.01") * k for k in (1, 2, 3)]
    b.clock.advance(5)
    end = e.tick()
    assert "ended after 3 steps" in end[0] and b.orders("open") == []
    assert len({o.client_key for o in b.orders()}) == 4 and any("step 2" in t for _, t in e.sent)

def test_confirmations_store_only_hashes(tmp_path):
    e, b, sym = _engine(tmp_path)
    p = e.handle("7", "100", f"buy {sym} 1")
    assert p.token not in str(e.ledger.load_state(Confirmations.KEY))

def test_production_engine_needs_the_sandbox_ledger(tmp_path):
    from swingtrader.chat import open_engine
    from swingtrader.config import SwingtraderError
    s = Settings(_env_file=None, broker="tastytrade", environment="production", live_confirm="yes", data_dir=tmp_path)
    try: open_engine(s)
    except SwingtraderError as e: assert "SWINGTRADER_CHAT_SANDBOX_DATA_DIR" in e.fix
    else: raise AssertionError("a production engine opened without the sandbox's ledger")

def test_orders_through_the_tastytrade_emulator(tmp_path, tt_client, tt_settings, sim_broker):
    "The same engine on the real tastytrade adapter against the broker emulator: its dry run, its submit."
    s = tt_settings.model_copy(update={"chat_allow": ALLOW})
    e = ChatEngine.build(s, tt_client, Ledger(tmp_path / "l.sqlite", clock=sim_broker.clock), clock=sim_broker.clock)
    sym = sim_broker.symbols[0]
    p = e.handle("7", "100", f"buy {sym} 2")
    assert p.kind == "preview" and p.text.startswith("[SANDBOX] BUY 2") and "est. cost" in p.text, p.text
    assert sim_broker.orders() == []
    r = e.handle("7", "100", f"confirm {p.token}")
    assert r.kind == "placed", r.text
    [o] = sim_broker.orders()
    assert o.client_key == r.order["client_key"] and o.qty == Decimal(2)
    assert e.handle("7", "100", f"confirm {p.token}").kind == "refused" and len(sim_broker.orders()) == 1

def test_fill_chase_never_passes_the_persons_limit(tmp_path):
    e, b, sym = _engine(tmp_path, chat_chase_step_seconds=5, chat_chase_max_ticks=5, chat_chase_max_seconds=600)
    b.set_fill_mode("never")
    q = b.latest_quote(sym)
    mid = (Decimal(str(q.bid)) + Decimal(str(q.ask))) / 2
    cap = mid.quantize(Decimal("0.01")) + Decimal("0.02")
    r = e.confirm("7", "100", e.handle("7", "100", f"buy {sym} 1 limit {cap} chase").token)
    assert Decimal(r.order["limit_price"]) <= cap
    for _ in range(5):
        b.clock.advance(5); e.tick()
    assert max(o.limit_price for o in b.orders()) == cap
    b.clock.advance(5); e.tick()
    assert b.orders("open") == []

def test_a_later_fill_is_reported_to_the_channel_and_marks_the_shape(tmp_path):
    e, b, sym = _engine(tmp_path)
    b.set_fill_mode("delayed:2")
    r = e.confirm("7", "100", e.handle("7", "100", f"buy {sym} 2").token)
    assert r.order["status"] == "accepted" and e.sent == [] and e.tested_shapes() == set()
    for _ in range(10):
        if b.order(r.order["id"]).status.value == "filled": break
        b.clock.advance(60); b.sync()
    assert any(ch == "100" and f"order {r.order['id']} filled 2 {sym}" in t and t.startswith("[SANDBOX]") for ch, t in e.sent), e.sent
    assert e.tested_shapes() == {f"{sym}|buy|market|day"} and e.chat_order(r.order["id"])["status"] == "filled"
    assert {p.symbol: p.qty for p in e.ledger.positions()} == {sym: Decimal(2)}

def test_chat_orders_and_sandbox_shapes_are_pruned(tmp_path):
    "Orders that ended are forgotten after `orders_keep` (open ones stay); tested shapes are kept three days, not forever."
    from swingtrader.chat import SHAPES
    e, b, sym = _engine(tmp_path)
    e.orders_keep = timedelta(hours=1)
    done = e.handle("7", "100", f"confirm {e.handle('7', '100', f'buy {sym} 1').token}").order["id"]
    low = (Decimal(str(b.latest_quote(sym).bid)) * Decimal("0.8")).quantize(Decimal("0.01"))
    working = e.handle("7", "100", f"confirm {e.handle('7', '100', f'buy {sym} 1 limit {low} gtc').token}").order["id"]
    assert set(e.ledger.load_state("chat:orders")) == {done, working}
    b.clock.advance(2 * 3600)
    new = e.handle("7", "100", f"confirm {e.handle('7', '100', f'buy {sym} 1').token}").order["id"]
    assert set(e.ledger.load_state("chat:orders")) == {working, new}              # the filled one is forgotten, the open one kept
    assert e.chat_order(done) is None and e.handle("7", "100", f"cancel {working}").kind == "ok"
    first_day = str(trading_day(b.clock.now()))
    assert list(e.ledger.load_state(SHAPES)) == [first_day]
    b.clock.advance(4 * 24 * 3600)
    e.handle("7", "100", f"confirm {e.handle('7', '100', f'buy {sym} 1').token}")
    assert list(e.ledger.load_state(SHAPES)) == [str(trading_day(b.clock.now()))]   # four days on: the first day is gone
    assert e.tested_shapes() == {f"{sym}|buy|market|day"}
