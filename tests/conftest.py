import os, pytest

@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    "No swingtrader/broker variables and no .env: each test states exactly what it sets."
    for k in list(os.environ):
        if k.startswith(("SWINGTRADER_", "TT_", "ALPACA_")): monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    return monkeypatch
