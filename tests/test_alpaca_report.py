"""The daily report's "Account activity (broker)" section after a short simulated day on broker=alpaca: the broker's FILL
activities match the ledger's fills (count, shares, value per symbol and side) and its portfolio-history equity the report's;
a difference is flagged; a broker without the views is skipped with a note."""
import asyncio
from datetime import date

import pytest

pytest.importorskip("swingtrader.emulator.alpaca_trading", reason="the emulator's Alpaca trading side is not merged here")

from swingtrader.config import Settings
from swingtrader.report import DayReport
from swingtrader.session import build_bot, emulated_alpaca, open_state
from swingtrader.alpaca.broker import AlpacaBroker

DAY = date(2026, 3, 2)


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("alpaca-report")
    env = emulated_alpaca(Settings(_env_file=None, data_dir=tmp, sim_broker="alpaca"), DAY, DAY, speed=1000.0)
    try:
        ledger, audit = open_state(env.settings, env.clock)
        bot = build_bot(env.settings, env.clock, ledger, audit, scan_url=env.scan_url(), calendar=env.calendar, last_day=DAY, fast_forward_idle=True)
        try: asyncio.run(bot.run())
        finally: bot.broker.close(); ledger.close(); audit.close()
        rep = DayReport.load(env.settings.ledger_path, env.settings.audit_dir, env.settings, day=DAY, bars=False)
        broker = AlpacaBroker(env.settings, clock=env.clock, calendar=env.calendar)
        try:
            rep.load_activity(broker)
            sim_fills = env.server.call(lambda: len(env.sim.engine.fills))
        finally: broker.close()
        yield rep, sim_fills
    finally: env.close()


def test_the_brokers_fills_and_equity_agree_with_the_report(day):
    rep, sim_fills = day
    c = rep.activity_check()
    assert c["broker"] == "alpaca" and c["n_broker"] == sim_fills > 0 and c["n_ledger"] > 0
    assert c["rows"]["qty_broker"].round(6).tolist() == c["rows"]["qty_ledger"].round(6).tolist()
    assert c["equity_broker"] is not None and c["equity_report"] is not None
    assert c["flags"] == [], c["flags"]
    html = rep.account_section()
    assert "agree" in html and "executions (FILL activities)" in html


def test_a_difference_is_flagged(day):
    rep, _ = day
    a = dict(rep.activity)
    rep.activity = a | {"fills": a["fills"][1:]}                     # one execution the ledger has and the broker "lost"
    try:
        c = rep.activity_check()
        assert c["flags"] and "Differences" in rep.account_section()
    finally: rep.activity = a


def test_brokers_without_the_views_are_skipped_with_a_note(day):
    rep, _ = day
    r = DayReport.load(rep.settings.ledger_path, rep.settings.audit_dir, Settings(_env_file=None), day=DAY, bars=False)
    assert "skipped" in r.account_section()                          # settings.broker=sim: no compliance views
