"""How soon a running bot carries out a command from the CLI or the dashboard (halt, resume), in real time.

A bot on the seeded simulator (manual clock: no bars move) runs its command loop at the default poll (`Bot.command_poll`,
0.5 s) and at a tenth of it; another connection to the same SQLite ledger (as `swingtrader halt` or the dashboard writes
it) asks for a halt, then a resume, `--rounds` times each. Prints the median and the worst time from the request's commit
to the command's "done" row, side by side with the poll interval it is bounded by. README promises "within a second".
Run: python bench/bench_command_latency.py [--rounds 10]
"""
import argparse
import asyncio
import contextlib
import io
import logging
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path


def measure(poll:float, rounds:int) -> list[float]:
    "Seconds from each request to its command's completion, for a bot polling every `poll` s."
    from swingtrader.clock import SimClock
    from swingtrader.config import Settings
    from swingtrader.ledger import Ledger
    from swingtrader.risk import halt, reset_halt
    from swingtrader.session import sim_bot
    from swingtrader.sim.broker import SimBroker
    opens = datetime(2026, 3, 3, 14, 30, tzinfo=timezone.utc)
    clock = SimClock(opens + timedelta(minutes=30), mode="manual")
    sim = SimBroker.from_seed(seed=3, symbols=4, start=date(2026, 2, 24), end=date(2026, 3, 3), clock=clock)
    sim.sync()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ledger.sqlite"
        bot = sim_bot(Settings(_env_file=None), sim, Ledger(path, clock=clock), command_poll=poll)
        other = Ledger(path)                                 # the CLI's / dashboard's connection
        out = []
        async def go():
            task = asyncio.create_task(bot.run())
            while not bot._tasks: await asyncio.sleep(0.01)
            for i in range(rounds):
                for ask in (lambda: halt(other, "bench", who="bench"), lambda: reset_halt(other, "bench", who="bench")):
                    t0 = time.perf_counter()
                    ask()
                    while other.commands(1)[0].status in ("pending", "taken"): await asyncio.sleep(0.002)
                    out.append(time.perf_counter() - t0)
            bot.stop(); await asyncio.wait_for(task, 60)
        logging.disable(logging.CRITICAL)                    # the kill switch's notices of every halt and resume
        try:
            with contextlib.redirect_stdout(io.StringIO()): asyncio.run(go())
        finally: logging.disable(logging.NOTSET)
        other.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    a = ap.parse_args()
    for poll in (0.5, 0.05):
        t = measure(poll, a.rounds)
        print(f"command poll {poll:>4} s: {len(t)} commands, median {statistics.median(t) * 1000:6.0f} ms, "
              f"worst {max(t) * 1000:6.0f} ms (bounded by the poll: {poll * 1000:.0f} ms plus the command's own work)")


if __name__ == "__main__":
    main()
