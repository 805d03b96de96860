"""A container's ``securityContext``: who it runs as and which capabilities it keeps.

The kubelet merges the pod's and the container's security contexts (the container's
fields win; ``kuberuntime``'s ``determineEffectiveSecurityContext``), checks
``runAsNonRoot`` (``verifyRunAsNonRoot``), and containerd turns the result into the
process's identity, capability set and ``no_new_privs`` bit. The init (``init.py``)
applies what this module decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

#: Linux capability numbers (linux/capability.h), by the names Kubernetes uses.
CAPABILITIES = {name: number for number, name in enumerate((
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE"))}

#: containerd's (and Docker's) default set for a container that asks for nothing
#: (containerd ``oci.defaultUnixCaps``).
DEFAULT_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
                        "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")

PRIVILEGED_REFUSED = ('privileged containers are refused by the k8snet lab: a lab container shares the '
                      'host kernel without a device cgroup, seccomp or AppArmor profile, so "privileged: true" '
                      "would make it root on the host")


@dataclass(frozen=True)
class ContainerSecurity:
    """What the init applies before it execs the container's command."""

    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    capabilities: tuple[int, ...] = field(default_factory=lambda: capability_set(None))
    no_new_privs: bool = False
    read_only_root: bool = False

    def as_spec(self) -> dict:
        return {"uid": self.uid, "gid": self.gid, "groups": list(self.groups), "caps": list(self.capabilities),
                "no_new_privs": self.no_new_privs, "read_only_root": self.read_only_root}

    def setpriv_args(self) -> list[str]:
        """``setpriv`` options that give an exec'd process the same identity and
        capabilities (``kubectl exec`` runs with the container's process settings)."""
        names = {number: name for name, number in CAPABILITIES.items()}
        bounding = "".join(f",+{names[c].lower()}" for c in self.capabilities)
        args = [f"--reuid={self.uid}", f"--regid={self.gid}",
                f"--groups={','.join(map(str, self.groups))}" if self.groups else "--clear-groups",
                f"--bounding-set=-all{bounding}", "--inh-caps=-all", "--ambient-caps=-all"]
        return args + (["--no-new-privs"] if self.no_new_privs else [])


def capability_set(caps: Obj | None) -> tuple[int, ...]:
    """containerd's ``TweakCapabilities``: the default set (all of them with
    ``add: [ALL]``), minus ``drop`` (everything with ``drop: [ALL]``), plus ``add``."""
    adds = [str(c).upper().removeprefix("CAP_") for c in (caps or {}).get("add") or []]
    drops = [str(c).upper().removeprefix("CAP_") for c in (caps or {}).get("drop") or []]
    for name in adds + drops:
        if name != "ALL" and name not in CAPABILITIES:
            raise ValueError(f'unknown capability "CAP_{name}"')
    base = list(CAPABILITIES) if "ALL" in adds else list(DEFAULT_CAPABILITIES)
    kept = [] if "ALL" in drops else [c for c in base if c not in drops]
    kept += [c for c in adds if c != "ALL" and c not in kept]
    return tuple(sorted(CAPABILITIES[c] for c in kept))


def effective_context(pod: Obj, container: Obj) -> Obj:
    """The container's fields over the pod's (for the fields both have)."""
    pod_sc = pod.get("spec", {}).get("securityContext") or {}
    merged = {k: pod_sc[k] for k in ("runAsUser", "runAsGroup", "runAsNonRoot") if pod_sc.get(k) is not None}
    merged.update({k: v for k, v in (container.get("securityContext") or {}).items() if v is not None})
    return merged


def pod_label(pod: Obj) -> str:
    """The kubelet's ``format.Pod``: name_namespace(uid)."""
    meta = pod.get("metadata", {})
    return f'{meta.get("name", "")}_{meta.get("namespace", "")}({meta.get("uid", "")})'


def container_security(pod: Obj, container: Obj, image_uid: int = 0) -> ContainerSecurity:
    """Raises ValueError (the kubelet's CreateContainerConfigError) for a context the
    lab cannot honour or that breaks ``runAsNonRoot``."""
    sc = effective_context(pod, container)
    if sc.get("privileged"):
        raise ValueError(PRIVILEGED_REFUSED)
    uid = sc.get("runAsUser")
    if sc.get("runAsNonRoot"):
        where = f'(pod: "{pod_label(pod)}", container: {container.get("name", "")})'
        if uid == 0:
            raise ValueError(f"container's runAsUser breaks non-root policy {where}")
        if uid is None and image_uid == 0:
            raise ValueError(f"container has runAsNonRoot and image will run as root {where}")
    uid = image_uid if uid is None else int(uid)
    # without runAsGroup the image user's group: every catalogued image runs as root:root
    gid = int(sc["runAsGroup"]) if sc.get("runAsGroup") is not None else 0
    pod_sc = pod.get("spec", {}).get("securityContext") or {}
    extra = [int(g) for g in (pod_sc.get("supplementalGroups") or [])]
    if pod_sc.get("fsGroup") is not None:
        extra.append(int(pod_sc["fsGroup"]))
    groups = tuple(dict.fromkeys([gid] + extra))
    # the kubelet asks for no_new_privs only when allowPrivilegeEscalation is false
    # (kuberuntime's addNoNewPrivileges); containerd then sets it
    return ContainerSecurity(uid=uid, gid=gid, groups=groups, capabilities=capability_set(sc.get("capabilities")),
                             no_new_privs=sc.get("allowPrivilegeEscalation") is False,
                             read_only_root=bool(sc.get("readOnlyRootFilesystem")))
