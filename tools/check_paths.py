"""Fail when a tracked file names an absolute path outside the repository (/work/..., /home/..., /root/...,
/tmp/..., /Users/...): tests, notebooks and tools must find what they read relative to the file that reads it
(Path(__file__).parent, tmp_path, tempfile), so the clone works on any machine with nothing beside it.
Usage: python tools/check_paths.py   (prints file:line: text for each hit, exit 1 when there is one)"""
import re, subprocess, sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
SCOPE = ("tests/", "nbs/", "swingtrader/", "tools/", "bench/", "scheduled/", "dashboards/", ".ci/", "Makefile", "pyproject.toml")
# an absolute path: one of these roots right after a quote, space, `=`, `(` or line start -- not inside a URL or a relative path
ABS = re.compile(r"""(?:^|(?<=[\s"'`=(:,\[]))/(?:work|home|root|tmp|Users|mnt/data)/[\w.~-]""")
SELF = Path(__file__).resolve()

def tracked() -> list[Path]:
    try: out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError): return [p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts]
    return [root/f for f in out.split("\0") if f]

def hits():
    for p in tracked():
        rel = p.relative_to(root).as_posix()
        if not rel.startswith(SCOPE) or p.resolve() == SELF or not p.is_file(): continue
        try: text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError: continue
        for i, line in enumerate(text.splitlines(), 1):
            if ABS.search(line): yield f"{rel}:{i}: {line.strip()[:160]}"

if __name__ == "__main__":
    found = list(hits())
    for h in found: print(h, file=sys.stderr)
    if found: sys.exit(f"check-paths: {len(found)} line(s) name an absolute path outside the repository: "
                      "find the file relative to the one that reads it (Path(__file__).parent / tmp_path / tempfile).")
    print("check-paths: no absolute paths outside the repository")
