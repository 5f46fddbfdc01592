"""Copy the scheduled notebooks people edit (scheduled/*.ipynb) into the package (swingtrader/scheduled/),
where the installed `swingtrader daily` / `smoke --report` load them with importlib.resources.
Usage: python tools/sync_scheduled.py [--check]   (--check: exit 1 and name the files that differ)"""
import shutil, sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
src, dst = root/"scheduled", root/"swingtrader"/"scheduled"

def differ() -> list[str]:
    "Relative names of notebooks that are missing, extra or different between scheduled/ and swingtrader/scheduled/."
    a = {p.name: p.read_bytes() for p in src.glob("*.ipynb")}
    b = {p.name: p.read_bytes() for p in dst.glob("*.ipynb")}
    return sorted(n for n in a.keys() | b.keys() if a.get(n) != b.get(n))

def sync():
    dst.mkdir(exist_ok=True)
    for n in differ():
        if (src/n).exists(): shutil.copyfile(src/n, dst/n)
        else: (dst/n).unlink()

if __name__ == "__main__":
    if "--check" in sys.argv:
        d = differ()
        if d: sys.exit(f"scheduled/ and swingtrader/scheduled/ differ ({', '.join(d)}): run `python tools/sync_scheduled.py` and commit both.")
    else:
        sync()
        print(f"synced {src.relative_to(root)}/*.ipynb -> {dst.relative_to(root)}/")
