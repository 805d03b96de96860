"""Small helpers the controllers share: label selectors, pod state, owner references.

Pure functions over JSON-shaped objects, so every controller's decisions stay testable
without an API server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..api.selectors import match_labels
from ..contracts import Obj
from ..errors import ApiError
from ..timefmt import now, parse_time

# -- label selectors ---------------------------------------------------------

def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """A metav1.LabelSelector (matchLabels + matchExpressions). An empty selector
    matches everything, as in LabelSelectorAsSelector; None matches nothing, and so
    does a malformed one (cached objects are not validated again)."""
    if not isinstance(selector, dict):
        return False
    try:
        return match_labels(selector, labels if isinstance(labels, dict) else {})
    except ApiError:
        return False


def map_selector_matches(selector: dict[str, str] | None, labels: dict[str, str] | None) -> bool:
    """A Service's plain map selector: every pair must match; empty matches nothing here
    because selector-less Services are user-managed."""
    if not selector or not isinstance(selector, dict):
        return False
    labels = labels if isinstance(labels, dict) else {}
    return all(labels.get(k) == v for k, v in selector.items())


# -- metadata ----------------------------------------------------------------

def meta(obj: Obj) -> dict[str, Any]:
    return obj.setdefault("metadata", {})


def is_deleting(obj: Obj) -> bool:
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


class MalformedObject(Exception):
    """An object in the store that the controllers cannot work with (written before
    validation refused its shape): reported on the object, never fatal for others."""

    def __init__(self, obj: Obj, message: str):
        super().__init__(message)
        self.obj = obj
        self.message = message


def owner_refs(obj: Obj) -> list[dict[str, Any]]:
    """The well-formed entries of metadata.ownerReferences (anything else owns nothing)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences")
    if not isinstance(refs, list):
        return []
    return [r for r in refs if isinstance(r, dict) and isinstance(r.get("uid"), str)]


def controller_ref(obj: Obj) -> dict[str, Any] | None:
    for ref in owner_refs(obj):
        if ref.get("controller") is True:
            return ref
    return None


def spec_replicas(obj: Obj, default: int = 1) -> int:
    """spec.replicas as an int32 ≥ 0; :class:`MalformedObject` for anything else."""
    value = (obj.get("spec") or {}).get("replicas", default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2 ** 31:
        raise MalformedObject(obj, f"spec.replicas must be an int32 >= 0, not {value!r}")
    return value


def owner_ref_to(owner: Obj, api_version: str, kind: str) -> dict[str, Any]:
    """The controller reference a workload controller puts on what it creates."""
    m = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": m["name"], "uid": m["uid"],
            "controller": True, "blockOwnerDeletion": True}


def is_controlled_by(obj: Obj, owner: Obj) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == owner["metadata"].get("uid")


# -- pods ----------------------------------------------------------------------

def pod_condition(pod: Obj, ctype: str) -> dict[str, Any] | None:
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def is_pod_ready(pod: Obj) -> bool:
    c = pod_condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def is_pod_active(pod: Obj) -> bool:
    """controller.IsPodActive: not finished and not being deleted."""
    return pod.get("status", {}).get("phase") not in ("Succeeded", "Failed") and not is_deleting(pod)


def is_pod_available(pod: Obj, min_ready_seconds: int, at: datetime | None = None) -> bool:
    """podutil.IsPodAvailable: ready for at least minReadySeconds."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time((pod_condition(pod, "Ready") or {}).get("lastTransitionTime"))
    return since is not None and (at or now()).timestamp() - since.timestamp() >= min_ready_seconds


def seconds_until_available(pod: Obj, min_ready_seconds: int, at: datetime | None = None) -> float | None:
    """How long until a ready pod becomes available, or None when that is not pending."""
    if min_ready_seconds <= 0 or not is_pod_ready(pod):
        return None
    since = parse_time((pod_condition(pod, "Ready") or {}).get("lastTransitionTime"))
    if since is None:
        return None
    left = since.timestamp() + min_ready_seconds - (at or now()).timestamp()
    return left if left > 0 else None


def restart_count(pod: Obj) -> int:
    return sum(cs.get("restartCount", 0) for cs in pod.get("status", {}).get("containerStatuses") or [])


def set_condition(conditions: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Replace the condition of new's type, keeping lastTransitionTime when the status
    did not change (like the real controllers' SetCondition helpers)."""
    out = [c for c in conditions if c.get("type") != new["type"]]
    old = next((c for c in conditions if c.get("type") == new["type"]), None)
    if old is not None and old.get("status") == new["status"] and "lastTransitionTime" in old:
        new = {**new, "lastTransitionTime": old["lastTransitionTime"]}
    out.append(new)
    return out
