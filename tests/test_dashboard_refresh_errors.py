"""A DATA_DIR/current.json that breaks while the dashboard runs: the periodic refresh shows the one-line error on the page
(secrets masked) instead of raising in the callback, and the page recovers once the file is repaired."""
import json, os
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from swingtrader import runs
from swingtrader.clock import SimClock
from swingtrader.config import Settings
from swingtrader.dashboard_page import Dashboard
from swingtrader.ledger import Ledger

SECRET = "tok-SUPERSECRET-123"


@pytest.fixture
def page(clean_env, tmp_path):
    "A dashboard on a bot's run in progress whose ledger holds one equity row (this process plays the bot)."
    base = tmp_path/"data"
    s = Settings(_env_file=None, data_dir=base, lock_dir=tmp_path/"locks", tt_client_secret=SECRET)
    cm = runs.start_run(s, "daily", label="d", path=base/"out")
    cm.__enter__()
    saved, tok = runs._ACTIVE.pop(str(runs.data_dir(s))), os.environ.pop(runs.RUN_TOKEN)   # the page is "another process"
    with Ledger(runs.run_ledger_path(s), SimClock(datetime(2026, 3, 4, 15, tzinfo=timezone.utc))) as lg:
        lg.record_equity(Decimal("50000"), Decimal("50000"))
    d = Dashboard(s)
    assert not d.missing.visible and d.last_state == "active"
    yield d, base/runs.CURRENT
    runs._ACTIVE[str(runs.data_dir(s))], os.environ[runs.RUN_TOKEN] = saved, tok
    cm.__exit__(None, None, None)


@pytest.mark.parametrize("broken,says", [("{half a record", "is not valid JSON"),
                                         ("names a gone run", "names the run sim-runs/")])
def test_a_broken_current_json_is_shown_and_the_page_recovers(page, broken, says):
    d, current = page
    good = current.read_text()
    if broken == "names a gone run":
        rec = json.loads(good); rec["path"] = f"sim-runs/{SECRET}"; broken = json.dumps(rec)   # a secret in the message: masked
    current.write_text(broken)
    d.refresh()                                                   # (the periodic callback: must not raise)
    msg = d.missing.object
    assert d.missing.visible and "current.json" in msg and says in msg, msg
    assert SECRET not in msg and "\n" not in msg and d.last_state is None
    assert d.halt_btn.disabled and d.flatten_btn.disabled and d.close_btn.disabled   # nothing to act on while it is unknown
    d.refresh()                                                   # it keeps refreshing: the same message, no error
    assert d.missing.visible and d.missing.object == msg
    current.write_text(good)                                      # repaired
    d.refresh()
    assert not d.missing.visible and d.last_state == "active" and not d.halt_btn.disabled


def test_a_button_pressed_after_current_json_broke_says_why(page):
    "The page was drawn on a good run; current.json breaks before the next refresh: a kill-switch button shows the error, and no repr raises."
    d, current = page
    current.write_text("{half a record")
    assert "current run unknown" in repr(d)
    d.halt_reason.value = "checking"
    assert d.do_halt() is False                                   # (was: the SwingtraderError raised in the button's callback)
    assert d.result.visible and d.result.alert_type == "danger" and "current.json" in d.result.object
    assert d.missing.visible and d.last_state is None              # the refresh after the action shows it on the page too
