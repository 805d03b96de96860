"""``k8snet lab up|start|stop|down|status``: start the supervisor as a daemon, wait
until the cluster is Ready, stop it (keeping its state) or remove it, and clean up
after crashes.

The supervisor process owns the running lab; this module only talks to it through
files in the lab's state folder (``status.json``, ``config.json``, ``supervisor.log``)
and signals, so every command works from a fresh process — and after a crash.

``up`` also merges the lab's context ``k8snet-<lab>`` into the invoking user's
``~/.kube/config`` (``SUDO_USER``'s under sudo), so kubectl and notebooks run as that
user without root; the state folder records which file, and ``down`` removes
exactly those entries (see :mod:`k8snet.lab.kubeconfig`).

A lab's objects live in its SQLite store in the state folder, next to its PKI and
kubeconfig. ``stop`` removes everything the lab has on the host but keeps that
folder; ``start`` (and ``up`` of a lab whose folder is kept, also after a crash or a
reboot) brings the same cluster back: same objects, same CA and admin certificate,
same API server address when the port is still free. Pods come back the way a
kubelet brings them back after a node reboot (:mod:`k8snet.lab.kubelet.kubelet`).
Every command that changes a lab holds its lock (:mod:`k8snet.lab.statelock`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, TypeGuard

from . import kubeconfig, statelock
from .config import LabConfig, read_config, state_root
from .kubeconfig import UserKubeconfig
from .polling import wait_exec, wait_until
from .privatefiles import write_private

READY_TIMEOUT_S = 90.0
#: how much longer than its own timeout a command waits for another one's lock
LOCK_SLACK_S = 30.0
ABSENT = "Absent"  # no state folder: no such lab
STOPPED = "Stopped"  # stopped (or shut down by a reboot) with its objects kept
#: in the state folder: which users' kubeconfigs ``up`` merged the lab's context into
MERGED_KUBECONFIGS = "user-kubeconfigs.json"


class LabError(RuntimeError):
    """A lab command failed; the message is meant for the user, on one line."""


class LabInterrupted(LabError):
    """Ctrl-C stopped ``up``/``start``; the start was undone (the message says how)."""


@dataclass(frozen=True)
class LabStatus:
    name: str
    phase: str  # Ready, Starting, Stopping, Failed, Stopped, Crashed, Absent (Unreadable)
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
    write_private(config.state_dir / "config.json", json.dumps(data, indent=2))


def load_config(name: str) -> LabConfig:
    """The running (or crashed, or stopped) lab's own configuration, else the defaults
    for ``name``."""
    path = state_root() / name / "config.json"
    if not path.exists():
        return LabConfig(name=name)
    return read_config(path)


def has_state(config: LabConfig) -> bool:
    """Whether the lab's objects are kept on disk (a stopped or crashed lab): its
    configuration, its store and its CA. ``start`` and ``up`` bring such a lab back."""
    return all(p.exists() for p in (config.state_dir / "config.json", config.db_path, config.pki_dir / "ca.crt"))


def _read_status(config: LabConfig) -> dict[str, Any]:
    try:
        return json.loads((config.state_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def wait_told(told: BinaryIO, ready: Callable[[], bool], timeout: float, recheck: float = 0.5) -> None:
    """Waits until ``ready()``, which is asked whenever the supervisor writes to the
    pipe ``told`` (it does when Ready or Failed: no 50 ms polling of ``status.json``
    between the two) and at least every ``recheck`` seconds (a supervisor that died
    without a word only closes it). Raises TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    open_ = True
    while not ready():
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"not ready after {timeout:.0f} s")
        if not open_:
            time.sleep(min(left, 0.05))
            continue
        readable, _, _ = select.select([told], [], [], min(left, recheck))
        if readable and not told.read(64):
            open_ = False  # closed: poll for the exit the next checks report


def _alive(pid: int | None) -> TypeGuard[int]:  # alive: pid is a number
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"k8snet.lab.supervisor" in cmdline


def status(name: str = "k8snet") -> LabStatus:
    config = load_config(name)
    if not config.state_dir.exists():
        return LabStatus(name, ABSENT, None, None, None,
                         f"no such lab: 'sudo k8snet lab up --name {name}' creates it")
    st = _read_status(config)
    pid = st.get("pid")
    kubeconfig = config.kubeconfig_path if config.kubeconfig_path.exists() else None
    if _alive(pid):
        return LabStatus(name, st.get("phase", "Starting"), st.get("server"), kubeconfig, pid,
                         st.get("message", ""), st)
    kept = has_state(config)
    phase = st.get("phase")
    back = (f"'sudo k8snet lab start --name {name}' brings it back with its objects, "
            f"'sudo k8snet lab down --name {name}' deletes it")
    if phase == "Stopped" or (not st and kept):
        return LabStatus(name, STOPPED, st.get("server"), kubeconfig, None, f"its state is kept: {back}", st)
    if phase == "Failed":
        why = st.get("message") or "the supervisor failed"
        advice = back if kept else f"'sudo k8snet lab down --name {name}' removes what is left"
        return LabStatus(name, "Failed", st.get("server"), kubeconfig, None,
                         f"{why} (log: {config.state_dir / 'supervisor.log'}); {advice}", st)
    if st:
        advice = back if kept else f"run 'sudo k8snet lab down --name {name}' to clean up"
        return LabStatus(name, "Crashed", st.get("server"), kubeconfig, pid,
                         f"the supervisor is gone; {advice}", st)
    return LabStatus(name, "Failed", None, None, None,
                     f"a start failed and left only its log {config.state_dir / 'supervisor.log'}; "
                     f"'sudo k8snet lab down --name {name}' removes it")


def _lock(name: str, timeout: float) -> contextlib.AbstractContextManager[None]:
    """The lab's lock (:mod:`k8snet.lab.statelock`), waiting a little longer than the
    slowest command another holder may be running."""
    return statelock.lab_lock(name, timeout=timeout + LOCK_SLACK_S)


def up(config: LabConfig, *, timeout: float = READY_TIMEOUT_S,
       user_kubeconfig: UserKubeconfig | None = None) -> LabStatus:
    """Starts the lab and returns when every node is Ready and cluster DNS answers,
    then merges its context into ``user_kubeconfig`` (default: the invoking user's
    ``~/.kube/config``, see :meth:`UserKubeconfig.invoking`).

    A lab of the same name that is already Ready is returned as is (its context is
    merged all the same). A lab whose state is kept (stopped, crashed, or after a
    reboot) comes back with its objects and its own configuration, as ``start``;
    ``config``'s shape is then ignored (:func:`check_shape` refuses a different one).
    """
    check_host()
    target = _checked_target(user_kubeconfig)
    try:
        with _lock(config.name, timeout):
            return _up_locked(config, timeout, target)
    except statelock.LabBusy as err:
        raise LabError(str(err)) from None


def start(name: str = "k8snet", *, timeout: float = READY_TIMEOUT_S,
          user_kubeconfig: UserKubeconfig | None = None) -> LabStatus:
    """Brings a stopped (or crashed) lab back with every object its store holds."""
    check_host()
    target = _checked_target(user_kubeconfig)
    try:
        with _lock(name, timeout):
            if status(name).phase != "Ready" and not has_state(load_config(name)):
                raise LabError(f"lab {name!r} has no kept state to start from: "
                               f"'sudo k8snet lab up --name {name}' creates it")
            return _up_locked(load_config(name), timeout, target)
    except statelock.LabBusy as err:
        raise LabError(str(err)) from None


def _up_locked(config: LabConfig, timeout: float, target: UserKubeconfig | None) -> LabStatus:
    _refuse_if_running_elsewhere(config)
    current = status(config.name)
    if current.phase == "Ready":
        _merge_user_kubeconfig(load_config(config.name), target)
        return current
    if current.phase in ("Starting", "Stopping"):
        raise LabError(f"lab {config.name!r} is {current.phase.lower()} (pid {current.pid}); "
                       f"wait, or run 'k8snet lab down --name {config.name}'")
    saved = load_config(config.name)
    restoring = has_state(saved)
    if restoring:
        _clear_runtime(saved)  # what a crash left: processes, namespaces, pod files
        restrict_modes(saved.state_dir)  # a folder an older version left readable
        config = saved
        _check_node_network_free(config)
    else:
        if config.state_dir.exists():
            _cleanup(saved)
        from .net.hostlink import with_free_node_cidr  # imported late: runs ip(8)

        # Each lab puts its node network on the host: pick one no other lab uses.
        config = with_free_node_cidr(config)
        config.state_dir.mkdir(parents=True, mode=0o700)
        save_config(config)
    try:
        return _launch(config, timeout, target, restoring)
    except KeyboardInterrupt:
        # Ctrl-C: stop the start and leave the host as before (a second Ctrl-C must
        # not interrupt that), then say in one line what happened.
        with _sigint_ignored():
            _give_up(config, restoring, "interrupted (Ctrl-C)")
        kept = "it is stopped, its objects kept" if restoring else "everything it had made is removed"
        raise LabInterrupted(f"interrupted: lab {config.name!r} was not started; {kept}") from None


def _launch(config: LabConfig, timeout: float, target: UserKubeconfig | None, restoring: bool) -> LabStatus:
    """Starts the supervisor on ``config``'s state folder and waits until it is Ready."""
    log_fd = os.open(config.state_dir / "supervisor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    ready_r, ready_w = os.pipe()  # the supervisor writes a line when it is Ready (or Failed)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "k8snet.lab.supervisor", str(config.state_dir / "config.json"),
             "--ready-fd", str(ready_w)],
            stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd, start_new_session=True, close_fds=True,
            pass_fds=(ready_w,),
            env={**os.environ, "PYTHONPATH": _package_root() + os.pathsep + os.environ.get("PYTHONPATH", "")},
        )
    except BaseException:
        os.close(ready_r)
        raise
    finally:
        os.close(log_fd)
        os.close(ready_w)
    try:
        wait_exec(proc)  # from here on _alive(pid) and _supervisors() know it by its command line
    except BaseException:  # Ctrl-C in that window: only this Popen can still find it
        proc.kill()
        proc.wait()
        os.close(ready_r)
        raise
    _note_starting(config, proc.pid)
    log = config.state_dir / "supervisor.log"

    def ready() -> bool:
        """Whether the supervisor reports Ready; raises when it failed."""
        st = _read_status(config)
        if st.get("phase") == "Ready" and st.get("pid") == proc.pid:
            return True
        if st.get("phase") == "Failed" or proc.poll() is not None:
            message = st.get("message") or f"the supervisor exited with code {proc.poll()}"
            _give_up(config, restoring, message)
            raise LabError(f"lab {config.name!r} failed to start: {message} (log: {log})"
                           + (f"; its objects are kept: 'k8snet lab start --name {config.name}' tries again"
                              if restoring else ""))
        return False

    try:
        with os.fdopen(ready_r, "rb", buffering=0) as told:
            wait_told(told, ready, timeout)
    except TimeoutError:
        _give_up(config, restoring, f"not Ready after {timeout:.0f} s")
        raise LabError(f"lab {config.name!r} was not Ready after {timeout:.0f} s (log: {log})") from None
    try:
        _merge_user_kubeconfig(config, target)
    except LabError:
        _give_up(config, restoring, "its context could not be merged")
        raise
    return status(config.name)


def _give_up(config: LabConfig, restoring: bool, why: str) -> None:
    """Undoes a start that did not finish: a lab with kept state goes back to Stopped
    (its store is the user's work), a new one is removed but for its log."""
    if restoring:
        _clear_runtime(config)
        _write_status(config, "Failed", why)
    else:
        _cleanup(config, keep_log=True)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _checked_target(user_kubeconfig: UserKubeconfig | None) -> UserKubeconfig | None:
    target = user_kubeconfig or _merge_target()
    try:
        if target is not None:
            kubeconfig.check_target(target)  # refuse before anything starts, not after
    except kubeconfig.KubeconfigError as err:
        raise LabError(str(err)) from None
    return target


def _check_node_network_free(config: LabConfig) -> None:
    """A kept lab comes back on its own node network (its nodes' addresses and
    LoadBalancer IPs are in its objects): refuse if the host uses it by now."""
    import ipaddress

    from .net.hostlink import host_networks

    net = ipaddress.ip_network(config.node_cidr)
    clash = [str(n) for n in host_networks() if n.overlaps(net)]
    if clash:
        raise LabError(f"lab {config.name!r} runs on the node network {config.node_cidr}, which the host now "
                       f"also has ({', '.join(clash)}); free it, or 'k8snet lab down --name {config.name}' "
                       "and 'up' again for a new lab")


def check_shape(name: str, nodes: int | None, proxy_mode: str | None) -> None:
    """``up --nodes/--proxy-mode`` of a lab whose state is kept: it comes back as it
    was, so a different shape asked for explicitly is refused instead of ignored."""
    saved = load_config(name)
    if not has_state(saved):
        return
    if (nodes is not None and nodes != saved.nodes) or (proxy_mode is not None and proxy_mode != saved.proxy_mode):
        raise LabError(f"lab {name!r} exists with {saved.nodes} node{'s' if saved.nodes != 1 else ''} "
                       f"in {saved.proxy_mode} mode and comes back as it was; "
                       f"'sudo k8snet lab down --name {name}' first for another shape")


def stop(name: str = "k8snet", *, grace: float = 15.0) -> LabStatus:
    """Stops the lab and removes everything it has on the host (processes, namespaces,
    mounts, the host veth), as ``down`` does, but keeps its state folder: the store
    with every object, the PKI, the kubeconfig and its merged contexts."""
    check_host()
    try:
        with _lock(name, grace):
            config = load_config(name)
            current = status(name)
            if current.phase == ABSENT:
                raise LabError(f"there is no lab {name!r} to stop")
            if not has_state(config):
                raise LabError(f"lab {name!r} has no state to keep ({current.message}); "
                               f"'sudo k8snet lab down --name {name}' removes it")
            previous = _read_status(config)
            _stop_supervisor(config, grace)
            _clear_runtime(config)
            _write_status(config, STOPPED, server=previous.get("server"), nodes=config.node_names,
                          proxy_mode=config.proxy_mode)
            return status(name)
    except statelock.LabBusy as err:
        raise LabError(str(err)) from None


def down(name: str = "k8snet", *, grace: float = 15.0) -> list[str]:
    """Stops the lab and removes everything it made; returns what had to be removed by force."""
    check_host()
    try:
        with _lock(name, grace):
            config = load_config(name)
            _stop_supervisor(config, grace)
            return _cleanup(config)
    except statelock.LabBusy as err:
        raise LabError(str(err)) from None


def _stop_supervisor(config: LabConfig, grace: float) -> None:
    """SIGTERM, which stops every pod and removes the lab's network; SIGKILL after
    ``grace`` seconds (the cleanup after it removes what is left)."""
    pid = _read_status(config).get("pid")
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        wait_until("the supervisor to exit", lambda: not _alive(pid), grace, interval=0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _supervisors() -> list[tuple[int, Path]]:
    """Every live lab supervisor on the machine, with the config.json it was started on."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"k8snet.lab.supervisor" in argv[:-1]:
                path = Path(os.fsdecode(argv[argv.index(b"k8snet.lab.supervisor") + 1]))
                with contextlib.suppress(OSError):  # a relative state root: from the supervisor's cwd
                    found.append((int(entry), Path(os.readlink(f"/proc/{entry}/cwd")) / path))
    return found


def _kill_supervisors(config: LabConfig) -> None:
    """SIGKILLs every supervisor of this lab: the one ``status.json`` names, and any
    other whose command line names the lab's config.json (one started just before a
    Ctrl-C, before it could be recorded). They run in the host namespace, where the
    namespace scan of the cleanup does not look."""
    mine = config.state_dir.absolute() / "config.json"
    pids = {_read_status(config).get("pid")} | {pid for pid, path in _supervisors() if path == mine}
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        wait_until("the killed supervisors to exit", lambda: not any(_alive(p) for p in pids), 5, interval=0.01)


def _refuse_if_running_elsewhere(config: LabConfig) -> None:
    """A lab's network namespaces are named after the lab alone, so a lab of the same
    name kept in another state folder ($K8SNET_STATE_ROOT) owns them: neither a start
    nor a clean-up here may touch them."""
    for pid, path in _supervisors():
        if path.parent.name == config.name and path.parent != config.state_dir.absolute():
            raise LabError(f"a lab named {config.name!r} is running from another state folder, "
                           f"{path.parent} (supervisor pid {pid}), and its network is named after it: "
                           f"stop it with 'sudo K8SNET_STATE_ROOT={path.parent.parent} k8snet lab down "
                           f"--name {config.name}', or give this lab another name")


def restrict_modes(folder: Path) -> None:
    """Takes group and other permissions off everything in ``folder`` (pods' files are
    gone by now: their volumes keep the modes the pod asks for, behind 0700 folders)."""
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            mode = path.stat().st_mode & 0o7777
            if mode & 0o077:
                path.chmod(mode & ~0o077)


def _write_status(config: LabConfig, phase: str, message: str = "", **extra: Any) -> None:
    write_private(config.state_dir / "status.json", json.dumps({"phase": phase, "message": message, **extra}))


#: what a running lab keeps in its state folder for itself only: gone after a stop
RUNTIME_ENTRIES = ("pods", "ipam", "status.json")


def _clear_runtime(config: LabConfig) -> None:
    """Removes what a lab has on the host while it runs (from the kernel's view, so
    also after a crash or a reboot) and its pods' files, keeping its state: store,
    PKI, kubeconfig, configuration, log, prepared images."""
    from .net.cleanup import cleanup_lab  # imported late: needs root-only tools at use

    _kill_supervisors(config)
    report = cleanup_lab(config)
    if not report.ok:
        raise LabError(f"lab {config.name!r} could not be stopped cleanly: {'; '.join(report.errors)}")
    for entry in RUNTIME_ENTRIES:
        path = config.state_dir / entry
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _cleanup(config: LabConfig, *, keep_log: bool = False) -> list[str]:
    """Kills what is left of a lab (by namespace), deletes its namespaces and state."""
    from .net.cleanup import cleanup_lab  # imported late: needs root-only tools at use

    _refuse_if_running_elsewhere(config)
    _kill_supervisors(config)
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
