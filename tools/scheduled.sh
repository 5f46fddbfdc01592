#!/usr/bin/env bash
# Write scheduled/*.ipynb from their jupytext percent sources, keeping only the papermill `parameters` tag,
# then copy them into the package (tools/sync_scheduled.py).
#   tools/scheduled.sh SRC.py scheduled/NAME.ipynb        (and: tools/nb.sh-style round trip with jupytext --to py:percent)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"; bin="$here/.venv/bin"
"$bin/jupytext" --quiet --to ipynb "$1" -o "$2"
"$bin/python" - "$2" <<'PY'
import sys, nbformat
p = sys.argv[1]; nb = nbformat.read(p, as_version=4)
nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}, "language_info": {"name": "python"}}
for c in nb.cells:
    c.metadata = {k: v for k, v in c.metadata.items() if k == "tags"}
    if c.cell_type == "code": c.outputs, c.execution_count = [], None
nbformat.write(nb, p)
PY
"$bin/python" "$here/tools/sync_scheduled.py"   # the packaged copy (swingtrader/scheduled/) the installed command runs
