#!/usr/bin/env bash
# Installs what k8snet needs on a Debian/Ubuntu machine: the host tools the lab
# uses (apt) and the package with its Python dependencies (pip). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(iproute2 util-linux iptables nftables conntrack nginx-light curl busybox dnsutils openssl procps)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "setup: need root to apt-get install ${missing[*]}" >&2; exit 1; fi
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

python3 -m pip install -q --disable-pip-version-check -e ".[test]"
