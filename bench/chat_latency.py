"""Chat reply latency: a person's message in the Discord emulator → the bot's reply stored by the emulator.

Unmodified discord.py runs `ChatBot` against the loopback Discord emulator, over the chat engine with an on-disk ledger
and audit log. Each round sends `status`, an order (→ the broker's dry-run preview with a token) and the ✅ that
confirms it (→ placed); the time from the emulator dispatching the message / reaction to the bot's reply arriving back
is one sample. Spec: every reply within 5 s (p99). Prints p50/p99/max per kind, in ms.

Two desks: `sim` (default: shares on the SimBroker, in process) and `contracts` (an SPY option limit order through the
real tastytrade adapter over HTTP to the broker emulator's derivatives desk: its dry run, its submit).
Usage: python bench/chat_latency.py [rounds] [sim|contracts]"""
import asyncio, sys, tempfile, threading, time
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from swingtrader.audit import AuditLog
from swingtrader.chat import ChatEngine
from swingtrader.chat_discord import ChatBot, CONFIRM, DROP
from swingtrader.config import Settings
from swingtrader.emulator.discord import DiscordEmulator, point_discord_at
from swingtrader.ledger import Ledger
from swingtrader.models import OrderUpdate
from swingtrader.sim.broker import SimBroker

ALLOW = "100:trade:7"

def pct(xs, q):
    s = sorted(xs); return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")

@contextmanager
def sim_desk(tmp:Path):
    "Shares on the SimBroker: (engine, the order command)."
    b = SimBroker.from_seed(symbols=3); b.clock.advance(300)
    eng = ChatEngine.build(Settings(_env_file=None, chat_allow=ALLOW, data_dir=tmp), b, Ledger(tmp / "ledger.sqlite", clock=b.clock),
                           audit=AuditLog(tmp / "audit", b.clock))
    b.add_listener(lambda ev: eng.on_update(ev) if isinstance(ev, OrderUpdate) else None)
    yield eng, f"buy {b.symbols[0]} 1"

@contextmanager
def contracts_desk(tmp:Path):
    "An SPY option through TastytradeBroker → HTTP → the broker emulator: (engine, the order command)."
    from swingtrader.clock import WallClock
    from swingtrader.emulator.app import EmulatorServer
    from swingtrader.emulator.core import Emulator, Faults
    from swingtrader.instruments import option_tick
    from swingtrader.tastytrade.broker import TastytradeBroker
    b = SimBroker.from_seed(seed=7, symbols=4, start=date(2026, 3, 2), end=date(2026, 3, 3), cash=Decimal(10_000_000))
    b.advance_to(b.clock.now() + timedelta(minutes=10))
    with EmulatorServer(Emulator(b, b.clock, faults=Faults())) as srv:
        s = Settings(_env_file=None, broker="tastytrade", TT_CLIENT_SECRET="bench-secret", TT_REFRESH_TOKEN="bench-refresh",
                     TT_API_URL=srv.api_url, TT_STREAMER_URL=srv.streamer_url, chat_allow=ALLOW, data_dir=tmp)
        tt = TastytradeBroker(s, clock=WallClock(), verify=srv.ca_file)
        eng = ChatEngine.build(s, tt, Ledger(tmp / "ledger.sqlite", clock=b.clock), audit=AuditLog(tmp / "audit", b.clock), clock=b.clock)
        dv = srv.emu.derivatives
        o = next(x for x in dv.option_chain("SPY") if 1 < dv.mark_price(x.occ) < 40)
        mark = Decimal(str(dv.mark_price(o.occ))); t = option_tick(mark)
        try: yield eng, f"buy {o.occ.replace(' ', '')} 1 limit {(mark // t) * t}"
        finally: tt.close()

def measure(eng:ChatEngine, order:str, rounds:int) -> dict:
    emu = DiscordEmulator(); emu.start()
    point_discord_at(emu.api_base, emu.gateway_url)
    bot, loop = ChatBot(eng, guild_ready_timeout=0.1), asyncio.new_event_loop()
    async def run():
        async with bot: await bot.start(emu.token)
    t = threading.Thread(target=lambda: loop.run_until_complete(run()), daemon=True); t.start()
    emu.wait_until(lambda: bot.is_ready(), timeout=60)
    lat = {"status": [], "preview": [], "confirm": []}
    def reply_after(m, contains):
        return emu.wait_for(lambda x: x.author_id == emu.bot_id and int(x.id) > int(m.id) and contains in x.content, timeout=60)
    try:
        for _ in range(rounds):
            m = emu.post_message(7, 100, "status"); r = reply_after(m, "equity"); lat["status"].append(r.at - m.at)
            m = emu.post_message(7, 100, order); p = reply_after(m, "Confirm within"); lat["preview"].append(p.at - m.at)
            emu.wait_until(lambda: {CONFIRM, DROP} <= {e for e, us in p.reactions.items() if emu.bot_id in us})
            t0 = time.monotonic(); emu.react(7, p, CONFIRM); r = reply_after(p, "placed"); lat["confirm"].append(r.at - t0)
    finally:
        asyncio.run_coroutine_threadsafe(bot.close(), loop).result(30); t.join(30); emu.stop()
    return lat

def main(rounds:int=30, desk:str="sim"):
    desks = {"sim": sim_desk, "contracts": contracts_desk}
    if desk not in desks: sys.exit(f"error: desk {desk!r} is unknown. use one of: {', '.join(desks)}.")
    with tempfile.TemporaryDirectory() as d, desks[desk](Path(d)) as (eng, order): lat = measure(eng, order, rounds)
    allv = [x for v in lat.values() for x in v]
    print(f"desk {desk}: {order!r}")
    for k, v in lat.items():
        print(f"{k:8s} n={len(v):3d}  p50 {pct(v, .5) * 1000:7.1f} ms  p99 {pct(v, .99) * 1000:7.1f} ms  max {max(v) * 1000:7.1f} ms")
    print(f"all      n={len(allv):3d}  p50 {pct(allv, .5) * 1000:7.1f} ms  p99 {pct(allv, .99) * 1000:7.1f} ms  (spec: p99 < 5000 ms) "
          f"{'OK' if pct(allv, .99) < 5 else 'TOO SLOW'}")

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30, sys.argv[2] if len(sys.argv) > 2 else "sim")
