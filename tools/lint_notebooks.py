"""Fix ruff's findings in the generated package at their source: the notebooks' export cells.

    python tools/lint_notebooks.py [MODULE.py ...]     # default: every module ruff flags

ruff runs `--fix` on a scratch copy of each flagged module; every `# %% <notebook> #<cell id>` chunk that
changed is written back into that cell of the notebook (its `#|` directives kept), so `nbdev-export`
reproduces the fixed module. Findings ruff cannot fix are listed for a person. Run `nbdev-export` and
`nbdev-test` on the touched notebooks afterwards: an import that only a lesson used needs its own import
cell in the notebook."""
import json, re, shutil, subprocess, sys, tempfile
from pathlib import Path

import nbformat

root = Path(__file__).resolve().parents[1]
RULES = "F401,F841,E9,F63,F7,F82"
MARK = re.compile(r"^# %% (\S+\.ipynb) #(\w+)\s*$")
ruff = str(Path(sys.executable).parent/"ruff")

def findings(paths):
    r = subprocess.run([ruff, "check", "--select", RULES, "--ignore", "F811", "--output-format", "json", *paths],
                       cwd=root, capture_output=True, text=True)
    return json.loads(r.stdout or "[]")

def chunks(text:str) -> dict:
    "Cell id -> (notebook, code) for each exported chunk of a generated module."
    out, cur, buf = {}, None, []
    for line in text.splitlines() + ["# %% end #end"]:
        m = MARK.match(line)
        if m or line.startswith("# %% auto"):
            if cur: out[cur[1]] = (cur[0], "\n".join(buf).strip("\n"))
            cur, buf = (m.groups() if m else None), []
        elif cur: buf.append(line)
    return out

def absolute_imports(code:str, mod:Path) -> str:
    "Undo nbdev's relative imports: notebooks import the package by name."
    pkg = list(mod.relative_to(root).with_suffix("").parts[:-1])
    def sub(m):
        dots, rest = len(m.group(2)), m.group(3)
        base = pkg[:len(pkg) - dots + 1]
        return m.group(1) + ".".join(base + ([rest] if rest else [])) + " import"
    return re.sub(r"^(\s*from )(\.+)([\w.]*) import", sub, code, flags=re.M)

def fix_module(mod:Path) -> list[str]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)/mod.name
        shutil.copy(mod, tmp)
        subprocess.run([ruff, "check", "--select", RULES, "--ignore", "F811", "--fix", "--quiet", str(tmp)], capture_output=True)
        before, after = chunks(mod.read_text()), chunks(tmp.read_text())
    touched = []
    for cid, (nbrel, code) in before.items():
        new = after.get(cid, (nbrel, ""))[1]
        if new == code: continue
        nbp = (mod.parent/nbrel).resolve()
        nb = nbformat.read(nbp, as_version=4)
        for c in nb.cells:
            if c.get("id") == cid:
                directives = [l for l in c.source.splitlines() if l.startswith("#|")]
                c.source = "\n".join(directives + [absolute_imports(new, mod)])
                break
        else: raise SystemExit(f"cell {cid} not found in {nbp}")
        nbformat.write(nb, nbp)
        touched.append(str(nbp.relative_to(root)))
    return touched

if __name__ == "__main__":
    mods = sys.argv[1:] or sorted({f["filename"] for f in findings(["swingtrader"])})
    touched = sorted({t for m in mods for t in fix_module(Path(m).resolve())})
    print("notebooks changed:", *touched, sep="\n  ")
    left = findings(["swingtrader"])
    for f in left: print(f"left for a person: {Path(f['filename']).relative_to(root)}:{f['location']['row']} {f['code']} {f['message']}")
