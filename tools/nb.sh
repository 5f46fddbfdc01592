#!/usr/bin/env bash
# Author notebooks as jupytext percent scripts, then convert with code (never hand-edit JSON).
#   tools/nb.sh to-nb  SRC.py nbs/NN_name.ipynb   percent script -> notebook (then nbdev-clean)
#   tools/nb.sh to-py  nbs/NN_name.ipynb OUT.py   notebook -> percent script, for editing
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"; bin="$here/.venv/bin"
case "${1:-}" in
  to-nb) "$bin/jupytext" --quiet --to ipynb "$2" -o "$3" && "$bin/nbdev-clean" --fname "$3" ;;
  to-py) "$bin/jupytext" --quiet --to py:percent "$2" -o "$3" ;;
  *) echo "usage: tools/nb.sh to-nb SRC.py NB.ipynb | to-py NB.ipynb OUT.py" >&2; exit 2 ;;
esac
