"""The dashboard's "Positions & greeks" tab against the emulator: an option bought through our client shows up with
greeks, and the β-weighted delta totals add up; without a tastytrade source the tab is disabled with a reason."""
from __future__ import annotations
import math

import pytest

from swingtrader.config import Settings
from swingtrader.models import OrderRequest, OrderStatus

pytestmark = pytest.mark.timeout(120)


def test_positions_and_greeks_tab_reads_the_emulator(emulator, tt_settings, tt_client, tmp_path):
    from swingtrader.dashboard_page import Dashboard
    dv = emulator.emu.derivatives
    u = dv.underlyings()[0]
    opt = sorted((o for o in dv.option_chain(u) if o.call_put == "C" and o.expiry == dv.expirations()[2]),
                 key=lambda o: abs(float(o.strike) - dv.spot(u)))[0].occ
    fut = dv.futures()[0].symbol
    for req in (OrderRequest(opt, "buy", qty=3), OrderRequest(fut, "sell", qty=1)):
        assert tt_client.submit(req).status is OrderStatus.FILLED
    st = tt_settings.model_copy(update={"data_dir": tmp_path})
    d = Dashboard(st)
    d.greeks_tab()
    assert d.greeks_btn.disabled is False
    assert d.refresh_greeks(wait=10.0) is True, d.greeks_note.object
    df = d.greeks_table.value.set_index("symbol")
    assert {opt, fut} <= set(df.index)
    row = df.loc[opt]
    assert (row["quantity"], row["multiplier"], row["asset_type"]) == (3, 100, "Equity Option")
    assert 0 < row["delta"] < 1 and row["gamma"] > 0 and row["theta"] < 0 and row["vega"] > 0
    assert (df.loc[fut, "quantity"], df.loc[fut, "multiplier"], df.loc[fut, "delta"]) == (-1, 50, 1.0)
    by_root = d.greeks_by_root.value.set_index("root")
    assert math.isclose(by_root["beta_delta"].sum(), df["beta_delta"].sum(), rel_tol=1e-6, abs_tol=1e-3)
    total = df["beta_delta"].sum()
    assert f"{total:,.1f}" in d.greeks_totals.object and "SPY shares" in d.greeks_totals.object


def test_tab_is_disabled_with_a_reason_without_tastytrade(tmp_path):
    from swingtrader.dashboard_page import Dashboard
    d = Dashboard(Settings(_env_file=None, data_dir=tmp_path))
    d.greeks_tab()
    assert d.greeks_btn.disabled is True and "SWINGTRADER_BROKER" in d.greeks_note.object
    assert d.refresh_greeks() is False and d.greeks_table.value.empty
    d = Dashboard(Settings(_env_file=None, data_dir=tmp_path, broker="tastytrade", TT_CLIENT_SECRET="x"))
    assert d.greeks_tab() is d.greeks_tab() and d.greeks_btn.disabled is True and "TT_REFRESH_TOKEN" in d.greeks_note.object
