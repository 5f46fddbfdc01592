"Secrets never leak: not into repr, str, summaries, errors, logs or CLI output."
import io, logging, subprocess, sys, os
from pathlib import Path
import pytest
from swingtrader.config import Settings, ConfigError, SECRET_FIELDS, env_name
from swingtrader.log import setup_logging, scrub

SECRETS = {"TT_CLIENT_SECRET": "cs-SeCrEt-1111", "TT_REFRESH_TOKEN": "rt-SeCrEt-2222",
           "ALPACA_API_KEY": "ak-SeCrEt-3333", "ALPACA_SECRET_KEY": "sk-SeCrEt-4444",
           "SWINGTRADER_NOTIFY_URLS": "json://127.0.0.1:9/hook/nu-SeCrEt-5555",
           "SWINGTRADER_DASHBOARD_PASSWORD": "pw-SeCrEt-6666-long", "SWINGTRADER_DISCORD_TOKEN": "dt-SeCrEt-7777"}

def _assert_clean(text):
    for v in SECRETS.values(): assert v not in text, f"secret {v[:3]}… leaked: {text[:200]}"

def test_secret_fields_are_the_credentials():
    assert {env_name(f) for f in SECRET_FIELDS} == set(SECRETS)

def test_repr_str_summary(clean_env):
    for k, v in SECRETS.items(): clean_env.setenv(k, v)
    s = Settings.load()
    _assert_clean(repr(s)); _assert_clean(str(s)); _assert_clean(str(s.summary())); _assert_clean(str(s.model_dump()))
    assert sorted(s.secret_values()) == sorted(SECRETS.values())

def test_invalid_secret_value_is_masked_in_errors(clean_env):
    # a secret that fails validation elsewhere in the same load must still not be echoed
    for k, v in SECRETS.items(): clean_env.setenv(k, v)
    clean_env.setenv("SWINGTRADER_BROKER", "nope")
    with pytest.raises(ConfigError) as e: Settings.load()
    _assert_clean(str(e.value)); _assert_clean(repr(e.value))

def test_logs_scrub_values_args_and_tracebacks(clean_env):
    for k, v in SECRETS.items(): clean_env.setenv(k, v)
    s = Settings.load()
    buf = io.StringIO()
    setup_logging(s, stream=buf)
    log = logging.getLogger("swingtrader.test")
    log.info("token %s and %s", SECRETS["TT_REFRESH_TOKEN"], SECRETS["ALPACA_SECRET_KEY"])
    log.info("headers={'Authorization': 'Bearer eyJ.very.long-token'}")
    try: raise ValueError(f"refresh failed for {SECRETS['TT_CLIENT_SECRET']}")
    except ValueError: log.exception("boom")
    out = buf.getvalue()
    _assert_clean(out)
    assert "eyJ.very.long-token" not in out and "ValueError" in out and out.count("********") >= 4

@pytest.mark.parametrize("text", ['{"access_token":"abc.def","expires_in":900}', "auth-token: Bearer abc.def",
                                  "client_secret=abc.def&refresh_token=abc.def", "APCA-API-SECRET-KEY: abc.def"])
def test_token_shapes_are_scrubbed(text):
    assert "abc.def" not in scrub(text)

def test_cli_config_never_prints_secrets(clean_env, tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_"))}, **SECRETS}
    r = subprocess.run([str(Path(sys.executable).parent/"swingtrader"), "config"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    _assert_clean(r.stdout + r.stderr)
    assert "TT_CLIENT_SECRET" in r.stdout and "********" in r.stdout
