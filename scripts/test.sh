#!/usr/bin/env bash
# The test command: unit tests, lab integration tests (root), client compatibility.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec python3 -m pytest tests -q -ra "$@"
