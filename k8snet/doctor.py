"""``k8snet doctor``: is this machine ready for the kit? One :class:`Check` per line.

Each check is a small function that returns a :class:`Check`; the decisions
(version skew, which kubectl, which Python environment, what the labs' phases mean)
take their facts as arguments, so unit tests drive them without a machine to match,
and ``check_*`` functions without arguments gather the facts from this machine.

The kernel checks run only as root, and only inside one throw-away network
namespace, ``k8snet-doctor-<pid>``: the veth pair, the nft table and the iptables
rules are made there and vanish with it. Nothing on the host changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from . import hosttools
from .lab import lifecycle
from .lab.config import LabConfig, state_root

#: The checkout this package runs from, and the environment ``scripts/setup.sh`` makes in it.
CHECKOUT = Path(__file__).resolve().parents[1]
KIT_VENV = CHECKOUT / ".venv"
SETUP = "sudo bash scripts/setup.sh"


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, what was found, and the fix if not ok.

    ``warn`` marks a finding that does not stop the kit (the exit code stays 0).
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""
    warn: bool = False

    @property
    def verdict(self) -> str:
        return "ok" if self.ok else "warn" if self.warn else "FAIL"


def passed(checks: Iterable[Check]) -> bool:
    """True when no check FAILed (warnings pass)."""
    return all(c.ok or c.warn for c in checks)


def first_line(err: BaseException) -> str:
    """An exception's message as one line: its first (tools' errors append context lines)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# -- versions ----------------------------------------------------------------------

def minor_version(version: str) -> tuple[int, int] | None:
    """(major, minor) of "v1.37.1", "1.32+", "v1.32.4-dispatcher"; None if there is none."""
    m = re.match(r"^v?(\d+)\.(\d+)", version.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def minor_skew(client: str, server: str) -> int | None:
    """How many minor versions ``client`` is ahead of ``server`` (negative: behind);
    None when either is unreadable or the majors differ."""
    c, s = minor_version(client), minor_version(server)
    if c is None or s is None or c[0] != s[0]:
        return None
    return c[1] - s[1]


def python_client_kubernetes_version(client_version: str) -> str | None:
    """The Kubernetes version the ``kubernetes`` Python client is built for: its major
    version is Kubernetes' minor (37.0.2 -> 1.37)."""
    m = re.match(r"^(\d+)\.", client_version)
    return f"1.{m.group(1)}" if m else None


# -- the platform ------------------------------------------------------------------

def platform_check(platform: str) -> Check:
    if platform == "linux":
        return Check("Linux", True, "network namespaces are available on Linux")
    return Check("Linux", False, f"this is {platform}: the lab is made of Linux network namespaces",
                 "run the lab on Linux, or point k8snet at another cluster: K8SNET_CONTEXT=<kubeconfig context>")


def root_check(euid: int) -> Check:
    if euid == 0:
        return Check("root", True, "running as root: 'lab up' and 'lab down' can run")
    return Check("root", False, f"running as uid {euid}: only 'lab up' and 'lab down' need root "
                 "(doctor's kernel checks too); list, status, kubeconfig and kubectl do not",
                 "sudo k8snet lab up / sudo k8snet doctor", warn=True)


# -- the kernel, inside a throw-away namespace ---------------------------------------

KERNEL_CHECKS = ("network namespaces", "veth", "nftables", "iptables")

# The kinds of rules the lab's kube-proxy and guard load (nat hooks, fib/addrtype
# local, random endpoint choice, DNAT, marks, masquerade, conntrack state, reject):
# a kernel or nft/iptables build without one of them fails here, not in 'lab up'.
NFT_PROBE = """\
table ip k8snet-doctor {
\tchain prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tfib daddr type local tcp dport 30080 numgen random mod 2 vmap { 0 : goto endpoint, 1 : goto endpoint }
\t}
\tchain endpoint {
\t\tip saddr 10.244.0.2 meta mark set meta mark or 0x4000
\t\tmeta l4proto tcp dnat to 10.244.0.2:80
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tmeta mark & 0x4000 == 0x4000 masquerade
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tct state invalid drop
\t\tip daddr 172.31.0.1 ct state new reject with tcp reset
\t}
}
"""

IPTABLES_PROBE = """\
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:K8SNET-DOCTOR - [0:0]
-A PREROUTING -m comment --comment "k8snet doctor" -m addrtype --dst-type LOCAL -j K8SNET-DOCTOR
-A K8SNET-DOCTOR -p tcp -m tcp --dport 30080 -m statistic --mode random --probability 0.5 -j DNAT --to-destination 10.244.0.2:80
-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE
COMMIT
*filter
:FORWARD ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -p tcp -j REJECT --reject-with tcp-reset
COMMIT
"""


def doctor_netns_name(pid: int) -> str:
    """Inside the lab naming (``k8snet-<lab>-...``), so a leftover would be found by prefix."""
    return f"k8snet-doctor-{pid}"


@contextmanager
def throwaway_netns(name: str) -> Iterator[str]:
    """Creates the named network namespace and always deletes it (and with it every
    link and rule made inside)."""
    from .lab.net import nsutil  # imported late: Linux-only (libc, /run/netns)

    nsutil.ip_batch_sync([f"netns add {name}"])
    try:
        yield name
    finally:
        nsutil.delete_netns(name)


def veth_check(netns: str) -> Check:
    from .lab.net import nsutil

    try:
        nsutil.ip_batch_sync(["link add dra type veth peer name drb", "link set dra up", "link set drb up"], netns)
    except (nsutil.NetError, OSError) as err:
        return Check("veth", False, f"a veth pair in {netns}: {first_line(err)}",
                     "a kernel with veth (CONFIG_VETH; modprobe veth)")
    return Check("veth", True, f"made a veth pair inside {netns}")


def _ruleset_check(name: str, netns: str, mode: str, text: str, program: str, fix: str) -> Check:
    from .lab.proxy.proxy import ApplyError, apply_ruleset  # kube-proxy's own loader

    if shutil.which(program) is None:
        return Check(name, False, f"{program} is not installed", fix)
    try:
        asyncio.run(apply_ruleset(netns, mode, text))
    except (ApplyError, OSError) as err:
        return Check(name, False, f"{program} refused kube-proxy-style rules in {netns}: {first_line(err)}", fix)
    return Check(name, True, f"{program} loaded kube-proxy-style rules inside {netns}")


def nftables_check(netns: str) -> Check:
    return _ruleset_check("nftables", netns, "nftables", NFT_PROBE, "nft",
                          "sudo apt-get install nftables, on a kernel with nf_tables (CONFIG_NF_TABLES)")


def iptables_check(netns: str) -> Check:
    return _ruleset_check("iptables", netns, "iptables", IPTABLES_PROBE, "iptables-restore",
                          "sudo apt-get install iptables, on a kernel with netfilter NAT and xtables matches")


def kernel_checks(platform: str, euid: int, pid: int) -> list[Check]:
    """Network namespaces, veth, nftables, iptables — tried for real as root."""
    if platform != "linux" or euid != 0:
        why = "needs Linux" if platform != "linux" else "needs root"
        return [Check(n, False, f"not checked: {why}", "sudo k8snet doctor" if platform == "linux" else "",
                      warn=True) for n in KERNEL_CHECKS]
    name = doctor_netns_name(pid)
    try:
        with throwaway_netns(name) as netns:
            return [Check("network namespaces", True, f"created and deleted {netns}"),
                    veth_check(netns), nftables_check(netns), iptables_check(netns)]
    except Exception as err:  # noqa: BLE001 - any failure to make the namespace is the finding
        return [Check("network namespaces", False, f"ip netns add {name}: {first_line(err)}",
                      "a kernel with network namespaces (CONFIG_NET_NS) and iproute2")] + [
                Check(n, False, "not checked: no network namespace") for n in KERNEL_CHECKS[1:]]


# -- host programs -----------------------------------------------------------------

def host_tools_check(missing: list[hosttools.HostTool]) -> Check:
    if not missing:
        return Check("host tools", True, f"all {len(hosttools.programs())} programs found")
    packages = list(dict.fromkeys(t.package for t in missing))
    return Check("host tools", False, "missing: " + ", ".join(f"{t.program} ({t.package})" for t in missing),
                 f"{SETUP} (or: sudo apt-get install -y {' '.join(packages)})")


# -- kubectl -----------------------------------------------------------------------

def kubectl_check(found: str | None, kit: Path, client_version: str | None, lab_version: str,
                  *, under_sudo: bool = False) -> Check:
    """``found``: the first kubectl on PATH (None: none); ``kit``: the kit's kubectl;
    ``client_version``: the gitVersion ``found`` reports (None: it did not say).
    Under sudo, PATH is sudo's secure_path, not the one the user runs kubectl with: a
    finding there is only a warning, and says so."""
    check = _kubectl_finding(found, kit, client_version, lab_version)
    if under_sudo and not check.ok:
        return dataclasses.replace(check, warn=True, detail=check.detail + " (on sudo's PATH; run "
                                   "'k8snet doctor' without sudo to check your own)")
    return check


def _kubectl_finding(found: str | None, kit: Path, client_version: str | None, lab_version: str) -> Check:
    kit_exists = kit.exists()
    use_kit = f"export PATH={kit.parent}:$PATH" if kit_exists else f"{SETUP} (installs the kit's kubectl in .venv/bin)"
    if found is None:
        return Check("kubectl", False, "no kubectl on PATH", use_kit)
    is_kit = kit_exists and Path(found).resolve() == kit.resolve()
    which = f"{found} (the kit's)" if is_kit else f"{found} (not the kit's {kit})"
    if client_version is None:
        return Check("kubectl", False, f"{which} did not report its version", use_kit)
    skew = minor_skew(client_version, lab_version)
    if skew is None or abs(skew) > 1:
        return Check("kubectl", False, f"{which} is {client_version}, the lab is {lab_version}: "
                     "kubectl supports servers within one minor version", use_kit)
    if not is_kit:
        return Check("kubectl", False, f"{which} is {client_version}, within one minor of the lab's {lab_version}",
                     use_kit, warn=True)
    return Check("kubectl", True, f"{which} is {client_version}, the lab is {lab_version}")


def kubectl_version(path: str) -> str | None:
    """The client's gitVersion, from ``kubectl version --client -o json``."""
    try:
        out = subprocess.run([path, "version", "--client", "-o", "json"], capture_output=True, text=True,
                             timeout=20, check=False).stdout
        return str(json.loads(out)["clientVersion"]["gitVersion"])
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return None


# -- Python ------------------------------------------------------------------------

def python_client_check(installed: str | None, lab_version: str) -> Check:
    if installed is None:
        return Check("kubernetes client", False, "the kubernetes Python package is not installed", SETUP)
    built_for = python_client_kubernetes_version(installed)
    skew = minor_skew(built_for or "", lab_version)
    if skew is None or abs(skew) > 1:
        return Check("kubernetes client", False, f"kubernetes {installed} is built for Kubernetes {built_for}, "
                     f"the lab is {lab_version}", f"{SETUP} (installs the locked client)")
    return Check("kubernetes client", True, f"kubernetes {installed} (Kubernetes {built_for}), the lab is {lab_version}")


def environment_check(prefix: str, base_prefix: str, executable: str, kit_venv: Path) -> Check:
    if prefix != base_prefix and Path(prefix).resolve() == kit_venv.resolve():
        return Check("Python environment", True, f"{executable} in the project's environment {kit_venv}")
    found = f"the environment {prefix}" if prefix != base_prefix else f"the system Python ({prefix})"
    return Check("Python environment", False, f"{executable} runs from {found}, not the project's {kit_venv}",
                 f"{SETUP}, then run {kit_venv}/bin/k8snet (or sudo k8snet)")


# -- labs --------------------------------------------------------------------------

def labs_check(labs: list[lifecycle.LabStatus], root: Path) -> Check:
    if not labs:
        return Check("labs", True, f"none under {root}")
    parts = [f"{st.name} {st.phase}" + (f" ({st.server})" if st.phase == "Ready" else "") for st in labs]
    broken = [st.name for st in labs if st.phase in ("Crashed", "Failed")]
    if broken:
        return Check("labs", False, ", ".join(parts),
                     "; ".join(f"sudo k8snet lab down --name {n}" for n in broken), warn=True)
    return Check("labs", True, ", ".join(parts))


# -- all of them -------------------------------------------------------------------

def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def labs_check_here() -> Check:
    root = state_root()
    try:
        return labs_check(lifecycle.list_labs(), root)
    except PermissionError:
        return Check("labs", False, f"{root} is readable by root only", "sudo k8snet lab list", warn=True)


def run_checks() -> list[Check]:
    """Every check, on this machine, in report order."""
    lab_version = LabConfig().kubernetes_version
    euid = os.geteuid()
    kubectl = shutil.which("kubectl")
    return [
        platform_check(sys.platform),
        root_check(euid),
        *kernel_checks(sys.platform, euid, os.getpid()),
        host_tools_check(hosttools.missing()),
        kubectl_check(kubectl, KIT_VENV / "bin" / "kubectl", kubectl_version(kubectl) if kubectl else None, lab_version,
                      under_sudo=euid == 0 and "SUDO_USER" in os.environ),
        python_client_check(_package_version("kubernetes"), lab_version),
        environment_check(sys.prefix, sys.base_prefix, sys.executable, KIT_VENV),
        labs_check_here(),
    ]
