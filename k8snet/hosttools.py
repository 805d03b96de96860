"""The host programs and Debian/Ubuntu packages k8snet needs, declared once.

``scripts/setup.sh`` installs :func:`apt_packages` (it runs this file with the system
Python before any environment exists, so it imports nothing outside the standard
library), ``k8snet doctor`` checks :data:`TOOLS`, and a unit test fails when code or
tests run a program that is not listed here.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class HostTool:
    """A program found on PATH, the package that ships it, and who needs it."""

    program: str
    package: str
    why: str


#: Every program the lab, the helper, the tests and the notebooks execute on the host
#: (or inside pods, which see the host's programs through the image catalog).
TOOLS: tuple[HostTool, ...] = (
    HostTool("ip", "iproute2", "network namespaces, veths, routes"),
    HostTool("nsenter", "util-linux", "enter a node's or pod's namespaces"),
    HostTool("unshare", "util-linux", "a container's mount, UTS and PID namespaces"),
    HostTool("mount", "mount", "bind mounts inside a container"),
    HostTool("iptables-restore", "iptables", "kube-proxy's iptables mode"),
    HostTool("iptables-save", "iptables", "reading the rules a node applied"),
    HostTool("iptables", "iptables", "reading the rules a node applied"),
    HostTool("nft", "nftables", "kube-proxy's nftables mode"),
    HostTool("conntrack", "conntrack", "the connection-tracking table (notebook 08)"),
    HostTool("nginx", "nginx", "the nginx image"),
    HostTool("curl", "curl", "the curl image, checks from the host"),
    HostTool("busybox", "busybox", "the busybox-applet images (busybox, busyboxplus, curl, agnhost)"),
    HostTool("dig", "bind9-dnsutils", "DNS checks"),
    HostTool("openssl", "openssl", "the tutorial's self-signed certificate; busybox wget's HTTPS"),
    HostTool("ping", "iputils-ping", "ICMP between pods"),
    HostTool("pgrep", "procps", "finding a lab's processes"),
    HostTool("sysctl", "procps", "a throw-away namespace's settings (proxy tests and benchmark)"),
    HostTool("setpriv", "util-linux", "running a check as a normal user"),
    HostTool("git", "git", "provenance: the commit a result was measured at"),
    HostTool("dnsperf", "dnsperf", "DNS load from a pod (benchmarks/bench_dns.py)"),
    # dnsmasq-base: the program alone; the dnsmasq package would also start a host service.
    HostTool("dnsmasq", "dnsmasq-base", "the real DNS server the lab's DNS is measured against (bench_dns.py)"),
)

#: Packages that ship no program on PATH but are needed all the same.
EXTRA_PACKAGES: tuple[tuple[str, str], ...] = (
    ("python3-venv", "the project's environment (.venv) made with the system Python"),
    ("fonts-nanum", "Hangul in plot labels"),
)


def apt_packages() -> list[str]:
    """Every Debian/Ubuntu package to install, each once, in a stable order."""
    names = [t.package for t in TOOLS] + [name for name, _ in EXTRA_PACKAGES]
    return list(dict.fromkeys(names))


def programs() -> set[str]:
    return {t.program for t in TOOLS}


def missing() -> list[HostTool]:
    """The listed programs that are not on PATH."""
    return [t for t in TOOLS if shutil.which(t.program) is None]


if __name__ == "__main__":
    # ``python3 k8snet/hosttools.py`` prints the package list for setup.sh.
    print(" ".join(apt_packages()), file=sys.stdout)
