#!/usr/bin/env bash
# The main job: bring up the lab (or use $K8SNET_CONTEXT), execute every notebook in
# place, write data/results/ and HTML handouts (handouts/), tear the lab down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -n "${K8SNET_CONTEXT:-}" ]; then
  exec python3 scripts/notebooks.py "$@"
fi
LAB="${K8SNET_LAB:-k8snet}"
export K8SNET_LAB="$LAB"
trap 'python3 -m k8snet lab down --name "$LAB" >/dev/null 2>&1 || true' EXIT
python3 -m k8snet lab up --name "$LAB"
python3 scripts/notebooks.py "$@"
