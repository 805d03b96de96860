"""The container runtime: start, stop and enter one container; write and read its log.

It knows nothing about the API: :class:`ContainerConfig` holds everything a
container needs (argv, environment, mounts, hostname), and the pod's network
namespace is just a path. The kubelet builds configs from pod specs
(``containers.py``); tests can drive this module directly.

A container is ``nsenter --net=<netns> unshare --mount --uts --pid --fork
--propagation private python3 -S -I init.py <spec.marshal>`` (see ``init.py``; its
compiled bytecode when fresh, :func:`init_program`): its
own root file system (``rootfs.py``) and security context (``security.py``).
Its stdout and stderr are pipes that the runtime copies into a log file in the CRI
format (``<RFC3339Nano> stdout|stderr F|P <line>``), like containerd.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import json
import marshal
import os
import secrets
import shlex
import signal
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import AsyncIterator, BinaryIO, Callable

from .attach import ContainerIO, pty_reader, pty_writer
from .security import ContainerSecurity

INIT = str(Path(__file__).with_name("init.py"))
PARTIAL_MAX = 16 * 1024  # longer lines are split into "P" records, as containerd does


def init_program() -> str:
    """The file the interpreter runs as a container's init: init.py's bytecode when it is
    there and matches init.py (setup.sh compiles the package), else init.py itself. A
    script given by path is compiled at every start, ~3 ms of CPU per container, and
    never from a cache; a .pyc given by path runs as is, so this checks what an import
    would (magic number, timestamp-based, the source's mtime and size)."""
    cached = importlib.util.cache_from_source(INIT)
    try:
        with open(cached, "rb") as f:
            header = f.read(16)
        source = os.stat(INIT)
    except OSError:
        return INIT
    if len(header) < 16:
        return INIT
    flags, mtime, size = struct.unpack("<3I", header[4:16])
    fresh = (header[:4] == importlib.util.MAGIC_NUMBER and flags == 0
             and mtime == int(source.st_mtime) & 0xFFFFFFFF and size == source.st_size & 0xFFFFFFFF)
    return cached if fresh else INIT


class ContainerStartError(Exception):
    def __init__(self, reason: str, message: str, exit_code: int = 128):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.exit_code = exit_code


@dataclass
class Mount:
    source: str
    target: str
    readonly: bool = False

    @property
    def is_dir(self) -> bool:
        return os.path.isdir(self.source)


@dataclass
class ContainerConfig:
    """What runs: built by the kubelet from the pod spec, the image and the volumes."""

    name: str
    hostname: str
    argv: list[str]
    env: list[str]                 # "NAME=value", exactly the container's environment
    cwd: str = "/"
    mounts: list[Mount] = field(default_factory=list)
    #: the init's root file system section (``rootfs.spec``)
    rootfs: dict = field(default_factory=dict)
    security: ContainerSecurity = field(default_factory=ContainerSecurity)
    stdin: bool = False            # keep a stdin open for attach (spec.containers[].stdin)
    stdin_once: bool = False       # close it when the first attach session's stdin ends
    tty: bool = False              # a pseudo-terminal for stdin, stdout and stderr

    def env_dict(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.env)


def now_rfc3339(nanos: int | None = None) -> str:
    ns = time.time_ns() if nanos is None else nanos
    base = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns % 1_000_000_000:09d}Z"


def exit_code_of(returncode: int) -> int:
    """A shell-style exit code: killed by signal N -> 128+N (what Kubernetes reports)."""
    return 128 - returncode if returncode < 0 else returncode


@dataclass
class Container:
    """A started container. ``pid`` is its PID 1, seen from the host."""

    id: str
    config: ContainerConfig
    proc: asyncio.subprocess.Process
    pid: int | None
    log_path: Path
    started_at: str
    finished_at: str | None = None
    exit_code: int | None = None
    _pumps: list[asyncio.Task] = field(default_factory=list, repr=False)
    io: ContainerIO | None = field(default=None, repr=False)  # stdio for attach

    @property
    def running(self) -> bool:
        return self.exit_code is None

    async def wait(self) -> int:
        if self.exit_code is None:
            rc = await self.proc.wait()
            await asyncio.gather(*self._pumps, return_exceptions=True)
            if self.exit_code is None:
                self.exit_code = exit_code_of(rc)
                self.finished_at = now_rfc3339()
        return self.exit_code

    def signal(self, sig: int) -> None:
        for pid in (self.pid, self.proc.pid):
            if pid is None:
                continue
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
            return

    async def stop(self, grace_seconds: float, sooner: asyncio.Event | None = None) -> int:
        """SIGTERM, then SIGKILL after the grace period (the kubelet's KillContainer),
        or as soon as ``sooner`` is set (the grace period was shortened)."""
        if self.exit_code is not None:
            return self.exit_code
        if grace_seconds > 0 and not (sooner is not None and sooner.is_set()):
            self.signal(signal.SIGTERM)
            exited = asyncio.ensure_future(asyncio.shield(self.wait()))
            waits: set[asyncio.Future] = {exited}
            if sooner is not None:
                waits.add(asyncio.ensure_future(sooner.wait()))
            try:
                await asyncio.wait(waits, timeout=grace_seconds, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits - {exited}:
                    w.cancel()
            if exited.done():
                return exited.result()
            exited.cancel()
        self.signal(signal.SIGKILL)
        try:
            return await asyncio.wait_for(asyncio.shield(self.wait()), 10)
        except TimeoutError:  # unshare itself stuck: kill it too
            os.kill(self.proc.pid, signal.SIGKILL)
            return await self.wait()


async def _pump(reader: asyncio.StreamReader, stream: str, out,
                publish: Callable[[str, bytes], None] | None = None) -> None:
    buf = b""
    tag = stream.encode()
    while True:
        chunk = await reader.read(65536)
        if chunk:
            if publish is not None:
                publish(stream, chunk)
            buf += chunk
        lines = buf.split(b"\n")
        buf = lines.pop()
        records = [(line, b"F") for line in lines]
        while len(buf) > PARTIAL_MAX or (not chunk and buf):
            piece, buf = buf[:PARTIAL_MAX], buf[PARTIAL_MAX:]
            records.append((piece, b"P" if buf or chunk else b"F"))
        if records:
            out.write(b"".join(now_rfc3339().encode() + b" " + tag + b" " + t + b" " + line + b"\n"
                               for line, t in records))
        if not chunk:
            return


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


#: what a container process starts with, as under containerd and Docker; the supervisor
#: itself runs with 077 (its state files are root's only)
CONTAINER_UMASK = 0o022


async def start_container(netns_path: str, config: ContainerConfig, container_dir: Path,
                          log_path: Path) -> Container:
    """Starts the container and returns once its command has been exec'd.

    Raises ContainerStartError (CreateContainerError / StartError) when the init
    could not make the mounts or find the command."""
    read_fd, write_fd = os.pipe()
    os.set_inheritable(write_fd, True)
    # a tty is made inside the container's root (its own devpts); the init hands the
    # master back over this socket pair (runc's console socket)
    console, console_child = socket.socketpair() if config.tty else (None, None)
    pass_fds = (write_fd,) + ((console_child.fileno(),) if console_child else ())
    for fd in pass_fds:
        os.set_inheritable(fd, True)
    spec = {
        "hostname": config.hostname, "argv": config.argv, "env": config.env, "cwd": config.cwd, "tty": config.tty,
        "rootfs": config.rootfs, "security": config.security.as_spec(),
        "status_fd": write_fd, "scratch_dir": str(container_dir / "scratch"),
        "console_fd": console_child.fileno() if console_child else None,
        "mounts": [dict(asdict(m), is_dir=m.is_dir) for m in config.mounts],
    }
    # File creation is slow enough on some disks (~0.5 ms) to keep off the event loop.
    try:
        spec_path, log = await asyncio.to_thread(_write_spec, container_dir, spec, log_path)
    except BaseException:
        os.close(read_fd)
        os.close(write_fd)
        for sock in (console, console_child):
            if sock is not None:
                sock.close()
        raise
    argv = ["nsenter", f"--net={netns_path}", "unshare", "--mount", "--uts", "--pid", "--fork",
            "--propagation", "private", "--kill-child",
            os.path.realpath(sys.executable), "-S", "-I", init_program(), str(spec_path)]
    stdio = _stdio(config)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, **stdio, pass_fds=pass_fds, start_new_session=True, umask=CONTAINER_UMASK,
            env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")})
    finally:
        os.close(write_fd)
        if console_child is not None:
            console_child.close()
    started_at = now_rfc3339()
    report = await _read_line(read_fd)
    tty_master = _received_pty(console) if console is not None and report == b"ok" else None
    if console is not None:
        console.close()
    if tty_master is not None:
        io = ContainerIO(await pty_writer(tty_master), stdin_once=config.stdin_once, tty_fd=tty_master)
        # a tty has one output stream; the runtime logs it as stdout, like containerd
        pumps = [asyncio.create_task(_pump(pty_reader(tty_master), "stdout", log, io.publish))]
    elif config.tty:  # the init failed before it made a terminal: nothing to read
        io, pumps = ContainerIO(None, stdin_once=config.stdin_once, tty_fd=None), []
    else:
        assert proc.stdout is not None and proc.stderr is not None  # _stdio pipes both without a tty
        io = ContainerIO(proc.stdin, stdin_once=config.stdin_once, tty_fd=None)
        pumps = [asyncio.create_task(_pump(proc.stdout, "stdout", log, io.publish)),
                 asyncio.create_task(_pump(proc.stderr, "stderr", log, io.publish))]
    children = _children(proc.pid)
    container = Container(secrets.token_hex(32), config, proc, children[0] if children else None,
                          log_path, started_at, _pumps=pumps, io=io)
    asyncio.get_running_loop().create_task(_close_when_done(container, log))
    if report != b"ok":
        await container.wait()
        try:
            failure = json.loads(report)
        except ValueError:  # the init died before reporting (e.g. killed)
            failure = {"reason": "StartError",
                       "message": report.decode(errors="replace") or "container init exited early"}
        raise ContainerStartError(failure["reason"], failure["message"], container.exit_code or 128)
    if container.pid is None and proc.returncode is None:
        await asyncio.sleep(0)  # the fork happened before exec; look once more
        children = _children(proc.pid)
        container.pid = children[0] if children else None
    await asyncio.to_thread((container_dir / "state.json").write_text, json.dumps(
        {"id": container.id, "pid": container.pid, "runtime_pid": proc.pid, "started_at": started_at}))
    return container


def _write_spec(container_dir: Path, spec: dict, log_path: Path) -> tuple[Path, BinaryIO]:
    """Writes the init's spec; returns its path and the container's log, opened to append."""
    container_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # marshal, not JSON: the init then needs no json import (see init.py); the same
    # interpreter writes and reads it.
    spec_path = container_dir / "spec.marshal"
    spec_path.write_bytes(marshal.dumps(spec))
    return spec_path, open(log_path, "ab", buffering=0)


def _stdio(config: ContainerConfig) -> dict:
    """The container's stdin/stdout/stderr: pipes (stdin only if the spec keeps one
    open); with a tty, nothing yet — the init puts its pty slave there (see init.py)."""
    if config.tty:
        return {"stdin": asyncio.subprocess.DEVNULL, "stdout": asyncio.subprocess.DEVNULL,
                "stderr": asyncio.subprocess.DEVNULL}
    stdin = asyncio.subprocess.PIPE if config.stdin else asyncio.subprocess.DEVNULL
    return {"stdin": stdin, "stdout": asyncio.subprocess.PIPE, "stderr": asyncio.subprocess.PIPE}


def _received_pty(console: socket.socket) -> int:
    """The pty master the init sent before it reported "ok" (so it is already queued)."""
    _, fds, _, _ = socket.recv_fds(console, 16, 1, socket.MSG_DONTWAIT)
    if not fds:
        raise ContainerStartError("StartError", "the container's init sent no terminal")
    os.set_inheritable(fds[0], False)
    return fds[0]


async def _close_when_done(container: Container, log) -> None:
    try:
        await container.wait()
    finally:
        log.close()
        if container.io is not None:
            container.io.end()


async def _read_line(fd: int) -> bytes:
    """Reads the init's status line without blocking the loop."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                os.fdopen(fd, "rb", buffering=0))
    try:
        return (await reader.readline()).strip()
    finally:
        transport.close()


# -- exec ----------------------------------------------------------------------

async def exec_in(container: Container, command: list[str], *, stdin: bool,
                  tty: bool) -> asyncio.subprocess.Process:
    """Starts ``command`` in the container's namespaces and root, as its user with its
    capabilities, environment and working dir (what runc exec does with the
    container's process settings). With a tty, ``script`` gives the command a
    pseudo-terminal (stdout then carries the terminal's output, stderr is merged).

    ``setpriv`` and ``env`` run inside the container's root: they are the host's
    (its /usr is bound read-only in every container)."""
    if container.pid is None or not container.running:
        raise ContainerStartError("NotRunning", f"container {container.config.name} is not running")
    if tty:
        # script is a host program: it must be found whatever the image's PATH says
        command = ["/usr/bin/script", "-q", "-e", "-c", shlex.join(command), "/dev/null"]
    argv = (["nsenter", "-t", str(container.pid), "--net", "--mount", "--uts", "--pid", "--root", "--",
             "/usr/bin/setpriv"] + container.config.security.setpriv_args()
            + ["--", "/usr/bin/env", f"--chdir={container.config.cwd or '/'}", "--"] + command)
    env = container.config.env_dict()
    if tty:
        env.setdefault("TERM", "xterm")
    return await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        umask=CONTAINER_UMASK)


# -- logs ----------------------------------------------------------------------

def parse_cri_line(line: bytes) -> tuple[str, str, bytes] | None:
    """(timestamp, stream, content-with-newline-if-full) from one CRI log record."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    ts, stream, tag = parts[0].decode(), parts[1].decode(), parts[2]
    content = parts[3] if len(parts) == 4 else b""
    return ts, stream, content + (b"\n" if tag == b"F" else b"")


def render_log(data: bytes, *, timestamps: bool = False, tail_lines: int | None = None) -> bytes:
    """What ``kubectl logs`` shows for a CRI log file's content."""
    records = [r for r in (parse_cri_line(line) for line in data.splitlines(keepends=True)) if r]
    if tail_lines is not None:
        # count logical lines: partial records belong to the next full one
        full = [i for i, r in enumerate(records) if r[2].endswith(b"\n")]
        if tail_lines == 0:
            records = []
        elif len(full) > tail_lines:
            records = records[full[-tail_lines - 1] + 1:]
    out = []
    for ts, _, content in records:
        out.append((ts.encode() + b" " if timestamps else b"") + content)
    return b"".join(out)


async def follow_log(path: Path, running: Callable[[], bool], *, timestamps: bool = False,
                     tail_lines: int | None = None, limit_bytes: int | None = None,
                     follow: bool = False, poll: float = 0.1) -> AsyncIterator[bytes]:
    """Yields the rendered log, then (with follow) new records until the container ends."""
    sent = 0
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        data = f.read()
        cut = data.rfind(b"\n") + 1
        pending = data[cut:]
        chunk = render_log(data[:cut], timestamps=timestamps, tail_lines=tail_lines)
        while True:
            if chunk:
                if limit_bytes is not None:
                    chunk = chunk[:max(0, limit_bytes - sent)]
                if chunk:
                    sent += len(chunk)
                    yield chunk
                if limit_bytes is not None and sent >= limit_bytes:
                    return
                chunk = b""  # sent: a poll that finds nothing new must not send it again
            if not follow:
                return
            alive = running()
            more = f.read()
            if not more:
                if not alive:
                    return
                await asyncio.sleep(poll)
                continue
            data = pending + more
            cut = data.rfind(b"\n") + 1
            pending = data[cut:]
            chunk = render_log(data[:cut], timestamps=timestamps)
