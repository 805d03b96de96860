"""A container's init: runs as PID 1 of the container's fresh PID, mount and UTS namespaces.

Started by the runtime as::

    nsenter --net=<pod netns> unshare --mount --uts --pid --fork --mount-proc \
        --propagation private <python3> -S -I init.py <spec.marshal>

It sets the hostname, makes the container's mounts (private tmpfs dirs, the image's
files, the pod's /etc/hosts and /etc/resolv.conf, volumes) *inside its own mount
namespace* (the host's mount table never changes), then execs the command with
exactly the container's environment. It reports on the fd ``status_fd``: the fd is
one line: ``ok`` right before the exec, or a JSON object saying why the container
could not start.

Every container start pays for this module's start-up, so it imports only what is
built in or cheap (``os``, ``sys``, ``marshal``, ``ctypes``): ``json``, ``socket``,
``dataclasses``, ``pathlib`` and ``typing`` would triple the interpreter's start-up
time. The spec therefore comes as ``marshal`` data (written by the same interpreter),
and ``json`` is imported only to report a failure.
"""

import ctypes
import marshal
import os
import sys

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000

_libc = ctypes.CDLL(None, use_errno=True)


class StartError(Exception):
    """The container cannot start; the message goes into its status."""


class MountPlan:
    """Where a container's mount points come from, decided before mounting anything."""

    def __init__(self) -> None:
        self.overlays: list = []          # host dirs to overlay (copy-on-write)
        self.source_paths: list = []      # (path, is_dir) in a bind source we own
        self.container_paths: list = []   # (path, is_dir) made after tmpfs


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def plan_mountpoints(spec: dict, exists) -> MountPlan:
    """Decides how to create every missing mount point without touching the host.

    A target under one of the image's directory binds is created in that bind's
    source (a directory the lab owns); under a private tmpfs, after the tmpfs is
    mounted; anywhere else, in a copy-on-write overlay over its deepest existing
    ancestor. A missing top-level directory cannot be made: that would be the host's /.
    """
    plan = MountPlan()
    dir_binds = [(m["target"], m["source"]) for m in spec["mounts"] if m.get("is_dir", True)]
    for m in spec["mounts"]:
        target, is_dir = m["target"], m.get("is_dir", True)
        owner = max((b for b in dir_binds if b[0] != target and _under(target, b[0])),
                    key=lambda b: len(b[0]), default=None)
        if owner is not None:
            rel = os.path.relpath(target, owner[0])
            plan.source_paths.append((os.path.join(owner[1], rel), is_dir))
            continue
        if any(_under(target, t) for t in spec.get("tmpfs", [])):
            plan.container_paths.append((target, is_dir))
            continue
        if exists(target):
            continue
        ancestor = os.path.dirname(target.rstrip("/")) or "/"
        while not exists(ancestor):
            ancestor = os.path.dirname(ancestor) or "/"
        if ancestor == "/":
            raise StartError(f'cannot create mount point "{target}": the lab shares the host\'s root '
                             "filesystem, so a new top-level directory cannot be made")
        if ancestor not in plan.overlays:
            plan.overlays.append(ancestor)
        plan.container_paths.append((target, is_dir))
    return plan


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    rc = _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                     ctypes.c_ulong(flags), data.encode() if data else None)
    if rc != 0:
        err = ctypes.get_errno()
        raise StartError(f'mount {source} on {target}: {os.strerror(err)}')


def _make(path: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(path, exist_ok=True)
    elif not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "a").close()


def setup_mounts(spec: dict) -> None:
    plan = plan_mountpoints(spec, os.path.lexists)
    for path, is_dir in plan.source_paths:
        _make(path, is_dir)
    # Hold every source before anything is mounted: a tmpfs on /tmp or an overlay
    # could otherwise hide a source that lives below it.
    sources = {m["source"]: os.open(m["source"], os.O_PATH | os.O_CLOEXEC) for m in spec["mounts"]}
    for i, lower in enumerate(plan.overlays):
        upper = os.path.join(spec["scratch_dir"], f"overlay{i}", "upper")
        work = os.path.join(spec["scratch_dir"], f"overlay{i}", "work")
        os.makedirs(upper, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        _mount("overlay", lower, "overlay", 0, f"lowerdir={lower},upperdir={upper},workdir={work}")
    for target in spec.get("tmpfs", []):
        mode = "1777" if target == "/tmp" else "755"
        _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode}")
    for path, is_dir in plan.container_paths:
        _make(path, is_dir)
    # Shallow targets first, so a volume at /etc/nginx/conf.d lands on top of /etc/nginx.
    for m in sorted(spec["mounts"], key=lambda m: m["target"].count("/")):
        source = f"/proc/self/fd/{sources[m['source']]}"
        _mount(source, m["target"], None, MS_BIND | MS_REC)
        if m.get("readonly"):
            _mount(source, m["target"], None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    for fd in sources.values():
        os.close(fd)


def _sethostname(name: str) -> None:
    raw = name.encode()
    if _libc.sethostname(raw, ctypes.c_size_t(len(raw))) != 0:
        raise OSError(ctypes.get_errno(), f"sethostname: {os.strerror(ctypes.get_errno())}")


def _controlling_tty() -> None:
    """With ``tty: true`` stdin is a pty slave: make it this session's controlling
    terminal, so a shell gets job control, ^C reaches the foreground process and a
    resize sends SIGWINCH (the runtime's setsid + TIOCSCTTY, as runc does)."""
    import termios  # only for tty containers: no start-up cost for the others
    os.setsid()
    if _libc.ioctl(0, ctypes.c_ulong(termios.TIOCSCTTY), 0) != 0:
        raise OSError(ctypes.get_errno(), f"TIOCSCTTY: {os.strerror(ctypes.get_errno())}")


def _report(fd: int, reason: str, message: str, exit_code: int) -> None:
    import json  # only on failure: it costs a third of the start-up time
    os.write(fd, (json.dumps({"reason": reason, "message": message}) + "\n").encode())
    os._exit(exit_code)


def main(spec_path: str) -> None:
    with open(spec_path, "rb") as f:
        spec = marshal.load(f)
    fd = spec["status_fd"]
    os.set_inheritable(fd, False)
    try:
        if spec.get("tty"):
            _controlling_tty()
        _sethostname(spec["hostname"])
        setup_mounts(spec)
        cwd = spec.get("cwd") or "/"
        os.makedirs(cwd, exist_ok=True)
        os.chdir(cwd)
    except (StartError, OSError) as err:
        _report(fd, "CreateContainerError", str(err), 128)
    env = dict(item.split("=", 1) for item in spec["env"])
    argv = spec["argv"]
    if not argv:
        _report(fd, "CreateContainerError", "no command specified", 128)
    program = resolve_program(argv[0], env.get("PATH", ""))
    if program is None:
        where = "" if "/" in argv[0] else " in $PATH"
        _report(fd, "StartError", f'exec: "{argv[0]}": executable file not found{where}', 128)
    # The runtime reads one line: unshare's waiting parent keeps its copy of the fd
    # open, so EOF cannot mean "exec'd". Resolving the program first makes "ok" true.
    os.write(fd, b"ok\n")
    try:
        os.execve(program, argv, env)
    except OSError as err:
        sys.stderr.write(f'exec: "{argv[0]}": {err.strerror}\n')
        os._exit(128)


def resolve_program(name: str, path: str) -> str | None:
    """execvp's search, done before exec so that a missing program is reported."""
    candidates = [name] if "/" in name else [os.path.join(d or ".", name) for d in path.split(":")]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


if __name__ == "__main__":
    main(sys.argv[1])
