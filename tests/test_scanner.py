"The TradingView scanner against the emulator's scan endpoint: filters, caching per day, and outage fallback."
from datetime import date, datetime
import pytest
from aiohttp import web

from swingtrader.clock import UTC, NY, SimClock
from swingtrader.config import Settings
from swingtrader.scanner import Scanner, ScannerUnavailable, default_query, RESULT_COLUMNS
from emu_support import make_broker, serve

@pytest.fixture(scope="module")
def emu():
    "One emulator for the module (the harness in emu_support): 30 symbols, Monday 2026-03-02 11:00 New York."
    broker = make_broker(seed=11, symbols=30, start=date(2026, 2, 23), end=date(2026, 3, 4), at=datetime(2026, 3, 2, 16, 0, tzinfo=UTC))
    with serve(broker=broker) as srv:
        yield broker, srv

def settings(**kw): return Settings(_env_file=None, **kw)

def test_filters_sort_and_limit(emu, tmp_path):
    broker, srv = emu
    s = settings(scan_min_price=20, scan_max_price=300, scan_min_avg_volume=500_000, scan_top=7)
    df = Scanner(s, broker.clock, url=f"{srv.api_url}/america/scan").scan()
    assert list(df.columns) == RESULT_COLUMNS
    assert 0 < len(df) <= 7
    assert df["close"].between(20, 300).all() and (df["avg_volume"] > 500_000).all()
    assert df["rel_volume"].is_monotonic_decreasing
    # the same answer computed from the simulator directly
    uni = broker.universe
    assert set(df["symbol"]) <= set(uni.index)
    assert (df.set_index("symbol")["sector"] == uni.loc[df["symbol"], "sector"]).all()

def test_cached_for_the_day_and_across_restarts(emu, tmp_path):
    broker, srv = emu
    url = f"{srv.api_url}/america/scan"
    clock = SimClock(datetime(2026, 3, 2, 14, 0, tzinfo=NY))
    sc = Scanner(settings(scan_top=5, scan_min_avg_volume=0), clock, url=url, cache_dir=tmp_path)
    first = sc.scan()
    assert (tmp_path/"watchlist-2026-03-02.json").exists()
    # a new scanner (a restarted bot) with an unreachable URL still gets today's list from the cache, no warning
    warned = []
    again = Scanner(settings(scan_top=5, scan_min_avg_volume=0), clock, url="http://127.0.0.1:9/america/scan",
                    cache_dir=tmp_path, on_warning=warned.append).scan()
    assert list(again["symbol"]) == list(first["symbol"]) and warned == []
    # the next trading day rescans; the scanner being down then falls back to the last list, with a warning
    clock.set(datetime(2026, 3, 3, 9, 0, tzinfo=NY))
    nxt = Scanner(settings(scan_top=5, scan_min_avg_volume=0), clock, url="http://127.0.0.1:9/america/scan",
                  cache_dir=tmp_path, on_warning=warned.append, timeout=2).scan()
    assert list(nxt["symbol"]) == list(first["symbol"]) and len(warned) == 1 and "keeping the last watchlist" in warned[0]

@pytest.fixture
def bad_server():
    "A scan endpoint answering garbage: HTTP 500, then a reply without the expected shape."
    replies = [web.Response(status=500, text="upstream exploded"), web.json_response({"unexpected": True})]
    async def scan(request): return replies.pop(0) if replies else web.json_response({"totalCount": 0, "data": []})
    app = web.Application(); app.router.add_post("/america/scan", scan)
    import threading, asyncio
    loop = asyncio.new_event_loop(); runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup()); site = web.TCPSite(runner, "127.0.0.1", 0); loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    t = threading.Thread(target=loop.run_forever, daemon=True); t.start()
    yield f"http://127.0.0.1:{port}/america/scan"
    loop.call_soon_threadsafe(loop.stop); t.join(5)

def test_malformed_replies_keep_last_watchlist(emu, bad_server):
    broker, srv = emu
    warned = []
    sc = Scanner(settings(scan_top=4, scan_min_avg_volume=0), broker.clock, url=f"{srv.api_url}/america/scan", on_warning=warned.append)
    good = sc.scan()
    sc.url = bad_server
    for _ in range(2):
        assert list(sc.scan(force=True)["symbol"]) == list(good["symbol"])
    assert len(warned) == 2 and "HTTPError" in warned[0]

def test_no_previous_watchlist_is_a_clear_error(bad_server):
    sc = Scanner(settings(), SimClock(datetime(2026, 3, 2, 14, 0, tzinfo=UTC)), url=bad_server)
    with pytest.raises(ScannerUnavailable, match="there is no earlier watchlist.*Fix:"): sc.scan()

def test_default_query_follows_settings():
    q = default_query(settings(scan_min_price=5, scan_max_price=50, scan_min_avg_volume=2e6, scan_top=30)).query
    assert q["range"] == [0, 30]
    f = {x["left"]: x for x in q["filter"]}
    assert f["close"]["right"] == [5, 50] and f["average_volume_10d_calc"]["right"] == 2e6
    assert f["type"]["right"] == "stock" and f["subtype"]["right"] == "common"
