"""Pods (pkg/registry/core/pod/strategy.go and the admission plugins that change
pods on create: ServiceAccount, DefaultTolerationSeconds, Priority).

Create: defaults, the service account's token volume, the default tolerations and
priority, status reset to Pending with the QoS class. Update: the spec is fixed but
for images, activeDeadlineSeconds, added tolerations and the binding's nodeName.
Delete: a pod bound to a node gets its grace period (the kubelet deletes it for good).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from ...contracts import Obj
from ...generatednames import random_suffix
from .. import defaults, tables
from ..apiresource import Resource, Subresource, status_subresource
from ..fielderrors import FieldErrors
from ..validation import validate_pod_spec
from .strategy import AdmissionContext, Printing, Strategy

SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
SA_VOLUME_PREFIX = "kube-api-access-"
DEFAULT_GRACE_SECONDS = 30
POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)

RESOURCE = Resource("", "v1", "pods", "pod", "Pod", True, ("po",), ("all",), subresources=(
    status_subresource("Pod"),
    Subresource("log", "Pod", ("get",)),
    Subresource("exec", "PodExecOptions", ("create", "get")),
    Subresource("attach", "PodAttachOptions", ("create", "get")),
    Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
    Subresource("binding", "Binding", ("create",)),
))


def default_pod(pod: Obj) -> None:
    spec = pod.setdefault("spec", {})
    defaults.default_pod_spec(spec)
    if spec.get("enableServiceLinks") is None:  # SetDefaults_Pod only, not templates
        spec["enableServiceLinks"] = True
    # The deprecated alias and the real field mirror each other.
    if spec.get("serviceAccountName") and not spec.get("serviceAccount"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    elif spec.get("serviceAccount") and not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"]


def qos_class(spec: dict[str, Any]) -> str:
    """pkg/apis/core/helper/qos: Guaranteed, Burstable or BestEffort."""
    containers = [c for k in ("initContainers", "containers") for c in spec.get(k) or [] if isinstance(c, dict)]
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        if requests or limits:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in limits or (r in requests and str(requests[r]) != str(limits[r])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def inject_service_account(pod: Obj, suffix: Callable[[], str] = random_suffix,
                           account_automount: bool = True) -> None:
    """What the ServiceAccount admission plugin adds on create: the account name and
    the projected token volume, mounted read-only in every container. The pod's
    automountServiceAccountToken wins over the account's (``account_automount``)."""
    spec = pod.setdefault("spec", {})
    defaults.set_default(spec, "serviceAccountName", spec.get("serviceAccount") or "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    automount = spec.get("automountServiceAccountToken")
    if automount is False or (automount is None and not account_automount):
        return
    containers = [c for k in ("initContainers", "containers") for c in spec.get(k) or [] if isinstance(c, dict)]
    if any(m.get("mountPath") == SA_MOUNT_PATH for c in containers for m in c.get("volumeMounts") or []):
        return  # the user mounted something there already: the plugin backs off
    name = SA_VOLUME_PREFIX + suffix()
    spec.setdefault("volumes", []).append({"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [
            {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}})
    for c in containers:
        c.setdefault("volumeMounts", []).append({"name": name, "readOnly": True, "mountPath": SA_MOUNT_PATH})


def admit_pod_extras(pod: Obj) -> None:
    """DefaultTolerationSeconds and Priority admission plugins."""
    spec = pod["spec"]
    tolerations = spec.setdefault("tolerations", [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == key for t in tolerations if isinstance(t, dict)):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    if spec.get("priority") is None:
        spec["priority"] = 0
    defaults.set_default(spec, "preemptionPolicy", "PreemptLowerPriority")


def validate_pod_update(errs: FieldErrors, new: Obj, old: Obj) -> None:
    """ValidatePodUpdate: a pod's spec is fixed once created, but for a few fields."""
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    munged = copy.deepcopy(new_spec)
    # The mutable parts: images, activeDeadlineSeconds, added tolerations, and
    # nodeName once (that is what pods/binding does).
    for key in ("containers", "initContainers"):
        for c, o in zip(munged.get(key) or [], old_spec.get(key) or []):
            if isinstance(c, dict) and isinstance(o, dict):
                c["image"] = o.get("image")
                if o.get("imagePullPolicy") is not None:
                    c["imagePullPolicy"] = o["imagePullPolicy"]
    munged["activeDeadlineSeconds"] = old_spec.get("activeDeadlineSeconds")
    old_tol = old_spec.get("tolerations") or []
    if all(t in (munged.get("tolerations") or []) for t in old_tol):
        munged["tolerations"] = old_tol
    if not old_spec.get("nodeName"):
        munged["nodeName"] = old_spec.get("nodeName")
    if (old_spec.get("terminationGracePeriodSeconds") or 0) < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_spec.get("terminationGracePeriodSeconds")
    strip = lambda d: {k: v for k, v in d.items() if v is not None}  # noqa: E731
    if strip(munged) != strip(old_spec):
        errs.forbidden("spec", POD_UPDATE_FORBIDDEN)


def account_automount(pod: Obj, lister: Callable[[str], list[Obj]]) -> bool:
    """The pod's ServiceAccount's automountServiceAccountToken (true when unset
    or when the account does not exist yet)."""
    ns = (pod.get("metadata") or {}).get("namespace")
    spec = pod.get("spec") or {}
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    for sa in lister("serviceaccounts"):
        meta = sa.get("metadata") or {}
        if meta.get("namespace") == ns and meta.get("name") == name:
            return sa.get("automountServiceAccountToken") is not False
    return True


class PodStrategy(Strategy):
    table = Printing(tables.POD_COLUMNS, tables.print_pod)

    def default(self, obj: Obj) -> None:
        default_pod(obj)

    def prepare_for_create(self, obj: Obj, ctx: AdmissionContext) -> None:
        inject_service_account(obj, ctx.suffix, account_automount(obj, ctx.lister))
        admit_pod_extras(obj)
        super().prepare_for_create(obj, ctx)

    def initial_status(self, obj: Obj) -> Obj:
        return {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        validate_pod_spec(errs, "spec", obj.get("spec"))

    def validate_update(self, errs: FieldErrors, new: Obj, old: Obj) -> None:
        validate_pod_update(errs, new, old)

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        """Only pods bound to a node and not finished get one (podStrategy.CheckGracefulDelete)."""
        spec, phase = obj.get("spec") or {}, (obj.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return requested
        grace = spec.get("terminationGracePeriodSeconds")
        return grace if isinstance(grace, int) and not isinstance(grace, bool) and grace >= 0 else DEFAULT_GRACE_SECONDS


STRATEGY = PodStrategy(RESOURCE)
