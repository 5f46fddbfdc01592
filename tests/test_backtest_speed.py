"""Backtest fast paths change nothing: a seed's trades, fills, skipped signals, equity curve and orders are pinned (digests
taken before any speed work), for the default backtest in close and quote fill modes, with binding caps and with the kill switch."""
import hashlib

import pytest

from swingtrader.config import Settings
from swingtrader.backtest import Backtest


def digest(bt, res) -> dict:
    "Short sha256 digests of what a backtest produced (the trades, fills, skipped signals, equity curve and orders)."
    parts = dict(trades=res.trades.drop(columns=["return"]).to_csv(index=False),
                 fills=res.fills[["symbol", "side", "qty", "price", "commission", "time"]].astype(str).to_csv(index=False),
                 skipped=res.skipped[["time", "symbol", "action", "why"]].astype(str).to_csv(index=False),
                 equity=res.equity.round(6).to_csv(),
                 orders="\n".join(f"{o.symbol} {o.side} {o.qty} {o.status}" for o in bt.ledger.orders()))
    return {k: hashlib.sha256(v.encode()).hexdigest()[:16] for k, v in parts.items()}


CAPS = dict(position_cap=0.02, sector_cap=0.03, correlated_cap=0.04, risk_per_trade=0.05)
CASES = {
    "close": (dict(), dict(symbols=8, seed=7, fill_at="close"), 218, 437, 0, 100491.59,
              {'trades': '36c147f33bc62eb7', 'fills': 'ece4951b718542ae', 'skipped': '57e1603da4d06637', 'equity': '3fe11aac6af63de8', 'orders': '4c6feaa494dab50e'}),
    "quote": (dict(), dict(symbols=8, seed=7, fill_at="quote"), 207, 415, 0, 99541.65,
              {'trades': '96d31aff8af30789', 'fills': '6de182a9903e8926', 'skipped': '57e1603da4d06637', 'equity': '355a02bc3666a18f', 'orders': '45ccc1309fa4e423'}),
    "caps": (CAPS, dict(symbols=12, seed=3, fill_at="quote"), 281, 564, 2, 99068.34,
             {'trades': '66b657bddbeeffb2', 'fills': 'cce7d4bbdc2d2d89', 'skipped': '0dd5bd15cfb9b1a3', 'equity': '32ecbd14257d8fd8', 'orders': '9af2f0ef37673580'}),
    "kill": (dict(), dict(symbols=12, seed=3, kill_switch=True), 20, 40, 275, 99643.44,
             {'trades': 'a65409649730ba44', 'fills': 'da4ea5012f57f4cd', 'skipped': 'ccd8ebe0d510f32a', 'equity': 'faa4fb0754b29eda', 'orders': 'f65b2ad29ec0376d'}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_pinned_default_backtest(case):
    limits, kw, n_trades, n_fills, n_skipped, final, want = CASES[case]
    bt = Backtest.from_seed(Settings(warmup_bars=30, **limits), start="2026-03-02", end="2026-03-20", **kw)
    res = bt.run()
    assert (len(res.trades), len(res.fills), len(res.skipped)) == (n_trades, n_fills, n_skipped)
    assert res.summary()["final_equity"] == final
    assert digest(bt, res) == want
    assert bt.ledger.check() == []
