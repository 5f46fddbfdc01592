"""One bot process for tests/test_chaos_week.py: the real bot of `settings.broker` — tastytrade (REST through the transport,
DXLink candles, account streamer) or alpaca (alpaca-py's TradingClient, StockDataStream, TradingStream) — with the TradingView
scan, against the emulator served by the test process, on the data directory's ledger and audit log.

    python tests/chaos_child.py CONFIG.json RUN_NAME

CONFIG.json: `settings` (plain values), the emulator clock's anchor (`sim_now` at `monotonic`, `speed`: CLOCK_MONOTONIC is
system-wide, so this process's clock runs in step with the emulator's), `control_url` and `control_headers` (the emulator's
control API and its per-start token, when it has one),
`scan_url`, `last_day`, `fast_forward` (jump the overnight idle: the jump goes to the emulator's clock first, then this
process's clock takes the emulator's answer) and `polls` (the order-update stream's real-second poll intervals, scaled down
for the simulated speed: at 2000x its 30 s safety poll would be 17 simulated hours).

Every order this process hands to the broker (`submit`, and `replace` with its new client key) is first appended to
`<data_dir>/submits-<RUN_NAME>.jsonl` (so the test can tell which process sent what, even after a SIGKILL). After start-up (resume + reconcile) it writes
`<data_dir>/startup-<RUN_NAME>.json`. A `SwingtraderError` (e.g. the single-instance lock held by another process) prints
one `error:` line and exits 2, as the CLI does.

The single-instance lock is `swingtrader.runs.start_run` (as `swingtrader run` takes it) when that module exists.
"""
import asyncio, json, sys, time, urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path

from swingtrader.clock import SimClock


class EmulatorClock(SimClock):
    "A scaled `SimClock` in step with the emulator's; `set` (the bot's fast-forward) moves the emulator's clock first."
    def __init__(self, start, speed:float, control_url:str, control_headers:dict):
        super().__init__(start, mode="scaled", speed=speed)
        self.control_url, self.control_headers = control_url, control_headers

    def set(self, t:datetime):
        req = urllib.request.Request(f"{self.control_url}/_emulator/clock", data=json.dumps({"to": t.isoformat()}).encode(),
                                     headers={"Content-Type": "application/json", **self.control_headers}, method="POST")
        with urllib.request.urlopen(req, timeout=30) as r: now = datetime.fromisoformat(json.loads(r.read())["now"])
        self._t, self._m0 = max(now, t), time.monotonic()   # the emulator's time (a few ms behind: never ahead of it)
        self._wake()


def main(cfg_path:str, run:str):
    cfg = json.loads(Path(cfg_path).read_text())
    from swingtrader.config import Settings

    settings = Settings(_env_file=None, **cfg["settings"])
    speed = cfg["speed"]
    start = datetime.fromisoformat(cfg["sim_now"]) + timedelta(seconds=(time.monotonic() - cfg["monotonic"]) * speed)
    clock = EmulatorClock(start, speed, cfg["control_url"], cfg.get("control_headers") or {})
    data = Path(settings.data_dir)
    # The single-instance lock (data directory + broker account), taken the way `swingtrader run` takes it.
    from swingtrader.runs import start_run
    with start_run(settings, "run"):
        run_bot(cfg, run, settings, clock, data)


def run_bot(cfg:dict, run:str, settings, clock, data:Path):
    from swingtrader.clock import MarketCalendar
    from swingtrader.session import build_bot, open_state, _run_with_signals
    ledger, audit = open_state(settings, clock)
    bot = build_bot(settings, clock, ledger, audit, scan_url=cfg["scan_url"], calendar=MarketCalendar(),   # the registry's parts
                         last_day=date.fromisoformat(cfg["last_day"]), fast_forward_idle=cfg["fast_forward"], check_every=120.0)

    for k, v in (cfg.get("polls") or {}).items(): setattr(bot.order_updates, k, v)

    log = open(data / f"submits-{run}.jsonl", "a")
    def logged(name, real):
        def call(*args, **kw):
            key = kw.get("client_key") or getattr(args[0], "client_key", None)
            log.write(json.dumps({"run": run, "call": name, "client_key": key, "at": clock.now().isoformat()}) + "\n"); log.flush()
            return real(*args, **kw)
        return call
    for name in ("submit", "replace"):       # every call that can put an order at the broker (protective stops: replace too)
        if hasattr(bot.broker, name): setattr(bot.broker, name, logged(name, getattr(bot.broker, name)))

    startup = bot.startup
    async def startup_and_report():
        rep = await startup()
        t = bot.trader
        (data / f"startup-{run}.json").write_text(json.dumps({
            "positions": {p: str(x.qty) for p, x in t.positions.items()}, "pending": sorted(t.pending),
            "resolved_intents": list(rep.resolved_intents), "adopted_orders": list(rep.adopted_orders),
            "adopted_positions": list(rep.adopted_positions), "mismatches": list(rep.mismatches), "tripped": rep.tripped,
            "halt": ledger.halt_state().state, "at": clock.now().isoformat()}, default=str))
        return rep
    bot.startup = startup_and_report
    try:
        days = asyncio.run(_run_with_signals(bot))
        (data / f"done-{run}.json").write_text(json.dumps([d.to_dict() for d in days], default=str))
    finally:
        bot.broker.close(); ledger.close(); audit.close(); log.close()


if __name__ == "__main__":
    from swingtrader.cli import friendly
    friendly(main)(sys.argv[1], sys.argv[2])
