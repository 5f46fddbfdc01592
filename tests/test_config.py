"Every settings error path: one line naming the variable, the value (masked for secrets) and the fix."
import pytest
from swingtrader.config import Settings, ConfigError, env_name, SECRET_FIELDS

# an invalid value for each validated setting, and a fragment of the fix we expect to read
INVALID = {
    "SWINGTRADER_BROKER": ("ibkr", "set it to sim"),
    "SWINGTRADER_ENVIRONMENT": ("staging", "use sandbox or production"),
    "TT_ACCOUNT_NUMBER": ("not an account", "account numbers"),
    "SWINGTRADER_LOG_LEVEL": ("LOUD", "DEBUG, INFO"),
    "SWINGTRADER_RISK_PER_TRADE": ("0.2", "between 0 and 0.05"),
    "SWINGTRADER_POSITION_CAP": ("1.5", "between 0 and 1"),
    "SWINGTRADER_SECTOR_CAP": ("-1", "between 0 and 1"),
    "SWINGTRADER_CORRELATED_CAP": ("0", "between 0 and 1"),
    "SWINGTRADER_CORRELATION_THRESHOLD": ("1", "between 0 and 1"),
    "SWINGTRADER_CORRELATION_LOOKBACK": ("3", "at least 10"),
    "SWINGTRADER_DAILY_LOSS_HALT": ("abc", "fraction of equity"),
    "SWINGTRADER_WEEKLY_LOSS_HALT": ("0.9", "between 0 and 0.5"),
    "SWINGTRADER_MAX_LOSING_STREAK": ("0", "at least 1"),
    "SWINGTRADER_CONNECTIVITY_TIMEOUT": ("-5", "seconds"),
    "SWINGTRADER_ACCOUNT_TYPE": ("ira", "cash, margin or experienced"),
    "SWINGTRADER_LIQUIDATE_ON_HALT": ("maybe", "true or false"),
    "SWINGTRADER_DAY_TRADE_GUARD": ("perhaps", "true or false"),
    "SWINGTRADER_RECONCILE_INTERVAL": ("0", "seconds between"),
    "SWINGTRADER_RECONCILE_TOLERANCE": ("2", "fraction of position value"),
    "SWINGTRADER_TIMEFRAME": ("5 minutes", "1m, 5m"),
    "SWINGTRADER_MACD_FAST": ("1", "at least 2"),
    "SWINGTRADER_MACD_SLOW": ("x", "larger than"),
    "SWINGTRADER_MACD_SIGNAL": ("0", "at least 2"),
    "SWINGTRADER_TREND_EMA": ("1", "at least 2"),
    "SWINGTRADER_ATR_PERIOD": ("1", "at least 2"),
    "SWINGTRADER_ATR_STOP_MULT": ("0", "positive multiple"),
    "SWINGTRADER_WARMUP_BARS": ("-1", "at least"),
    "SWINGTRADER_BREAKEVEN_R": ("-1", "initial risk"),
    "SWINGTRADER_FRACTIONAL": ("sometimes", "true or false"),
    "SWINGTRADER_DRY_RUN_FIRST": ("nah", "true or false"),
    "SWINGTRADER_SCAN_MIN_PRICE": ("0", "price in USD"),
    "SWINGTRADER_SCAN_MAX_PRICE": ("free", "price in USD"),
    "SWINGTRADER_SCAN_MIN_AVG_VOLUME": ("-1", "average daily volume"),
    "SWINGTRADER_SCAN_TOP": ("1000", "between 1 and 200"),
    "SWINGTRADER_SIM_SEED": ("seed", "whole number"),
    "SWINGTRADER_SIM_SYMBOLS": ("0", "between 1 and 500"),
    "SWINGTRADER_SIM_CASH": ("-100", "starting cash"),
    "SWINGTRADER_SIM_SPEED": ("0", "simulated seconds"),
    "SWINGTRADER_BROKER_STOPS": ("perhaps", "true or false"),
    "SWINGTRADER_BROKER_STOP_MIN_MOVE": ("-1", "smallest stop move"),
}

@pytest.mark.parametrize("var", sorted(INVALID))
def test_each_invalid_value_is_one_clear_line(clean_env, var):
    value, fix = INVALID[var]
    clean_env.setenv(var, value)
    with pytest.raises(ConfigError) as e: Settings.load()
    lines = e.value.lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{var}={value!r} is invalid"), lines[0]
    assert fix in lines[0], lines[0]

def test_every_validated_field_is_covered():
    "A new setting with constraints must get an error-path test above."
    unconstrained = {"live_confirm", "tt_client_secret", "tt_refresh_token", "tt_api_url", "tt_streamer_url",
                     "alpaca_api_key", "alpaca_secret_key", "alpaca_base_url", "alpaca_data_url", "data_dir"}
    assert {env_name(f) for f in Settings.model_fields if f not in unconstrained} == set(INVALID)

def test_defaults_run_on_the_simulator(clean_env):
    s = Settings.load()
    assert (s.broker, s.environment, s.missing_credentials()) == ("sim", "sandbox", [])

def test_dotenv_is_read(clean_env, tmp_path):
    (tmp_path/".env").write_text("SWINGTRADER_BROKER=alpaca\nALPACA_API_KEY=k-123\n")
    s = Settings.load()
    assert (s.broker, s.environment, s.missing_credentials()) == ("alpaca", "paper", ["ALPACA_SECRET_KEY"])

def test_typo_in_dotenv_is_caught(clean_env, tmp_path):
    (tmp_path/".env").write_text("SWINGTRADER_RISK_PER_TRAD=0.01\n")
    with pytest.raises(ConfigError, match="did you mean SWINGTRADER_RISK_PER_TRADE"): Settings.load()

@pytest.mark.parametrize("broker,env", [("tastytrade", "paper"), ("tastytrade", "live"), ("alpaca", "sandbox"),
                                        ("alpaca", "production"), ("sim", "production")])
def test_environment_must_fit_broker(clean_env, broker, env):
    clean_env.setenv("SWINGTRADER_BROKER", broker); clean_env.setenv("SWINGTRADER_ENVIRONMENT", env)
    with pytest.raises(ConfigError, match="does not apply to broker"): Settings.load(live_confirm="yes")

@pytest.mark.parametrize("broker,env", [("tastytrade", "production"), ("alpaca", "live")])
@pytest.mark.parametrize("confirm", [None, "", "no", "true", "y"])
def test_real_money_needs_explicit_yes(clean_env, broker, env, confirm):
    clean_env.setenv("SWINGTRADER_BROKER", broker); clean_env.setenv("SWINGTRADER_ENVIRONMENT", env)
    if confirm is not None: clean_env.setenv("SWINGTRADER_LIVE_CONFIRM", confirm)
    with pytest.raises(ConfigError, match="SWINGTRADER_LIVE_CONFIRM is not 'yes'"): Settings.load()
    clean_env.setenv("SWINGTRADER_LIVE_CONFIRM", "yes")
    assert Settings.load().environment == env

@pytest.mark.parametrize("var,url", [("TT_API_URL", "https://api.tastyworks.com"), ("TT_STREAMER_URL", "wss://streamer.tastyworks.com"),  # production hosts: validated, never dialled
                                     ("ALPACA_BASE_URL", "https://api.alpaca.markets")])  # production host: validated, never dialled
def test_override_cannot_point_sandbox_at_production(clean_env, var, url):
    clean_env.setenv("SWINGTRADER_BROKER", "alpaca" if var.startswith("ALPACA") else "tastytrade")
    clean_env.setenv(var, url)
    with pytest.raises(ConfigError, match="points at a production host"): Settings.load()

@pytest.mark.parametrize("var,url", [("TT_API_URL", "api.cert.tastyworks.com"), ("TT_STREAMER_URL", "https://x"),
                                     ("ALPACA_DATA_URL", "ftp://data")])
def test_bad_urls(clean_env, var, url):
    clean_env.setenv(var, url)
    with pytest.raises(ConfigError, match="is not a usable URL"): Settings.load()

def test_cross_field_rules(clean_env):
    clean_env.setenv("SWINGTRADER_MACD_FAST", "30"); clean_env.setenv("SWINGTRADER_SCAN_MAX_PRICE", "5")
    with pytest.raises(ConfigError) as e: Settings.load()
    text = str(e.value)
    assert "SWINGTRADER_MACD_SLOW=26 must be larger than SWINGTRADER_MACD_FAST=30" in text
    assert "SWINGTRADER_SCAN_MAX_PRICE=5.0 must be above" in text

def test_several_problems_reported_together(clean_env):
    clean_env.setenv("SWINGTRADER_RISK_PER_TRADE", "9"); clean_env.setenv("SWINGTRADER_SCAN_TOP", "0")
    clean_env.setenv("SWINGTRADER_BOGUS", "1")
    with pytest.raises(ConfigError) as e: Settings.load()
    assert len(e.value.lines) == 3

def test_missing_credentials_error_names_variables(clean_env):
    clean_env.setenv("SWINGTRADER_BROKER", "tastytrade"); clean_env.setenv("TT_REFRESH_TOKEN", "   ")
    s = Settings.load()
    with pytest.raises(ConfigError) as e: s.require_credentials()
    assert [l.split()[0] for l in e.value.lines] == ["TT_CLIENT_SECRET", "TT_REFRESH_TOKEN"]

def test_settings_are_immutable(clean_env):
    s = Settings.load()
    with pytest.raises(Exception): s.broker = "tastytrade"
