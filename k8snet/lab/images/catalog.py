"""The image catalog: which image references the lab can "run", and what runs.

The lab pulls nothing. An image reference is normalised like Docker does
(``nginx`` -> ``docker.io/library/nginx:latest``) and matched by repository against
the catalog; the entry says what the real image would run (ENTRYPOINT and CMD, so
a pod's ``command``/``args`` override them with Docker's semantics), its PATH and
ENV, the files the image carries (bind-mounted into the container's own mount
namespace), and the directories that must be private (tmpfs). Host programs stand
in for the image's programs: Debian's nginx, busybox applets, curl, Python.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

ASSETS = Path(__file__).with_name("assets")
#: Lets containers that run our own modules (agnhost, DNS) import ``k8snet``.
PYTHONPATH = str(Path(__file__).resolve().parents[3])
DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Directory names under which an absolute argv[0] may name one of an image's tools.
BIN_DIRS = ("/bin", "/usr/bin", "/sbin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
#: Where a container sees its image's tool directory: first on Debian's PATH, and
#: where the real python image keeps python3. A bind mount, so the lab's state folder
#: (which may sit under /tmp, hidden by the container's private /tmp) need not be visible.
TOOLS_MOUNT = "/usr/local/bin"


class ImagePullError(Exception):
    """The reference names no catalogued image (the kubelet's ErrImagePull)."""


@dataclass(frozen=True)
class ImageRef:
    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        """The fully qualified name containerd reports as a container's image."""
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or 'latest'}"


_REF_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+|__)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


def parse_reference(ref: str) -> ImageRef:
    """Docker's normalisation (distribution/reference ``ParseNormalizedNamed``)."""
    rest, _, digest_part = ref.partition("@")
    digest = digest_part or None
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, remainder
    else:
        domain, path = "docker.io", rest
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if not path or not _REF_RE.match(path) or (tag is not None and not re.match(r"^\w[\w.-]{0,127}$", tag)):
        raise ValueError(f"invalid reference format: {ref!r}")
    return ImageRef(domain, path, tag, digest)


@dataclass(frozen=True)
class Image:
    """What a catalogued image runs. Paths in ``files`` are relative to ASSETS."""

    name: str
    repositories: tuple[str, ...]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    path: tuple[str, ...] = (DEBIAN_PATH,)
    env: tuple[tuple[str, str], ...] = ()
    #: tool name -> host program; symlinked into the image's tool directory
    tools: tuple[tuple[str, str], ...] = ()
    busybox_applets: bool = False
    #: absolute argv[0] the real image has -> the argv prefix that replaces it
    aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: container path -> asset directory, copied per container (the image's writable layer)
    files: tuple[tuple[str, str], ...] = ()
    #: container directory -> {entry name: symlink target} (e.g. nginx's log symlinks)
    symlink_dirs: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    tmpfs: tuple[str, ...] = ("/run", "/tmp")
    workdir: str = "/"

    def digest(self) -> str:
        """A stable digest of this entry: the imageID changes only when the entry does."""
        data = json.dumps(asdict(self), sort_keys=True).encode()
        return "sha256:" + hashlib.sha256(data).hexdigest()


def _python() -> str:
    """The interpreter of the project's environment, by its own path: a venv is found
    from the path the interpreter is started by, so resolving the symlink to the base
    Python (or linking to it from elsewhere) would leave the environment's packages
    behind."""
    return sys.executable if sys.prefix != sys.base_prefix else os.path.realpath(sys.executable)


#: Image tools that must be started by a small launcher rather than a symlink (see _python).
LAUNCHED = frozenset({"python", "python3"})
#: busybox's wget behind a launcher that bridges Debian 12's busybox 1.35 to the real
#: images' 1.37: ``-T`` (compiled out, and it segfaults) and HTTPS (see the file).
WGET_LAUNCHER = ASSETS / "wget.py"


def _busybox_launchers(busybox: str) -> dict[str, tuple[str, ...]]:
    """Applets that run through a launcher instead of a symlink to busybox: only wget,
    run by file with ``-I -S`` (no site, no environment): it adds about 15 ms to a wget."""
    return {"wget": (_python(), "-I", "-S", str(WGET_LAUNCHER), busybox)}


def _write_launcher(path: Path, argv: tuple[str, ...]) -> None:
    path.write_text(f'#!/bin/sh\nexec {shlex.join(argv)} "$@"\n')
    path.chmod(0o755)


def _python_module(module: str) -> tuple[str, ...]:
    return (_python(), "-m", module)


def _nginx_version() -> str:
    try:
        out = subprocess.run(["nginx", "-v"], capture_output=True, text=True, timeout=5).stderr
    except (OSError, subprocess.TimeoutExpired):
        return ""
    m = re.search(r"nginx/(\S+)", out)
    return m.group(1) if m else ""


def _shell_tools(curl: bool) -> tuple[tuple[str, str], ...]:
    return (("curl", shutil.which("curl") or "/usr/bin/curl"),) if curl else ()


@lru_cache(maxsize=1)
def catalog() -> tuple[Image, ...]:
    python = _python()
    nginx_files = (("/etc/nginx", "nginx"), ("/usr/share/nginx/html", "nginx-html"))
    nginx_logs = (("/var/log/nginx", (("access.log", "/dev/stdout"), ("error.log", "/dev/stderr"))),)
    nginx = Image(
        "nginx", ("docker.io/library/nginx",),
        # The official ENTRYPOINT /docker-entrypoint.sh only tweaks config and then
        # execs its arguments, so an empty ENTRYPOINT behaves the same for args.
        cmd=("nginx", "-g", "daemon off;"),
        env=(("NGINX_VERSION", _nginx_version()),),
        files=nginx_files, symlink_dirs=nginx_logs,
        tmpfs=("/run", "/tmp", "/var/lib/nginx", "/var/cache"),
    )
    # by file, not -m: importing the k8snet package would cost start-up time
    agnhost = (python, str(Path(__file__).with_name("agnhost.py")))
    ours = (("PYTHONPATH", PYTHONPATH),)
    return (
        nginx,
        replace(nginx, name="bprashanth/nginxhttps", repositories=("docker.io/bprashanth/nginxhttps",)),
        Image("busybox", ("docker.io/library/busybox",), cmd=("sh",), busybox_applets=True),
        Image("radial/busyboxplus", ("docker.io/radial/busyboxplus",), cmd=("/bin/sh",),
              busybox_applets=True, tools=_shell_tools(curl=True)),
        Image("curlimages/curl", ("docker.io/curlimages/curl", "quay.io/curl/curl"),
              entrypoint=(str(ASSETS / "curl-entrypoint.sh"),), cmd=("curl",), busybox_applets=True,
              tools=_shell_tools(curl=True),
              aliases=(("/entrypoint.sh", (str(ASSETS / "curl-entrypoint.sh"),)),)),
        Image("python", ("docker.io/library/python",), cmd=("python3",),
              env=(("LANG", "C.UTF-8"), ("PYTHON_VERSION", sys.version.split()[0])) + ours,
              tools=(("python", python), ("python3", python))),
        Image("agnhost", ("registry.k8s.io/e2e-test-images/agnhost", "k8s.gcr.io/e2e-test-images/agnhost",
                          "gcr.io/kubernetes-e2e-test-images/agnhost"),
              entrypoint=("/agnhost",), cmd=("pause",), env=ours,
              busybox_applets=True, tools=_shell_tools(curl=True),
              aliases=(("/agnhost", agnhost),)),
        Image("pause", ("registry.k8s.io/pause", "k8s.gcr.io/pause"), entrypoint=("/pause",), env=ours,
              aliases=(("/pause", agnhost + ("pause",)),)),
        Image("coredns", ("registry.k8s.io/coredns/coredns", "k8s.gcr.io/coredns/coredns",
                          "docker.io/coredns/coredns", "registry.k8s.io/coredns"),
              entrypoint=("/coredns",), env=ours,
              aliases=(("/coredns", _python_module("k8snet.lab.dns")),)),
    )


def catalog_names() -> list[str]:
    return [image.name for image in catalog()]


def pull_error_message(ref: str) -> str:
    return (f'Failed to pull image "{ref}": the k8snet lab runs only catalogued images: '
            + ", ".join(catalog_names()))


def resolve(ref: str) -> Image:
    """The catalog entry for ``ref``, or ImagePullError with the kubelet's message."""
    try:
        repository = parse_reference(ref).repository
    except ValueError as err:
        raise ImagePullError(f'Failed to pull image "{ref}": {err}') from None
    for image in catalog():
        if repository in image.repositories:
            return image
    raise ImagePullError(pull_error_message(ref))


def image_id(ref: str) -> str:
    """``docker.io/library/nginx@sha256:...`` as a container status's imageID."""
    return f"{parse_reference(ref).repository}@{resolve(ref).digest()}"


def normalized(ref: str) -> str:
    return str(parse_reference(ref))


# -- what runs ----------------------------------------------------------------

def effective_argv(image: Image, command: list[str] | None, args: list[str] | None) -> list[str]:
    """Docker's rule: ``command`` replaces ENTRYPOINT (and drops CMD), ``args`` replaces CMD."""
    if command:
        return list(command) + list(args or [])
    return list(image.entrypoint) + list(args if args else image.cmd)


def tools_dir(images_dir: Path, image: Image) -> Path:
    return images_dir / image.name.replace("/", "_") / "bin"


def host_argv(image: Image, argv: list[str], images_dir: Path) -> list[str]:
    """Rewrites an absolute argv[0] that exists only in the real image to what runs here."""
    if not argv:
        return argv
    aliases = dict(image.aliases)
    if argv[0] in aliases:
        return list(aliases[argv[0]]) + argv[1:]
    head, _, base = argv[0].rpartition("/")
    tool = tools_dir(images_dir, image) / base
    if head in BIN_DIRS and has_tools(image) and os.path.lexists(tool):
        return [f"{TOOLS_MOUNT}/{base}"] + argv[1:]
    return argv


def has_tools(image: Image) -> bool:
    return image.busybox_applets or bool(image.tools)


def busybox_applets() -> list[str]:
    try:
        out = subprocess.run(["busybox", "--list"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return out.split()


def prepare_tools(image: Image, images_dir: Path) -> Path:
    """Creates (once per lab) the image's tool directory of symlinks to host programs."""
    target = tools_dir(images_dir, image)
    if target.is_dir():
        target.chmod(0o755)  # a lab made by an older version left it 0700
        return target
    staging = target.with_name(f"bin.tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    staging.chmod(0o755)  # bound into containers: any runAsUser must reach its tools
    busybox = shutil.which("busybox") or "/usr/bin/busybox"
    launchers = _busybox_launchers(busybox) if image.busybox_applets else {}
    for applet in busybox_applets() if image.busybox_applets else []:
        if applet in launchers:
            _write_launcher(staging / applet, launchers[applet])
        else:
            (staging / applet).symlink_to(busybox)
    for name, program in image.tools:
        link = staging / name
        if link.is_symlink():
            link.unlink()
        if name in LAUNCHED:
            _write_launcher(link, (program,))
        else:
            link.symlink_to(program)
    try:
        staging.rename(target)
    except OSError:  # another pod prepared it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


@dataclass
class ImageMount:
    """A bind mount (``source`` -> ``target``) the image contributes to a container."""

    source: str
    target: str


def prepare_files(image: Image, container_dir: Path) -> list[ImageMount]:
    """Copies the image's files into the container's own directory (its writable
    layer: ``kubectl exec`` may edit the welcome page) and returns their mounts."""
    mounts: list[ImageMount] = []
    rootfs = container_dir / "rootfs"
    for target, asset in image.files:
        dest = rootfs / target.lstrip("/")
        if not dest.exists():
            shutil.copytree(ASSETS / asset, dest)
            if asset == "nginx" and Path("/etc/nginx/mime.types").exists():
                shutil.copy2("/etc/nginx/mime.types", dest / "mime.types")
        mounts.append(ImageMount(str(dest), target))
    for target, links in image.symlink_dirs:
        dest = rootfs / target.lstrip("/")
        dest.mkdir(parents=True, exist_ok=True)
        for name, link_target in links:
            if not (dest / name).is_symlink():
                (dest / name).symlink_to(link_target)
        mounts.append(ImageMount(str(dest), target))
    return mounts


def image_env(image: Image, images_dir: Path) -> list[tuple[str, str]]:
    """The image's ENV, PATH first, as ``docker inspect`` lists it."""
    return [("PATH", ":".join(image.path))] + [(k, v) for k, v in image.env if v]
