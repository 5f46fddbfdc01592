"""A chaos week: the bot (a separate process, `tests/chaos_child.py`) trades five sessions through the emulator (served by this
process) and the real tastytrade client, with a fixed seed, while faults fire on a fixed schedule of simulated times:

- DXLink and account-streamer disconnects (all at once, and every half second for a while),
- 429 and 5xx bursts on REST (the next N requests, whatever they are) and on order POSTs (refused before placing; and
  placed but answered with a 503),
- access tokens that live 3 real seconds all week, and every access token revoked now and then (an expiry the client did not
  see coming),
- account-streamer order/balance/position messages dropped,
- a SIGKILL of the bot mid-session (with an order working, if there is one) and a restart on the same data directory,
- a second instance started on the same data directory while the first one runs.

The same week runs on both brokers the bot trades (`broker` parametrises the module's fixture): on alpaca the bot is
alpaca-py's TradingClient / StockDataStream / TradingStream against the emulator's Alpaca side, and the faults are Alpaca's:
disconnects of the trading and market-data streams, 429/5xx bursts on any REST request, order POSTs refused with 429/503,
an order placed but answered with a 504 (alpaca-py retries it: a 422 "client_order_id must be unique" the broker must look up),
trade_updates messages dropped, and a trading stream that stays connected but silent (`trading_stream_silent`) for a while.
Tokens are not revoked on alpaca (a key pair, no tokens).

A person resumes trading after a kill-switch halt (a recorded manual reset), as in test_bot_e2e.

At the end: ledger == broker (positions, cash, every order's status and filled quantity), no client key twice at the broker,
no intent behind two orders, every broker fill in the ledger, no orphan stop that could open a short (and, once the
protective stops are merged, exactly one working broker stop per open position). Sampled all week: never a short position,
never a stop for more than is held, never two working entries for one symbol. The fault counts it survived are printed.
Post-mortem files (broker orders and fills, events, violations) stay in the test's tmp directory.

The schedule is deterministic (simulated times, seeded drops, seeded market); the exact interleaving with real time is not.
All waits are on conditions with generous limits; no timed assertions."""
import json, random, signal, sqlite3, subprocess, sys, time
from collections import Counter
from dataclasses import asdict
from datetime import date, datetime, time as dtime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from swingtrader.config import Settings
from swingtrader.clock import NY
from swingtrader.ledger import Ledger, LedgerError
from swingtrader.models import OrderType, Side
from swingtrader.tastytrade.wire import TTApiError
from swingtrader.session import emulated_tastytrade, emulated_alpaca
from swingtrader.risk import reset_halt

pytestmark = pytest.mark.timeout(900)

SPEED = 2000.0                     # simulated seconds per real second: a session in ~12 s, the overnights skipped
DAYS = [date(2026, 3, d) for d in (2, 3, 4, 5, 6)]
CHAOS_SEED = 20260302              # seeds which account-streamer messages are dropped
CHILD = Path(__file__).with_name("chaos_child.py")
BASE = dict(sim_symbols=8, sim_seed=42, scan_top=8, scan_min_avg_volume=0, macd_fast=6, macd_slow=13, macd_signal=5,
            trend_ema=20, warmup_bars=30, max_losing_streak=1000, daily_loss_halt=0.5, weekly_loss_halt=0.5,
            connectivity_timeout=600.0)    # simulated seconds (the most allowed): at 2000x, 0.3 real seconds without an answer
TOKEN_LIFETIME_S = 3.0             # real seconds, all week
# The order-update stream polls on real seconds (safety poll 30 s while the streamer is up, 30 s idle while it is down): at
# 2000x that is 17 simulated hours, longer than the rest of the week takes in real time. Scaled down as far as the machine allows.
POLLS = dict(safety_poll=1.0, idle_poll=2.0, poll_interval=0.5)
LOCK_WORDS = ("lock", "already running", "another swingtrader bot holds")   # how a refused second instance explains itself
NOTIFICATIONS = ("Order", "AccountBalance", "CurrentPosition")

# (session index, New York time, fault, argument)
SCHEDULE = [
    (0, "09:50", "drop", 0.5),               # half the account-streamer notifications lost for an hour
    (0, "10:15", "disconnect", None),        # every websocket (DXLink and account streamer) closed with 1012
    (0, "10:50", "drop", 0.0),
    (0, "11:30", "rest_429", 3),             # the next 3 REST requests: 429 with Retry-After
    (0, "12:30", "rest_5xx", 4),             # the next 4 REST requests: 503
    (0, "13:00", "revoke", None),            # every access token expires now
    (0, "13:30", "order_429", 2),            # the next 2 order POSTs: 429 (not placed)
    (0, "14:15", "disconnect", None),
    (1, "09:45", "order_5xx", 1),            # the next order POST: 503 (not placed)
    (1, "10:30", "second_instance", None),   # a second bot on the same data directory
    (1, "11:00", "order_5xx_landed", 1),     # the next order POST is placed, but answered with a 503
    (1, "11:30", "disconnect_every", 0.5),   # every websocket closed 0.5 real seconds after it opened, for an hour
    (1, "12:30", "disconnect_every", 0.0),
    (1, "13:00", "rest_429", 3),
    (1, "14:00", "revoke", None),
    (1, "14:30", "drop", 1.0),               # every notification lost for half an hour
    (1, "15:00", "drop", 0.0),
    (2, "10:00", "rest_5xx", 3),
    (2, "10:30", "drop", 0.3),
    (2, "11:00", "kill", None),              # SIGKILL the bot (once an order is working, by 12:30 at the latest), restart it
    (2, "13:00", "drop", 0.0),
    (2, "14:00", "disconnect", None),
    (3, "09:45", "order_429", 1),
    (3, "10:00", "disconnect_every", 0.5),
    (3, "10:45", "disconnect_every", 0.0),
    (3, "11:00", "rest_5xx", 4),
    (3, "12:00", "revoke", None),
    (3, "13:00", "order_5xx_landed", 1),
    (3, "14:00", "drop", 0.5),
    (3, "15:00", "drop", 0.0),
    (4, "10:00", "rest_429", 3),
    (4, "10:30", "disconnect", None),
    (4, "11:30", "order_5xx", 1),
    (4, "12:00", "revoke", None),
    (4, "13:00", "drop", 0.5),
    (4, "14:00", "drop", 0.0),
    (4, "14:30", "rest_5xx", 3),
]


# Both weeks failed about 1 run in 4 in the `make test` runs of 2026-12-05 morning; both causes are fixed and both weeks gate CI:
# - alpaca ("ledger 434 IIY, broker 0"): a lost partial_fill's gap was booked under a made-up fill id, and the restart's replay
#   booked the same execution again under its real id (tests/test_alpaca_lost_fill.py);
# - tastytrade ("a 206-share stop working while 0.85 held"): the sampler's own two-instant read (see `Chaos.snapshot`); the
#   real races it led to (a stop or an exit sized from a position the broker had already sold) are fixed
#   (tests/test_stop_keeper_races.py).
BROKERS = ["tastytrade", "alpaca"]
# On alpaca there are no tokens to revoke: the trading stream goes connected-but-silent for 40 minutes instead.
ALPACA_SCHEDULE = [x for d, t, kind, arg in SCHEDULE
                   for x in ([(d, t, "trading_silent", 1), (d, f"{int(t[:2]) + 1:02d}{t[2:]}", "trading_silent", 0)] if kind == "revoke" else
                             [(d, t, kind, arg)])]
# the faults a week must have survived, per broker
MUST_SEE = {"tastytrade": ("DXLink disconnects", "account-streamer disconnects", "REST 429 (any request)", "REST 5xx (any request)",
                           "order POST 429", "order POST 503 (not placed)", "order POST 503 (placed)", "token grants",
                           "access tokens revoked", "account-streamer messages dropped", "bot SIGKILLs", "bot restarts",
                           "second-instance attempts"),
            "alpaca": ("market-data stream disconnects", "trading stream disconnects", "REST 429 (any request)", "REST 5xx (any request)",
                       "order POST 429", "order POST 503 (not placed)", "order POST 504 (placed)", "trade_updates messages dropped",
                       "trading stream silent windows", "bot SIGKILLs", "bot restarts", "second-instance attempts")}


def at(day:int, hhmm:str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime.combine(DAYS[day], dtime(h, m), NY)


def is_stop(o) -> bool: return o.type in (OrderType.STOP, OrderType.STOP_LIMIT)


def broker_stops_per_position(broker_orders, positions) -> dict[str, int]:
    """Working protective (sell stop / stop-limit) orders at the broker per symbol, for every symbol with an open long position
    and every symbol that has such a stop. A held symbol maps to its stop count (want 1); a symbol with a stop but no position
    is an orphan (its stop could open a short)."""
    held = {p.symbol for p in positions if p.qty > 0}
    out = {s: 0 for s in held}
    for o in broker_orders:
        if o.is_open and o.side is Side.SELL and is_stop(o): out[o.symbol] = out.get(o.symbol, 0) + 1
    return out


class Chaos:
    "The emulator, its fault instrumentation, the bot processes, and the scheduled faults."
    def __init__(self, tmp:Path, mp:pytest.MonkeyPatch, broker:str="tastytrade"):
        self.tmp, self.procs, self.led, self.t0, self.broker = tmp, {}, None, time.monotonic(), broker
        start = emulated_alpaca if broker == "alpaca" else emulated_tastytrade
        self.env = start(Settings(_env_file=None, data_dir=tmp, **BASE), DAYS[0], DAYS[-1], SPEED,
                         preopen=timedelta(hours=6))   # 10 real seconds for the first process to start
        self.srv, self.emu = self.env.server, self.env.server.emu
        tt = self.env.settings
        if broker == "alpaca":
            conn = dict(broker="alpaca", environment="paper", alpaca_api_key=tt.alpaca_api_key.get_secret_value(),
                        alpaca_secret_key=tt.alpaca_secret_key.get_secret_value(), alpaca_base_url=tt.alpaca_base_url,
                        alpaca_data_url=tt.alpaca_data_url)
        else:
            conn = dict(broker="tastytrade", environment="sandbox", tt_client_secret="emulator-client-secret",
                        tt_refresh_token="emulator-refresh-token", tt_api_url=tt.tt_api_url, tt_streamer_url=tt.tt_streamer_url,
                        tt_account_number=tt.tt_account_number)
        self.cfg = dict(settings=BASE | dict(data_dir=str(tmp)) | conn
                                 | ({"lock_dir": str(tmp / "locks")} if "lock_dir" in Settings.model_fields else {}),
                        speed=SPEED, polls=POLLS, scan_url=self.env.scan_url(), control_url=self.srv.api_url,
                        control_headers=dict(getattr(self.srv, "control_headers", None) or {}), last_day=DAYS[-1].isoformat())
        self.counts = Counter({"second instance refused by the lock": 0})
        self.armed = Counter()                    # REST knob faults armed (what was not consumed is subtracted at the end)
        self.post = Counter()                     # order-POST faults still to fire
        self.drop_rate, self.rng = 0.0, random.Random(CHAOS_SEED)
        self.violations, self.stop_violations, self.shorts, self.events, self.resumed = [], [], [], [], None
        self.armed_504 = 0                        # accept-then-504 order POSTs armed (alpaca)
        self.protected_samples = 0                # samples of a whole-share position with exactly one working stop
        (self._instrument_alpaca if broker == "alpaca" else self._instrument)(mp)
        # every order works for a few of its symbol's one-minute bars before it fills: orders are in flight when faults hit
        knobs = dict(retry_after=0.2) | ({} if broker == "alpaca" else dict(token_lifetime_s=TOKEN_LIFETIME_S))
        self.call(lambda: (self.env.sim.set_fill_mode("delayed:3"), self.emu.faults.update(**knobs)))
        self.schedule = sorted(((at(d, t), kind, arg) for d, t, kind, arg in (ALPACA_SCHEDULE if broker == "alpaca" else SCHEDULE)),
                               key=lambda x: x[0])

    # -- instrumentation: every fault is counted where the emulator serves it
    def _instrument(self, mp):
        emu, counts = self.emu, self.counts
        issue = emu.tokens.issue_access
        def issue_access(*a, **kw):
            counts["token grants"] += 1
            return issue(*a, **kw)
        emu.tokens.issue_access = issue_access
        send = emu.ws_send
        async def ws_send(ws, obj):
            if self.drop_rate > 0 and isinstance(obj, dict) and obj.get("type") in NOTIFICATIONS and self.rng.random() < self.drop_rate:
                counts["account-streamer messages dropped"] += 1
                return False
            return await send(ws, obj)
        emu.ws_send = ws_send
        due = emu.disconnect_due
        def disconnect_due(every):
            acct = {s.ws for s in emu.streamers}
            out = due(every)
            for ws in out: counts["account-streamer disconnects" if ws in acct else "DXLink disconnects"] += 1
            return out
        emu.disconnect_due = disconnect_due
        import swingtrader.emulator.rest as rest
        place = rest._place
        def _place(emu_, body, dry):
            if not dry and self.post["order_429"] > 0:
                self.post["order_429"] -= 1; counts["order POST 429"] += 1
                raise TTApiError(429, "too_many_requests", "Rate limit exceeded. Please slow down.", headers={"Retry-After": "0.2"})
            if not dry and self.post["order_5xx"] > 0:
                self.post["order_5xx"] -= 1; counts["order POST 503 (not placed)"] += 1
                raise TTApiError(503, "service_unavailable", "Service temporarily unavailable.")
            r = place(emu_, body, dry)
            if not dry and self.post["order_5xx_landed"] > 0:
                self.post["order_5xx_landed"] -= 1; counts["order POST 503 (placed)"] += 1
                raise TTApiError(503, "service_unavailable", "Service temporarily unavailable.")
            return r
        mp.setattr(rest, "_place", _place)

    def _instrument_alpaca(self, mp):
        "The Alpaca side: trade_updates dropped (seeded), order POSTs refused before placing, stream disconnects by kind."
        from swingtrader.emulator.alpaca_orders import alpaca_state
        from swingtrader.emulator.alpaca_wire import AlpacaError
        emu, counts = self.emu, self.counts
        st = self.alpaca = alpaca_state(emu)
        publish = st.publish
        def dropping(msg):
            if self.drop_rate > 0 and msg.get("stream") == "trade_updates" and self.rng.random() < self.drop_rate:
                counts["trade_updates messages dropped"] += 1
                return
            return publish(msg)
        mp.setattr(st, "publish", dropping)
        due = emu.disconnect_due
        def disconnect_due(every):
            trading = {s.ws for s in st.sessions}
            out = due(every)
            for ws in out: counts["trading stream disconnects" if ws in trading else "market-data stream disconnects"] += 1
            return out
        emu.disconnect_due = disconnect_due
        submit = st.submit
        def refusing_submit(body):
            if self.post["order_429"] > 0:
                self.post["order_429"] -= 1; counts["order POST 429"] += 1
                raise AlpacaError(429, "too many requests", headers={"Retry-After": "0.2"})
            if self.post["order_5xx"] > 0:
                self.post["order_5xx"] -= 1; counts["order POST 503 (not placed)"] += 1
                raise AlpacaError(503, "service unavailable")
            return submit(body)
        mp.setattr(st, "submit", refusing_submit)

    def call(self, fn): return self.srv.call(fn)
    def now(self) -> datetime: return self.env.clock.now()

    # -- processes
    def start(self, run:str, fast_forward:bool=True) -> subprocess.Popen:
        cfg = self.cfg | {"sim_now": self.now().isoformat(), "monotonic": time.monotonic(), "fast_forward": fast_forward}
        path = self.tmp / f"cfg-{run}.json"
        path.write_text(json.dumps(cfg))
        p = subprocess.Popen([sys.executable, str(CHILD), str(path), run], cwd=self.tmp, stdout=open(self.tmp / f"{run}.log", "w"),
                             stderr=subprocess.STDOUT)
        self.procs[run] = p
        self.event(f"started {run} (pid {p.pid})")
        return p

    def log(self, run:str, n:int=4000) -> str: return (self.tmp / f"{run}.log").read_text()[-n:]
    def event(self, what:str): self.events.append(f"{self.now().astimezone(NY):%a %H:%M} {what}")

    def ledger(self) -> Ledger|None:
        # opened once the first bot got through its start-up: before that the file may exist but be half-initialised
        if self.led is None and (self.tmp / "startup-r1.json").exists(): self.led = Ledger(self.tmp / "ledger.sqlite", readonly=True)
        return self.led

    def quiet(self) -> bool:
        "No intent on its way to the broker (the ledger has no unresolved intent)."
        try: return (led := self.ledger()) is not None and not led.unresolved_intents()
        except (LedgerError, sqlite3.Error): return False

    def working_in_ledger(self) -> bool:
        try: return (led := self.ledger()) is not None and any(o.broker_order_id for o in led.orders("open"))
        except (LedgerError, sqlite3.Error): return False

    def resume_if_halted(self):
        "A person reviews a kill-switch halt and resumes trading (a recorded manual reset), as in test_bot_e2e."
        try: st = (led := self.ledger()) and led.halt_state()
        except (LedgerError, sqlite3.Error): return
        if not st or st.state != "halted" or st.at == self.resumed: return
        self.resumed = st.at
        rw = Ledger(self.tmp / "ledger.sqlite", clock=self.env.clock)
        try: reset_halt(rw, f"chaos test: reviewed the halt ({st.who}: {st.reason})"[:300], who="chaos-test")
        finally: rw.close()
        self.counts["kill-switch halts (resumed by the tester)"] += 1; self.event(f"resumed after a halt by {st.who}: {st.reason}")

    def submits(self, run:str) -> list[dict]:
        p = self.tmp / f"submits-{run}.jsonl"
        return [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() else []

    def close(self):
        for p in self.procs.values():
            if p.poll() is None: p.kill(); p.wait(30)
        if self.led is not None: self.led.close()
        self.env.close()

    # -- faults
    async def _disconnect_all(self):
        acct = {s.ws for s in self.alpaca.sessions} if self.broker == "alpaca" else {s.ws for s in self.emu.streamers}
        socks = [ws for ws in self.emu.websockets if not ws.closed]
        await self.emu.disconnect_all()
        return sum(ws in acct for ws in socks), sum(ws not in acct for ws in socks)

    def fire(self, kind:str, arg):
        f = self.emu.faults
        if kind == "disconnect":
            a, d = self.call(self._disconnect_all)
            names = ("trading stream disconnects", "market-data stream disconnects") if self.broker == "alpaca" else \
                    ("account-streamer disconnects", "DXLink disconnects")
            self.counts[names[0]] += a; self.counts[names[1]] += d
        elif kind == "disconnect_every": self.call(lambda: f.update(disconnect_every_s=arg))
        elif kind == "rest_429": self.call(lambda: f.update(rate_limit_next=f.rate_limit_next + arg)); self.armed["rest_429"] += arg
        elif kind == "rest_5xx": self.call(lambda: f.update(server_error_next=f.server_error_next + arg)); self.armed["rest_5xx"] += arg
        elif kind == "revoke":
            n = self.call(lambda: (len(self.emu.tokens.access), self.emu.tokens.access.clear())[0])
            self.counts["access tokens revoked"] += n
        elif kind == "drop": self.drop_rate = arg
        elif kind == "trading_silent":
            self.call(lambda: f.update(trading_stream_silent=arg))
            if arg: self.counts["trading stream silent windows"] += 1
        elif kind == "order_5xx_landed" and self.broker == "alpaca":    # placed, answered 504 (alpaca-py retries it)
            self.call(lambda: setattr(f, "accept_then_504_next", f.accept_then_504_next + arg)); self.armed_504 += arg
        elif kind.startswith("order_"): self.post[kind] += arg
        else: raise AssertionError(kind)
        self.event(f"{kind} {arg if arg is not None else ''}")

    def snapshot(self) -> tuple[list, dict]:
        """The simulator's open orders and positions at ONE instant: synced once, then both read with no sync between them, under
        the simulator's (re-entrant) lock. (`orders("open")` then `positions()` synced twice: at 2000x a bar closes in 30 ms, and
        a bar closing in between filled a protective stop after the orders were read — a sample showed the stop still working
        next to the position it had just sold, 206 shares working with 0.85 held: a violation that never was.)"""
        sim = self.env.sim
        with sim._lock:
            sim.sync()
            return [o for o in sim.engine.orders.values() if o.is_open], {p.symbol: p.qty for p in sim.account_state.position_list()}

    def sample(self):
        """Right now at the broker: no two working entries (or exits) for one symbol, no working sell stops for more than
        the position (a stop that could open a short), no short position (the bot trades long only)."""
        open_, pos = self.call(self.snapshot)
        per = Counter((o.symbol, o.side.value) for o in open_ if not is_stop(o))
        for k, n in per.items():
            if n > 1: self.violations.append((self.now().isoformat(), k, [o.client_key for o in open_ if (o.symbol, o.side.value) == k]))
        stops = Counter()
        for o in open_:
            if o.side is Side.SELL and is_stop(o): stops[o.symbol] += o.remaining_qty if o.remaining_qty is not None else Decimal("Infinity")
        for sym, q in stops.items():
            if q > max(pos.get(sym, Decimal(0)), Decimal(0)):
                self.stop_violations.append((self.now().isoformat(), sym, str(q), str(pos.get(sym, 0))))
        self.shorts += [(self.now().isoformat(), sym, str(q)) for sym, q in pos.items() if q < 0]
        n_stops = Counter(o.symbol for o in open_ if o.side is Side.SELL and is_stop(o))
        self.protected_samples += sum(1 for sym, q in pos.items() if q >= 1 and n_stops[sym] == 1)


def run_week(c:Chaos) -> dict:
    "Drive the week: fire the schedule, kill and restart, try a second instance; returns what happened."
    out = {"kill": None, "second": None}
    pending = list(c.schedule)
    bot = c.start("r1")
    kill_from, dup, dup_t0 = None, None, None
    limit = time.monotonic() + 600
    last_sample = 0.0
    while True:
        assert time.monotonic() < limit, "the week did not end within 10 real minutes\n" + "\n".join(c.events[-20:]) + c.log(bot.args[-1])
        now = c.now()
        # Faults wait for the running bot to be through its start-up (its startup file): the clock gives the first process
        # 10 real seconds, and on a loaded machine its imports alone can take longer — four 503s on its very first token
        # request then ended the week before it began. A fault due during a start-up fires the moment the start-up is done.
        up = (c.tmp / f"startup-{bot.args[-1]}.json").exists()
        while up and pending and pending[0][0] <= now:
            t, kind, arg = pending.pop(0)
            if kind == "kill": kill_from = t; c.event("kill armed")
            elif kind == "second_instance": dup = "wait_quiet"; c.event("second instance armed")
            else: c.fire(kind, arg)
        # SIGKILL the bot once an order is working (or 90 simulated minutes after the time), then restart it; never while a
        # second instance is starting (killed, the first bot's lock is free: the second would take it and refuse the restart)
        dup_running = dup is not None and not isinstance(dup, str)
        if kill_from is not None and not dup_running and (c.working_in_ledger() or now >= kill_from + timedelta(minutes=90)):
            kill_from = None
            working = c.working_in_ledger()
            bot.send_signal(signal.SIGKILL); bot.wait(30)
            assert bot.returncode == -signal.SIGKILL, c.log("r1")
            c.counts["bot SIGKILLs"] += 1; c.event(f"SIGKILLed r1 (order working: {working})")
            out["kill"] = {"at": now.isoformat(), "order_working": working}
            bot = c.start("r2"); c.counts["bot restarts"] += 1
        # a second instance on the same data directory, started while nothing is on its way to the broker
        if dup == "wait_quiet" and c.quiet() and bot.poll() is None:
            dup, dup_t0 = c.start("dup", fast_forward=False), time.monotonic()
            c.counts["second-instance attempts"] += 1
        if dup is not None and not isinstance(dup, str):
            started = (c.tmp / "startup-dup.json").exists()
            if dup.poll() is not None or started:
                if dup.poll() is None:     # it got through start-up: no lock stopped it (the assertions below fail then)
                    dup.send_signal(signal.SIGKILL); dup.wait(30)
                out["second"] = sec = {"returncode": dup.returncode, "started": started, "output": c.log("dup", 2000)}
                if sec["returncode"] not in (0, -signal.SIGKILL) and any(w in sec["output"].lower() for w in LOCK_WORDS):
                    c.counts["second instance refused by the lock"] += 1
                c.event(f"second instance: returncode {dup.returncode}, got through start-up: {started}")
                dup = "done"
            else: assert time.monotonic() < dup_t0 + 120, "the second instance neither stopped nor started\n" + c.log("dup")
        if bot.poll() is not None:
            assert bot.returncode == 0, c.log(bot.args[-1])
            assert c.counts["bot restarts"] == 1, "the bot ended before it was killed\n" + c.log(bot.args[-1])
            break
        if time.monotonic() - last_sample > 0.1: c.sample(); c.resume_if_halted(); last_sample = time.monotonic()
        time.sleep(0.02)
    c.event("the week is over")
    return out


@pytest.fixture(scope="module", params=BROKERS)
def week(request, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        c = Chaos(tmp_path_factory.mktemp(f"chaos-{request.param}"), mp, request.param)
        try:
            out = run_week(c)
            f = c.emu.faults
            c.counts["REST 429 (any request)"] += c.armed["rest_429"] - f.rate_limit_next
            c.counts["REST 5xx (any request)"] += c.armed["rest_5xx"] - f.server_error_next
            if c.broker == "alpaca": c.counts["order POST 504 (placed)"] += c.armed_504 - f.accept_then_504_next
            sim = c.env.sim
            out["halts"] = [(h.state, h.who, h.reason, h.at) for h in c.ledger().halt_history()]
            out |= dict(c=c, led=c.ledger(), counts=c.counts, sim_orders=c.call(lambda: sim.orders()),
                        sim_positions=c.call(lambda: sim.positions()), sim_account=c.call(lambda: sim.account()),
                        sim_fills=c.call(lambda: [x for v in c.emu.fills.values() for x in v]),
                        runtime=time.monotonic() - c.t0)
            for name in ("sim_orders", "sim_fills"):     # for a post-mortem of a failure
                (c.tmp / f"broker-{name[4:]}.json").write_text(json.dumps([asdict(x) for x in out[name]], default=str, indent=0))
            (c.tmp / "chaos-summary.json").write_text(json.dumps({"counts": dict(c.counts), "events": c.events,
                                                                  "kill": out["kill"], "runtime_s": out["runtime"],
                                                                  "violations": c.violations, "stop_violations": c.stop_violations, "shorts": c.shorts, "halts": out["halts"],
                                                                  "second": out["second"]}, indent=1, default=str))
            yield out
        finally: c.close()


def test_ledger_equals_broker(week):
    led = week["led"]
    assert {p.symbol: p.qty for p in led.positions() if p.qty} == {p.symbol: p.qty for p in week["sim_positions"] if p.qty}
    cash = Decimal(week["c"].env.settings.sim_cash)
    for f in led.fills(): cash += (-1 if f.side is Side.BUY else 1) * f.qty * f.price - f.commission
    assert abs(cash - week["sim_account"].cash) < Decimal("0.01"), (cash, week["sim_account"].cash)
    for o in week["sim_orders"]:
        lo = led.order(o.client_key)
        assert lo is not None, o
        assert (lo.status, lo.filled_qty) == (o.status.value, o.filled_qty), (lo, o)
    assert not led.unresolved_intents() and led.check() == []


def test_no_duplicate_orders(week):
    "No client key twice at the broker, no signal (intent) behind two broker orders, no broker order id twice in the ledger."
    keys = [o.client_key for o in week["sim_orders"]]
    assert len(keys) == len(set(keys)), Counter(keys).most_common(3)
    led = week["led"]
    sigs = Counter(lo.signal_id for o in week["sim_orders"] if not is_stop(o) and (lo := led.order(o.client_key)) is not None and lo.signal_id)
    assert all(n == 1 for n in sigs.values()), sigs.most_common(3)
    ids = [o.broker_order_id for o in led.orders() if o.broker_order_id]
    assert len(ids) == len(set(ids))
    working = Counter((o.symbol, o.side.value, is_stop(o)) for o in week["sim_orders"] if o.is_open)   # one stop per symbol at most
    assert all(n == 1 for n in working.values()), working
    assert not [o for o in week["sim_orders"] if o.is_open and o.side is Side.BUY]     # day entries do not outlive the week


def test_one_working_entry_per_symbol(week):
    """Sampled all week (every ~0.1 s real): never two working entries (or two working exits) for one symbol at the broker.
    Two entries from two signals are not a duplicate order, but they double the position past the sizer's cap. Seen: an
    entry still working, the next bar's exit signal skipped ("nothing held to sell"), the bar after enters again."""
    v = week["c"].violations
    assert v == [], v[:5]


def test_never_short(week):
    "The bot trades long only: no sample all week, nor the end, shows a short position at the broker."
    assert week["c"].shorts == [], week["c"].shorts[:5]
    assert all(p.qty >= 0 for p in week["sim_positions"]), week["sim_positions"]


def broker_fill_id(week, f) -> str:
    "The id the bot knows simulator fill `f` by: itself on tastytrade; on alpaca the execution id the emulator gave it."
    if week["c"].broker != "alpaca": return f.fill_id
    from swingtrader.emulator.alpaca_wire import alpaca_uuid
    return alpaca_uuid("fill", f.fill_id)


def test_no_lost_fills(week):
    "Every broker fill in the ledger under the broker's id for it (on alpaca: the execution id, also for fills a poll found)."
    led = week["led"]
    mine = {f.fill_id for f in led.fills()}
    # On alpaca a fill whose trade update was lost (and whose FILL activity could not be read then) is derived from the
    # order's cumulative quantity and average price, under "<order id>:<cumulative qty>": it may stand for several executions.
    # Those orders are covered by the per-order quantity check below.
    derived = {f.client_key for f in led.fills() if week["c"].broker == "alpaca" and ":" in f.fill_id}
    lost = [f for f in week["sim_fills"] if broker_fill_id(week, f) not in mine and f.client_key not in derived]
    assert not lost, lost[:3]
    if not derived: assert len(mine) == len(week["sim_fills"])
    for o in week["sim_orders"]:
        assert sum((f.qty for f in led.fills(client_key=o.client_key)), Decimal(0)) == o.filled_qty, o


def test_broker_stops(week):
    per = broker_stops_per_position(week["sim_orders"], week["sim_positions"])
    held = {p.symbol for p in week["sim_positions"] if p.qty > 0}
    orphans = {s: n for s, n in per.items() if s not in held and n}
    assert not orphans, orphans           # no working sell stop for a symbol with no position: it could open a short
    qty = {p.symbol: p.qty for p in week["sim_positions"] if p.qty > 0}
    for o in week["sim_orders"]:          # nor one for more than is held: at the end ...
        if o.is_open and o.side is Side.SELL and is_stop(o): assert o.qty is not None and o.remaining_qty <= qty[o.symbol], (o, qty)
    assert week["c"].stop_violations == [], week["c"].stop_violations[:5]     # ... nor at any sample during the week
    whole = {s for s in held if qty[s] >= 1}  # stop orders are for whole shares: a fraction of one share stays under the code-side stop
    # a week may end flat (every position sold): then the samples must have seen positions under exactly one stop
    assert whole or week["c"].protected_samples > 0, "no whole-share position under one stop all week: the stop check proved nothing"
    assert all(per[s] == (1 if s in whole else 0) for s in held), per    # exactly one protective stop per open position


def test_second_instance_did_not_trade(week):
    sec, c = week["second"], week["c"]
    assert sec is not None, "the second instance was never started"
    # it handed no order to the broker, so none of its client keys reached the broker
    assert c.submits("dup") == []
    # every broker order was handed over by r1 or r2 (a replacement: or the order it replaced was)
    sent, by_id = {s["client_key"] for r in ("r1", "r2") for s in c.submits(r)}, {o.id: o for o in week["sim_orders"]}
    def known(o): return o.client_key in sent or (o.replaces is not None and o.replaces in by_id and known(by_id[o.replaces]))
    unknown = [o for o in week["sim_orders"] if not known(o)]
    assert not unknown, unknown[:3]
    refused = week["counts"]["second instance refused by the lock"] == 1
    assert refused and not sec["started"], sec     # refused by the lock with one line, before touching the ledger
    assert sec["returncode"] == 2 and "Traceback" not in sec["output"], sec


def test_faults_survived(week, capsys):
    n = week["counts"]
    broker = week["c"].broker
    for k in MUST_SEE[broker]:
        assert n[k] > 0, (k, dict(n), "halts:", week["halts"])
    if broker == "tastytrade": assert n["token grants"] >= 10          # tokens live 3 real seconds: many refreshes over the week
    assert (n["bot SIGKILLs"], n["bot restarts"], n["second-instance attempts"]) == (1, 1, 1)
    width = max(map(len, n))
    lines = [f"chaos week on {broker} survived ({week['runtime']:.0f} s real, {SPEED:g}x, seed {BASE['sim_seed']}/{CHAOS_SEED}):"]
    lines += [f"  {k:<{width}}  {v:>5}" for k, v in sorted(n.items())]
    near = [o for o in week["led"].orders() if o.status == "rejected" and "short" in (o.error or "").lower()]
    lines += [f"  exits the broker refused as short sales (sold more than held; whole shares would have gone short): {len(near)}",
              f"  samples with two working entries for one symbol: {len(week['c'].violations)}; "
              f"with a stop for more than held: {len(week['c'].stop_violations)}",
              f"  SIGKILL: {week['kill']}", f"  second instance: returncode {week['second']['returncode']}, "
              f"got through start-up {week['second']['started']}"]
    with capsys.disabled(): print("\n" + "\n".join(lines))
