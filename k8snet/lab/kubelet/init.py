"""A container's init: runs as PID 1 of the container's fresh PID, mount and UTS namespaces.

Started by the runtime as::

    nsenter --net=<pod netns> unshare --mount --uts --pid --fork \
        --propagation private <python3> -S -I init.py <spec.marshal>

It sets the hostname, builds the container's own root file system *inside its own
mount namespace* (the host's mount table never changes; see ``rootfs.py`` for what
goes in), ``pivot_root``s into it and lets go of the host's root, binds the image's
files, the pod's /etc/hosts and /etc/resolv.conf and the volumes, applies the
security context (user, groups, capability bounding set, ``no_new_privs``,
read-only root), then execs the command with exactly the container's environment.
It reports on the fd ``status_fd``: one line, ``ok`` right before the exec, or a
JSON object saying why the container could not start.

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

TYPE_CHECKING = False  # typing is not imported at run time: every millisecond of start-up counts
if TYPE_CHECKING:
    from typing import NoReturn

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MNT_DETACH = 2
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
#: pivot_root has no libc wrapper
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
#: host device nodes a container gets (runc's default devices)
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

_libc = ctypes.CDLL(None, use_errno=True)


class StartError(Exception):
    """The container cannot start; the message goes into its status."""


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def plan_overlays(spec: dict, exists) -> list:
    """The host directories to overlay (copy-on-write) in the new root: a mount point
    missing under a read-only host directory (/usr) is made in an overlay of its
    deepest existing ancestor. Anywhere else the root is the container's own
    (tmpfs, /etc overlay, volumes) and the point is made there after pivot_root."""
    host_dirs = spec["rootfs"]["host_dirs"]
    overlays: list = []
    for m in spec["mounts"]:
        target = m["target"]
        if not any(_under(target, d) for d in host_dirs) or exists(target):
            continue
        ancestor = os.path.dirname(target.rstrip("/"))
        while not exists(ancestor):
            ancestor = os.path.dirname(ancestor)
        if ancestor not in overlays:
            overlays.append(ancestor)
    return overlays


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    rc = _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                     ctypes.c_ulong(flags), data.encode() if data else None)
    if rc != 0:
        err = ctypes.get_errno()
        raise StartError(f'mount {source} on {target}: {os.strerror(err)}')


def _bind(source: str, target: str, flags: int) -> None:
    """A recursive bind, then the per-mount flags (a bind ignores them at first)."""
    _mount(source, target, None, MS_BIND | MS_REC)
    _mount("none", target, None, MS_BIND | MS_REMOUNT | flags)


def _make(path: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(path, exist_ok=True)
    elif not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "a").close()


def _overlay(lower: str, target: str, store: str, name: str) -> None:
    upper, work = os.path.join(store, name, "upper"), os.path.join(store, name, "work")
    os.makedirs(upper)
    os.makedirs(work)
    _mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV,
           f"lowerdir={lower},upperdir={upper},workdir={work}")


def _make_dev(dev: str) -> None:
    """/dev as runc makes it: a tmpfs with the harmless host devices bound in, a
    private devpts, /dev/shm. The tmpfs is nodev: a node made with CAP_MKNOD is inert."""
    os.mkdir(dev)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=65536k")
    for name in DEVICES:
        open(os.path.join(dev, name), "w").close()
        _mount(f"/dev/{name}", os.path.join(dev, name), None, MS_BIND)
    os.mkdir(os.path.join(dev, "pts"))
    _mount("devpts", os.path.join(dev, "pts"), "devpts", MS_NOSUID | MS_NOEXEC,
           "newinstance,ptmxmode=0666,mode=0620,gid=5")
    os.mkdir(os.path.join(dev, "shm"))
    _mount("shm", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")
    for name, target in (("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, os.path.join(dev, name))


def build_root(spec: dict, root: str, store: str) -> None:
    """The container's root file system, assembled under ``root`` (a tmpfs)."""
    rootfs = spec["rootfs"]
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    _mount("tmpfs", store, "tmpfs", MS_NOSUID | MS_NODEV, "mode=700")
    for path, mode in rootfs["private"]:
        os.makedirs(root + path, exist_ok=True)
        os.chmod(root + path, mode)
    for path, target in rootfs["links"]:
        os.symlink(target, root + path)
    for path in rootfs["host_dirs"]:
        os.makedirs(root + path, exist_ok=True)
        _bind(path, root + path, MS_RDONLY | MS_NODEV)
    os.mkdir(root + "/etc")
    _overlay(rootfs["etc"], root + "/etc", store, "etc")
    for i, lower in enumerate(plan_overlays(spec, os.path.lexists)):
        _overlay(lower, root + lower, store, f"overlay{i}")
    os.mkdir(root + "/proc")
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.mkdir(root + "/sys")
    _mount("sysfs", root + "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
    _make_dev(root + "/dev")


def pivot(root: str) -> str:
    """Makes ``root`` the root; the host's stays reachable at the returned path until
    :func:`release_host` (the volumes are bound from it in between)."""
    put_old = "/.host-" + os.urandom(8).hex()  # unguessable: see bind_mounts
    os.mkdir(root + put_old, 0o000)
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None or _libc.syscall(ctypes.c_long(number), root.encode(), (root + put_old).encode()) != 0:
        raise StartError(f"pivot_root: {os.strerror(ctypes.get_errno()) if number else 'unknown architecture'}")
    os.chdir("/")
    return put_old


def release_host(put_old: str) -> None:
    if _libc.umount2(put_old.encode(), MNT_DETACH) != 0:
        raise StartError(f"unmount the host's root: {os.strerror(ctypes.get_errno())}")
    os.rmdir(put_old)


def bind_mounts(spec: dict, sources: dict, put_old: str) -> None:
    """The image's files, the pod's files and the volumes, each at its target as
    resolved inside the container: a symlink a container left in a volume
    (``sub -> /etc``) cannot point a mount, or a made mount point, at the host."""
    # Shallow targets first, so a volume at /etc/nginx/conf.d lands on top of /etc/nginx.
    for m in sorted(spec["mounts"], key=lambda m: m["target"].count("/")):
        target = m["target"]
        if _under(os.path.realpath(os.path.dirname(target)), put_old):
            raise StartError(f'mount point "{target}" resolves outside the container')
        _make(target, m.get("is_dir", True))
        _bind(f"/proc/self/fd/{sources[m['source']]}", target,
              MS_NOSUID | MS_NODEV | (MS_RDONLY if m.get("readonly") else 0))


def setup_mounts(spec: dict) -> None:
    # Hold every source before the host's root moves away.
    sources = {m["source"]: os.open(m["source"], os.O_PATH | os.O_CLOEXEC) for m in spec["mounts"]}
    root, store = os.path.join(spec["scratch_dir"], "root"), os.path.join(spec["scratch_dir"], "store")
    os.makedirs(root, exist_ok=True)
    os.makedirs(store, exist_ok=True)
    build_root(spec, root, store)
    put_old = pivot(root)
    bind_mounts(spec, sources, put_old)
    for fd in sources.values():
        os.close(fd)
    release_host(put_old)


def read_only_root() -> None:
    """readOnlyRootFilesystem: the root and its /etc overlay become read-only
    (volumes and the pod's /etc files keep their own modes)."""
    for path in ("/", "/etc"):
        _mount("none", path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _prctl(option: int, arg: int) -> int:
    return _libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def _capset(mask: int) -> None:
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    low, high = mask & 0xFFFFFFFF, mask >> 32
    # effective, permitted, inheritable for caps 0-31, then 32-63; inheritable stays
    # empty (containerd no longer sets it: CVE-2022-24769)
    data = (ctypes.c_uint32 * 6)(low, low, 0, high, high, 0)
    if _libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), f"capset: {os.strerror(ctypes.get_errno())}")


def apply_security(sec: dict) -> None:
    """The container's identity and capabilities, as runc sets them before exec.

    Only the bounding set decides what the command gets: exec gives a root process
    every bounding capability and a non-root one none (no ambient capabilities,
    as under containerd)."""
    keep = set(sec["caps"])
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        if cap not in keep and _prctl(PR_CAPBSET_DROP, cap) != 0:
            raise OSError(ctypes.get_errno(), f"drop capability {cap}: {os.strerror(ctypes.get_errno())}")
    _libc.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), ctypes.c_ulong(0),
                ctypes.c_ulong(0), ctypes.c_ulong(0))
    os.setgroups(sec["groups"])
    os.setgid(sec["gid"])
    os.setuid(sec["uid"])
    _capset(sum(1 << c for c in keep) if sec["uid"] == 0 else 0)
    if sec["no_new_privs"] and _prctl(PR_SET_NO_NEW_PRIVS, 1) != 0:
        raise OSError(ctypes.get_errno(), f"no_new_privs: {os.strerror(ctypes.get_errno())}")


def _sethostname(name: str) -> None:
    raw = name.encode()
    if _libc.sethostname(raw, ctypes.c_size_t(len(raw))) != 0:
        raise OSError(ctypes.get_errno(), f"sethostname: {os.strerror(ctypes.get_errno())}")


def _console(spec: dict) -> None:
    """With ``tty: true``: a pty from the container's own devpts (so ``tty`` names
    /dev/pts/N inside its root), the slave as stdin/stdout/stderr and this session's
    controlling terminal (job control, ^C, SIGWINCH on resize), owned by the
    container's user; the master goes back to the runtime over ``console_fd`` — runc's
    console socket."""
    import socket
    import termios  # only for tty containers: no start-up cost for the others

    master, slave = os.openpty()  # /dev/ptmx of the root we just pivoted into
    os.fchown(slave, spec["security"]["uid"], -1)
    os.setsid()
    if _libc.ioctl(slave, ctypes.c_ulong(termios.TIOCSCTTY), 0) != 0:
        raise OSError(ctypes.get_errno(), f"TIOCSCTTY: {os.strerror(ctypes.get_errno())}")
    for std in (0, 1, 2):
        os.dup2(slave, std)
    os.close(slave)
    with socket.socket(fileno=spec["console_fd"]) as console:
        socket.send_fds(console, [b"pty"], [master])
    os.close(master)


def _report(fd: int, reason: str, message: str, exit_code: int) -> "NoReturn":
    import json  # only on failure: it costs a third of the start-up time
    os.write(fd, (json.dumps({"reason": reason, "message": message}) + "\n").encode())
    os._exit(exit_code)


def main(spec_path: str) -> None:
    with open(spec_path, "rb") as f:
        spec = marshal.load(f)
    fd = spec["status_fd"]
    os.set_inheritable(fd, False)
    try:
        _sethostname(spec["hostname"])
        setup_mounts(spec)
        if spec.get("tty"):
            _console(spec)
        cwd = spec.get("cwd") or "/"
        os.makedirs(cwd, exist_ok=True)
        if spec["security"]["read_only_root"]:
            read_only_root()
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
    try:
        apply_security(spec["security"])
        os.chdir(cwd)  # as the container's user, like runc
    except OSError as err:
        _report(fd, "StartError", str(err), 128)
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
