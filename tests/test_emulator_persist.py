"`run_emulator` end to end, and multi-day persistence: state saved on shutdown is what the next start serves."
from __future__ import annotations
import queue, threading
from datetime import datetime

import pytest

from emu_support import Client
from swingtrader.emulator.core import saved_time, STATE_FILE, BROKER_FILE
from swingtrader.emulator.app import run_emulator

pytestmark = pytest.mark.timeout(120)


def _start(data_dir, speed):
    "run_emulator in a thread; returns (server, stop event, thread)."
    got, stop = queue.Queue(), threading.Event()
    th = threading.Thread(target=run_emulator, kwargs=dict(port=0, data_dir=data_dir, speed=speed, seed=3, symbols=4, days=2,
                                                           stop=stop, on_ready=got.put), daemon=True)
    th.start()
    return got.get(timeout=60), stop, th


def _stop(stop, th):
    stop.set(); th.join(60)
    assert not th.is_alive()


def _snapshot(c):
    orders = c.get(f"/accounts/{c.acct}/orders", params={"per-page": 100}).json()["data"]["items"]
    pos = c.get(f"/accounts/{c.acct}/positions").json()["data"]["items"]
    bal = c.get(f"/accounts/{c.acct}/balances/USD").json()["data"]
    txs = c.get(f"/accounts/{c.acct}/transactions").json()["data"]["items"]
    return ({o["id"]: o for o in orders}, {p["symbol"]: (p["quantity"], p["average-open-price"]) for p in pos},
            bal["cash-balance"], sorted(t["id"] for t in txs))


def _wait(c, oid, status, tries=200):
    import time
    for _ in range(tries):
        o = c.get(f"/accounts/{c.acct}/orders/{oid}").json()["data"]
        if o["status"] == status: return o
        time.sleep(0.05)
    raise AssertionError(f"order {oid} never reached {status}: {o['status']}")


def test_run_emulator_persists_across_restart(tmp_path, capsys):
    srv, stop, th = _start(tmp_path, speed=600)  # 600x: a 1-minute bar closes every 0.1 s
    try:
        c = Client(srv)
        assert "TT_API_URL=" in capsys.readouterr().out
        sym, other = c.symbols()[:2]
        # a market buy that fills once the first bar closes
        r = c.post(f"/accounts/{c.acct}/orders", json=c.order_body(sym, 5, otype="Market", key="persist-buy"))
        assert r.status_code == 201, r.text
        buy = _wait(c, r.json()["data"]["order"]["id"], "Filled")
        # a far limit order, replaced, and the replacement cancelled: nothing is left working
        r = c.post(f"/accounts/{c.acct}/orders", json=c.order_body(other, 2, price="1.00", key="persist-far"))
        far = r.json()["data"]["order"]["id"]
        r = c.req("PUT", f"/accounts/{c.acct}/orders/{far}", json={"order-type": "Limit", "time-in-force": "Day", "price": "1.01", "price-effect": "Debit"})
        assert r.status_code == 200, r.text
        new = r.json()["data"]["id"]
        assert c.req("DELETE", f"/accounts/{c.acct}/orders/{new}").status_code == 200
        before = _snapshot(c)
        assert before[0][far]["replacing-order-id"] == new and before[0][new]["replaces-order-id"] == far
        assert before[1][sym][0] in (5, "5") and len(before[3]) == len(buy["legs"][0]["fills"]) >= 1
        t_before = datetime.fromisoformat(c.state()["now"])
    finally: _stop(stop, th)

    assert (tmp_path / STATE_FILE).exists() and (tmp_path / BROKER_FILE).exists()
    t_saved = saved_time(tmp_path)
    assert t_saved >= t_before

    srv2, stop2, th2 = _start(tmp_path, speed=1)  # real time: nothing else happens while we look
    try:
        c2 = Client(srv2)
        after = _snapshot(c2)
        # orders (ids, statuses, fills, replace links), positions, cash and transactions are the ones saved
        assert after[0].keys() == before[0].keys()
        for oid, o in before[0].items():
            a = after[0][oid]
            for k in ("status", "size", "price", "external-identifier", "replaces-order-id", "replacing-order-id", "received-at", "updated-at"):
                assert a.get(k) == o.get(k), (oid, k, a.get(k), o.get(k))
            assert a["legs"][0]["fills"] == o["legs"][0]["fills"]
        assert after[1] == before[1] and after[2] == before[2] and after[3] == before[3]
        # the clock resumes at the saved time, not at the session open
        t_after = datetime.fromisoformat(c2.state()["now"])
        assert t_after >= t_saved
        # new orders get new ids, never ones already used
        r = c2.post(f"/accounts/{c2.acct}/orders", json=c2.order_body(other, 1, price="1.00", key="persist-after"))
        assert r.status_code == 201 and r.json()["data"]["order"]["id"] not in before[0]
        # a client key used before the restart still finds its order (no duplicate)
        r = c2.post(f"/accounts/{c2.acct}/orders", json=c2.order_body(sym, 5, otype="Market", key="persist-buy"))
        assert r.status_code == 201 and r.json()["data"]["order"]["id"] == buy["id"]
    finally: _stop(stop2, th2)


def test_unreadable_saved_state_is_a_clear_error(tmp_path):
    (tmp_path / BROKER_FILE).write_text("{not json")
    with pytest.raises(Exception, match="unreadable"):
        saved_time(tmp_path)
