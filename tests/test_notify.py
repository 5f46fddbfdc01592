"""Alerts reach a person and never block trading: the Notifier through apprise itself, against a local HTTP endpoint
(apprise's json:// and form:// schemas) that can answer, fail, or hang until the test lets it go."""
import asyncio, json, logging, socket, threading
from datetime import date, datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest

from swingtrader.clock import SimClock
from swingtrader.config import ConfigError, Settings, SwingtraderError
from swingtrader.health import HealthMonitor
from swingtrader.ledger import Ledger
from swingtrader.notify import Notifier, url_problems
from swingtrader.risk import KillSwitch, KillState

TOKEN = "tk-SeCrEt-7f3a9c"          # the secret part of every URL in these tests
WAIT = 60                           # generous bound for anything that waits on a condition

class Endpoint:
    "A local webhook: records each request; /fail answers 500; /slow waits until `release` is set."
    def __init__(self):
        self.got, self.cond = [], threading.Condition()
        self.arrived, self.release, self.answered = threading.Event(), threading.Event(), threading.Event()
        ep = self
        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                body = json.loads(raw) if self.headers.get("content-type", "").startswith("application/json") else dict(parse_qsl(raw))
                ep.arrived.set()
                if "/slow/" in self.path: ep.release.wait(WAIT)
                code = 500 if "/fail/" in self.path else 200
                with ep.cond: ep.got.append((self.path, body)); ep.cond.notify_all()
                self.send_response(code); self.send_header("content-length", "0"); self.end_headers()
                if "/slow/" in self.path: ep.answered.set()
            def log_message(self, *a): pass
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
    def url(self, kind="ok", schema="json", **q):
        qs = "&".join(f"{k}={v}" for k, v in {"rto": WAIT, **q}.items())
        return f"{schema}://127.0.0.1:{self.port}/{kind}/{TOKEN}?{qs}"
    def wait_for(self, n):
        with self.cond: assert self.cond.wait_for(lambda: len(self.got) >= n, WAIT), self.got
        return self.got
    def close(self):
        self.release.set(); self.srv.shutdown(); self.srv.server_close()

@pytest.fixture
def ep():
    e = Endpoint()
    yield e
    e.close()

@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)             # apprise and urllib3 debug lines name URLs: they must be scrubbed too
    return caplog

def closed_port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def clean(*texts):
    for t in texts: assert TOKEN not in str(t), f"secret leaked: {str(t)[:300]}"

# -- delivery ------------------------------------------------------------------------------------------

def test_messages_arrive_through_json_and_form(ep, logs):
    n = Notifier(f"{ep.url()}, {ep.url(schema='form')}", tag="swingtrader test")
    a = n.send("HALTED (daily_loss)", "Rule: daily_loss …\nExits continue.", "critical")
    assert n.flush(WAIT) and a.status == "sent" and n.counts["sent"] == 1
    got = ep.wait_for(2)
    assert sorted("attachments" in b for _, b in got) == [False, True]        # one JSON post, one form post
    assert {p for p, _ in got} == {f"/ok/{TOKEN}"}
    for b in got:
        assert b[1]["title"] == "[swingtrader test] HALTED (daily_loss)"
        assert b[1]["message"] == "Rule: daily_loss …\nExits continue." and b[1]["type"] == "failure"
    n.close(WAIT)
    clean(logs.text, repr(n), a.to_dict())

def test_failing_endpoint_is_logged_and_never_raises(ep, logs):
    n = Notifier(f"{ep.url('fail')} json://127.0.0.1:{closed_port()}/x/{TOKEN}")
    a = n.send("health critical", "rejections", "critical")     # returns: no exception
    assert n.flush(WAIT) and a.status == "failed" and n.counts == {"sent": 0, "failed": 1, "dropped": 0, "recorded": 0}
    assert len(ep.wait_for(1)) == 1
    assert "to entry 1 (json) failed" in logs.text and "to entry 2 (json) failed" in logs.text
    b = n.send("next one", "still delivered to the endpoint that answers", "info")
    assert n.flush(WAIT) and b.status == "failed" and len(ep.wait_for(2)) == 2     # the worker survived
    assert n.close(WAIT)
    clean(logs.text, repr(n))

def test_plugin_exception_is_caught_and_scrubbed(ep, logs):
    n = Notifier(ep.url())
    def boom(**kw): raise RuntimeError(f"cannot reach {TOKEN}")
    n._plugins[0].notify = boom
    a = n.send("x", "y")
    assert n.flush(WAIT) and a.status == "failed" and "to entry 1 (json) failed: raised RuntimeError" in logs.text
    clean(logs.text)
    n.close(WAIT)

def test_slow_endpoint_never_blocks_the_caller(ep):
    n = Notifier(ep.url("slow"))
    first = n.send("first", "the endpoint will sit on this one")
    assert ep.arrived.wait(WAIT)                  # delivery is in flight: the endpoint holds it until released ...
    second = n.send("second", "queued behind the first")
    third = n("third\nas a plain callable")       # ... and the caller still returns at once
    assert not ep.answered.is_set()               # both calls returned before the endpoint answered
    assert (first.status, second.status, third.status) == ("queued", "queued", "queued")
    assert not n.flush(0.05)                      # a bounded flush reports it did not drain, without raising
    ep.release.set()
    assert n.flush(WAIT) and [a.status for a in n.history] == ["sent"] * 3
    assert [b["title"] for _, b in ep.wait_for(3)] == ["[swingtrader] first", "[swingtrader] second", "[swingtrader] third"]
    assert n.close(WAIT)

def test_full_queue_drops_the_oldest_with_a_counted_warning(ep, logs):
    n = Notifier(ep.url("slow"), max_queue=2)
    n.send("a"); assert ep.arrived.wait(WAIT)      # 'a' is with the endpoint; the queue holds 2 more
    b, c, d, e = (n.send(x) for x in "bcde")
    assert (b.status, c.status, d.status, e.status) == ("dropped", "dropped", "queued", "queued")
    assert n.counts["dropped"] == 2 and "dropped the oldest alert" in logs.text and "(2 dropped so far)" in logs.text
    ep.release.set()
    assert n.flush(WAIT)
    assert [b_["title"] for _, b_ in ep.wait_for(3)] == ["[swingtrader] a", "[swingtrader] d", "[swingtrader] e"]
    assert n.close(WAIT)

def test_close_is_bounded_and_later_alerts_are_dropped(ep):
    n = Notifier(ep.url("slow"))
    n.send("stuck"); assert ep.arrived.wait(WAIT)
    n.send("waiting")
    assert n.close(0.05) is False                  # could not flush while the endpoint hangs: says so, does not raise
    assert n.send("after close").status == "dropped"
    ep.release.set()
    assert len(ep.wait_for(2)) == 2                # the worker still drains what was queued before close
    assert n.flush(WAIT)

def test_no_urls_records_only():
    n = Notifier.from_settings(Settings(_env_file=None))
    a = n.send("DRAWDOWN WARNING", "equity 2 % below the high", "warning")
    assert (n.enabled, a.status, n.counts["recorded"], n._thread) == (False, "recorded", 1, None)
    assert a.title == "[swingtrader sim/sandbox] DRAWDOWN WARNING" and n.close()

# -- secrets and settings ------------------------------------------------------------------------------

def test_settings_validate_each_url_naming_only_its_position(clean_env, logs):
    clean_env.setenv("SWINGTRADER_NOTIFY_URLS", f"json://127.0.0.1:9/ok/{TOKEN}, nope://{TOKEN}  {TOKEN}")
    with pytest.raises(ConfigError) as e: Settings.load()
    assert len(e.value.lines) == 1, e.value.lines
    line = e.value.lines[0]
    assert line.startswith("SWINGTRADER_NOTIFY_URLS='********' is invalid (entries 2, 3 of 3 are not URLs apprise can send to")
    assert "give apprise URLs separated by commas or spaces" in line
    clean(str(e.value), repr(e.value), logs.text)   # apprise's own 'Unparseable URL …' error is scrubbed too

def test_settings_hold_urls_as_a_secret(clean_env, ep, logs):
    clean_env.setenv("SWINGTRADER_NOTIFY_URLS", ep.url())
    s = Settings.load()
    n = Notifier.from_settings(s)
    assert n.enabled and repr(n) == "Notifier(1 URL: json; sent 0, failed 0, dropped 0, queued 0)"
    assert s.summary()["SWINGTRADER_NOTIFY_URLS"] == "********"
    n.send("hello"); assert n.flush(WAIT)
    assert ep.wait_for(1)[0][1]["title"] == "[swingtrader sim/sandbox] hello"
    clean(repr(s), str(s), s.summary(), logs.text, repr(n), [a.to_dict() for a in n.history])
    n.close(WAIT)

def test_bad_urls_given_directly_raise_a_clean_error():
    with pytest.raises(SwingtraderError) as e: Notifier(f"json://127.0.0.1/ok, {TOKEN}")
    assert "entry 2 of 2" in str(e.value)
    clean(str(e.value), repr(e.value))
    assert url_problems("") is None and url_problems(None) is None

# -- events reach the endpoint -------------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)

def test_kill_switch_trip_and_reset_reach_a_person(ep, logs):
    clock = SimClock(T0)
    n = Notifier(ep.url())
    ks = KillSwitch(Ledger(":memory:", clock), clock, Settings(_env_file=None), notifier=n)
    assert ks.check(Decimal(96900), day_pl=Decimal(-3100)) == "daily_loss"
    ks.reset("alice", "loss reviewed, news priced in")
    assert n.flush(WAIT)
    (_, trip), (_, reset) = ep.wait_for(2)
    assert trip["title"] == "[swingtrader] HALTED (daily_loss)" and trip["type"] == "failure"
    for text in ("halts at a 3.00% loss of the day's start equity", "-3,100.00", "Exits continue",
                 "swingtrader reset-halt --who <your name> --reason"):
        assert text in trip["message"], trip["message"]
    assert reset["title"] == "[swingtrader] Trading resumed (ACTIVE)"
    assert reset["message"] == "Manual reset by alice: loss reviewed, news priced in."
    n.close(WAIT); clean(logs.text)

def test_health_critical_and_one_drawdown_warning_per_crossing(ep):
    clock = SimClock(T0)
    n = Notifier(ep.url())
    ledger = Ledger(":memory:", clock)
    hm = HealthMonitor(clock, Settings(_env_file=None), kill_switch=KillSwitch(ledger, clock, Settings(_env_file=None), notifier=n),
                       min_orders=1)
    assert hm.notifier is n                         # the monitor uses the kill switch's notifier
    for eq in (100_000, 101_000, 98_900, 98_800, 98_950, 98_700):   # crosses 2 % below the 101,000 high once
        ledger.record_equity(Decimal(eq)); hm.check(market_open=True)
    hm.order_result(True, "off_tick")               # 100 % rejected: critical
    ledger.record_equity(Decimal(100_600)); hm.check(True)          # recovered under 1 %: re-armed
    ledger.record_equity(Decimal(98_000)); hm.check(True)           # a second crossing
    assert n.flush(WAIT)
    got = [b for _, b in ep.wait_for(3)]
    assert [b["title"] for b in got] == ["[swingtrader] DRAWDOWN WARNING", "[swingtrader] Health CRITICAL: rejections",
                                         "[swingtrader] DRAWDOWN WARNING"]
    assert "2.08% below today's high-water mark 101,000.00" in got[0]["message"] and "trading continues" in got[0]["message"]
    assert hm.kill_switch.state is KillState.ACTIVE                 # a warning, not a halt
    n.close(WAIT)

def test_bot_wires_the_notifier_and_sends_the_daily_summary(clean_env, ep):
    from swingtrader.bot import DaySummary
    from swingtrader.session import sim_bot
    from swingtrader.sim.broker import SimBroker
    day = date(2026, 3, 2)
    sim = SimBroker.from_seed(seed=1, symbols=2, start=day, end=day)
    bot = sim_bot(Settings(_env_file=None, notify_urls=ep.url()), sim, Ledger(":memory:", clock=sim.clock))
    n = bot.kill_switch.notifier
    assert isinstance(n, Notifier) and n.enabled and bot.health.notifier is n
    bot.day = DaySummary(day)
    asyncio.run(bot.at_close(day))
    assert n.flush(WAIT)
    (_, b), = ep.wait_for(1)
    assert b["title"].startswith("[swingtrader sim/sandbox] Daily summary 2026-03-02: P&L")
    assert "trades 0, win rate n/a" in b["message"] and "state active" in b["message"]
    n.close(WAIT)
