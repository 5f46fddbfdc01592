"""Emulator figures: start-up time, REST round-trip p50/p99 for a GET and an order POST (loopback, plain http and TLS).

Run: .venv/bin/python bench/bench_emulator.py
"""
from __future__ import annotations
import statistics, sys, time
from datetime import date
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from swingtrader.emulator.core import Emulator
from swingtrader.emulator.app import EmulatorServer
from swingtrader.sim.broker import SimBroker

UA = {"User-Agent": "swingtrader-bench/1.0"}


def pct(xs, p): xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run(tls: bool, n: int = 300):
    t0 = time.perf_counter()
    broker = SimBroker.from_seed(seed=1, symbols=40, start=date(2026, 3, 2), end=date(2026, 3, 6))
    t1 = time.perf_counter()
    from datetime import timedelta
    broker.advance_to(broker.clock.now() + timedelta(minutes=10))
    emu = Emulator(broker, broker.clock)
    with EmulatorServer(emu, tls=tls) as srv:
        t2 = time.perf_counter()
        s = requests.Session(); s.headers.update(UA)
        if tls: s.verify, s.trust_env = str(srv.ca_file), False
        tok = s.post(srv.api_url + "/oauth/token", json={"grant_type": "refresh_token", "client_secret": "a", "refresh_token": "b"}).json()["access_token"]
        s.headers["Authorization"] = f"Bearer {tok}"
        acct = srv.account_number
        sym = broker.symbols[0]
        px = broker.latest_quote(sym).bid * 0.5
        body = {"time-in-force": "Day", "order-type": "Limit", "price": f"{px:.2f}", "price-effect": "Debit",
                "legs": [{"instrument-type": "Equity", "symbol": sym, "quantity": 1, "action": "Buy to Open"}]}
        get_t, post_t = [], []
        for _ in range(n):
            a = time.perf_counter(); r = s.get(f"{srv.api_url}/accounts/{acct}/balances/USD"); get_t.append(time.perf_counter() - a)
            assert r.status_code == 200
        for _ in range(n):
            a = time.perf_counter(); r = s.post(f"{srv.api_url}/accounts/{acct}/orders", json=body); post_t.append(time.perf_counter() - a)
            assert r.status_code == 201, r.text
        label = "https" if tls else "http"
        print(f"[{label}] sim build {1000*(t1-t0):.0f} ms, server start {1000*(t2-t1):.0f} ms (total start-up {1000*(t2-t0):.0f} ms)")
        print(f"[{label}] GET balances/USD   p50 {1000*statistics.median(get_t):.2f} ms  p99 {1000*pct(get_t, 99):.2f} ms  (n={n})")
        print(f"[{label}] POST orders        p50 {1000*statistics.median(post_t):.2f} ms  p99 {1000*pct(post_t, 99):.2f} ms  (n={n})")


if __name__ == "__main__":
    run(False)
    run(True)
