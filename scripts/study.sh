#!/usr/bin/env bash
# The main job: bring up the lab, walk the tutorial's first half against it
# with kubectl (or the Python client where kubectl is absent), tear the lab down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
LAB="${K8SNET_LAB_NAME:-k8snet}"
trap 'k8snet lab down --name "$LAB" >/dev/null 2>&1 || true' EXIT
k8snet lab up --name "$LAB"
KUBECONFIG="$(k8snet lab kubeconfig --name "$LAB" --path)" python3 -m k8snet.lab.demo
