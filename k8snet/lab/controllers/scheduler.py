"""The scheduler: binds each pending pod to a Ready node (kube-scheduler, much reduced).

Filtering honours node readiness, ``spec.unschedulable``, ``spec.nodeSelector`` and
NoSchedule/NoExecute taints against the pod's tolerations. Scoring spreads the pods
of one owner across nodes (like the default PodTopologySpread), then balances pods
overall, then takes the first name. Like PodTopologySpread, the spreading skips
Terminating pods (``deletionTimestamp`` set): their replacements must not be pushed
away from the nodes those pods are leaving. Bindings go through ``pods/binding``, the same
subresource kube-scheduler uses; until the cache shows a binding, the pod counts as
"assumed" on its node so back-to-back decisions don't all pick the same node.
"""

from __future__ import annotations

from typing import Any

from ..config import LabConfig
from ..contracts import ApiClient, Obj
from ..errors import ApiError
from ..timefmt import rfc3339
from .base import Controller, Informers
from .util import controller_ref, is_deleting, set_condition

SCHEDULER_NAME = "default-scheduler"
RETRY_UNSCHEDULABLE = 5.0


def wants_scheduling(pod: Obj) -> bool:
    spec = pod.get("spec", {})
    return (not spec.get("nodeName") and spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME
            and not is_deleting(pod) and pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"))


def node_ready(node: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in node.get("status", {}).get("conditions") or [])


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    """v1helper.TolerationsTolerateTaint."""
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator", "Equal") == "Exists":
            if not t.get("key") or t["key"] == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def filter_reason(pod: Obj, node: Obj) -> str | None:
    """Why ``pod`` cannot go to ``node`` (the real FailedScheduling wording), or None."""
    spec = pod.get("spec", {})
    if not node_ready(node):
        return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
    if node.get("spec", {}).get("unschedulable"):
        return "node(s) were unschedulable"
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return "node(s) didn't match Pod's node affinity/selector"
    for taint in node.get("spec", {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(spec.get("tolerations") or [], taint):
            return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
    return None


def choose_node(pod: Obj, nodes: list[Obj], placed: list[tuple[str, str]]) -> tuple[str | None, str]:
    """The node for ``pod`` and "", or None and the FailedScheduling message.

    ``placed`` is (node name, owner uid) for every pod already on a node."""
    feasible: list[str] = []
    reasons: dict[str, int] = {}
    for node in nodes:
        why = filter_reason(pod, node)
        if why is None:
            feasible.append(node["metadata"]["name"])
        else:
            reasons[why] = reasons.get(why, 0) + 1
    if not feasible:
        if not nodes:
            return None, "no nodes available to schedule pods"
        detail = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
        return None, f"0/{len(nodes)} nodes are available: {detail}."
    ref = controller_ref(pod)
    owner = ref.get("uid") if ref else None

    def score(name: str) -> tuple[int, int, str]:
        same = sum(1 for n, o in placed if n == name and owner is not None and o == owner)
        total = sum(1 for n, _ in placed if n == name)
        return same, total, name

    return min(feasible, key=score), ""


def placed_pods(pods: list[Obj]) -> list[tuple[str, str]]:
    """(node name, owner uid) for every pod on a node that counts for ``choose_node``.

    Finished pods hold nothing. A Terminating pod still takes its share of the node
    (kube-scheduler's NodeInfo keeps its requests until it is gone) but no longer
    counts for its owner's spread: PodTopologySpread's ``countPodsMatchSelector``
    skips pods with a deletionTimestamp (kubernetes#87621), so its owner uid is "".
    """
    placed = []
    for pod in pods:
        node = pod.get("spec", {}).get("nodeName")
        if not node or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        ref = None if is_deleting(pod) else controller_ref(pod)
        placed.append((node, ref.get("uid", "") if ref else ""))
    return placed


class Scheduler(Controller):
    component = SCHEDULER_NAME

    def __init__(self, client: ApiClient, config: LabConfig, *, informers: Informers | None = None):
        super().__init__(client, config, informers=informers)
        self.pods = self.watch("pods", self._on_pod)
        self.nodes = self.watch("nodes", self._on_node)
        self._assumed: dict[str, tuple[str, str]] = {}  # pod uid -> (node, owner uid)

    def _on_pod(self, etype: str, pod: Obj) -> None:
        uid = pod["metadata"].get("uid", "")
        if etype == "DELETED" or pod.get("spec", {}).get("nodeName"):
            self._assumed.pop(uid, None)
        if etype != "DELETED" and wants_scheduling(pod):
            self.queue.add((pod["metadata"]["namespace"], pod["metadata"]["name"]))

    def _on_node(self, etype: str, node: Obj) -> None:
        self.resync()  # a node came, went or changed: pending pods may fit now

    def resync(self) -> None:
        for pod in self.pods.items():
            if wants_scheduling(pod):
                self.queue.add((pod["metadata"]["namespace"], pod["metadata"]["name"]))

    def _placed(self) -> list[tuple[str, str]]:
        return list(self._assumed.values()) + placed_pods(self.pods.items())

    async def reconcile(self, key: tuple[str, str]) -> None:
        ns, name = key
        pod = self.pods.get(ns, name)
        if pod is None or not wants_scheduling(pod) or pod["metadata"].get("uid") in self._assumed:
            return
        node, why = choose_node(pod, self.nodes.items(), self._placed())
        if node is None:
            await self._unschedulable(pod, why)
            return
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": name, "namespace": ns, "uid": pod["metadata"]["uid"]},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        try:
            await self.client.create("pods", ns, binding, subresource="binding", name=name)
        except ApiError as err:
            if err.code in (404, 409):  # gone, or bound meanwhile: nothing to do
                return
            raise
        ref = controller_ref(pod)
        self._assumed[pod["metadata"]["uid"]] = (node, ref.get("uid", "") if ref else "")
        await self.recorder.record(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {node}",
                                   kind="Pod", api_version="v1")

    async def _unschedulable(self, pod: Obj, message: str) -> None:
        m = pod["metadata"]
        conditions = pod.get("status", {}).get("conditions") or []
        current = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
        if not (current and current.get("status") == "False" and current.get("message") == message):
            cond = {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                    "lastTransitionTime": rfc3339(), "reason": "Unschedulable", "message": message}
            await self.client.patch("pods", m["namespace"], m["name"],
                                    {"status": {"conditions": set_condition(conditions, cond)}},
                                    subresource="status")
        await self.recorder.record(pod, "Warning", "FailedScheduling", message, kind="Pod", api_version="v1")
        self.queue.add_after((m["namespace"], m["name"]), RETRY_UNSCHEDULABLE)
