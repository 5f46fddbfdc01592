"Every settings error path: one line naming the variable, the value (masked for secrets) and the fix."
import pytest
from swingtrader.config import Settings, ConfigError, env_name

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
    "SWINGTRADER_SIM_BROKER": ("ib", "use tastytrade or alpaca"),
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
    "SWINGTRADER_DRAWDOWN_WARN": ("1", "fraction of equity"),
    "SWINGTRADER_BROKER_STOPS": ("perhaps", "true or false"),
    "SWINGTRADER_POSITIONS_BETA_DELTA_BAND": ("0", "SPY shares"),
    "SWINGTRADER_POSITIONS_GREEKS_WAIT": ("-1", "seconds to wait"),
    "SWINGTRADER_BROKER_STOP_MIN_MOVE": ("-1", "smallest stop move"),
    "SWINGTRADER_CHAT_NOTIONAL_CAP": ("0", "largest value in USD"),
    "SWINGTRADER_CHAT_READ_ONLY": ("sort of", "true or false"),
    "SWINGTRADER_CHAT_CONFIRM_TTL": ("0", "seconds a confirmation"),
    "SWINGTRADER_CHAT_CHASE_STEP_SECONDS": ("0", "between two steps"),
    "SWINGTRADER_CHAT_CHASE_MAX_TICKS": ("0", "how many ticks"),
    "SWINGTRADER_CHAT_CHASE_MAX_SECONDS": ("0", "cancels"),
    "SWINGTRADER_API_PORT": ("0", "TCP port"),
    "SWINGTRADER_AGENT_TARGET_QTY": ("0", "full order size"),
    "SWINGTRADER_AGENT_SIZE_RAMP": ("0", "share of the target size"),
    "SWINGTRADER_AGENT_FEATURE_TTL": ("-1", "stay cached"),
    "SWINGTRADER_AGENT_BATCH_WINDOW": ("9", "batched over"),
    "SWINGTRADER_HEALTH_ERROR_THRESHOLD": ("-1", "failed broker calls"),
    "SWINGTRADER_HEALTH_ERROR_WINDOW": ("0", "seconds above 0"),
    "SWINGTRADER_HEALTH_AUTO_RESUME": ("sometimes", "true or false"),
    "SWINGTRADER_BROKER_STOP_HALT_WAIT": ("1", "waits for a liquidating halt"),
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
                     "alpaca_api_key", "alpaca_secret_key", "alpaca_base_url", "alpaca_data_url", "data_dir",
                     "notify_urls",   # a secret: its error path (masked value) is tested in test_notify.py
                     "dashboard_password", "lock_dir",
                     "chat_allow", "discord_token", "api_tokens", "api_host", "api_tls_cert", "api_tls_key", "chat_sandbox_data_dir"}   # checked where used (chat, order API)
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

# --- strict .env, data directory, value sources, .env.example ---------------------------------------------------
from pathlib import Path
from click.testing import CliRunner
from swingtrader.config import render_env_example, value_sources, read_dotenv, valid_range

REPO = Path(__file__).resolve().parent.parent

@pytest.mark.parametrize("content,expect", [
    (b"\x00\x01\x02SQLite garbage", ".env is a binary file"),
    (b"SWINGTRADER_SIM_SEED=7\nSWINGTRADER_SCAN_TOP=\xff\xfe\n", ".env is not UTF-8 text (byte 0xff on line 2)"),
    (b"\xef\xbb\xbfSWINGTRADER_DAILY_LOSS_HALT=0.01\n", "byte-order mark"),
    (b'SWINGTRADER_DAILY_LOSS_HALT="0.01\nSWINGTRADER_SCAN_TOP=5\n', ".env line 1 (SWINGTRADER_DAILY_LOSS_HALT=…) cannot be read"),
    (b"SWINGTRADER_SCAN_TOP=5\nSWINGTRADER_DAILY_LOSS_HALT='0.01\n", ".env line 2 (SWINGTRADER_DAILY_LOSS_HALT=…) cannot be read"),
])
def test_unreadable_dotenv_is_one_line_naming_the_file(clean_env, tmp_path, content, expect):
    (tmp_path/".env").write_bytes(content)
    with pytest.raises(ConfigError) as e: Settings.load()
    assert len(e.value.lines) == 1 and expect in e.value.lines[0], e.value.lines
    with pytest.raises(ConfigError): Settings()          # direct construction is just as strict
    Settings(_env_file=None)                              # ...and skips .env when told to

def test_unterminated_quote_never_leaks_the_value(clean_env, tmp_path):
    (tmp_path/".env").write_text('TT_CLIENT_SECRET="cs-SeCrEt-99\n')
    with pytest.raises(ConfigError) as e: Settings.load()
    assert "cs-SeCrEt" not in str(e.value) and "TT_CLIENT_SECRET=…" in str(e.value)

def test_quote_swallowing_a_later_setting_is_caught(clean_env, tmp_path):
    (tmp_path/".env").write_text('SWINGTRADER_LIVE_CONFIRM="no\nSWINGTRADER_DAILY_LOSS_HALT=0.01\nend"\n')
    with pytest.raises(ConfigError, match=r"line 2 \(SWINGTRADER_DAILY_LOSS_HALT\) is swallowed"): Settings.load()

def test_clean_dotenv_still_loads(clean_env, tmp_path):
    (tmp_path/".env").write_text('# comment\nexport SWINGTRADER_DAILY_LOSS_HALT="0.02"\n\nSWINGTRADER_SCAN_TOP=7 # inline\n')
    s = Settings.load()
    assert (s.daily_loss_halt, s.scan_top) == (0.02, 7)

def test_data_dir_that_is_a_file(clean_env, tmp_path):
    (tmp_path/"afile").write_text("x")
    clean_env.setenv("SWINGTRADER_DATA_DIR", str(tmp_path/"afile"))
    with pytest.raises(ConfigError) as e: Settings.load()
    assert len(e.value.lines) == 1 and "is a file, not a directory" in e.value.lines[0]
    clean_env.setenv("SWINGTRADER_DATA_DIR", str(tmp_path/"not-yet"))
    assert Settings.load().data_dir == tmp_path/"not-yet"

@pytest.mark.parametrize("var,value", [("SWINGTRADER_SIM_SPEED", "inf"), ("SWINGTRADER_SIM_SEED", "-1"), ("SWINGTRADER_SIM_CASH", "1e400"),
                                       ("SWINGTRADER_WARMUP_BARS", "1e20"), ("SWINGTRADER_CONNECTIVITY_TIMEOUT", "inf"),
                                       ("SWINGTRADER_RECONCILE_INTERVAL", "inf")])
def test_issue_values_are_refused_with_range(clean_env, var, value):
    clean_env.setenv(var, value)
    with pytest.raises(ConfigError) as e: Settings.load()
    assert len(e.value.lines) == 1 and e.value.lines[0].startswith(f"{var}={value!r} is invalid") and "valid range" in e.value.lines[0]

def test_safety_intervals_are_finite():
    for f in ("connectivity_timeout", "reconcile_interval"):
        assert "<=" in valid_range(f).split("value")[1], f

def test_value_sources(clean_env, tmp_path):
    (tmp_path/".env").write_text("SWINGTRADER_SCAN_TOP=7\nSWINGTRADER_SIM_SEED=1\n")
    clean_env.setenv("SWINGTRADER_SIM_SEED", "2")
    src = value_sources()
    assert (src["SWINGTRADER_SCAN_TOP"], src["SWINGTRADER_SIM_SEED"], src["SWINGTRADER_BROKER"]) == (".env", "environment", "default")
    assert Settings.load().sim_seed == 2
    from swingtrader.cli import main
    r = CliRunner().invoke(main, ["config"])
    assert r.exit_code == 0, r.output
    line = {l.split()[0]: l for l in r.output.splitlines() if l.strip()}
    assert line["SWINGTRADER_SCAN_TOP"].endswith("(.env)") and line["SWINGTRADER_SIM_SEED"].endswith("(environment)")
    assert line["SWINGTRADER_BROKER"].endswith("(default)")

def test_env_example_is_up_to_date():
    committed = (REPO/".env.example").read_text()
    assert committed == render_env_example(), ".env.example is out of date: run `swingtrader config --env-example > .env.example`"

def test_env_example_names_every_setting_and_its_defaults_load(clean_env, tmp_path):
    text = render_env_example()
    for f in Settings.model_fields: assert f"\n#{env_name(f)}=" in text, f
    # uncommenting every line that has a default gives exactly the default settings
    lines = [l[1:] if l.startswith("#") and "=" in l and not l.startswith("# ") and not l.endswith("=") else l for l in text.splitlines()]
    (tmp_path/".env").write_text("\n".join(lines) + "\n")
    assert read_dotenv(tmp_path/".env")
    assert Settings.load() == Settings(_env_file=None)

def test_env_example_from_the_command(clean_env):
    from swingtrader.cli import main
    r = CliRunner().invoke(main, ["config", "--env-example"])
    assert r.exit_code == 0 and r.output == render_env_example()
