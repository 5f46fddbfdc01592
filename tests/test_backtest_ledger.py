"""The backtest reads its fills through the ledger's public `fill_history` (no SQL of its own): the frame it reports is the
ledger's fills, in recording order, with the same values and times."""
from datetime import datetime
from decimal import Decimal

import pandas as pd

from swingtrader.config import Settings
from swingtrader.backtest import Backtest

def test_backtest_fills_are_the_ledgers():
    bt = Backtest.from_seed(Settings(warmup_bars=30), symbols=4, start="2026-03-02", end="2026-03-06", seed=5)
    res = bt.run()
    led = bt.ledger.fills()
    assert len(res.fills) == len(led) > 0
    assert res.fills.fill_id.tolist() == [f.fill_id for f in led]
    assert res.fills.qty.tolist() == [f.qty for f in led] and all(isinstance(q, Decimal) for q in res.fills.qty)
    assert res.fills.price.tolist() == [f.price for f in led]
    assert res.fills.side.tolist() == [f.side.value for f in led]
    for c in ("time", "recorded_at"): assert pd.api.types.is_datetime64_any_dtype(res.fills[c]) and str(res.fills[c].dt.tz) == "UTC"
    assert [t.to_pydatetime() for t in res.fills.time] == [f.time for f in led]
    assert list(res.fills.columns[:9]) == ["fill_id", "client_key", "symbol", "side", "qty", "price", "commission", "time", "recorded_at"]
    assert isinstance(res.fills.time.iloc[0], pd.Timestamp) and isinstance(led[0].time, datetime)
