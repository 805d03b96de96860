"""What a container's own root file system is made of (``init.py`` assembles it).

The lab has no image layers: the programs an image runs are the host's (Debian's
nginx, busybox, curl, Python). So a container's root is a fresh tmpfs holding
read-only binds of the host's system directories (/usr, and /bin, /sbin, /lib* as
the host has them: symlinks into /usr or directories), a private copy-on-write /etc
made from a short list of the host's configuration files, private /tmp, /var, /run,
/root and /home, and — for images that run the project's Python — the project's
environment and the ``k8snet`` package, read-only. Nothing else of the host is
there: not the lab's state (/var/lib/k8snet, other pods' secrets), /root, /home,
/etc/shadow, /etc/ssh, the host's /tmp or /var.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path

from ..images import catalog

#: Top-level directories programs and their libraries live in.
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
#: Private, writable, empty directories of every container (mode by path).
PRIVATE_DIRS = {"/tmp": 0o1777, "/var": 0o755, "/var/tmp": 0o1777, "/run": 0o755, "/root": 0o700,
                "/home": 0o755}
#: The host's /etc files programs read (name resolution, libraries, TLS roots,
#: users, time zone, MIME types); an allow-list, so /etc/shadow, /etc/ssh,
#: /etc/ssl/private and the like never reach a container.
ETC_ALLOWED = ("passwd", "group", "nsswitch.conf", "host.conf", "gai.conf", "services", "protocols",
               "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "timezone",
               "mime.types", "os-release", "debian_version", "issue", "shells", "profile", "bash.bashrc",
               "inputrc", "terminfo", "ssl/certs", "ssl/openssl.cnf", "ca-certificates.conf", "login.defs")


def system_layout(root: str = "/") -> tuple[list[tuple[str, str]], list[str]]:
    """(symlinks as (path, target), directories to bind) mirroring the host's
    top-level system directories (merged /usr or not)."""
    links, dirs = [], []
    for name in SYSTEM_DIRS:
        path = os.path.join(root, name)
        if os.path.islink(path):
            links.append(("/" + name, os.readlink(path)))
        elif os.path.isdir(path):
            dirs.append("/" + name)
    return links, dirs


def _under(path: str, parents: list[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in parents)


def project_dirs(image: catalog.Image) -> list[str]:
    """Host directories the image's programs need beyond the system ones: the
    project's environment (sys.prefix) and the ``k8snet`` package (our modules,
    launchers and image assets) for images that run them; the base interpreter's
    prefix if it lives outside /usr (the init's own lazy imports need it too)."""
    texts = [p for _, p in image.tools] + [a for _, alias in image.aliases for a in alias]
    texts += list(image.entrypoint) + [v for _, v in image.env]
    venv = sys.prefix if sys.prefix != sys.base_prefix else None
    ours = [p for p in (venv, catalog.PYTHONPATH) if p]
    dirs = []
    if image.busybox_applets or any(_under(t, ours) or t == catalog.PYTHONPATH for t in texts):
        dirs = ([venv] if venv else []) + [os.path.join(catalog.PYTHONPATH, "k8snet")]
    if not _under(os.path.realpath(sys.base_prefix), ["/usr"]):
        dirs.append(os.path.realpath(sys.base_prefix))
    return dirs


def etc_template(images_dir: Path) -> Path:
    return images_dir / "etc"


def prepare_etc(images_dir: Path, host_etc: Path = Path("/etc")) -> Path:
    """Copies (once per lab) the allowed host /etc entries; each container gets its
    own writable overlay of this copy."""
    target = etc_template(images_dir)
    if target.is_dir():
        return target
    # build_config runs in worker threads: a staging folder of this thread's own
    staging = target.with_name(f"etc.tmp{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    staging.chmod(0o755)
    for name in ETC_ALLOWED:
        src, dest = host_etc / name, staging / name
        if not os.path.lexists(src):
            continue
        dest.parent.mkdir(mode=0o755, exist_ok=True)  # ssl/: readable by any runAsUser
        dest.parent.chmod(0o755)
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, dest, symlinks=True)
        else:
            shutil.copy2(src, dest, follow_symlinks=False)
    try:
        staging.rename(target)
    except OSError:  # another pod prepared it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def spec(image: catalog.Image, images_dir: Path) -> dict:
    """The init's ``rootfs`` section for a container of this image."""
    links, dirs = system_layout()
    private = dict(PRIVATE_DIRS)
    for path in image.tmpfs:  # the image's own writable directories (nginx's cache)
        private.setdefault(path, 0o1777 if path == "/tmp" else 0o755)
    return {"links": links + [("/var/run", "../run")], "host_dirs": dirs + project_dirs(image),
            "etc": str(etc_template(images_dir)), "private": sorted(private.items())}
