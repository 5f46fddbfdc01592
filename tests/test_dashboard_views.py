"""The dashboard's data layer on a ledger with known contents: every number the page shows, exactly."""
import json
from datetime import datetime, timezone
from decimal import Decimal

import pandas as pd
import pytest

from swingtrader.audit import AuditLog
from swingtrader.clock import SimClock
from swingtrader.config import Settings
from swingtrader.ledger import Ledger
from swingtrader.models import Fill, Order, OrderRequest, OrderStatus, OrderType, Side
from swingtrader import dashboard as db
from swingtrader.dashboard_page import Dashboard

T0 = datetime(2026, 3, 4, 15, 0, tzinfo=timezone.utc)      # a Wednesday

def _fill(lg, sym, qty, price, fid, side=Side.BUY, commission="0"):
    req = OrderRequest(sym, side, qty=Decimal(qty))
    lg.record_intent(None, req)
    lg.record_submitted(req.client_key, Order(f"o-{fid}", req.client_key, sym, side, OrderType.MARKET, req.tif, OrderStatus.FILLED,
                                              qty=Decimal(qty), filled_qty=Decimal(qty), avg_fill_price=Decimal(price)))
    lg.record_fill(Fill(fid, f"o-{fid}", sym, side, Decimal(qty), Decimal(price), T0, req.client_key, Decimal(commission)))
    return req.client_key

@pytest.fixture
def ledger(tmp_path):
    clock = SimClock(T0)
    with Ledger(tmp_path / "ledger.sqlite", clock) as lg:
        lg.record_equity(Decimal("50000"), Decimal("50000"), at=datetime(2026, 3, 2, 14, 31, tzinfo=timezone.utc))   # Monday
        lg.record_equity(Decimal("50400"), Decimal("50000"), at=datetime(2026, 3, 2, 20, 0, tzinfo=timezone.utc))
        _fill(lg, "XOM", "100", "110.50", "x1", commission="1.25")                      # long 100 @ 110.50
        _fill(lg, "XOM", "40", "112", "x2", side=Side.SELL)                            # realise 40 × 1.50 = 60 → 58.75 after commission
        _fill(lg, "CVX", "20", "150", "c1")
        _fill(lg, "CVX", "20", "150", "c2", side=Side.SELL)                            # flat: not a position any more
        _fill(lg, "JPM", "30", "200", "j1")
        _fill(lg, "TSLA", "10", "300", "t1", side=Side.SELL)                           # short 10 @ 300
        lim = OrderRequest("JPM", Side.SELL, qty=Decimal(30), type=OrderType.LIMIT, limit_price=Decimal("220"))
        lg.record_intent(None, lim)
        lg.record_submitted(lim.client_key, Order("o-lim", lim.client_key, "JPM", Side.SELL, OrderType.LIMIT, lim.tif,
                                                  OrderStatus.ACCEPTED, qty=Decimal(30), limit_price=Decimal("220")))
        pend = OrderRequest("AMD", Side.BUY, qty=Decimal(5))
        lg.record_intent(None, pend)                                                   # broker answer unknown yet
        rej = OrderRequest("NFLX", Side.BUY, qty=Decimal(1))
        lg.record_intent(None, rej)
        lg.record_submit_failed(rej.client_key, "insufficient buying power", definite=True)   # rejected
        lg.record_equity(Decimal("50800"), Decimal("40000"), at=datetime(2026, 3, 4, 14, 31, tzinfo=timezone.utc))  # Wednesday
        lg.record_equity(Decimal("49784"), Decimal("40000"), at=datetime(2026, 3, 4, 19, 0, tzinfo=timezone.utc))
        lg.save_stop("XOM", {"symbol": "XOM", "entry": 110.5, "initial_stop": 105, "stop": 107.25, "highest": 113})
    ro = Ledger(tmp_path / "ledger.sqlite", readonly=True)
    yield ro
    ro.close()

PRICES = {"XOM": Decimal("115"), "JPM": Decimal("190")}        # TSLA has no quote: marked at its last fill
SECTORS = {"XOM": "Energy", "CVX": "Energy", "JPM": "Financials"}

def test_positions_view(ledger):
    pv = db.positions_view(ledger, PRICES, SECTORS).set_index("symbol")
    assert list(pv.index) == ["JPM", "TSLA", "XOM"]
    assert pv.loc["XOM"].to_dict() == {"qty": 60.0, "avg_price": 110.5, "last": 115.0, "mark_source": "quote", "market_value": 6900.0,
                                       "unrealized_pl": 270.0, "realized_pl": 58.75, "stop": 107.25, "sector": "Energy"}
    assert pv.loc["JPM", ["market_value", "unrealized_pl", "mark_source"]].tolist() == [5700.0, -300.0, "quote"]
    assert pd.isna(pv.loc["JPM", "stop"])                                                     # no trailing stop stored
    assert pv.loc["TSLA", ["qty", "last", "mark_source", "market_value", "unrealized_pl", "sector"]].tolist() == \
           [-10.0, 300.0, "last fill", -3000.0, 0.0, "unknown"]
    assert db.positions_view(ledger).set_index("symbol").loc["XOM", "last"] == 112.0          # no quotes: the last fill

def test_account_view(ledger):
    a = db.account_view(ledger, PRICES)
    assert (a["state"], a["day"].isoformat(), a["equity"], a["cash"], a["start_equity"]) == ("active", "2026-03-04", 49784.0, 40000.0, 50800.0)
    assert (a["day_pl"], a["week_pl"]) == (-1016.0, -216.0)         # 49784 − 50800; 49784 − 50000 (Monday's first mark)
    assert (a["realized_pl"], a["unrealized_pl"], a["exposure"]) == (58.75, -30.0, 15600.0)
    assert (a["positions"], a["open_orders"], a["pending_commands"]) == (3, 2, 0)
    assert a["as_of"].startswith("2026-03-04T19:00:00")

def test_orders_and_fills_views(ledger):
    ov = db.orders_view(ledger)
    assert ov[ov.working].symbol.tolist() == ["AMD", "JPM"]         # newest working first, intents included
    assert ov[ov.working].status.tolist() == ["pending_submit", "accepted"]
    assert len(ov) == 9
    nflx = ov.set_index("symbol").loc["NFLX"]
    assert (nflx.status, nflx.error, bool(nflx.working)) == ("rejected", "insufficient buying power", False)
    assert ov.set_index("symbol").loc["JPM"].query("type == 'limit'").limit_price.tolist() == [220.0]
    assert len(db.orders_view(ledger, recent=3)) == 5
    fv = db.fills_view(ledger, limit=3)
    assert fv.fill_id.tolist() == ["t1", "j1", "c2"] and fv.iloc[0][["side", "qty", "price"]].tolist() == ["sell", 10.0, 300.0]
    assert db.fills_view(ledger).set_index("fill_id").loc["x1", "commission"] == 1.25

def test_risk_view(ledger):
    s = Settings(position_cap=0.1, sector_cap=0.2, daily_loss_halt=0.02, weekly_loss_halt=0.05)
    rv = db.risk_view(ledger, s, PRICES, SECTORS)
    assert (rv["state"], rv["equity"]) == ("active", 49784.0)
    lim = rv["limits"].set_index(["rule", "name"])
    assert lim.loc[("position_cap", "XOM"), ["value", "limit"]].tolist() == [6900.0, 0.1]
    assert lim.loc[("position_cap", "XOM"), "use"] == 6900 / 49784
    assert lim.loc[("position_cap", "TSLA"), "value"] == 3000.0                 # shorts count by size
    assert lim.loc[("sector_cap", "Energy"), "value"] == 6900.0                 # CVX is flat: not counted
    assert lim.loc[("sector_cap", "unknown"), "value"] == 3000.0
    assert lim.loc[("daily_loss_halt", "day"), "use"] == 1016 / 50800          # = 2 %: the limit is reached
    assert lim.loc[("daily_loss_halt", "day"), "use_of_limit"] == pytest.approx(1.0)
    assert lim.loc[("weekly_loss_halt", "week"), "use"] == 216 / 50000
    assert sorted(lim.index.get_level_values(0).unique()) == ["daily_loss_halt", "position_cap", "sector_cap", "weekly_loss_halt"]

def test_risk_view_follows_halt_state_and_gains(ledger, tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as w:
        w.set_halt("reducing", "kill_switch:manual", "review")
        w.record_equity(Decimal("51000"), Decimal("40000"), at=datetime(2026, 3, 4, 20, 0, tzinfo=timezone.utc))
    rv = db.risk_view(ledger, Settings(), PRICES, SECTORS)
    assert (rv["state"], rv["reason"]) == ("reducing", "review")
    assert rv["limits"].set_index("rule").loc["daily_loss_halt", ["value", "use"]].tolist() == [200.0, 0.0]   # a gain uses none

def test_empty_ledger(tmp_path):
    Ledger(tmp_path / "l.sqlite").close()
    with Ledger(tmp_path / "l.sqlite", readonly=True) as lg:
        a = db.account_view(lg)
        assert (a["equity"], a["day_pl"], a["week_pl"], a["positions"], a["exposure"], a["day"]) == (None, None, None, 0, 0.0, None)
        assert db.positions_view(lg).empty and db.orders_view(lg).empty and db.fills_view(lg).empty
        assert db.risk_view(lg, Settings())["limits"].empty
        assert db.equity_view(lg).empty and db.equity_curve(db.equity_view(lg)) == {"day": [], "equity": []}

def test_equity_view(ledger):
    ev = db.equity_view(ledger)
    assert ev.day.dt.strftime("%Y-%m-%d").tolist() == ["2026-03-02", "2026-03-04"]
    assert ev[["start_equity", "equity", "cash", "day_pl"]].values.tolist() == [[50000.0, 50400.0, 50000.0, 400.0], [50800.0, 49784.0, 40000.0, -1016.0]]
    c = db.equity_curve(ev)
    assert c["equity"] == [50000.0, 50400.0, 50800.0, 49784.0]
    assert [t.strftime("%m-%d %H:%M") for t in c["day"]] == ["03-02 09:30", "03-02 16:00", "03-04 09:30", "03-04 16:00"]

def test_alerts_view(tmp_path):
    clock = SimClock(datetime(2026, 3, 3, 23, 59, tzinfo=timezone.utc))
    with AuditLog(tmp_path / "audit", clock, secrets=["hunter2-secret"], fsync=False) as a:
        a.health("connectivity", {"level": "critical", "message": "broker down; key hunter2-secret"}, broker="tastytrade")
        clock.advance(120)                                            # the next day's file
        a.health("stream", {"level": "warning", "message": "quotes stale for 30 s"}, symbol="AAPL")
        a.health("command", {"level": "ok", "kind": "halt", "requested_by": "dashboard"})
    with open(tmp_path / "audit" / "health" / "2026-03-04.jsonl", "a") as f: f.write('{"torn": ')   # a crash mid-line
    av = db.alerts_view(tmp_path / "audit")
    assert av[["level", "what", "symbol", "broker"]].fillna("-").values.tolist() == [
        ["ok", "command", "-", "-"], ["warning", "stream", "AAPL", "-"], ["critical", "connectivity", "-", "tastytrade"]]
    assert av.message.tolist()[:2] == ["kind=halt, requested_by=dashboard", "quotes stale for 30 s"]
    assert "hunter2-secret" not in av.message.iloc[2]
    assert db.alerts_view(tmp_path / "audit", levels=("critical",)).what.tolist() == ["connectivity"]
    assert db.alerts_view(tmp_path / "audit", limit=2).what.tolist() == ["command", "stream"]

def test_sidecar_files(tmp_path):
    (tmp_path / "sectors.json").write_text(json.dumps({"XOM": "Energy", "JPM": ""}))
    (tmp_path / "prices.json").write_text(json.dumps({"XOM": 115.25, "JPM": {"price": "190.5", "at": "2026-03-04T19:00:00Z"}, "BAD": "x"}))
    assert db.read_sectors(tmp_path) == {"XOM": "Energy"}
    assert db.read_prices(tmp_path) == {"XOM": Decimal("115.25"), "JPM": Decimal("190.5")}
    (tmp_path / "prices.json").write_text("[1, 2")                    # being rewritten by the bot
    assert db.read_prices(tmp_path) == {} and db.read_sectors(tmp_path / "nowhere") == {}

def test_kill_switch_actions(ledger, tmp_path):
    path = tmp_path / "ledger.sqlite"
    with pytest.raises(Exception, match="needs a reason"): db.dashboard_halt(path, "")
    assert ledger.commands() == []
    db.dashboard_halt(path, "fed surprise")
    assert ledger.halt_state().state == "halted"
    assert [(c.kind, c.requested_by, c.args, c.status) for c in ledger.commands()] == [("halt", "dashboard", {"reason": "fed surprise"}, "pending")]
    with pytest.raises(Exception, match="your name"): db.dashboard_resume(path, " ", "ok")
    with pytest.raises(Exception, match="who and why"): db.dashboard_resume(path, "Ann", "")
    assert ledger.halt_state().state == "halted"
    db.dashboard_resume(path, "Ann", "reviewed")
    assert (ledger.halt_state().state, ledger.halt_state().who) == ("active", "Ann (dashboard)")
    said = db.dashboard_flatten(path)                              # no run.json here: no bot runs this ledger
    assert "No bot is running on this run: nothing is sold now" in said and "the running bot sends" not in said, said
    assert [(c.kind, c.requested_by) for c in ledger.commands()] == [("flatten", "dashboard"), ("resume", "Ann (dashboard)"), ("halt", "dashboard")]
    with pytest.raises(Exception, match="SWINGTRADER_DATA_DIR"): db.dashboard_flatten(tmp_path / "none" / "ledger.sqlite")
    assert not (tmp_path / "none").exists()

def test_dashboard_masks_secrets(ledger, tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as w:
        k = w.record_intent(None, OrderRequest("IBM", Side.BUY, qty=Decimal(1))).client_key
        w.record_submit_failed(k, "401 for token tok-SUPERSECRET-123", definite=True)
        c = w.enqueue_command("halt", "cli"); w.take_pending_commands(); w.complete_command(c, False, "failed with tok-SUPERSECRET-123")
        w.log_event("reconcile_mismatch", {"mismatches": ["position IBM: broker said tok-SUPERSECRET-123"]})
    d = Dashboard(Settings(data_dir=tmp_path, tt_client_secret="tok-SUPERSECRET-123"))
    shown = d.orders.value.to_string() + d.commands.value.to_string() + d.kpis.object + d.badge.object + d.rules.object
    assert "IBM" in shown and "position IBM: broker said" in d.rules.object and "tok-SUPERSECRET-123" not in shown

def test_market_state_from_the_ledger(ledger, tmp_path):
    "The bot's market state (ledger state store) prices and sectors every position; side files only fill in what it lacks."
    with Ledger(tmp_path / "ledger.sqlite", SimClock(T0)) as w:
        w.save_state("market", {"prices": {"XOM": {"price": 116.5, "at": "2026-03-04T18:55:00+00:00"},
                                           "JPM": {"price": 195.25, "at": "2026-03-04T18:55:00+00:00"}},
                                "sectors": {"XOM": "Energy", "JPM": "Financials", "TSLA": ""}})
    (tmp_path / "prices.json").write_text(json.dumps({"XOM": 1.0, "TSLA": 290}))          # another writer: XOM stale, TSLA new
    (tmp_path / "sectors.json").write_text(json.dumps({"TSLA": "Consumer Discretionary", "XOM": "Materials"}))
    prices, sectors = db.market_state(ledger, tmp_path)
    assert prices == {"XOM": Decimal("116.5"), "JPM": Decimal("195.25"), "TSLA": Decimal("290")}
    assert sectors == {"XOM": "Energy", "JPM": "Financials", "TSLA": "Consumer Discretionary"}
    pv = db.positions_view(ledger, prices, sectors).set_index("symbol")
    assert pv.loc["XOM", ["last", "mark_source", "market_value", "unrealized_pl", "sector"]].tolist() == [116.5, "quote", 6990.0, 360.0, "Energy"]
    assert pv.loc["JPM", ["last", "market_value", "unrealized_pl", "sector"]].tolist() == [195.25, 5857.5, -142.5, "Financials"]
    assert pv.loc["TSLA", ["last", "market_value", "unrealized_pl", "sector"]].tolist() == [290.0, -2900.0, 100.0, "Consumer Discretionary"]
    a = db.account_view(ledger, prices)
    assert (a["unrealized_pl"], a["exposure"]) == (317.5, 15747.5)                    # 360 − 142.5 + 100; 6990 + 5857.5 + 2900
    # the page itself: no sector is 'unknown' any more, positions are marked at the bot's prices
    d = Dashboard(Settings(_env_file=None, data_dir=tmp_path))
    shown = d.positions.value.set_index("symbol")
    assert shown.loc[["JPM", "TSLA", "XOM"], "sector"].tolist() == ["Financials", "Consumer Discretionary", "Energy"]
    assert shown.loc["XOM", "last"] == 116.5
    # without side files the ledger alone answers; without a market state, the side files do (the old behaviour)
    (tmp_path / "prices.json").unlink(); (tmp_path / "sectors.json").unlink()
    assert db.market_state(ledger, tmp_path) == ({"XOM": Decimal("116.5"), "JPM": Decimal("195.25")}, {"XOM": "Energy", "JPM": "Financials"})

def test_close_one_position_through_the_command_queue(tmp_path):
    "The page's per-position close queues a flatten of that symbol; the kill switch executing it sells that one only."
    from datetime import date
    from swingtrader.risk import KillSwitch
    from swingtrader.sim.broker import SimBroker
    from swingtrader.dashboard_trading import dashboard_close
    sim = SimBroker.from_seed(seed=3, symbols=2, start=date(2026, 3, 2), end=date(2026, 3, 2))
    sim.advance_to(datetime(2026, 3, 2, 14, 45, tzinfo=timezone.utc))
    a, b = sim.symbols[:2]
    stops = {}
    with Ledger(tmp_path / "ledger.sqlite", clock=sim.clock) as lg:
        for sym in (a, b):
            req = OrderRequest(sym, Side.BUY, qty=Decimal(10))
            lg.record_intent(None, req)
            lg.record_submitted(req.client_key, o := sim.submit(req))
            px = o.avg_fill_price or sim.latest_quote(sym).ask
            lg.record_fill(Fill(f"f-{sym}", o.id, sym, Side.BUY, Decimal(10), Decimal(str(px)), sim.clock.now(), req.client_key))
            q = sim.latest_quote(sym)
            stops[sym] = sim.submit(OrderRequest(sym, Side.SELL, qty=Decimal(10), type=OrderType.STOP, tif="gtc",
                                                 stop_price=Decimal(str(round(q.bid * 0.9, 2)))))
        assert {p.symbol for p in lg.positions()} == {a, b}
    msg = dashboard_close(tmp_path / "ledger.sqlite", b.lower(), via="dashboard")
    assert msg.startswith(f"Close {b} requested")
    with Ledger(tmp_path / "ledger.sqlite", clock=sim.clock) as lg:
        ks = KillSwitch(lg, sim.clock, Settings(_env_file=None), broker=sim)
        (cmd,) = lg.take_pending_commands()
        assert (cmd.kind, cmd.args["symbols"]) == ("flatten", [b])
        assert ks.apply(cmd) == "flatten sent 1 orders"
    held = {p.symbol: p.qty for p in sim.positions() if p.qty}
    assert held == {a: Decimal(10)}                                  # only b was sold
    assert sim.order(stops[b].id).status is OrderStatus.CANCELLED     # b's stop first, so it never sells twice
    assert sim.order(stops[a].id).status.is_open                      # a keeps its stop

def test_rule_use_names_every_rule_and_the_trip(ledger, tmp_path):
    from swingtrader.dashboard_trading import rule_use
    with Ledger(tmp_path / "ledger.sqlite") as w: w.set_halt("halted", "kill_switch:weekly_loss", "week P&L -2,600.00 is a 5.10% loss (limit 5.00%)")
    ru = rule_use(ledger, Settings(_env_file=None), PRICES, SECTORS, tmp_path / "audit").set_index("rule")
    assert list(ru.index) == ["daily_loss", "weekly_loss", "losing_streak", "position", "sector", "correlated", "leverage",
                              "connectivity", "health", "reconciliation"]
    assert ru.tripped.to_dict() == {r: r == "weekly_loss" for r in ru.index}
    assert ru.loc["weekly_loss", "detail"].startswith("TRIPPED: week P&L")
    assert ru.loc["position", "now"] == pytest.approx(6900 / 49784)   # XOM, the largest
    assert ru.loc["leverage", "limit"] == 1.0 and ru.loc["leverage", "now"] == pytest.approx((6900 + 5700 + 3000) / 49784)   # gross: the short counts
    assert all(s.startswith("SWINGTRADER_") for r, s in ru.setting.items() if r != "health")


def test_one_off_alerts_do_not_hold_the_health_row(ledger, tmp_path):
    "A liquidation's remainder or an adopted position is reported once (critical, warning): the Health row is not red forever."
    from datetime import datetime, timezone
    from swingtrader.audit import AuditLog
    from swingtrader.clock import SimClock
    from swingtrader.dashboard_trading import rule_use
    audit = AuditLog(tmp_path / "audit", SimClock(datetime.now(timezone.utc), mode="manual"), fsync=False)
    audit.health("liquidation_remainder", {"level": "critical", "message": "AAPL: 30 shares left after the liquidation"}, symbol="AAPL")
    audit.health("adopt_protected", {"level": "warning", "message": "MSFT adopted, stop at 98.00"}, symbol="MSFT")
    audit.health("protective_stop_fraction", {"level": "warning", "message": "0.5 XOM not coverable"}, symbol="XOM")
    ru = rule_use(ledger, Settings(_env_file=None), PRICES, SECTORS, tmp_path / "audit").set_index("rule")
    assert ru.loc["health", "now"] == 0.0, ru.loc["health"].to_dict()
    audit.health("streams", {"level": "critical", "message": "no bars for 5 min"})
    ru = rule_use(ledger, Settings(_env_file=None), PRICES, SECTORS, tmp_path / "audit").set_index("rule")
    assert ru.loc["health", "now"] == 1.0                                  # a level still counts
