"""The bot as a separate process, for tests/test_bot_restart.py: the real tastytrade bot against an emulator served by the
test process, with a file ledger and audit log in the data directory (so a `kill -9` leaves them as a crash would).

    python tests/bot_restart_child.py CONFIG.json RUN_NAME

CONFIG.json: settings (plain values), the emulator's control API (`api_url`, `control_token`: the bot's clock follows the
emulator's simulated time, and the run publishes its progress to `<data_dir>/progress-<RUN_NAME>.json` for the test to pace the
emulator by, see `lockstep.py`), `scan_url`, `last_day`, and optionally `kill` =
{"run": RUN_NAME, "when": "before_submit"|"after_submit", "nth": N, "side": "buy"|None}: on the Nth broker submit (of that
side) of that run the process
SIGKILLs itself, before the broker got the order or after it got it but before the ledger heard the answer.
After start-up (resume + reconcile) the run writes `<data_dir>/startup-<RUN_NAME>.json`: the stops, pending intents and
reconcile report the restarted bot works from.
"""
import asyncio, json, os, signal, sys
from datetime import date
from pathlib import Path

from lockstep import EmulatorFollower


def main(cfg_path: str, run: str):
    cfg = json.loads(Path(cfg_path).read_text())
    from swingtrader.config import Settings
    from swingtrader.clock import MarketCalendar
    from swingtrader.ledger import Ledger
    from swingtrader.audit import AuditLog
    from swingtrader.session import tastytrade_bot, _run_with_signals

    settings = Settings(_env_file=None, **cfg["settings"])
    data = Path(settings.data_dir)
    # a manual clock that the follower keeps at the emulator's simulated time (no real-time anchor of its own)
    follower = EmulatorFollower(cfg["api_url"], cfg["control_token"], data / f"progress-{run}.json")
    clock = follower.clock
    ledger = Ledger(data / "ledger.sqlite", clock=clock)
    audit = AuditLog(data / "audit", clock, settings.secret_values())
    bot = tastytrade_bot(settings, clock, ledger, audit, scan_url=cfg["scan_url"], calendar=MarketCalendar(),
                         last_day=date.fromisoformat(cfg["last_day"]), fast_forward_idle=False, check_every=120.0)

    kill = cfg.get("kill") or {}
    if kill.get("run") == run:
        real, n = bot.broker.submit, [0]
        def submit(req):
            if kill.get("side") not in (None, req.side.value): return real(req)
            after = kill["when"] == "after_submit"
            # after_submit counts the submits the broker took: one it refused (e.g. a notional under one whole share while
            # broker stops are on) raises here and is not the order this kill is about
            order = real(req) if after else None
            n[0] += 1
            if n[0] == kill["nth"]:
                (data / f"killed-{run}.json").write_text(json.dumps({"when": kill["when"], "client_key": req.client_key, "symbol": req.symbol}))
                os.kill(os.getpid(), signal.SIGKILL)   # after_submit: the broker has it; the ledger never hears the answer
            return order if after else real(req)
        bot.broker.submit = submit

    # progress for the pacer: where the session began (the emulator may run `lead` past it), then each bar handled
    session, on_bar = bot.session, bot.on_bar
    async def session_reported(open_t, close_t):
        follower.reached(clock.now())
        return await session(open_t, close_t)
    async def on_bar_reported(bar, close_t):
        try: return await on_bar(bar, close_t)
        finally: follower.reached(bar.start + bot.period)
    bot.session, bot.on_bar = session_reported, on_bar_reported

    startup = bot.startup
    async def startup_and_report():
        rep = await startup()
        t = bot.trader
        (data / f"startup-{run}.json").write_text(json.dumps({
            "stops": {sym: ts.to_dict() for sym, ts in (t.stops.stops.items() if t.stops is not None else ())},
            "pending": sorted(t.pending), "positions": {p: str(x.qty) for p, x in t.positions.items()},
            "resolved_intents": list(rep.resolved_intents), "adopted_orders": list(rep.adopted_orders),
            "adopted_positions": list(rep.adopted_positions), "mismatches": list(rep.mismatches), "tripped": rep.tripped,
            "unresolved": [o.client_key for o in ledger.unresolved_intents()], "halt": ledger.halt_state().state, "at": clock.now().isoformat()}, default=str))
        return rep
    bot.startup = startup_and_report
    async def run_following():
        follower.start(asyncio.get_running_loop())
        return await _run_with_signals(bot)
    try: asyncio.run(run_following())
    finally:
        follower.close(); bot.broker.close(); ledger.close(); audit.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
