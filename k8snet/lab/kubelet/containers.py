"""From a pod's container spec to a runtime :class:`ContainerConfig`.

Combines the image (what runs, its PATH/ENV and files), the container's
command/args (Docker's override rules, with Kubernetes' ``$(VAR)`` expansion), the
environment the kubelet computed, and the mounts: the image's files, the pod's
/etc/hosts, /etc/resolv.conf and /etc/hostname, then the volumeMounts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..images import catalog
from .envvars import expand
from .runtime import ContainerConfig, Mount

Obj = dict[str, Any]


def base_env(image: catalog.Image, images_dir: Path, hostname: str) -> dict[str, str]:
    """What Docker/containerd put in every container before the pod's own env."""
    env = dict(catalog.image_env(image, images_dir)[:1])
    env["HOSTNAME"] = hostname
    env.update(catalog.image_env(image, images_dir)[1:])
    env.setdefault("HOME", "/root")
    return env


def merged_env(base: dict[str, str], pod_env: list[str]) -> list[str]:
    """The pod's variables override the image's (containerd's WithEnv)."""
    env = dict(base)
    for item in pod_env:
        key, _, value = item.partition("=")
        env[key] = value
    return [f"{k}={v}" for k, v in env.items()]


def container_argv(image: catalog.Image, container: Obj, env: dict[str, str], images_dir: Path) -> list[str]:
    """The argv that runs: command/args expanded with ``$(VAR)``, then mapped to host programs."""
    command = [expand(a, env) for a in container.get("command") or []]
    args = [expand(a, env) for a in container.get("args") or []]
    return catalog.host_argv(image, catalog.effective_argv(image, command, args), images_dir)


def mount_target(path: str) -> str:
    """A mount path with the host's symlinks resolved (/var/run -> /run), which is what
    the container sees too: its root filesystem is the host's."""
    return os.path.realpath(path) if os.path.isabs(path) else "/" + path


#: Volume kinds the kubelet always mounts read-only, whatever ``readOnly`` says
#: (since Kubernetes 1.10: the atomic writer owns their files).
READ_ONLY_KINDS = ("secret", "configMap", "downwardAPI", "projected")


def read_only_volumes(pod: Obj) -> set[str]:
    return {v["name"] for v in pod["spec"].get("volumes") or [] if any(k in v for k in READ_ONLY_KINDS)}


def volume_mounts(container: Obj, volume_paths: dict[str, str], read_only: set[str] | None = None) -> list[Mount]:
    mounts = []
    for vm in container.get("volumeMounts") or []:
        if vm["name"] not in volume_paths:
            raise ValueError(f'volumeMount "{vm["name"]}" names no volume of the pod')
        source = volume_paths[vm["name"]]
        sub = vm.get("subPath")
        if sub:
            if ".." in Path(sub).parts or os.path.isabs(sub):
                raise ValueError(f"invalid subPath {sub!r}")
            source = os.path.join(source, sub)
            if not os.path.exists(source):  # the kubelet creates a missing subPath as a directory
                os.makedirs(source, exist_ok=True)
        mounts.append(Mount(source, mount_target(vm["mountPath"]),
                            bool(vm.get("readOnly")) or vm["name"] in (read_only or ())))
    return mounts


def package_mounts(image: catalog.Image) -> list[Mount]:
    """Our own modules (agnhost, the DNS server, image assets) and the project's
    environment (the python image's packages) must stay visible when the checkout
    sits under a directory the image makes private — a clone in /tmp: each is bound
    back onto its own path, over the tmpfs."""
    paths = [os.path.join(catalog.PYTHONPATH, "k8snet")]
    if sys.prefix != sys.base_prefix:
        paths.append(sys.prefix)
    return [Mount(path, path, readonly=True) for path in paths
            if any(path == t or path.startswith(t.rstrip("/") + "/") for t in image.tmpfs)]


def build_config(pod: Obj, container: Obj, image: catalog.Image, *, hostname: str, pod_env: list[str],
                 images_dir: Path, container_dir: Path, pod_files: dict[str, str],
                 volume_paths: dict[str, str]) -> ContainerConfig:
    """``pod_files`` maps /etc/hosts, /etc/resolv.conf, /etc/hostname to the pod's copies."""
    catalog.prepare_tools(image, images_dir)
    env_list = merged_env(base_env(image, images_dir, hostname), pod_env)
    env = dict(item.split("=", 1) for item in env_list)
    mounts = [Mount(m.source, m.target) for m in catalog.prepare_files(image, container_dir)]
    if catalog.has_tools(image):
        mounts.append(Mount(str(catalog.tools_dir(images_dir, image)), catalog.TOOLS_MOUNT, readonly=True))
    mounts += [Mount(src, target) for target, src in pod_files.items()]
    mounts += volume_mounts(container, volume_paths, read_only_volumes(pod))
    mounts += package_mounts(image)
    return ContainerConfig(
        name=container["name"], hostname=hostname,
        argv=container_argv(image, container, env, images_dir), env=env_list,
        cwd=container.get("workingDir") or image.workdir, tmpfs=list(image.tmpfs), mounts=mounts,
        stdin=bool(container.get("stdin")), stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
    )
