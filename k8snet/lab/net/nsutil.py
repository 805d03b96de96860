"""Small helpers around named network namespaces: ``ip`` batches, setns, sysctls.

Named namespaces are iproute2's: a bind mount of an nsfs file at /run/netns/NAME.
Everything here acts *inside* lab namespaces and never on the host's: interfaces are
created straight into their namespace and configured with ``ip -n NAME``, and
sysctls are written from a thread that has been switched into the namespace
(``/proc/sys/net`` shows the network namespace of the calling thread).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
IFNAMSIZ = 16  # the kernel's limit includes the trailing NUL: names are at most 15 chars
MNT_DETACH = 2
MS_BIND, MS_REC, MS_SHARED = 0x1000, 0x4000, 0x100000

T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


class NetError(RuntimeError):
    """An ``ip`` command or a namespace operation failed; the message says which and why."""


# -- names and paths -------------------------------------------------------------
def netns_path(name: str) -> Path:
    """Where iproute2 keeps the named namespace: /run/netns/NAME."""
    return NETNS_DIR / name


def list_netns(prefix: str = "") -> list[str]:
    """Named network namespaces whose name starts with ``prefix``, sorted.

    Reads /run/netns directly rather than running ``ip netns list`` (no process, and
    it also shows a half-created entry whose bind mount is missing, which cleanup wants).
    """
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def check_ifname(name: str) -> str:
    """``name`` if the kernel accepts it as an interface name, else ValueError."""
    if not 0 < len(name) < IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise ValueError(f"invalid interface name {name!r} (1-{IFNAMSIZ - 1} chars, no '/' or spaces)")
    return name


def umount_lazy(path: str | Path) -> bool:
    """``umount -l path``; True if something was mounted there."""
    if _libc.umount2(os.fsencode(path), MNT_DETACH) == 0:
        return True
    e = ctypes.get_errno()
    if e in (errno.EINVAL, errno.ENOENT):  # not a mount point / no such path
        return False
    raise NetError(f"umount {path}: {os.strerror(e)}")


def delete_netns(name: str) -> bool:
    """Removes the named namespace as ``ip netns del`` does (lazy unmount, unlink) but
    without a process. True if the name existed. The namespace itself lives on while
    a process or socket still uses it; the name is gone at once."""
    path = netns_path(name)
    umount_lazy(path)  # a half-made entry has no mount: still unlinked below
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


_netns_dir_ready = threading.Lock()
_netns_dir_shared = False


def _mount(source: str | Path, target: str | Path, flags: int) -> None:
    if _libc.mount(os.fsencode(source), os.fsencode(target), b"none", flags, None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {source} on {target}: {os.strerror(e)}")


def _share_netns_dir() -> None:
    """/run/netns as a shared mount point, as ``ip netns add`` leaves it (its
    netns_add): namespace mounts made later then show in other mount namespaces too.
    Once per process: the first ``ip netns add`` of ``lab up`` has usually done it."""
    global _netns_dir_shared
    with _netns_dir_ready:
        if _netns_dir_shared:
            return
        NETNS_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        try:
            _mount("", NETNS_DIR, MS_SHARED | MS_REC)
        except OSError as e:
            if e.errno != errno.EINVAL:  # EINVAL: not a mount point yet; make it one
                raise
            _mount(NETNS_DIR, NETNS_DIR, MS_BIND | MS_REC)
            _mount("", NETNS_DIR, MS_SHARED | MS_REC)
        _netns_dir_shared = True


def create_netns_here(name: str) -> None:
    """``ip netns add NAME`` without a process, and moves the *calling thread* into the
    new namespace (from the event loop: :func:`run_in_new_netns`).

    What iproute2 does in its own process: an empty file /run/netns/NAME, a new network
    namespace (``unshare``: here only the calling thread's), and the thread's namespace
    file bind-mounted onto the name, which keeps the namespace alive. A failure leaves
    no name behind."""
    _share_netns_dir()
    path = netns_path(name)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    except FileExistsError:
        raise NetError(f'Cannot create namespace file "{path}": File exists') from None
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise NetError(f"Failed to create a new network namespace \"{name}\": {os.strerror(e)}")
        _mount("/proc/thread-self/ns/net", path, MS_BIND)
    except BaseException:
        umount_lazy(path)
        path.unlink(missing_ok=True)
        raise


# -- ip commands -----------------------------------------------------------------
def _ip_argv(netns: str | None) -> list[str]:
    return ["ip", *(["-n", netns] if netns is not None else []), "-batch", "-"]


def _batch_text(commands: Iterable[str]) -> bytes:
    return "".join(f"{c}\n" for c in commands).encode()


def _raise_on_failure(netns: str | None, commands: list[str], rc: int, out: bytes, err: bytes) -> str:
    if rc != 0:
        where = f" in netns {netns}" if netns else ""
        raise NetError(f"ip -batch{where} failed ({rc}): {err.decode(errors='replace').strip()}\n"
                       f"commands:\n  " + "\n  ".join(commands))
    return out.decode(errors="replace")


async def ip_batch(commands: Iterable[str], netns: str | None = None) -> str:
    """Runs many ``ip`` commands in one process (``ip [-n NETNS] -batch -``); returns stdout.

    One process for a whole batch is what keeps node and pod setup fast: each ``ip``
    process costs a few milliseconds, a batch line a few microseconds. Batch lines
    take no options (``-o``, ``-4``): only the command itself. A failed line stops
    the batch and raises NetError with ip's message.
    """
    cmds = list(commands)
    if not cmds:
        return ""
    proc = await asyncio.create_subprocess_exec(
        *_ip_argv(netns), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate(_batch_text(cmds))
    assert proc.returncode is not None
    return _raise_on_failure(netns, cmds, proc.returncode, out, err)


def ip_batch_sync(commands: Iterable[str], netns: str | None = None) -> str:
    """:func:`ip_batch` for synchronous callers (cleanup after a crash has no event loop)."""
    cmds = list(commands)
    if not cmds:
        return ""
    res = subprocess.run(_ip_argv(netns), input=_batch_text(cmds), capture_output=True, check=False)
    return _raise_on_failure(netns, cmds, res.returncode, res.stdout, res.stderr)


# -- setns -------------------------------------------------------------------------
def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


@contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Switches the *calling thread* into network namespace ``name`` and back.

    Sockets created inside stay in that namespace after the block ends, which is how
    the supervisor listens on the wire bridge's address. Other threads are unaffected.
    Python 3.11 has no ``os.setns``, hence ctypes.
    """
    try:
        target = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetError(f"network namespace {name!r} does not exist") from None
    # /proc/thread-self, not /proc/self: the latter is the main thread's namespace.
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        try:
            yield
        finally:
            # If this fails the thread stays in the lab namespace; make that loud.
            _setns(orig)
    finally:
        os.close(target)
        os.close(orig)


class _NetnsThreads:
    """The threads that namespace work runs in off the event loop.

    Pooled, not one fresh thread per call: starting a thread blocks the event loop
    until the new thread has run (``Thread.start`` waits for it), which under load cost
    more than the namespace work itself (18 % of the busy loop in a 100-pod start).
    A pooled thread must never carry a lab namespace into its next job, so each job
    first switches its thread back to the namespace the thread was born in (the
    event loop's: the host's), whatever the previous job left."""

    MAX_THREADS = 8  # a node's start slots and probes; namespace creation waits in the kernel

    def __init__(self) -> None:
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(self.MAX_THREADS, thread_name_prefix="netns", initializer=self._born)

    def _born(self) -> None:
        self._local.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    def _homed(self, body: Callable[[], T]) -> T:
        _setns(self._local.home)
        return body()

    async def run(self, body: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._homed, body)


_threads: _NetnsThreads | None = None


def _netns_threads() -> _NetnsThreads:
    global _threads
    if _threads is None:
        _threads = _NetnsThreads()
    return _threads


async def run_in_netns(name: str, fn: Callable[..., T], *args: object) -> T:
    """Runs ``fn(*args)`` in a thread switched into namespace ``name`` (and back)."""
    def body() -> T:
        with in_netns(name):
            return fn(*args)
    return await _netns_threads().run(body)


async def run_in_new_netns(name: str, fn: Callable[..., T], *args: object) -> T:
    """Creates network namespace ``name`` (:func:`create_netns_here`) and runs
    ``fn(*args)`` inside it, in a thread that then goes back to its own namespace."""
    def body() -> T:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            create_netns_here(name)
            return fn(*args)
        finally:
            try:  # at once: a thread left inside would keep the pod's namespace alive
                _setns(home)
            finally:
                os.close(home)
    return await _netns_threads().run(body)


async def open_connection_in_netns(name: str, host: str, port: int,
                                   timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to ``host:port`` made from inside namespace ``name``.

    Only the socket is created in the namespace (a socket stays in the namespace it
    was made in); connecting and reading happen on the caller's event loop.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = await run_in_netns(name, socket.socket, family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), timeout)
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


def run_in_netns_sync(name: str, fn: Callable[..., T], *args: object) -> T:
    """Runs ``fn(*args)`` in a fresh thread switched into namespace ``name``; waits for it."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            with in_netns(name):
                result.append(fn(*args))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    t = threading.Thread(target=target, name=f"netns:{name}", daemon=True)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return result[0]


def listen_socket_in_netns(name: str, host: str, port: int, *, backlog: int = 128) -> socket.socket:
    """A listening TCP socket bound to ``host:port`` inside namespace ``name``.

    Hand it to ``aiohttp.web.SockSite`` (or ``loop.create_server(sock=...)``): it keeps
    serving from that namespace although the process lives in the host's.
    """
    with in_netns(name):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


# -- sysctls -------------------------------------------------------------------------
def sysctl_path(key: str) -> Path:
    """``net.ipv4.ip_forward`` -> /proc/sys/net/ipv4/ip_forward (only net.* keys)."""
    if not key.startswith("net.") or ".." in key or "/" in key:
        raise ValueError(f"only per-namespace net.* sysctls may be written, not {key!r}")
    return Path("/proc/sys") / key.replace(".", "/")


def _write_sysctls_here(values: Mapping[str, str]) -> None:
    for key, value in values.items():
        try:
            sysctl_path(key).write_text(f"{value}\n")
        except OSError as e:
            raise NetError(f"sysctl {key}={value}: {e.strerror or e}") from e


def _checked(values: Mapping[str, str | int]) -> dict[str, str]:
    vals = {k: str(v) for k, v in values.items()}
    for k in vals:
        sysctl_path(k)  # validate before switching namespaces
    return vals


def write_sysctls_here(values: Mapping[str, str | int]) -> None:
    """Writes net.* sysctls in the calling thread's namespace: for code already running
    in a thread switched into a lab namespace (``run_in_netns``), never the host's."""
    _write_sysctls_here(_checked(values))


def write_sysctls_sync(netns: str, values: Mapping[str, str | int]) -> None:
    """Writes net.* sysctls inside ``netns`` (never the host's)."""
    run_in_netns_sync(netns, _write_sysctls_here, _checked(values))


async def write_sysctls(netns: str, values: Mapping[str, str | int]) -> None:
    """Async :func:`write_sysctls_sync`."""
    await run_in_netns(netns, _write_sysctls_here, _checked(values))


def read_sysctl_sync(netns: str, key: str) -> str:
    """The value of a net.* sysctl inside ``netns`` (for tests and status)."""
    path = sysctl_path(key)
    return run_in_netns_sync(netns, lambda: path.read_text().strip())
