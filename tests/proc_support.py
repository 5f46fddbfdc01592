"Helpers for tests that run swingtrader in other processes: a clean environment and a bounded wait on a condition."
import os, time

def env(tmp_path, data="data", **kw) -> dict:
    "This process's environment without any swingtrader/broker setting, with a data and a lock directory under `tmp_path`."
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWINGTRADER_", "TT_", "ALPACA_", "_SWINGTRADER_"))}
    return {**base, "SWINGTRADER_DATA_DIR": str(tmp_path/data), "SWINGTRADER_LOCK_DIR": str(tmp_path/"locks"), **kw}

def wait_for(cond, timeout=240.0, what="condition"):
    "Poll `cond` until it returns something truthy (a generous bound: the machine is shared)."
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if (v := cond()): return v
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
