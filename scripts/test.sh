#!/usr/bin/env bash
# The test command: lint and type checks (scripts/lint.sh); unit tests; lab,
# client-compatibility and helper tests against a real lab (root); the notebooks with
# nbval. Everything runs in the project's
# environment (.venv, made by setup.sh), with the kit's kubectl first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/lint.sh
export PATH="$PWD/.venv/bin:$PATH"
PY="$PWD/.venv/bin/python"

# Test labs keep their state in a temporary folder, never in the user's labs; the
# notebooks' measurements go there too, so the committed data/results stay as they are.
K8SNET_STATE_ROOT="$(mktemp -d /tmp/k8snet-tests.XXXXXX)"
export K8SNET_STATE_ROOT
export K8SNET_LAB=ci
export K8SNET_RESULTS_DIR="$K8SNET_STATE_ROOT/results"
# throw-away labs stay out of root's ~/.kube/config (the normal-user test merges into
# a kubeconfig of its own)
export K8SNET_MERGE_KUBECONFIG=0
cleanup() {
  # every lab in the temporary state root: the shared one and any a test started and
  # could not stop (pytest interrupted), before their state folders disappear
  if [ "$(id -u)" -eq 0 ]; then
    for dir in "$K8SNET_STATE_ROOT"/*/; do
      [ -d "$dir" ] && "$PY" -m k8snet lab down --name "$(basename "$dir")" >/dev/null 2>&1 || true
    done
  fi
  rm -rf "$K8SNET_STATE_ROOT"
}
trap cleanup EXIT
if [ "$(uname -s)" = Linux ] && [ "$(id -u)" -eq 0 ]; then
  "$PY" -m k8snet lab up --name "$K8SNET_LAB"
else
  echo "test: not root on Linux, so no lab: the lab, cluster and notebook tests will skip (run with sudo)" >&2
fi
"$PY" -m pytest tests -q -ra "$@"
if [ "$(uname -s)" = Linux ] && [ "$(id -u)" -eq 0 ]; then
  # Two notebooks at a time, each in its own kernel and namespace, its cells in order
  # (--dist loadfile): most of a notebook's time is waiting on the lab (readiness
  # periods, rollouts, measurements), so two overlap well on two cores. 85 → 49 s side
  # by side (docs/performance.md, "Notebooks under nbval"); benchmarks/bench_study.py
  # runs the same command.
  "$PY" -m pytest --nbval-lax notebooks/ --nbval-sanitize-with tests/notebooks/sanitize.cfg -p no:cacheprovider -q \
    -n 2 --dist loadfile
fi
