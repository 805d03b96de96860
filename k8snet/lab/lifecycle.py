"""``k8snet lab up|down|status``: start the supervisor as a daemon, wait until the
cluster is Ready, stop it, and clean up after crashes.

The supervisor process owns the running lab; this module only talks to it through
files in the lab's state folder (``status.json``, ``config.json``, ``supervisor.log``)
and signals, so every command works from a fresh process — and after a crash.

``up`` also merges the lab's context ``k8snet-<lab>`` into the invoking user's
``~/.kube/config`` (``SUDO_USER``'s under sudo), so kubectl and notebooks run as that
user without root; the state folder records which file, and ``down`` removes
exactly those entries (see :mod:`k8snet.lab.kubeconfig`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import kubeconfig
from .config import LabConfig, state_root
from .kubeconfig import UserKubeconfig

READY_TIMEOUT_S = 90.0
#: in the state folder: which users' kubeconfigs ``up`` merged the lab's context into
MERGED_KUBECONFIGS = "user-kubeconfigs.json"


class LabError(RuntimeError):
    """A lab command failed; the message is meant for the user, on one line."""


@dataclass(frozen=True)
class LabStatus:
    name: str
    phase: str  # Ready, Starting, Failed, Stopped, Crashed
    server: str | None
    kubeconfig: Path | None
    pid: int | None
    message: str = ""
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def context(self) -> str:
        """The lab's context in the user's kubeconfig: ``kubectl --context k8snet-<lab>``."""
        return kubeconfig.context_name(self.name)


def check_host() -> None:
    """The lab needs Linux network namespaces, which need root."""
    if sys.platform != "linux":
        raise LabError(f"the k8snet lab needs Linux network namespaces; this is {sys.platform}. "
                       "Point k8snet at another cluster with a kubeconfig context instead.")
    if os.geteuid() != 0:
        raise LabError("the k8snet lab creates network namespaces and needs root: run it with sudo "
                       "(or point k8snet at another cluster with a kubeconfig context)")
    missing = [t for t in ("ip", "nsenter", "unshare", "iptables-restore", "nft") if shutil.which(t) is None]
    if missing:
        raise LabError(f"missing host tools: {', '.join(missing)} (apt-get install iproute2 util-linux iptables nftables)")


def save_config(config: LabConfig) -> None:
    data = dataclasses.asdict(config)
    data["state_dir"] = str(config.state_dir)
    (config.state_dir / "config.json").write_text(json.dumps(data, indent=2))


def load_config(name: str) -> LabConfig:
    """The running (or crashed) lab's own configuration, else the defaults for ``name``."""
    path = state_root() / name / "config.json"
    if not path.exists():
        return LabConfig(name=name)
    data = json.loads(path.read_text())
    data["state_dir"] = Path(data["state_dir"])
    data["node_port_range"] = tuple(data["node_port_range"])
    return LabConfig(**data)


def _read_status(config: LabConfig) -> dict[str, Any]:
    try:
        return json.loads((config.state_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"k8snet.lab.supervisor" in cmdline


def status(name: str = "k8snet") -> LabStatus:
    config = load_config(name)
    st = _read_status(config)
    pid = st.get("pid")
    kubeconfig = config.kubeconfig_path if config.kubeconfig_path.exists() else None
    if not st:
        return LabStatus(name, "Stopped", None, None, None)
    if not _alive(pid):
        return LabStatus(name, "Crashed", st.get("server"), kubeconfig, pid,
                         "the supervisor is gone; run 'k8snet lab down' or 'k8snet lab up' to clean up", st)
    return LabStatus(name, st.get("phase", "Starting"), st.get("server"), kubeconfig, pid, st.get("message", ""), st)


def up(config: LabConfig, *, timeout: float = READY_TIMEOUT_S,
       user_kubeconfig: UserKubeconfig | None = None) -> LabStatus:
    """Starts the lab and returns when every node is Ready and cluster DNS answers,
    then merges its context into ``user_kubeconfig`` (default: the invoking user's
    ``~/.kube/config``, see :meth:`UserKubeconfig.invoking`).

    A lab of the same name that is already Ready is returned as is (its context is
    merged all the same); a crashed one is cleaned up first.
    """
    check_host()
    target = user_kubeconfig or _merge_target()
    try:
        if target is not None:
            kubeconfig.check_target(target)  # refuse before anything starts, not after
    except kubeconfig.KubeconfigError as err:
        raise LabError(str(err)) from None
    current = status(config.name)
    if current.phase == "Ready":
        _merge_user_kubeconfig(load_config(config.name), target)
        return current
    if current.phase in ("Starting", "Stopping"):
        raise LabError(f"lab {config.name!r} is {current.phase.lower()} (pid {current.pid}); wait, or run 'k8snet lab down --name {config.name}'")
    if current.phase != "Stopped" or config.state_dir.exists():
        _cleanup(load_config(config.name))
    from .net.hostlink import with_free_node_cidr  # imported late: runs ip(8)

    # Each lab puts its node network on the host: pick one no other lab uses.
    config = with_free_node_cidr(config)
    config.state_dir.mkdir(parents=True, mode=0o700)
    save_config(config)
    log = open(config.state_dir / "supervisor.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "k8snet.lab.supervisor", str(config.state_dir / "config.json")],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
        env={**os.environ, "PYTHONPATH": _package_root() + os.pathsep + os.environ.get("PYTHONPATH", "")},
    )
    log.close()
    _note_starting(config, proc.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = _read_status(config)
        if st.get("phase") == "Ready":
            try:
                _merge_user_kubeconfig(config, target)
            except LabError:
                _cleanup(config)
                raise
            return status(config.name)
        if st.get("phase") == "Failed" or proc.poll() is not None:
            message = st.get("message") or f"the supervisor exited with code {proc.poll()}"
            _cleanup(config, keep_log=True)
            raise LabError(f"lab {config.name!r} failed to start: {message} (log: {config.state_dir / 'supervisor.log'})")
        time.sleep(0.05)
    _cleanup(config, keep_log=True)
    raise LabError(f"lab {config.name!r} was not Ready after {timeout:.0f} s (log: {config.state_dir / 'supervisor.log'})")


def down(name: str = "k8snet", *, grace: float = 15.0) -> list[str]:
    """Stops the lab and removes everything it made; returns what had to be removed by force."""
    check_host()
    config = load_config(name)
    pid = _read_status(config).get("pid")
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    return _cleanup(config)


def _cleanup(config: LabConfig, *, keep_log: bool = False) -> list[str]:
    """Kills what is left of a lab (by namespace), deletes its namespaces and state."""
    from .net.cleanup import cleanup_lab  # imported late: needs root-only tools at use

    pid = _read_status(config).get("pid")
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    left_in_kubeconfigs = _unmerge_user_kubeconfigs(config)
    report = cleanup_lab(config)
    if config.state_dir.exists():
        if keep_log:
            for child in config.state_dir.iterdir():
                if child.name != "supervisor.log":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        else:
            shutil.rmtree(config.state_dir)
    if left_in_kubeconfigs:
        raise LabError(f"lab {config.name!r} is down, but its context was left in "
                       + "; ".join(left_in_kubeconfigs))
    return report.removed if hasattr(report, "removed") else []


def _note_starting(config: LabConfig, pid: int) -> None:
    """Names the new supervisor in ``status.json`` until it reports for itself, so that
    ``status``/``list`` say Starting (or Crashed), not Stopped, while it comes up. Never
    overwrites what the supervisor may already have written (O_EXCL)."""
    try:
        fd = os.open(config.state_dir / "status.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        json.dump({"phase": "Starting", "message": "", "pid": pid}, f)


def _merge_target() -> UserKubeconfig | None:
    """The invoking user's kubeconfig, or none with ``K8SNET_MERGE_KUBECONFIG=0`` — set by
    the test command, whose throw-away labs have no business in root's ~/.kube/config."""
    if os.environ.get("K8SNET_MERGE_KUBECONFIG", "1") == "0":
        return None
    return UserKubeconfig.invoking()


def _merge_user_kubeconfig(config: LabConfig, target: UserKubeconfig | None) -> None:
    """Adds the lab's context to ``target`` and records that in the state folder first."""
    if target is None:
        return
    import yaml

    record_path = config.state_dir / MERGED_KUBECONFIGS

    def remember(done: kubeconfig.MergeRecord) -> None:
        records = kubeconfig.read_records(record_path)
        # a second merge into the same file keeps the first record: it knows what existed before
        if not any(r.target == done.target for r in records):
            kubeconfig.write_records(record_path, [*records, done])

    try:
        lab_doc = yaml.safe_load(config.kubeconfig_path.read_text())
        kubeconfig.merge_file(target, lab_doc, kubeconfig.context_name(config.name), remember)
    except kubeconfig.KubeconfigError as err:
        raise LabError(str(err)) from None


def _unmerge_user_kubeconfigs(config: LabConfig) -> list[str]:
    """Removes the lab's entries from every recorded kubeconfig; returns, per file that
    could not be cleaned, a one-line reason (the rest of the cleanup goes on)."""
    record_path = config.state_dir / MERGED_KUBECONFIGS
    problems = []
    for done in kubeconfig.read_records(record_path):
        try:
            kubeconfig.unmerge_file(done)
        except (kubeconfig.KubeconfigError, OSError) as err:
            problems.append(f"{done.target.path}: {err}")
    return problems


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


UNREADABLE = "Unreadable"


def readable_status(name: str) -> LabStatus:
    """:func:`status`, or phase "Unreadable" when this user may not read the lab's
    state folder (root makes it 0700, and it holds the admin key): a normal user then
    learns that the lab exists and what to run instead of a PermissionError."""
    try:
        return status(name)
    except PermissionError:
        folder = state_root() / name
        return LabStatus(name, UNREADABLE, None, None, None,
                         f"its state folder {folder} is readable by root only: run 'sudo k8snet lab status --name {name}'; "
                         f"'kubectl --context {kubeconfig.context_name(name)}' works without root")


def list_labs() -> list[LabStatus]:
    """Every lab that has a state folder under the state root, by name (running,
    crashed, or a failed start's kept log)."""
    from .config import LAB_NAME_RE

    try:
        folders = [p for p in state_root().iterdir() if LAB_NAME_RE.match(p.name) and p.is_dir()]
    except FileNotFoundError:
        return []
    return [readable_status(p.name) for p in sorted(folders)]
