#!/usr/bin/env bash
# Lint and type checks, with the project's environment (.venv, made by setup.sh):
#   ruff over the whole tree (rules and their reasons in pyproject.toml [tool.ruff]);
#   mypy --strict over the helper modules the notebooks import (k8snet/*.py);
#   mypy with the project's defaults over the lab (k8snet/lab).
# Never reformats anything: `ruff check` only reports.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/.venv/bin"
"$BIN/ruff" check --no-cache .
"$BIN/mypy" --strict k8snet/*.py
"$BIN/mypy" k8snet/lab
