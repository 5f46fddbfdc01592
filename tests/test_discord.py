"""End to end on a local Discord: unmodified discord.py runs the chat bot against the Discord emulator (only its base
URLs changed); a message → bot → sandbox dry-run reply with ✅/❌ → someone else's ✅ is ignored and removed → the
sender's ✅ → the order on the SimBroker → fill → reply. Also: the gateway handshake and heartbeats, the channel filter,
❌ drops the order, a stranger is refused politely."""
import asyncio, threading

import pytest

discord = pytest.importorskip("discord")

from swingtrader.chat import ChatEngine
from swingtrader.chat_discord import ChatBot, CONFIRM, DROP
from swingtrader.config import Settings
from swingtrader.emulator.discord import DiscordEmulator, point_discord_at
from swingtrader.ledger import Ledger
from swingtrader.models import OrderUpdate
from swingtrader.sim.broker import SimBroker

TRADER, STRANGER, CHANNEL, OTHER = 7, 8, 100, 555

@pytest.fixture
def world(tmp_path):
    b = SimBroker.from_seed(symbols=3); b.clock.advance(300)
    eng = ChatEngine.build(Settings(chat_allow=f"{CHANNEL}:trade:{TRADER} dm:read:{TRADER}"), b, Ledger(tmp_path / "l.sqlite", clock=b.clock))
    b.add_listener(lambda ev: eng.on_update(ev) if isinstance(ev, OrderUpdate) else None)
    yield from _run_world(b, eng)

@pytest.fixture
def tt_world(tmp_path, tt_client, tt_settings, sim_broker):
    "The bot over the real tastytrade adapter and the broker emulator (the SimBroker behind it)."
    s = tt_settings.model_copy(update={"chat_allow": f"{CHANNEL}:trade:{TRADER}"})
    eng = ChatEngine.build(s, tt_client, Ledger(tmp_path / "l.sqlite", clock=sim_broker.clock), clock=sim_broker.clock)
    for emu, _, eng, bot in _run_world(tt_client, eng):
        yield emu, sim_broker, eng, bot

def _run_world(b, eng):
    emu = DiscordEmulator(heartbeat_ms=500)
    emu.start()
    old = point_discord_at(emu.api_base, emu.gateway_url)
    bot = ChatBot(eng, guild_ready_timeout=0.1)
    loop = asyncio.new_event_loop()
    async def main():
        async with bot: await bot.start(emu.token)
    fut = {"task": None}
    def run():
        asyncio.set_event_loop(loop)
        fut["task"] = loop.create_task(main())
        try: loop.run_until_complete(fut["task"])
        except (asyncio.CancelledError, Exception): pass
        finally: loop.run_until_complete(loop.shutdown_asyncgens()); loop.close()
    t = threading.Thread(target=run, daemon=True); t.start()
    emu.wait_until(lambda: emu.identify is not None and bot.is_ready(), timeout=60)
    yield emu, b, eng, bot
    asyncio.run_coroutine_threadsafe(bot.close(), loop).result(30)
    t.join(30)
    point_discord_at(*old)
    emu.stop()

def _bot_reply(emu, after, contains):
    return emu.wait_for(lambda m: m.author_id == emu.bot_id and m.id > after.id and contains in m.content, timeout=60)

def test_handshake_minimal_intents_and_heartbeats(world):
    emu, b, eng, bot = world
    assert emu.identify["token"] == "***" and emu.identify["intents"] == bot.intents.value
    assert not bot.intents.members and not bot.intents.presences and bot.intents.message_content
    assert ("GET", "/api/v10/users/@me") in emu.requests
    emu.wait_until(lambda: emu.heartbeats >= 2, timeout=60)          # heartbeats are sent and ACKed (else discord.py reconnects)

def test_message_to_fill_end_to_end(world):
    emu, b, eng, bot = world
    sym = b.symbols[0]
    m = emu.post_message(TRADER, CHANNEL, f"buy {sym} 3")
    preview = _bot_reply(emu, m, "Confirm within")
    assert preview.content.startswith(f"[SANDBOX] BUY 3 {sym}") and "est. cost" in preview.content
    emu.wait_until(lambda: {CONFIRM, DROP} <= {e for e, us in preview.reactions.items() if emu.bot_id in us})
    assert b.orders() == []
    emu.react(STRANGER, preview, CONFIRM)                              # not theirs: ignored and removed
    emu.wait_until(lambda: str(STRANGER) not in preview.reactions.get(CONFIRM, set()))
    assert b.orders() == []
    emu.react(TRADER, preview, CONFIRM)
    placed = _bot_reply(emu, preview, "placed")
    assert "filled" in placed.content and placed.content.startswith("[SANDBOX]")
    assert [o.status.value for o in b.orders()] == ["filled"] and {p.symbol: p.qty for p in b.positions()} == {sym: 3}
    emu.react(TRADER, preview, CONFIRM)                                # a second ✅: the ask is gone, nothing happens
    again = emu.post_message(TRADER, CHANNEL, "orders")
    _bot_reply(emu, again, "no chat orders open")
    assert len(b.orders()) == 1

def test_drop_filter_and_stranger(world):
    emu, b, eng, bot = world
    sym = b.symbols[0]
    ignored = emu.post_message(TRADER, OTHER, f"buy {sym} 1")         # not a configured channel
    m = emu.post_message(TRADER, CHANNEL, f"buy {sym} 1")
    preview = _bot_reply(emu, m, "Confirm within")
    emu.wait_until(lambda: {CONFIRM, DROP} <= {e for e, us in preview.reactions.items() if emu.bot_id in us})
    emu.react(TRADER, preview, DROP)
    _bot_reply(emu, preview, "dropped")
    s = emu.post_message(STRANGER, CHANNEL, "status")
    assert "sorry" in _bot_reply(emu, s, "not allowed").content
    assert not any(x.channel_id == str(OTHER) and x.author_id == emu.bot_id for x in emu.messages) and ignored.id
    assert b.orders() == []

def test_rate_limited_sends_are_retried_and_a_dropped_gateway_resumes(world):
    emu, b, eng, bot = world
    emu.throttle = 2                                                    # Discord says 429 twice: discord.py waits, resends
    m = emu.post_message(TRADER, CHANNEL, "status")
    r = _bot_reply(emu, m, "equity")
    assert emu.throttled == 2 and r.content.startswith("[SANDBOX]")
    emu.drop_connections()                                              # the gateway goes away: the bot resumes
    emu.wait_until(lambda: emu.resumes >= 1 and emu.connections == 1, timeout=60)
    m2 = emu.post_message(TRADER, CHANNEL, "positions")
    assert "no open positions" in _bot_reply(emu, m2, "positions").content

def test_direct_messages_use_the_dm_allowlist(world):
    emu, b, eng, bot = world
    m = emu.post_message(TRADER, 4242, "status", dm=True)
    r = _bot_reply(emu, m, "equity")
    assert r.channel_id == "4242"
    o = emu.post_message(TRADER, 4242, f"buy {b.symbols[0]} 1", dm=True)          # read only in DMs
    assert "not allowed" in _bot_reply(emu, o, "sorry").content

def test_confirm_and_drop_buttons(world):
    emu, b, eng, bot = world
    sym = b.symbols[0]
    m = emu.post_message(TRADER, CHANNEL, f"buy {sym} 2")
    preview = _bot_reply(emu, m, "Confirm within")
    emu.wait_until(lambda: {CONFIRM, DROP} <= {e for e, us in preview.reactions.items() if emu.bot_id in us})
    labels = [c["label"] for row in preview.components for c in row["components"]]
    assert labels == ["Confirm", "Drop"]
    other = emu.click(STRANGER, preview, "Confirm")                    # not theirs: a private note, nothing placed
    note = emu.wait_for(lambda x: x.ephemeral and "not your order" in x.content, timeout=60)
    assert emu.interactions[other]["response"] == 4 and note.channel_id == str(CHANNEL) and b.orders() == []
    mine = emu.click(TRADER, preview, "Confirm")
    placed = _bot_reply(emu, preview, "placed")
    assert emu.interactions[mine]["response"] == 6 and "filled" in placed.content
    assert len(b.orders()) == 1
    emu.react(TRADER, preview, CONFIRM)                                # the reaction after the button: nothing more
    m2 = emu.post_message(TRADER, CHANNEL, f"buy {sym} 1")
    p2 = _bot_reply(emu, m2, "Confirm within")
    emu.wait_until(lambda: {CONFIRM, DROP} <= {e for e, us in p2.reactions.items() if emu.bot_id in us})
    emu.click(TRADER, p2, "Drop")
    _bot_reply(emu, p2, "dropped")
    assert len(b.orders()) == 1

def test_message_to_fill_on_the_tastytrade_emulator(tt_world):
    emu, sim, eng, bot = tt_world
    sym = sim.symbols[0]
    m = emu.post_message(TRADER, CHANNEL, f"buy {sym} 2")
    preview = _bot_reply(emu, m, "Confirm within")
    assert preview.content.startswith(f"[SANDBOX] BUY 2 {sym}") and sim.orders() == []
    emu.wait_until(lambda: {CONFIRM, DROP} <= {e for e, us in preview.reactions.items() if emu.bot_id in us})
    emu.react(TRADER, preview, CONFIRM)
    placed = _bot_reply(emu, preview, "placed")
    [o] = sim.orders()
    assert o.qty == 2 and o.client_key in [r["client_key"] for r in eng.ledger.load_state("chat:orders").values()]
    assert placed.content.startswith("[SANDBOX] placed BUY 2")
    sim.clock.advance(60); sim.sync()
    assert sim.order(o.id).status.value == "filled" and {p.symbol: p.qty for p in sim.positions()} == {sym: 2}

@pytest.fixture
def dm_world(tmp_path):
    "Trading allowed in DMs too (and the fills of a delayed-fill SimBroker come later, through its listener)."
    b = SimBroker.from_seed(symbols=3); b.clock.advance(300)
    eng = ChatEngine.build(Settings(chat_allow=f"{CHANNEL}:trade:{TRADER} dm:trade:{TRADER}"), b, Ledger(tmp_path / "l.sqlite", clock=b.clock))
    b.add_listener(lambda ev: eng.on_update(ev) if isinstance(ev, OrderUpdate) else None)
    yield from _run_world(b, eng)

def _confirmed(emu, user, channel, text, dm=False):
    m = emu.post_message(user, channel, text, dm=dm)
    preview = _bot_reply(emu, m, "Confirm within")
    emu.wait_until(lambda: {CONFIRM, DROP} <= {e for e, us in preview.reactions.items() if emu.bot_id in us})
    emu.react(user, preview, CONFIRM)
    return _bot_reply(emu, preview, "placed")

def test_a_later_fill_of_a_dm_order_is_reported_in_that_dm(dm_world):
    emu, b, eng, bot = dm_world
    sym, dm = b.symbols[0], 4242
    b.set_fill_mode("delayed:2")
    placed = _confirmed(emu, TRADER, dm, f"buy {sym} 2", dm=True)
    assert placed.channel_id == str(dm) and "accepted" in placed.content
    oid = eng.open_orders()[0].id
    for _ in range(10):                                                 # the market moves on; the order fills
        if b.order(oid).status.value == "filled": break
        b.clock.advance(60); b.sync()
    fill = _bot_reply(emu, placed, f"order {oid} filled 2 {sym}")
    assert fill.channel_id == str(dm) and fill.content.startswith("[SANDBOX]")
    assert not any(m.author_id == emu.bot_id and "filled 2" in m.content and m.channel_id != str(dm) for m in emu.messages)

def test_chase_steps_are_reported_in_the_channel_through_rate_limits(dm_world):
    emu, b, eng, bot = dm_world
    sym = b.symbols[0]
    b.set_fill_mode("never")
    placed = _confirmed(emu, TRADER, CHANNEL, f"buy {sym} 1 chase")
    assert "with a fill chase" in placed.content
    emu.throttle = 3                                                    # Discord answers the next sends with 429
    step = eng.settings.chat_chase_step_seconds
    b.clock.advance(step)                                               # the bot's tick task takes the first step …
    first = _bot_reply(emu, placed, "step 1")
    b.clock.advance(step)
    second = _bot_reply(emu, first, "step 2")
    assert emu.throttled == 3 and first.channel_id == second.channel_id == str(CHANNEL)
    open_ = b.orders("open")
    assert len(open_) == 1 and f"limit {open_[0].limit_price}" in second.content
    cancel = emu.post_message(TRADER, CHANNEL, f"cancel {open_[0].id}")
    assert "cancelled" in _bot_reply(emu, cancel, "is cancelled").content

def test_notify_never_blocks_nor_raises_into_trading(tmp_path):
    "The engine reports fills from the trading thread: before the bot runs, after it stopped, or for a non-Discord channel, nothing breaks."
    b = SimBroker.from_seed(symbols=2); b.clock.advance(300)
    eng = ChatEngine.build(Settings(chat_allow=f"{CHANNEL}:trade:{TRADER}"), b, Ledger(tmp_path / "l.sqlite", clock=b.clock))
    bot = ChatBot(eng)
    assert eng.notify == bot.notify and bot.notify(str(CHANNEL), "not started") is None
    loop = asyncio.new_event_loop()
    bot.outbox, bot._bot_loop = asyncio.Queue(), loop
    bot.notify("api", "an API order's fill"); bot.notify("dm", "no channel id")
    assert loop.run_until_complete(asyncio.sleep(0, result=bot.outbox.qsize())) == 0
    bot.notify(str(CHANNEL), "queued")
    loop.run_until_complete(asyncio.sleep(0))
    assert bot.outbox.get_nowait() == (CHANNEL, "queued", None)
    loop.close()
    assert bot.notify(str(CHANNEL), "after the bot stopped") is None           # dropped (logged), not raised
