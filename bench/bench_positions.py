"""Time to build the positions table for 200 option positions against the emulator (target < 2 s).

Seeds 200 equity-option positions (calls and puts, long and short, across the simulated underlyings and expirations)
in an emulator on loopback, then times `fetch_portfolio` through the tastytrade client: accounts, balances, positions
with marks, instruments, market metrics, and the DXLink Greeks/Quote wait. Prints the total, the DXLink wait, and
the REST part. Run: .venv/bin/python bench/bench_positions.py [positions, default 200] [repeats, default 3]
"""
import sys
import time
from datetime import date, timedelta

from swingtrader.config import Settings
from swingtrader.emulator.app import EmulatorServer
from swingtrader.emulator.core import Emulator
from swingtrader.positions import fetch_portfolio
from swingtrader.sim.broker import SimBroker
from swingtrader.tastytrade.broker import TastytradeBroker


def main(n=200, repeats=3):
    sim = SimBroker.from_seed(seed=42, symbols=10, start=date(2026, 3, 2), end=date(2026, 3, 3))
    sim.advance_to(sim.clock.now() + timedelta(minutes=10))
    emu = Emulator(sim, sim.clock)
    with EmulatorServer(emu) as srv:
        dv = emu.derivatives
        def seed():
            syms = []
            for u in dv.underlyings():
                for o in dv.option_chain(u):
                    syms.append(o.occ)
            step = max(1, len(syms) // n)
            for i, s in enumerate(syms[::step][:n]): dv.seed(s, (i % 5 + 1) * (1 if i % 2 else -1))
            return len(dv.seeded)
        seeded = srv.call(seed)
        s = Settings(broker="tastytrade", TT_CLIENT_SECRET="a", TT_REFRESH_TOKEN="b", TT_API_URL=srv.api_url, TT_STREAMER_URL=srv.streamer_url)
        with TastytradeBroker(s, clock=sim.clock) as b:
            for k in range(repeats):
                t0 = time.perf_counter()
                pf = fetch_portfolio(b, wait=10)
                total = time.perf_counter() - t0
                missing = int(pf.table["delta"].isna().sum())
                print(f"run {k + 1}: {len(pf.table)} positions ({seeded} seeded, {missing} without greeks) in {total:.2f} s "
                      f"(DXLink wait {pf.waited:.2f} s, REST and table {total - pf.waited:.2f} s)")
    ok = total < 2.0 and missing == 0
    print(("OK" if ok else "SLOW") + f": target < 2 s for {n} option positions")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:3])))
