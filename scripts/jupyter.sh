#!/usr/bin/env bash
# Exploratory study: JupyterLab on notebooks/ with the lab running and a kernel that
# imports k8snet. Run it from your own account:
#   sudo bash scripts/jupyter.sh [jupyter lab options]
# Only the setup and `k8snet lab up` run as root; `lab up` adds the lab's context
# k8snet-<lab> to your ~/.kube/config, and JupyterLab (and every kernel) then runs as
# you, reaching the lab through that context: never as root. The lab stays up after
# JupyterLab exits; stop it with
#   sudo k8snet lab down
set -euo pipefail
cd "$(dirname "$0")/.."
refuse() { printf 'jupyter.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || refuse "the lab needs root for its setup: run 'sudo bash scripts/jupyter.sh' from your own account"
LEARNER="${SUDO_USER:-}"
{ [ -n "$LEARNER" ] && [ "$(id -u "$LEARNER" 2>/dev/null || echo 0)" -ne 0 ]; } ||
  refuse "JupyterLab runs as the user who called sudo, never as root: run 'sudo bash scripts/jupyter.sh' from your own (non-root) account"
LEARNER_HOME=$(getent passwd "$LEARNER" | cut -d: -f6)  # not $HOME: sudo may keep root's
[ -d "$LEARNER_HOME" ] || refuse "the home folder of $LEARNER ($LEARNER_HOME) does not exist"

bash scripts/setup.sh
LAB="${K8SNET_LAB:-k8snet}"
if [ -z "${K8SNET_CONTEXT:-}" ]; then
  # SUDO_USER is set, so up merges the context into $LEARNER's ~/.kube/config
  .venv/bin/python -m k8snet lab up --name "$LAB"
  K8SNET_CONTEXT="k8snet-$LAB"
fi
VENV_BIN="$PWD/.venv/bin"
exec setpriv --reuid="$LEARNER" --regid="$(id -g "$LEARNER")" --init-groups -- \
  env -i HOME="$LEARNER_HOME" USER="$LEARNER" LOGNAME="$LEARNER" SHELL=/bin/bash LANG="${LANG:-C.UTF-8}" \
  TERM="${TERM:-dumb}" PATH="$VENV_BIN:/usr/local/bin:/usr/bin:/bin" \
  K8SNET_LAB="$LAB" K8SNET_CONTEXT="$K8SNET_CONTEXT" \
  "$VENV_BIN/python" -m jupyter lab --notebook-dir notebooks --ip 127.0.0.1 --no-browser "$@"
