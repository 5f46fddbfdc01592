"""bench/bench_order_path.py runs on a short period and prints every part of an order's path, their sum and the budget."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_order_path_bench_prints_the_parts_and_the_budget():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_order_path.py"), "--days", "10", "--n", "200"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    for part in ("sizer", "RiskGuard.evaluate", "ledger: intent, fill, submit (in memory)", "simulated account: the fill", "sum of the parts"):
        assert re.search(rf"^{re.escape(part)}\s+[\d.]+\s+[\d.]+", text, re.M), (part, text)
    m = re.search(r"per order now (\d+) us; budget at 0\.5x (-?\d+) us", text)
    assert m and int(m[1]) > 0, text
