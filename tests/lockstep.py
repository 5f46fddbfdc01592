"""Simulated time shared by an emulator (in the test process) and a bot in another process, in lockstep rather than in real time.

A scaled clock in each process, anchored to the other by real time, lets the simulated session run on while a loaded machine
starts the bot or lets it fall behind: a test's crash choreography then runs out of session. Here instead

- the bot's clock *follows* the emulator's: `EmulatorFollower` (in the bot's process) reads the emulator's time from its
  control API (`GET /_emulator/state`) and sets a manual `SimClock` to it, on the bot's event loop; it also publishes the bot's
  progress to a file: the simulated time its session began, then the close of the newest bar it has handled;
- the emulator's clock is *held* by the test: `EmulatorPacer` lets it run (scaled) at most `lead` past the progress of the bot
  it follows (as `Bot` holds an in-process simulated market at most `pace` past the newest bar), and, while no bot runs,
  only as far as the test steps it.

So simulated time moves only as fast as the bot handles it, however slow the machine is."""
from __future__ import annotations
import json, os, threading, urllib.request
from datetime import datetime, timedelta
from pathlib import Path

LEAD = timedelta(minutes=15)      # the emulator runs at most this far past the bot's progress (the bot's own default pace)
STEP = timedelta(minutes=1)       # how far a step moves the emulator's clock while no bot runs
POLL = 0.02                       # real seconds between looks at the other side


class EmulatorPacer:
    "Hold the emulator's scaled `clock` at most `lead` past the progress a bot publishes to `follow`'s file, or where `step` moved it."
    def __init__(self, clock, lead:timedelta=LEAD):
        self.clock, self.lead, self.path = clock, lead, None
        self.until = clock.now()                  # the time the emulator's clock may run to
        self._stop = threading.Event()
        clock.hold(lambda: self.until, patience=1e9)   # obeyed however long the bot takes (the test's waits bound a hang)
        self._thread = threading.Thread(target=self._watch, name="pacer", daemon=True)
        self._thread.start()

    def follow(self, path:Path):
        "From now, pace the emulator by the bot publishing to `path` (it may run `lead` ahead while that bot starts up)."
        self.path = Path(path)
        self.until = max(self.until, self.clock.now() + self.lead)

    def release(self):
        "Stop following (the bot is gone): the emulator stays where it is allowed to go, then moves only by `step`."
        self.path = None

    def step(self, by:timedelta=STEP) -> bool:
        "Move the limit on by `by` once the emulator's clock has reached it; True if it moved."
        if self.clock.now() < self.until: return False
        self.until += by
        return True

    def _watch(self):
        while not self._stop.wait(POLL):
            p = self.path
            if p is None: continue
            try: t = datetime.fromisoformat(json.loads(p.read_text())["progress"])
            except (FileNotFoundError, ValueError, KeyError): continue   # not published yet (or being replaced)
            if t + self.lead > self.until: self.until = t + self.lead

    def close(self):
        self._stop.set(); self._thread.join(10)
        self.clock.hold(None)


class EmulatorFollower:
    "In the bot's process: `clock`, a manual `SimClock` kept at the emulator's time (control API at `api_url`); publishes `progress` to `path`."
    def __init__(self, api_url:str, token:str, path:Path):
        from swingtrader.clock import SimClock
        from swingtrader.emulator.app import CONTROL_HEADER
        self.path, self.progress, self._published = Path(path), None, None
        self._req = urllib.request.Request(api_url.rstrip("/") + "/_emulator/state", headers={CONTROL_HEADER: token})
        self._stop, self._loop, self._thread = threading.Event(), None, None
        self.clock = SimClock(self.emulator_now(), mode="manual")

    def emulator_now(self) -> datetime:
        with urllib.request.urlopen(self._req, timeout=30) as r: return datetime.fromisoformat(json.load(r)["now"])

    def reached(self, t:datetime):
        "The bot has handled everything up to simulated time `t`."
        if self.progress is None or t > self.progress: self.progress = t

    def start(self, loop):
        "Follow on `loop` (the bot's: the clock is set there, so its sleepers wake there)."
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="follower", daemon=True)
        self._thread.start()
        return self

    def _set(self, t:datetime):
        if t > self.clock.now(): self.clock.set(t)

    def _run(self):
        while not self._stop.wait(POLL):
            try: t = self.emulator_now()
            except OSError: continue          # the emulator is busy or going away: look again
            try: self._loop.call_soon_threadsafe(self._set, t)
            except RuntimeError: return       # the bot's loop is closed: it has ended
            if (p := self.progress) is not None and p != self._published:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps({"progress": p.isoformat()}))
                os.replace(tmp, self.path)    # the pacer never reads half a file
                self._published = p

    def close(self):
        self._stop.set()
        if self._thread is not None: self._thread.join(10)
