#!/usr/bin/env bash
# The main job: install what is missing (setup.sh), bring up the lab (or use the cluster
# of $K8SNET_CONTEXT), execute every notebook into an output folder, tear the lab down.
# Nothing in the checkout changes.
#
#   sudo bash scripts/study.sh               # build/notebooks/  executed notebooks
#                                            # build/handouts/   HTML handouts
#                                            # build/results/    measurements (CSV + provenance JSON)
#   sudo bash scripts/study.sh --out DIR     # another output folder (or K8SNET_OUT=DIR)
#   sudo bash scripts/study.sh 02 04         # only the notebooks whose name starts so
#   sudo bash scripts/study.sh --as-root     # run them as root, not as you (see below)
#   sudo bash scripts/study.sh --refresh     # maintainers: re-execute the committed notebooks
#                                            # in place and rewrite data/results/ (then commit)
#
# Under sudo the notebooks run as the user who called sudo, with their HOME, and what
# lands in the output folder is theirs; they reach the lab through its kubeconfig
# context k8snet-<lab>, which `k8snet lab up` merges into their ~/.kube/config
# (K8SNET_CONTEXT, KUBECONFIG); the views that need root (notebook 01's docker-model
# sandbox, 08's node rules and conntrack) then say so and skip. As plain root (CI),
# with --as-root, and for --refresh (the committed notebooks show everything), they
# run as root. K8SNET_LAB names the lab (default k8snet); a lab that was
# already running is used and left running.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
PY="$PWD/.venv/bin/python"
# handouts measure at full size; the test command (nbval) runs the notebooks small
export K8SNET_SAMPLES="${K8SNET_SAMPLES:-large}"
say() { printf 'study: %s\n' "$*"; }

OUT="${K8SNET_OUT:-$PWD/build}" refresh=0 as_root=0 args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="${2:?--out needs a folder}"; shift 2 ;;
    --out=*) OUT="${1#--out=}"; shift ;;
    --refresh) refresh=1; args+=("$1"); shift ;;
    --as-root) as_root=1; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

# -- who runs the notebooks ---------------------------------------------------------------
as_user=() owner=""
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  uid=$(id -u "$SUDO_USER") gid=$(id -g "$SUDO_USER") owner="$uid:$gid"
  if [ "$refresh" = 0 ] && [ "$as_root" = 0 ]; then
    home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    as_user=(setpriv --reuid "$uid" --regid "$gid" --init-groups env HOME="$home" USER="$SUDO_USER" LOGNAME="$SUDO_USER")
  fi
fi
# The output folder is the user's: the folder itself when we create it, and the three
# folders we write in it (before the run, so the user can write there; after, for what
# root wrote).
give_out_folder() {
  [ -n "$owner" ] || return 0
  [ -e "$OUT" ] || { mkdir -p "$OUT" && chown "$owner" "$OUT"; }
  for sub in notebooks handouts results; do mkdir -p "$OUT/$sub" && chown -R "$owner" "$OUT/$sub"; done
}
give_out_folder

# -- the cluster ----------------------------------------------------------------------------
LAB="${K8SNET_LAB:-k8snet}" started=0
cleanup() {
  if [ "$started" = 1 ]; then
    "$PY" -m k8snet lab down --name "$LAB" >/dev/null || say "could not take lab '$LAB' down: run 'sudo k8snet lab down --name $LAB'"
  fi
}
trap cleanup EXIT
if [ -z "${K8SNET_CONTEXT:-}" ]; then
  export K8SNET_LAB="$LAB"
  if [[ "$("$PY" -m k8snet lab status --name "$LAB" 2>/dev/null)" == "lab '$LAB': Ready"* ]]; then
    say "using the running lab '$LAB'"
  else
    started=1
  fi
  # `up` also merges the lab's context k8snet-<lab> into the calling user's ~/.kube/config
  # (SUDO_USER's under sudo; `down` takes it out again): that is how the user reaches it.
  # Notebooks run by root read the lab's own kubeconfig: root's ~/.kube stays as it is.
  [ ${#as_user[@]} -gt 0 ] || export K8SNET_MERGE_KUBECONFIG="${K8SNET_MERGE_KUBECONFIG:-0}"
  up=$("$PY" -m k8snet lab up --name "$LAB")
  [ "$started" = 0 ] || say "${up%%$'\n'*}"   # the "is Ready" line, not the how-to after it
  if [ ${#as_user[@]} -gt 0 ]; then
    as_user+=(KUBECONFIG="$home/.kube/config" K8SNET_CONTEXT="k8snet-$LAB")
  fi
fi

# -- the notebooks --------------------------------------------------------------------------
status=0
"${as_user[@]}" "$PY" scripts/notebooks.py --out "$OUT" "${args[@]}" || status=$?
give_out_folder
if [ "$refresh" = 1 ]; then
  # root wrote them: files in the checkout keep the checkout's owner
  chown --reference=notebooks notebooks/*.ipynb
  chown --reference=data/results data/results/*
fi
exit "$status"
