"""Render README.md from nbs/index.ipynb.

nbdev-readme needs quarto, which cannot be installed from PyPI here (its wheel downloads a binary
at build time). This renders the same content: markdown cells verbatim (the `# Title` / `> summary`
pair becomes the heading), code cells as fenced Python with their text outputs.
Usage: python tools/readme.py [--check]"""
import sys
from pathlib import Path
from fastcore.nbio import read_nb

root = Path(__file__).resolve().parents[1]

def render() -> str:
    parts = ["<!-- Generated from nbs/index.ipynb by tools/readme.py: edit the notebook, not this file. -->"]
    for c in read_nb(root/"nbs"/"index.ipynb").cells:
        src = c.source.strip()
        if not src or src.startswith("#| hide"): continue
        if c.cell_type == "markdown": parts.append(src)
        else:
            parts.append(f"```python\n{src}\n```")
            for o in c.get("outputs", []):
                txt = o.get("text") or o.get("data", {}).get("text/plain")
                if txt: parts.append("```\n" + ("".join(txt) if isinstance(txt, list) else txt).rstrip() + "\n```")
    return "\n\n".join(parts) + "\n"

if __name__ == "__main__":
    out, new = root/"README.md", render()
    if "--check" in sys.argv:
        if not out.exists() or out.read_text() != new:
            sys.exit("README.md is out of date with nbs/index.ipynb: run `python tools/readme.py` and commit README.md.")
    else: out.write_text(new)
