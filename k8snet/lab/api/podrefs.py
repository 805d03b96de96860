"""The API objects a pod's spec names (pkg/api/pod's VisitPodSecretNames and
VisitPodConfigmapNames, and the PVC and ServiceAccount edges of the Node
authorizer's graph): what a node may read because one of its pods uses it.
"""

from __future__ import annotations

from typing import Iterator

from ..contracts import Obj

Ref = tuple[str, str]  # (resource plural, name) in the pod's namespace


def _containers(spec: Obj) -> Iterator[Obj]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            if isinstance(container, dict):
                yield container


def _env_refs(container: Obj) -> Iterator[Ref]:
    for source in container.get("envFrom") or []:
        if (source.get("secretRef") or {}).get("name"):
            yield "secrets", source["secretRef"]["name"]
        if (source.get("configMapRef") or {}).get("name"):
            yield "configmaps", source["configMapRef"]["name"]
    for var in container.get("env") or []:
        value_from = var.get("valueFrom") or {}
        if (value_from.get("secretKeyRef") or {}).get("name"):
            yield "secrets", value_from["secretKeyRef"]["name"]
        if (value_from.get("configMapKeyRef") or {}).get("name"):
            yield "configmaps", value_from["configMapKeyRef"]["name"]


def _volume_refs(pod_name: str, volume: Obj) -> Iterator[Ref]:
    if (volume.get("secret") or {}).get("secretName"):
        yield "secrets", volume["secret"]["secretName"]
    if (volume.get("configMap") or {}).get("name"):
        yield "configmaps", volume["configMap"]["name"]
    for source in (volume.get("projected") or {}).get("sources") or []:
        if (source.get("secret") or {}).get("name"):
            yield "secrets", source["secret"]["name"]
        if (source.get("configMap") or {}).get("name"):
            yield "configmaps", source["configMap"]["name"]
    # the volume plugins that take a Secret for credentials
    for plugin, field in (("csi", "nodePublishSecretRef"), ("cephfs", "secretRef"), ("rbd", "secretRef"),
                          ("iscsi", "secretRef"), ("flexVolume", "secretRef"), ("cinder", "secretRef"),
                          ("scaleIO", "secretRef"), ("storageos", "secretRef")):
        if ((volume.get(plugin) or {}).get(field) or {}).get("name"):
            yield "secrets", volume[plugin][field]["name"]
    if (volume.get("azureFile") or {}).get("secretName"):
        yield "secrets", volume["azureFile"]["secretName"]
    if (volume.get("persistentVolumeClaim") or {}).get("claimName"):
        yield "persistentvolumeclaims", volume["persistentVolumeClaim"]["claimName"]
    if "ephemeral" in volume:  # the claim the ephemeral volume controller makes: <pod>-<volume>
        yield "persistentvolumeclaims", f"{pod_name}-{volume.get('name', '')}"


def pod_refs(pod: Obj) -> set[Ref]:
    """Every (resource, name) the pod references in its own namespace, its
    ServiceAccount included."""
    spec = pod.get("spec") or {}
    refs: set[Ref] = {("serviceaccounts", spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")}
    refs.update(("secrets", s["name"]) for s in spec.get("imagePullSecrets") or [] if isinstance(s, dict)
                and s.get("name"))
    for container in _containers(spec):
        refs.update(_env_refs(container))
    name = (pod.get("metadata") or {}).get("name", "")
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            refs.update(_volume_refs(name, volume))
    return refs
