#!/usr/bin/env bash
# Exploratory study: JupyterLab on notebooks/ with the lab running and a kernel that
# imports k8snet. The lab stays up after JupyterLab exits; stop it with
#   sudo k8snet lab down
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
LAB="${K8SNET_LAB:-k8snet}"
export K8SNET_LAB="$LAB"
if [ -z "${K8SNET_CONTEXT:-}" ]; then
  python3 -m k8snet lab up --name "$LAB"
fi
# --allow-root: the lab needs root, and the kernel runs as the same user as JupyterLab.
exec python3 -m jupyter lab --notebook-dir notebooks --ip 127.0.0.1 --no-browser \
  $( [ "$(id -u)" -eq 0 ] && echo --allow-root ) "$@"
