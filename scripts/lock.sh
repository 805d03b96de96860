#!/usr/bin/env bash
# Re-pins requirements.lock from pyproject.toml (a developer's step, not a user's):
# every dependency, the test extra and the build backend, with hashes for every
# platform and Python >= 3.11, resolved by uv (installed in a throw-away venv).
set -euo pipefail
cd "$(dirname "$0")/.."
tool=$(mktemp -d)
trap 'rm -rf "$tool"' EXIT
/usr/bin/python3 -m venv "$tool"
"$tool/bin/python" -m pip install -q --disable-pip-version-check uv
"$tool/bin/uv" pip compile pyproject.toml --extra test --group build --universal --python-version 3.11 \
  --generate-hashes --custom-compile-command "bash scripts/lock.sh" -q -o requirements.lock "$@"
# The lab's API reads the kubernetes client's model types from a table made from the
# locked client (k8snet/lab/api/kube_models.json); a unit test fails until it is redone.
echo "lock.sh: if the kubernetes client changed: bash scripts/setup.sh && .venv/bin/python -m k8snet.lab.api.models"
