"""Crash-proof cleanup: find a lab's processes, namespaces and mounts from the kernel's
view alone (no supervisor state), and remove them.

A process belongs to the lab when ``/proc/<pid>/ns/net`` is the same nsfs inode
(st_dev, st_ino) as one of the lab's ``/run/netns/<prefix>*`` names. That finds every
container, ``exec`` and probe process, whatever PID or mount namespace it also
lives in, even after the supervisor was SIGKILLed.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from k8snet.lab.config import LabConfig
from k8snet.lab.net import hostlink, nsutil
from k8snet.lab.net.ipam import ipam_root
from k8snet.lab.polling import wait_until

NsId = tuple[int, int]  # (st_dev, st_ino) of an nsfs file


@dataclass
class CleanupReport:
    """What :func:`cleanup_lab` removed, and what it could not."""

    killed: list[int] = field(default_factory=list)        # PIDs sent SIGKILL
    survivors: list[int] = field(default_factory=list)     # still alive after the timeout
    namespaces: list[str] = field(default_factory=list)    # deleted namespace names
    unmounted: list[str] = field(default_factory=list)     # host-namespace mounts removed
    state: list[str] = field(default_factory=list)         # state paths removed
    links: list[str] = field(default_factory=list)         # host interfaces removed
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.survivors and not self.errors

    @property
    def removed(self) -> list[str]:
        """One line per thing removed (what ``lab down`` reports as removed by force)."""
        return ([f"process {p}" for p in self.killed] + [f"netns {n}" for n in self.namespaces]
                + [f"mount {m}" for m in self.unmounted] + [f"link {n}" for n in self.links])


def _ns_id(path: str | Path) -> NsId | None:
    try:
        st = os.stat(path)
    except OSError:  # gone, or a process we may not inspect
        return None
    return (st.st_dev, st.st_ino)


def _protected_ns_ids() -> set[NsId]:
    """The host's and our own namespace: never kill by these, even if a lab name
    were (wrongly) bound to one of them with ``ip netns attach``."""
    return {i for i in (_ns_id("/proc/1/ns/net"), _ns_id("/proc/self/ns/net")) if i}


def lab_ns_ids(prefix: str) -> dict[NsId, str]:
    """``{nsfs id: name}`` of the named namespaces starting with ``prefix``.

    A half-created entry (file without bind mount) is a plain tmpfs file: its id
    matches no process, which is right, and its name is still deleted later.
    """
    ids: dict[NsId, str] = {}
    protected = _protected_ns_ids()
    for name in nsutil.list_netns(prefix):
        ident = _ns_id(nsutil.netns_path(name))
        if ident and ident not in protected:
            ids[ident] = name
    return ids


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def netns_processes(prefix: str) -> dict[int, str]:
    """``{pid: namespace name}`` of live processes in a namespace starting with ``prefix``."""
    ids = lab_ns_ids(prefix)
    if not ids:
        return {}
    me = os.getpid()
    found: dict[int, str] = {}
    for pid in _pids():
        if pid == me:
            continue
        ident = _ns_id(f"/proc/{pid}/ns/net")  # zombies have no namespace: skipped
        if ident in ids:
            found[pid] = ids[ident]
    return found


def container_processes(pods_dir: Path) -> list[int]:
    """Live processes whose command line names a file under ``pods_dir``: every
    container init is started with its spec there. This finds a container even when
    its pod namespace has lost its name — one started while the lab was going down,
    after the namespace scan, then left in a namespace that no longer has a name."""
    me = os.getpid()
    return [pid for pid in _pids() if pid != me and names_file_under(pid, pods_dir)]


def names_file_under(pid: int, folder: Path) -> bool:
    """Whether process ``pid``'s command line names a file under ``folder``. A PID
    written down earlier may since belong to an unrelated process (PIDs wrap); this is
    how the lab tells its own container processes before it signals one."""
    marker = (str(folder).rstrip("/") + "/").encode()
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _dead(pid: int) -> bool:
    """Gone or a zombie (its namespaces are already released at exit)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


def _all_dead(pids: list[int]) -> bool:
    return all(_dead(pid) for pid in pids)


def kill_netns_processes(prefix: str, *, timeout: float = 5.0,
                         pods_dir: Path | None = None) -> tuple[list[int], list[int]]:
    """SIGKILLs every process in a ``prefix`` namespace (and, with ``pods_dir``, every
    container process of that folder) and waits for them to die.

    Scans again after each round: a process may have forked between scan and kill.
    Returns (killed, survivors).
    """
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        candidates = set(netns_processes(prefix))
        if pods_dir is not None:
            candidates.update(container_processes(pods_dir))
        victims = [pid for pid in sorted(candidates) if not _dead(pid)]
        if not victims:
            return killed, []
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
                if pid not in killed:
                    killed.append(pid)
            except ProcessLookupError:
                pass
        try:
            wait_until("the killed processes to die", functools.partial(_all_dead, victims),
                       max(deadline - time.monotonic(), 0.0), interval=0.01)
        except TimeoutError:
            return killed, [p for p in victims if not _dead(p)]


_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def mounts_under(*roots: Path) -> list[str]:
    """Mount points in our mount namespace at or below any of ``roots`` (deepest first)."""
    prefixes = [str(r).rstrip("/") for r in roots]
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # Field 5 is the mount point, with spaces etc. escaped as octal.
            point = _OCTAL_ESCAPE.sub(lambda m: chr(int(m[1], 8)), line.split()[4])
            if any(point == p or point.startswith(p + "/") for p in prefixes):
                points.append(point)
    return sorted(set(points), key=len, reverse=True)


def _netns_mounts(prefix: str) -> list[str]:
    return [m for m in mounts_under(nsutil.NETNS_DIR)
            if Path(m).parent == nsutil.NETNS_DIR and Path(m).name.startswith(prefix)]


def _as_config(config_or_name: LabConfig | str) -> LabConfig:
    return config_or_name if isinstance(config_or_name, LabConfig) else LabConfig(name=config_or_name)


def cleanup_lab(config_or_name: LabConfig | str, *, timeout: float = 5.0) -> CleanupReport:
    """Removes everything of a lab's network, from scratch: kills the processes in its
    namespaces, unmounts anything left mounted under its pods folder in our mount
    namespace, deletes every ``k8snet-<lab>-*`` namespace and the pod-IP allocations.

    Safe to call at any time and repeatedly; the rest of the state folder (store,
    PKI) is left to the caller.
    """
    config = _as_config(config_or_name)
    prefix = config.netns_prefix
    report = CleanupReport()
    report.killed, report.survivors = kill_netns_processes(prefix, timeout=timeout, pods_dir=config.pods_dir)
    if report.survivors:
        report.errors.append(f"processes did not die within {timeout}s: {report.survivors}")
    # Only below the pods folder: a mount *at* the state folder may be the user's own.
    for point in mounts_under(config.pods_dir):
        if nsutil.umount_lazy(point):
            report.unmounted.append(point)
    for name in nsutil.list_netns(prefix):
        try:
            if nsutil.delete_netns(name):
                report.namespaces.append(name)
        except (OSError, nsutil.NetError) as e:
            report.errors.append(f"netns {name}: {e}")
    # Deleting the wire namespace takes the host veth with it, but only once nothing
    # pins that namespace any more (the kernel frees it asynchronously): delete the
    # host end by name so the host is clean when we return.
    if hostlink.delete_host_link(config):
        report.links.append(config.host_ifname)
    ipam = ipam_root(config)
    if ipam.exists():
        shutil.rmtree(ipam, ignore_errors=True)
        report.state.append(str(ipam))
    return report


def leftovers(prefix: str = "k8snet-", state_dir: Path | None = None) -> list[str]:
    """Human-readable list of what remains: namespaces, processes in them, and mounts
    (namespace bind mounts, and any mount under ``state_dir`` when given)."""
    out = [f"netns {n}" for n in nsutil.list_netns(prefix)]
    for pid, ns in sorted(netns_processes(prefix).items()):
        if _dead(pid):
            continue
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            comm = "?"
        out.append(f"process {pid} ({comm}) in netns {ns}")
    mounts = _netns_mounts(prefix) + (mounts_under(state_dir) if state_dir else [])
    out += [f"mount {m}" for m in mounts]
    return out
