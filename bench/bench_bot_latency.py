"""Signal → order submitted latency of the bot on the emulator (real tastytrade client over loopback HTTP).

Runs one simulated session through the emulator at high speed and prints per-intent stage timings measured by the bot:
decide (bar → Trader: strategy, sizer, RiskGuard, ledger intent), risk (RiskGuard.evaluate alone, inside decide), durable (the
one ledger commit of intents + checkpoint before the broker call), submit (broker call through tastytrade-sdk + ledger record),
broker (the broker call alone, thread hop included), total (bar in → order acknowledged).
Spec: total < 150 ms, risk check < 5 ms, submission < 100 ms. The emulator runs in this process (it competes for the GIL)."""
import asyncio, tempfile, time
from datetime import date
from pathlib import Path

from swingtrader.config import Settings
from swingtrader.audit import AuditLog
from swingtrader.ledger import Ledger
from swingtrader.session import emulated_tastytrade, tastytrade_bot

def pct(xs, q):
    s = sorted(xs); return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")

def main():
    tmp = Path(tempfile.mkdtemp())
    s = Settings(_env_file=None, data_dir=tmp, sim_symbols=8, scan_top=8, scan_min_avg_volume=0, macd_fast=6, macd_slow=13,
                 macd_signal=5, trend_ema=20, warmup_bars=30, max_losing_streak=1000, daily_loss_halt=0.5)
    env = emulated_tastytrade(s, date(2026, 3, 2), date(2026, 3, 3), 1500.0)
    ledger, audit = Ledger(tmp / "ledger.sqlite", clock=env.clock), AuditLog(tmp / "audit", env.clock)
    bot = tastytrade_bot(env.settings, env.clock, ledger, audit, scan_url=env.scan_url(), calendar=env.calendar,
                         last_day=date(2026, 3, 3), fast_forward_idle=True)
    t0 = time.perf_counter()
    try: asyncio.run(bot.run())
    finally: bot.broker.close(); env.close()
    lat = bot.latencies
    print(f"{len(lat)} orders in {time.perf_counter() - t0:.1f} s real (2 simulated sessions, 8 symbols, 1500x)")
    for stage in ("decide", "risk", "durable", "submit", "broker", "total"):
        xs = [d[stage] * 1000 for d in lat if d.get(stage) is not None]
        if xs: print(f"{stage:>7}: p50 {pct(xs, .5):7.2f} ms   p99 {pct(xs, .99):7.2f} ms   max {max(xs):7.2f} ms   (n={len(xs)})")
    hp = bot.health.summary()
    print(f"broker API latency p95 over all calls: {hp['latency_p95'] * 1000:.1f} ms")

if __name__ == "__main__": main()
