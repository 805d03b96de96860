"""From a pod's container spec to a runtime :class:`ContainerConfig`.

Combines the image (what runs, its PATH/ENV and files), the container's
command/args (Docker's override rules, with Kubernetes' ``$(VAR)`` expansion), the
environment the kubelet computed, the mounts (the image's files, the pod's
/etc/hosts, /etc/resolv.conf and /etc/hostname, then the volumeMounts), the root
file system (``rootfs.py``) and the security context (``security.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..images import catalog
from . import rootfs
from .envvars import expand
from .runtime import ContainerConfig, Mount
from .security import container_security

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
    """A mount path, normalised; the init resolves it inside the container's own root."""
    return os.path.normpath("/" + path.lstrip("/"))


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def subpath_source(volume: str, sub: str, mount_name: str, container_name: str) -> str:
    """The host path a ``subPath`` mount binds, with every symlink resolved: it must
    stay inside the volume (the kubelet's subpath checks), or a container could
    plant ``link -> /`` in an emptyDir and get the host's root on its next start.
    A missing subPath is created as a directory, as the kubelet does."""
    if ".." in Path(sub).parts or os.path.isabs(sub):
        raise ValueError(f"invalid subPath {sub!r}")
    root = os.path.realpath(volume)
    path = os.path.realpath(os.path.join(root, sub))
    if not _within(path, root):
        raise ValueError(f'failed to prepare subPath for volumeMount "{mount_name}" of container '
                         f'"{container_name}": subpath "{sub}" resolves outside the volume')
    if not os.path.lexists(path):
        os.makedirs(path, exist_ok=True)
    return path


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
        if vm.get("subPath"):
            source = subpath_source(source, vm["subPath"], vm["name"], container.get("name", ""))
        mounts.append(Mount(source, mount_target(vm["mountPath"]),
                            bool(vm.get("readOnly")) or vm["name"] in (read_only or ())))
    return mounts


def build_config(pod: Obj, container: Obj, image: catalog.Image, *, hostname: str, pod_env: list[str],
                 images_dir: Path, container_dir: Path, pod_files: dict[str, str],
                 volume_paths: dict[str, str]) -> ContainerConfig:
    """``pod_files`` maps /etc/hosts, /etc/resolv.conf, /etc/hostname to the pod's copies."""
    security = container_security(pod, container)
    catalog.prepare_tools(image, images_dir)
    rootfs.prepare_etc(images_dir)
    env_list = merged_env(base_env(image, images_dir, hostname), pod_env)
    env = dict(item.split("=", 1) for item in env_list)
    mounts = [Mount(m.source, m.target) for m in catalog.prepare_files(image, container_dir)]
    if catalog.has_tools(image):
        mounts.append(Mount(str(catalog.tools_dir(images_dir, image)), catalog.TOOLS_MOUNT, readonly=True))
    mounts += [Mount(src, target) for target, src in pod_files.items()]
    mounts += volume_mounts(container, volume_paths, read_only_volumes(pod))
    return ContainerConfig(
        name=container["name"], hostname=hostname,
        argv=container_argv(image, container, env, images_dir), env=env_list,
        cwd=container.get("workingDir") or image.workdir, mounts=mounts,
        rootfs=rootfs.spec(image, images_dir), security=security,
        stdin=bool(container.get("stdin")), stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
    )
