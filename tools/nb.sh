#!/usr/bin/env bash
# Author notebooks as jupytext percent scripts, then convert with code (never hand-edit JSON).
#   tools/nb.sh to-nb  SRC.py nbs/NN_name.ipynb   percent script -> notebook (then nbdev-clean)
#   tools/nb.sh to-py  nbs/NN_name.ipynb OUT.py   notebook -> percent script, for editing
# Writing back into an existing notebook keeps its cell ids (jupytext --update), so diffs and merges stay small.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="$here/.venv/bin"; [ -x "$bin/jupytext" ] || bin="$(dirname "$(command -v jupytext)")"
case "${1:-}" in
  to-nb) upd=(); [ -f "$3" ] && upd=(--update)
         "$bin/jupytext" --quiet "${upd[@]}" --to ipynb "$2" -o "$3" && "$bin/nbdev-clean" --fname "$3" ;;
  to-py) "$bin/jupytext" --quiet --to py:percent "$2" -o "$3" ;;
  *) echo "usage: tools/nb.sh to-nb SRC.py NB.ipynb | to-py NB.ipynb OUT.py" >&2; exit 2 ;;
esac
