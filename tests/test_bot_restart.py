"""Crash and restart: the bot (a separate process, `tests/bot_restart_child.py`) trades through the emulator (served by this
process, so it outlives the bot) with a file ledger; it is SIGKILLed three times and restarted on the same ledger:

1. with orders working at the broker and positions with stops (the orders then fill while the bot is down);
2. between the broker accepting an order and the ledger hearing the answer (the intent stays `pending_submit`);
3. between writing an intent and calling the broker (the broker never gets it).

After each restart: no client key is sent twice, every intent is settled, the stops the restarted bot works from are the ones
in the ledger at the kill (and only ratchet up afterwards), positions reconcile without a mismatch; at the end (the last run
trades to the close) the ledger equals the emulator's account order by order, `ledger.check()` is clean and the audit's order
stream has one order per signal. No timed assertions: every wait polls with a generous limit on simulated progress.

Simulated time moves in lockstep with the bot, not with real time (`lockstep.py`): the bot's clock follows the emulator's, and the
emulator's runs at most 15 simulated minutes past the bars the bot has handled (while no bot runs, only as far as the test
steps it). A loaded machine makes the test slower, never shorter of session: the choreography fits whatever the machine's speed."""
import json, signal, subprocess, sys, time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from swingtrader.config import Settings
from swingtrader.clock import MarketCalendar
from swingtrader.ledger import Ledger, LedgerError
from swingtrader.audit import AuditLog
from swingtrader.session import emulated_tastytrade

from lockstep import EmulatorPacer

SPEED = 600.0                      # simulated seconds per real second at most (the emulator waits for the bot): ~40 s a session
PATIENCE = 300.0                   # real seconds a wait gives a condition: only a bound on a hang (simulated time waits for the bot)
DAY = date(2026, 3, 2)
CHILD = Path(__file__).with_name("bot_restart_child.py")
BASE = dict(sim_symbols=10, sim_seed=42, scan_top=10, scan_min_avg_volume=0, macd_fast=6, macd_slow=13, macd_signal=5,
            trend_ema=20, warmup_bars=30, max_losing_streak=1000, daily_loss_halt=0.5)


class Harness:
    "The emulator in this process; bot runs as subprocesses on one data directory."
    def __init__(self, tmp:Path):
        self.tmp, self.procs, self.led = tmp, {}, None
        op, _ = MarketCalendar().session(DAY)
        self.env = emulated_tastytrade(Settings(_env_file=None, data_dir=tmp, **BASE), DAY, DAY, SPEED, start=op + timedelta(minutes=20))
        # every order works for 15 one-minute bars of its symbol before it fills: there are always orders pending
        self.env.server.call(lambda: self.env.sim.set_fill_mode("delayed:15"))
        self.pacer = EmulatorPacer(self.env.clock)     # from now the emulator's clock runs only as far as the bot (or the test) lets it
        tt = self.env.settings
        self.cfg = dict(settings=BASE | dict(data_dir=str(tmp), broker="tastytrade", environment="sandbox",
                                             tt_client_secret="emulator-client-secret", tt_refresh_token="emulator-refresh-token",
                                             tt_api_url=tt.tt_api_url, tt_streamer_url=tt.tt_streamer_url,
                                             tt_account_number=tt.tt_account_number),
                        api_url=self.env.server.api_url, control_token=self.env.server.emu.control_token,
                        scan_url=self.env.scan_url(), last_day=DAY.isoformat())

    def start(self, run:str, kill:dict|None=None) -> subprocess.Popen:
        cfg = self.cfg | {"kill": ({"run": run} | kill) if kill else None}
        path = self.tmp / f"cfg-{run}.json"
        path.write_text(json.dumps(cfg))
        self.pacer.follow(self.tmp / f"progress-{run}.json")
        p = subprocess.Popen([sys.executable, str(CHILD), str(path), run], cwd=self.tmp, stdout=open(self.tmp / f"{run}.log", "w"),
                             stderr=subprocess.STDOUT)
        self.procs[run] = p
        return p

    def log(self, run:str) -> str: return (self.tmp / f"{run}.log").read_text()[-3000:]

    def ledger(self) -> Ledger:
        if self.led is None: self.led = Ledger(self.tmp / "ledger.sqlite", readonly=True)
        return self.led

    def wait(self, pred, what:str, run:str|None=None, limit:float=PATIENCE, in_session:bool=True, step:bool=False):
        "Poll `pred` until true (`step`: no bot runs, move simulated time on a minute at a time meanwhile); fail (with the bot's log) if the limit passes or (`in_session`) the session is over."
        end = time.monotonic() + limit
        while time.monotonic() < end:
            try:
                if (r := pred()): return r
            except (LedgerError, FileNotFoundError): pass   # the bot has not created its ledger yet
            if in_session and self.env.clock.now() >= MarketCalendar().session(DAY)[1]: break
            if step: self.pacer.step()
            time.sleep(0.05)
        pytest.fail(f"waited in vain for {what} (sim time {self.env.clock.now():%H:%M})\n" + (self.log(run) if run else ""))

    def sim(self, fn): return self.env.server.call(fn)
    def sim_orders(self): return self.sim(lambda: self.env.sim.orders())
    def sim_order(self, key): return self.sim(lambda: self.env.sim.order_by_client_key(key))

    def startup(self, run:str) -> dict:
        self.wait(lambda: (self.tmp / f"startup-{run}.json").exists(), f"{run} to start up", run)
        return json.loads((self.tmp / f"startup-{run}.json").read_text())

    def killed_by_hook(self, run:str) -> dict:
        p = self.procs[run]
        self.wait(lambda: p.poll() is not None, f"{run} to reach its kill point", run)
        self.pacer.release()
        assert p.returncode == -signal.SIGKILL, (p.returncode, self.log(run))
        return json.loads((self.tmp / f"killed-{run}.json").read_text())

    def kill(self, run:str):
        self.procs[run].send_signal(signal.SIGKILL); self.procs[run].wait(10)
        self.pacer.release()

    def close(self):
        for p in self.procs.values():
            if p.poll() is None: p.kill(); p.wait(10)
        self.pacer.close()
        if self.led is not None: self.led.close()
        self.env.close()


def _stop_view(stops:dict) -> dict:
    return {s: (d["entry"], d["initial_stop"], d["stop"]) for s, d in stops.items()}


@pytest.fixture(scope="module")
def crash(tmp_path_factory):
    h = Harness(tmp_path_factory.mktemp("restart"))
    try:
        out = {"h": h, "snaps": []}
        # run 1: trade until a position has a stop and an order is working at the broker, then kill -9
        h.start("r1")
        def working():
            led = h.ledger()
            held = {p.symbol for p in led.positions()}
            stops = led.stops()
            open_ = [o for o in led.orders("open") if o.broker_order_id and o.signal_id != "protective-stop"]   # stops rest
            return open_ if held & set(stops) and open_ else None
        h.wait(working, "a stopped position and a working order", "r1")
        h.kill("r1")
        led = h.ledger()
        out["r1"] = dict(stops=led.stops(), open=[o.client_key for o in led.orders("open") if o.signal_id != "protective-stop"],
                         positions={p.symbol: p.qty for p in led.positions()}, orders=len(led.orders()))
        # while the bot is down, its working orders fill at the broker
        h.wait(lambda: all(h.sim_order(k).status.is_terminal for k in out["r1"]["open"]), "the working orders to fill while down", step=True)
        # run 2: restart; on its first submit the broker gets the order, then the process dies before the ledger hears
        h.start("r2", {"when": "after_submit", "nth": 1, "side": "buy"})
        out["s2"] = h.startup("r2")
        out["k2"] = h.killed_by_hook("r2")
        out["r2"] = dict(stops=h.ledger().stops(), order=h.ledger().order(out["k2"]["client_key"]),
                         positions={p.symbol: p.qty for p in h.ledger().positions()})
        h.wait(lambda: (o := h.sim_order(out["k2"]["client_key"])) is not None and o.status.is_terminal, "the unacknowledged order to fill",
               step=True)
        # run 3: restart; on its first submit the process dies after the intent is written, before the broker call
        # (once restarted, the entry that filled while the bot was down gets its stop)
        k2 = out["k2"]["client_key"]
        h.start("r3", {"when": "before_submit", "nth": 1, "side": "buy"})
        out["s3"] = h.startup("r3")
        h.wait(lambda: h.ledger().fills(client_key=k2), "the fill of the unacknowledged entry to reach the ledger", "r3")
        out["k2_stop"] = h.wait(lambda: h.ledger().stops().get(out["k2"]["symbol"]) or (h.ledger().position(out["k2"]["symbol"]) is None and "closed"),
                                "a stop for the entry that filled while the bot was down", "r3")
        out["k3"] = h.killed_by_hook("r3")
        out["r3"] = dict(stops=h.ledger().stops(), order=h.ledger().order(out["k3"]["client_key"]),
                         positions={p.symbol: p.qty for p in h.ledger().positions()})
        # run 4: restart and trade to the close (the bot ends by itself after the session)
        p = h.start("r4")
        out["s4"] = h.startup("r4")
        h.wait(lambda: p.poll() is not None, "the last run to end after the close", "r4", in_session=False)
        assert p.returncode == 0, h.log("r4")
        led = h.ledger()
        out.update(sim_orders=h.sim_orders(), sim_positions=h.sim(lambda: h.env.sim.positions()),
                   final_stops=led.stops(), audit=AuditLog(h.tmp / "audit", h.env.clock).read("order", DAY))
        yield out
    finally:
        h.close()


def test_no_client_key_twice(crash):
    keys = [o.client_key for o in crash["sim_orders"]]
    assert len(keys) == len(set(keys)) and len(keys) >= crash["r1"]["orders"] + 1
    led = crash["h"].ledger()
    assert not led.unresolved_intents()
    # the order the broker accepted while the ledger never heard of it: found by its client key after the restart, not resent
    k2 = crash["k2"]["client_key"]
    # at the kill the ledger holds the intent (pending_submit), or already the broker's `accepted` if the account stream
    # delivered it in the instant between the broker call and the SIGKILL: either way the restart must not send it again
    assert crash["r2"]["order"].status in ("pending_submit", "accepted", "filled"), crash["r2"]["order"]
    assert k2 not in crash["s3"]["unresolved"] and led.order(k2).status == "filled"
    h = crash["h"]
    sim_id = h.sim_order(k2).id
    assert keys.count(k2) == 1 and led.order(k2).broker_order_id == str(h.sim(lambda: h.env.server.emu.tt_id(sim_id)))
    # the intent the broker never got: settled as not submitted, and never sent afterwards (its signal is stale)
    k3 = crash["k3"]["client_key"]
    assert crash["r3"]["order"].status == "pending_submit"
    assert k3 in crash["s4"]["resolved_intents"]
    assert k3 not in keys and led.order(k3).status == "not_submitted"
    assert k3 not in crash["s4"]["pending"]


def test_restarts_reconcile_cleanly(crash):
    for s in ("s2", "s3", "s4"):
        st = crash[s]
        assert (st["mismatches"], st["tripped"], st["halt"]) == ([], False, "active"), st
    led = crash["h"].ledger()
    assert not [e for e in led.events() if e["kind"] == "reconcile_mismatch"]
    assert led.halt_state().state == "active"


def test_stops_restored(crash):
    # the restarted bot works from exactly the stops in the ledger at the kill, for every position held then and still held
    # (an entry still working at the kill has a provisional stop; its fill while the bot is down sets it at the fill price)
    compared = 0
    for before, after in (("r1", "s2"), ("r2", "s3"), ("r3", "s4")):
        b, a = _stop_view(crash[before]["stops"]), _stop_view(crash[after]["stops"])
        for sym in set(b) & set(crash[before]["positions"]) & set(crash[after]["positions"]):
            compared += 1
            assert a.get(sym) == b[sym], (before, sym, b[sym], a.get(sym))
    assert compared
    # ... and every position it holds after the restart has a stop, including entries that filled while it was down
    for s in ("s2", "s3", "s4"):
        assert set(crash[s]["positions"]) <= set(crash[s]["stops"]), (s, crash[s]["positions"], crash[s]["stops"])


def test_stops_only_ratchet_up(crash):
    seq = [crash["r1"]["stops"], crash["s2"]["stops"], crash["r2"]["stops"], crash["s3"]["stops"], crash["r3"]["stops"],
           crash["s4"]["stops"], crash["final_stops"]]
    checked = 0
    for prev, nxt in zip(seq, seq[1:]):
        for sym, (entry, init, stop) in _stop_view(prev).items():
            n = _stop_view(nxt).get(sym)
            if n is None or (n[0], n[1]) != (entry, init): continue     # closed, or a new position
            assert n[2] >= stop, (sym, stop, n[2]); checked += 1
    assert checked


def test_ledger_equals_emulator(crash):
    led = crash["h"].ledger()
    assert {p.symbol: p.qty for p in led.positions()} == {p.symbol: p.qty for p in crash["sim_positions"] if p.qty}
    for o in crash["sim_orders"]:
        lo = led.order(o.client_key)
        assert lo is not None, o
        assert (lo.status, lo.filled_qty) == (o.status.value, o.filled_qty), (lo, o)
        assert sum((f.qty for f in led.fills(client_key=o.client_key)), Decimal(0)) == o.filled_qty
    assert led.check() == []


def test_audit_one_order_per_signal(crash):
    recs = crash["audit"]
    assert recs
    sigs = [r["signal_id"] for r in recs if (r["details"] or {}).get("purpose") != "protective-stop"]   # stops have no signal
    keys = [r["details"]["client_key"] for r in recs]
    assert len(sigs) == len(set(sigs)) and len(keys) == len(set(keys))
    assert crash["k3"]["client_key"] not in keys
