"""The bot's simulated day end to end with broker=alpaca: the emulator over a seeded simulator, alpaca-py unmodified
for orders, trade updates, history and minute bars; scan, backfill, entries, fills, stops, exits; at the end the ledger
agrees with the emulator's Alpaca account (positions, and realized P&L = equity change when flat)."""
import asyncio
from datetime import date
from decimal import Decimal

import pytest

pytest.importorskip("swingtrader.emulator.alpaca_trading", reason="the emulator's Alpaca trading side (h-alpemu) is not merged here")

from swingtrader.config import Settings
from swingtrader.session import build_bot, emulated_alpaca, open_state

DAY = date(2026, 3, 2)


def test_a_simulated_day_on_alpaca_ends_with_the_ledger_equal_to_the_account(tmp_path):
    s = Settings(_env_file=None, data_dir=tmp_path, sim_broker="alpaca")
    env = emulated_alpaca(s, DAY, DAY, speed=1000.0)
    try:
        assert env.settings.broker == "alpaca" and env.settings.alpaca_urls[0] == env.server.api_url
        ledger, audit = open_state(env.settings, env.clock)
        bot = build_bot(env.settings, env.clock, ledger, audit, scan_url=env.scan_url(), calendar=env.calendar,
                        last_day=DAY, fast_forward_idle=True)
        try:
            days = asyncio.run(bot.run())
            acct, pos = bot.broker.account(), bot.broker.positions()
            lat = bot.broker.transport.latency.summary()
        finally:
            bot.broker.close()
        summ = days[-1]
        assert type(bot.broker).__name__ == "AlpacaBroker"
        assert summ.errors == 0 and summ.bars > 0 and summ.orders > 0 and summ.fills > 0 and summ.trades
        assert all(t["exit_reason"] for t in summ.trades)              # entries and their exits
        assert {p.symbol: p.qty for p in pos} == {p.symbol: p.qty for p in ledger.positions()}
        if not pos:                                                      # flat: every dollar accounted for
            assert abs(ledger.realized_pl() - (acct.equity - s.sim_cash)) <= Decimal("0.01") * max(1, len(summ.trades))
        assert len(ledger.fills()) == summ.fills and lat["POST /orders"]["n"] >= summ.orders
        ledger.close(); audit.close()
    finally:
        env.close()
