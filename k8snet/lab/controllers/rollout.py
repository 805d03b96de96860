"""The Deployment controller's arithmetic, as pure functions (pkg/controller/deployment/util
and rolling.go/sync.go), so each rollout step can be tested without an API server.

ReplicaSets are plain dicts; ``spec.replicas`` is the size the controller asked for and
``status.availableReplicas`` what the ReplicaSet controller reported.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime
from typing import Any

from ..contracts import Obj
from ..generatednames import NAME_ALPHABET
from ..timefmt import now, parse_time, rfc3339
from .util import set_condition, spec_replicas

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Deployment annotations that are never copied onto its ReplicaSets (skipCopyAnnotation).
SKIP_COPY = {"kubectl.kubernetes.io/last-applied-configuration", REVISION,
             "deployment.kubernetes.io/revision-history", DESIRED_REPLICAS, MAX_REPLICAS,
             "deprecated.deployment.rollback.to"}


# -- the pod-template-hash -------------------------------------------------------

def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """rand.SafeEncodeString: map each byte into the vowel-free alphabet, so the hash
    never spells words and never looks like a number."""
    return "".join(NAME_ALPHABET[ord(c) % len(NAME_ALPHABET)] for c in s)


def template_hash(template: Obj, collision_count: int | None = None) -> str:
    """controller.ComputeHash: FNV-32a of the template (here its canonical JSON, with any
    pod-template-hash label removed), plus the collision count, safe-encoded."""
    data = json.dumps(strip_hash(template), sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += collision_count.to_bytes(4, "little")
    return safe_encode(str(fnv32a(data)))


def strip_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template)
    labels = t.get("metadata", {}).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
        if not labels:
            del t["metadata"]["labels"]
    if "metadata" in t and not t["metadata"]:
        del t["metadata"]
    return t


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    return strip_hash(a) == strip_hash(b)


# -- surge and unavailability ------------------------------------------------------

def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int as is, "25%" of ``total`` rounded."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        return int(value)
    exact = int(value[:-1]) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None,
                       desired: int) -> tuple[int, int]:
    """(surge, unavailable): surge rounds up, unavailable rounds down, and both being 0
    would deadlock a rollout, so unavailable becomes 1 then."""
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling(d: Obj) -> dict[str, Any] | None:
    strategy = d["spec"].get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return None
    return strategy.get("rollingUpdate") or {"maxSurge": "25%", "maxUnavailable": "25%"}


def replicas(obj: Obj) -> int:
    return spec_replicas(obj)


def max_surge(d: Obj) -> int:
    ru = _rolling(d)
    if ru is None:
        return 0
    return resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), replicas(d))[0]


def max_unavailable(d: Obj) -> int:
    ru = _rolling(d)
    if ru is None or replicas(d) == 0:
        return 0
    unavailable = resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), replicas(d))[1]
    return min(unavailable, replicas(d))


# -- ReplicaSet bookkeeping ------------------------------------------------------------

def _status(rs: Obj, field: str) -> int:
    return (rs.get("status") or {}).get(field, 0)


def _created(rs: Obj) -> tuple[float, str]:
    t = parse_time(rs["metadata"].get("creationTimestamp"))
    return (t.timestamp() if t else 0.0, rs["metadata"]["name"])


def revision(rs: Obj) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def find_new_rs(d: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template equals the Deployment's (FindNewReplicaSet)."""
    template = d["spec"]["template"]
    for rs in sorted(rss, key=_created):
        if equal_ignore_hash(rs["spec"]["template"], template):
            return rs
    return None


def active(rss: list[Obj]) -> list[Obj]:
    return [rs for rs in rss if replicas(rs) > 0]


def new_rs_replicas(d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    """NewRSNewReplicas: how far the new ReplicaSet may grow this step."""
    if _rolling(d) is None:
        return replicas(d)
    total_allowed = replicas(d) + max_surge(d)
    current = sum(replicas(rs) for rs in all_rss)
    if current >= total_allowed:
        return replicas(new_rs)
    grow = min(total_allowed - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + grow


def old_rs_scale_down(d: Obj, old_rss: list[Obj], new_rs: Obj) -> dict[str, int]:
    """reconcileOldReplicaSets: the new sizes of old ReplicaSets this step. Unhealthy
    old pods go first (they don't count toward availability anyway), then healthy ones,
    oldest ReplicaSet first, never dropping below replicas - maxUnavailable available."""
    sizes = {rs["metadata"]["name"]: replicas(rs) for rs in old_rss}
    if sum(sizes.values()) == 0:
        return {}
    min_available = replicas(d) - max_unavailable(d)
    all_pods = sum(sizes.values()) + replicas(new_rs)
    new_unavailable = replicas(new_rs) - _status(new_rs, "availableReplicas")
    budget = all_pods - min_available - new_unavailable
    if budget <= 0:
        return {}
    ordered = sorted(old_rss, key=_created)
    # cleanupUnhealthyReplicas
    cleaned = 0
    for rs in ordered:
        name = rs["metadata"]["name"]
        unhealthy = sizes[name] - _status(rs, "availableReplicas")
        if cleaned >= budget:
            break
        if sizes[name] == 0 or unhealthy <= 0:
            continue
        down = min(budget - cleaned, unhealthy)
        sizes[name] -= down
        cleaned += down
    # scaleDownOldReplicaSetsForRollingUpdate
    available = sum(_status(rs, "availableReplicas") for rs in old_rss) + _status(new_rs, "availableReplicas")
    if available > min_available:
        to_scale, scaled = available - min_available, 0
        for rs in ordered:
            name = rs["metadata"]["name"]
            if scaled >= to_scale:
                break
            if sizes[name] == 0:
                continue
            down = min(sizes[name], to_scale - scaled)
            sizes[name] -= down
            scaled += down
    return {name: size for name, size in sizes.items()
            if size != replicas(next(rs for rs in old_rss if rs["metadata"]["name"] == name))}


def _max_replicas_annotation(rs: Obj) -> int | None:
    try:
        return int((rs["metadata"].get("annotations") or {})[MAX_REPLICAS])
    except (KeyError, ValueError):
        return None


def _round(x: float) -> int:
    """integer.RoundToInt32: half away from zero."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def is_scaling_event(d: Obj, rss: list[Obj]) -> bool:
    """A Deployment resize (not a template change): an active ReplicaSet was sized for
    a different ``spec.replicas``."""
    for rs in active(rss):
        desired = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS)
        if desired is not None and desired.isdigit() and int(desired) != replicas(d):
            return True
    return False


def proportional_sizes(d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> dict[str, int]:
    """The scale() step of a resize: one active (or else the newest) ReplicaSet takes the
    whole size; a saturated new ReplicaSet retires the old ones; otherwise every active
    ReplicaSet grows or shrinks in proportion, leftovers going to the largest."""
    olds = sorted(old_rss, key=_created, reverse=True)
    all_rss = ([new_rs] if new_rs else []) + olds
    live = active(all_rss)
    if not all_rss:
        return {}
    if len(live) <= 1:
        target = live[0] if live else (new_rs or olds[0])
        return {target["metadata"]["name"]: replicas(d)}
    if new_rs is not None and _saturated(d, new_rs):
        return {rs["metadata"]["name"]: 0 for rs in active(olds)}
    if _rolling(d) is None:
        return {}
    allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = allowed - sum(replicas(rs) for rs in live)
    if to_add == 0:
        return {}
    # Bigger first; on ties newer first when growing, older first when shrinking.
    live.sort(key=lambda rs: (-replicas(rs), _created(rs)[0] * (-1 if to_add > 0 else 1)))
    sizes, added = {}, 0
    for rs in live:
        share = _proportion(rs, d, to_add, added)
        sizes[rs["metadata"]["name"]] = replicas(rs) + share
        added += share
    first = live[0]["metadata"]["name"]
    sizes[first] = max(0, sizes[first] + to_add - added)
    return sizes


def _saturated(d: Obj, rs: Obj) -> bool:
    desired = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS)
    return (desired == str(replicas(d)) and replicas(rs) == replicas(d)
            and _status(rs, "availableReplicas") == replicas(d))


def _proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    if replicas(d) == 0:
        fraction = -replicas(rs)
    else:
        annotated = _max_replicas_annotation(rs) or (d.get("status") or {}).get("replicas", 0) or 1
        fraction = _round(replicas(rs) * (replicas(d) + max_surge(d)) / annotated) - replicas(rs)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def rs_annotations(d: Obj, rs: Obj, new_revision: int | None, *, sizes: bool = True) -> dict[str, str]:
    """The annotations a ReplicaSet of ``d`` should carry: the Deployment's own (minus
    the skipped ones), its revision, and (when it is being sized) desired/max replicas.
    Sizes are only written together with a resize, so a stale desired-replicas is what
    tells a later reconcile that the Deployment was scaled."""
    out = dict(rs["metadata"].get("annotations") or {})
    for k, v in (d["metadata"].get("annotations") or {}).items():
        if k not in SKIP_COPY:
            out[k] = v
    if new_revision is not None and revision(rs) < new_revision:
        out[REVISION] = str(new_revision)
    if sizes:
        out[DESIRED_REPLICAS] = str(replicas(d))
        out[MAX_REPLICAS] = str(replicas(d) + max_surge(d))
    return out


def cleanup_candidates(d: Obj, old_rss: list[Obj]) -> list[Obj]:
    """Old ReplicaSets beyond revisionHistoryLimit that are fully scaled down, oldest
    revision first (cleanupDeployment)."""
    limit = d["spec"].get("revisionHistoryLimit")
    if limit is None:
        return []
    alive = [rs for rs in old_rss if not rs["metadata"].get("deletionTimestamp")]
    excess = len(alive) - limit
    if excess <= 0:
        return []
    alive.sort(key=lambda rs: (revision(rs), _created(rs)))
    return [rs for rs in alive[:excess]
            if _status(rs, "replicas") == 0 and replicas(rs) == 0
            and rs["metadata"].get("generation", 0) <= _status(rs, "observedGeneration")]


# -- status --------------------------------------------------------------------------

def _condition(ctype: str, status: str, reason: str, message: str, at: str) -> dict[str, Any]:
    return {"type": ctype, "status": status, "lastUpdateTime": at, "lastTransitionTime": at,
            "reason": reason, "message": message}


def put_condition(status: dict[str, Any], cond: dict[str, Any]) -> None:
    """SetDeploymentCondition: same status and reason is no change at all; same status
    keeps its lastTransitionTime."""
    conds = status.get("conditions") or []
    old = next((c for c in conds if c["type"] == cond["type"]), None)
    if old is not None and old.get("status") == cond["status"] and old.get("reason") == cond["reason"]:
        return
    status["conditions"] = set_condition(conds, cond)


def progressing(reason: str, message: str, at: str, status: str = "True") -> dict[str, Any]:
    return _condition("Progressing", status, reason, message, at)


def calculate_status(d: Obj, all_rss: list[Obj], new_rs: Obj | None, at: datetime | None = None) -> dict[str, Any]:
    """calculateStatus: counts summed over the ReplicaSets, plus the Available condition."""
    ts = rfc3339(at)
    available = sum(_status(rs, "availableReplicas") for rs in all_rss)
    old = d.get("status") or {}
    status: dict[str, Any] = {
        "observedGeneration": d["metadata"].get("generation", 0),
        "replicas": sum(_status(rs, "replicas") for rs in all_rss),
        "updatedReplicas": _status(new_rs, "replicas") if new_rs else 0,
        "readyReplicas": sum(_status(rs, "readyReplicas") for rs in all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(0, sum(replicas(rs) for rs in all_rss) - available),
    }
    status = {k: v for k, v in status.items() if v}  # int32 fields are omitempty
    if "collisionCount" in old:
        status["collisionCount"] = old["collisionCount"]
    status["conditions"] = copy.deepcopy(old.get("conditions") or [])
    if available >= replicas(d) - max_unavailable(d):
        put_condition(status, _condition("Available", "True", "MinimumReplicasAvailable",
                                         "Deployment has minimum availability.", ts))
    else:
        put_condition(status, _condition("Available", "False", "MinimumReplicasUnavailable",
                                         "Deployment does not have minimum availability.", ts))
    return status


def is_complete(d: Obj, status: dict[str, Any]) -> bool:
    n = replicas(d)
    return (status.get("updatedReplicas", 0) == n and status.get("replicas", 0) == n
            and status.get("availableReplicas", 0) == n
            and status.get("observedGeneration", 0) >= d["metadata"].get("generation", 0))


def made_progress(d: Obj, status: dict[str, Any]) -> bool:
    old = d.get("status") or {}
    old_olds = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_olds = status.get("replicas", 0) - status.get("updatedReplicas", 0)
    return (status.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or new_olds < old_olds
            or status.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or status.get("availableReplicas", 0) > old.get("availableReplicas", 0))


def rollout_status(d: Obj, all_rss: list[Obj], new_rs: Obj | None, at: datetime | None = None) -> dict[str, Any]:
    """syncRolloutStatus: calculate_status plus the Progressing condition."""
    status = calculate_status(d, all_rss, new_rs, at)
    deadline = d["spec"].get("progressDeadlineSeconds")
    if deadline is None:
        return status
    ts = rfc3339(at)
    name = new_rs["metadata"]["name"] if new_rs else ""
    current = next((c for c in status["conditions"] if c["type"] == "Progressing"), None)
    if is_complete(d, status):
        put_condition(status, progressing("NewReplicaSetAvailable", f'ReplicaSet "{name}" has successfully progressed.', ts))
    elif made_progress(d, status):
        cond = progressing("ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.', ts)
        if current is not None and current.get("status") == "True":
            cond["lastTransitionTime"] = current.get("lastTransitionTime", ts)
        status["conditions"] = [c for c in status["conditions"] if c["type"] != "Progressing"] + [cond]
    elif timed_out(d, current, at):
        put_condition(status, progressing("ProgressDeadlineExceeded", f'ReplicaSet "{name}" has timed out progressing.',
                                          ts, "False"))
    return status


def timed_out(d: Obj, cond: dict[str, Any] | None, at: datetime | None = None) -> bool:
    left = seconds_to_deadline(d, cond, at)
    return left is not None and left < 0


def seconds_to_deadline(d: Obj, cond: dict[str, Any] | None, at: datetime | None = None) -> float | None:
    """Time left before the rollout counts as stuck; None when no deadline applies."""
    deadline = d["spec"].get("progressDeadlineSeconds")
    if deadline is None or cond is None or cond.get("reason") in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded"):
        return None
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    ref = (at or now()).timestamp()
    return since.timestamp() + deadline - ref
