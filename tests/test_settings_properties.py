"""Property test over EVERY numeric setting (enumerated from the model, so a new one is covered automatically):
NaN, ±inf, negative, huge and non-UTF-8 values are refused with one line naming the variable, the value and the
valid range, never a traceback; values inside the range are accepted."""
import math, os
from decimal import Decimal

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from swingtrader.config import NUMERIC_FIELDS, ConfigError, Settings, env_name, valid_range

BAD_TEXT = st.one_of(
    st.sampled_from(["nan", "NaN", "-nan", "inf", "+inf", "-inf", "Infinity", "-Infinity", "1e400", "-1e400", "1e309"]),
    st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False).map(repr),          # negative
    st.integers(max_value=-1).map(str),
    st.floats(min_value=1e13, allow_nan=False, allow_infinity=False).map(repr),           # huge (above every bound)
    st.integers(min_value=10**13, max_value=10**400).map(str),
    st.binary(min_size=1, max_size=8).filter(lambda b: not _utf8(b) and b"\0" not in b).map(lambda b: b.decode("utf-8", "surrogateescape")),
)

def _utf8(b):
    try: b.decode("utf-8"); return True
    except UnicodeDecodeError: return False

def _clean():
    for k in list(os.environ):
        if k.startswith(("SWINGTRADER_", "TT_", "ALPACA_")): del os.environ[k]

def _bounds(field):
    lo = hi = None
    for m in Settings.model_fields[field].metadata:
        lo = getattr(m, "gt", None) if getattr(m, "gt", None) is not None else getattr(m, "ge", None) if getattr(m, "ge", None) is not None else lo
        hi = getattr(m, "lt", None) if getattr(m, "lt", None) is not None else getattr(m, "le", None) if getattr(m, "le", None) is not None else hi
    return lo, hi

def test_every_numeric_setting_has_a_finite_range():
    assert len(NUMERIC_FIELDS) >= 20
    for f in NUMERIC_FIELDS:
        lo, hi = _bounds(f)
        assert lo is not None and hi is not None, f"{env_name(f)} needs both a lower and an upper bound"
        assert lo >= 0 and math.isfinite(float(hi)) and float(hi) < 1e13, f
        below, above = valid_range(f).split("value")
        assert below.strip().endswith(("<", "<=")) and above.strip().startswith(("<", "<=")), valid_range(f)

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(NUMERIC_FIELDS), value=BAD_TEXT)
def test_bad_numbers_are_one_clear_line(monkeypatch, tmp_path, field, value):
    _clean(); monkeypatch.chdir(tmp_path)
    var = env_name(field)
    os.environ[var] = value
    try:
        with pytest.raises(ConfigError) as e: Settings.load()
    finally: del os.environ[var]
    lines = e.value.lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{var}=") and "is invalid" in lines[0], lines[0]
    assert f"valid range {valid_range(field)}" in lines[0], lines[0]
    assert "Traceback" not in lines[0] and len(lines[0]) < 400
    lines[0].encode("utf-8")          # printable: no lone surrogates reach the terminal

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(NUMERIC_FIELDS), frac=st.floats(min_value=0.01, max_value=0.99))
def test_values_inside_the_range_are_accepted(monkeypatch, tmp_path, field, frac):
    _clean(); monkeypatch.chdir(tmp_path)
    lo, hi = _bounds(field)
    ann = Settings.model_fields[field].annotation
    x = float(lo) + (float(hi) - float(lo)) * frac
    text = str(int(x)) if int in getattr(ann, "__args__", (ann,)) else repr(x)
    if int in getattr(ann, "__args__", (ann,)) and not (float(lo) < int(x) < float(hi)): return
    kw = {field: text}
    # keep the cross-field rules satisfied: they have their own tests
    if field == "macd_fast": kw["macd_slow"] = str(int(x) + 1); kw["warmup_bars"] = str(int(x) + 1)
    if field == "macd_slow" and int(x) <= 12: return
    if field in ("macd_slow",): kw["warmup_bars"] = text
    if field == "warmup_bars" and int(x) < 26: return
    if field == "scan_min_price": kw["scan_max_price"] = "1000000"
    if field == "scan_max_price" and x <= 10: return
    s = Settings(_env_file=None, **kw)
    assert float(getattr(s, field)) == pytest.approx(float(Decimal(text)))

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(NUMERIC_FIELDS), value=BAD_TEXT)
def test_bad_numbers_in_dotenv_through_the_command(monkeypatch, tmp_path, field, value):
    "The same values written into .env reach the user as one `error:` line and exit code 2."
    from swingtrader.cli import main
    _clean(); monkeypatch.chdir(tmp_path)
    (tmp_path/".env").write_bytes(f"{env_name(field)}={value}\n".encode("utf-8", "surrogateescape"))
    r = CliRunner().invoke(main, ["config"])
    assert r.exit_code == 2, (r.output, r.exception)
    err = [l for l in r.output.splitlines() if l.startswith("error:")]
    assert len(err) == 1, r.output
    assert env_name(field) in err[0] or ".env" in err[0], err[0]
    assert "Traceback" not in r.output

ALL_FIELDS = tuple(Settings.model_fields)

@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(ALL_FIELDS),
       raw=st.binary(min_size=1, max_size=8).filter(lambda b: not _utf8(b) and b"\0" not in b),
       prefix=st.sampled_from(["", "a", "https://", "1"]))
def test_non_utf8_is_refused_for_every_setting(monkeypatch, tmp_path, field, raw, prefix):
    "Any setting, numeric or not, refuses a non-UTF-8 value in one line naming it (secrets stay masked)."
    from swingtrader.config import SECRET_FIELDS
    _clean(); monkeypatch.chdir(tmp_path)
    var = env_name(field)
    os.environ[var] = prefix + raw.decode("utf-8", "surrogateescape") + "zz-secret-zz"
    try:
        with pytest.raises(ConfigError) as e: Settings.load()
    finally: del os.environ[var]
    lines = e.value.lines
    assert len(lines) == 1 and lines[0].startswith(f"{var}="), lines
    lines[0].encode("utf-8")
    if field in SECRET_FIELDS: assert "zz-secret-zz" not in lines[0]
