"""Fail when `nbdev-clean` or `nbdev-export` would change anything, when README.md is stale, or when the
packaged scheduled notebooks (swingtrader/scheduled/) differ from the ones people edit (scheduled/).

Runs both tools and compares file hashes before and after, so it works in a fresh clone and
in a working tree with uncommitted edits alike. Files the tools rewrite are left rewritten:
commit them."""
import hashlib, subprocess, sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]

def snapshot():
    files = sorted([*root.glob("nbs/**/*.ipynb"), *root.glob("swingtrader/**/*.py")])
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files
            if ".ipynb_checkpoints" not in f.parts}

def changed(before, after): return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))

failed = False
for tool, what, fix in [
    ("nbdev-clean", "notebooks are not clean", "run `nbdev-clean` and commit the notebooks"),
    ("nbdev-export", "the package is out of sync with the notebooks", "edit nbs/, run `nbdev-export` and commit swingtrader/ with them"),
]:
    before = snapshot()
    subprocess.run([str(Path(sys.executable).parent/tool)], cwd=root, check=True)
    diff = changed(before, snapshot())
    if diff:
        failed = True
        print(f"check-sync: {what} ({tool} changed {', '.join(diff)}): {fix}.", file=sys.stderr)
for tool in ("readme.py", "sync_scheduled.py"):
    r = subprocess.run([sys.executable, str(root/"tools"/tool), "--check"], cwd=root)
    if r.returncode: failed = True
if failed: sys.exit(1)
print("check-sync: notebooks clean, package in sync, README and scheduled notebooks up to date")
