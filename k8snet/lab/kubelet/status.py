"""Pod status, built like the kubelet builds it (pure functions).

Sources: kubernetes/kubernetes pkg/kubelet/kubelet_pods.go (getPhase,
convertToAPIContainerStatuses), pkg/kubelet/status/generate.go (the Ready,
ContainersReady and Initialized conditions), pkg/kubelet/status/status_manager.go
(lastTransitionTime only moves when a condition's status changes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..timefmt import rfc3339

Obj = dict[str, Any]

RUNNING, WAITING, TERMINATED = "running", "waiting", "terminated"


def seconds(timestamp: str | None) -> str | None:
    """API times have whole seconds (the runtime's log times have nanoseconds)."""
    return timestamp[:19] + "Z" if timestamp and len(timestamp) > 20 else timestamp


@dataclass
class ContainerRecord:
    """What the kubelet knows about one container of a pod (the runtime's view)."""

    name: str
    image: str                       # as the runtime reports it: docker.io/library/nginx:latest
    image_id: str = ""
    state: Obj = field(default_factory=lambda: {WAITING: {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    restart_count: int = 0
    container_id: str | None = None

    @property
    def kind(self) -> str:
        return next(iter(self.state))

    def set_waiting(self, reason: str, message: str | None = None) -> None:
        self.state = {WAITING: {"reason": reason, **({"message": message} if message else {})}}
        self.ready = self.started = False

    def set_running(self, container_id: str, started_at: str) -> None:
        if self.kind == TERMINATED:
            self.last_state = self.state
        self.container_id = container_id
        self.state = {RUNNING: {"startedAt": seconds(started_at)}}

    def set_terminated(self, exit_code: int, started_at: str | None, finished_at: str,
                       reason: str | None = None, message: str | None = None) -> None:
        term: Obj = {"exitCode": exit_code, "reason": reason or ("Completed" if exit_code == 0 else "Error")}
        if message:
            term["message"] = message
        term["startedAt"] = seconds(started_at)
        term["finishedAt"] = seconds(finished_at)
        if self.container_id:
            term["containerID"] = self.container_id
        self.state = {TERMINATED: term}
        self.ready = self.started = False

    def back_off(self, message: str) -> None:
        """Waiting to restart after a crash: the last run moves to lastState."""
        if self.kind == TERMINATED:
            self.last_state = self.state
        self.state = {WAITING: {"reason": "CrashLoopBackOff", "message": message}}
        self.ready = self.started = False


def container_status(rec: ContainerRecord) -> Obj:
    status: Obj = {
        "name": rec.name,
        "image": rec.image,
        "imageID": rec.image_id,
        "ready": rec.ready,
        "started": rec.started,
        "restartCount": rec.restart_count,
        "state": rec.state,
        "lastState": rec.last_state,
    }
    if rec.container_id:
        status["containerID"] = rec.container_id
    return status


def _succeeded(rec: ContainerRecord) -> bool:
    return rec.kind == TERMINATED and rec.state[TERMINATED]["exitCode"] == 0


def pod_phase(restart_policy: str, init: list[ContainerRecord], containers: list[ContainerRecord]) -> str:
    """getPhase: Pending until init containers succeed and every container has run."""
    for rec in init:
        if _succeeded(rec):
            continue
        if rec.kind == TERMINATED and restart_policy == "Never":
            return "Failed"
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for rec in containers:
        if rec.kind == RUNNING:
            running += 1
        elif rec.kind == TERMINATED:
            stopped += 1
            succeeded += _succeeded(rec)
        elif rec.last_state.get(TERMINATED):
            stopped += 1  # waiting to restart after a crash: it has run
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if restart_policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    if restart_policy == "Never":
        return "Failed"
    return "Running"


def _condition(type_: str, ok: bool, reason: str | None = None, message: str | None = None) -> Obj:
    cond: Obj = {"type": type_, "status": "True" if ok else "False", "lastProbeTime": None}
    if not ok and reason:
        cond["reason"] = reason
    if not ok and message:
        cond["message"] = message
    return cond


def pod_conditions(phase: str, sandbox_ready: bool, init: list[ContainerRecord],
                   containers: list[ContainerRecord]) -> list[Obj]:
    """PodReadyToStartContainers, Initialized, ContainersReady and Ready (without times)."""
    pending_init = [r.name for r in init if not _succeeded(r)]
    if pending_init:
        initialized = _condition("Initialized", False, "ContainersNotInitialized",
                                 f"containers with incomplete status: [{' '.join(pending_init)}]")
    else:
        initialized = _condition("Initialized", True)
    if phase in ("Succeeded", "Failed"):
        ready_reason, ready_message = "PodCompleted", None
        unready = [r.name for r in containers]
    else:
        unready = [r.name for r in containers if not r.ready]
        ready_reason = "ContainersNotReady"
        ready_message = f"containers with unready status: [{' '.join(unready)}]"
    ok = not unready
    return [
        _condition("PodReadyToStartContainers", sandbox_ready),
        initialized,
        _condition("ContainersReady", ok, ready_reason, ready_message),
        _condition("Ready", ok, ready_reason, ready_message),
    ]


def merge_conditions(old: list[Obj], new: list[Obj], timestamp: str) -> list[Obj]:
    """Keeps conditions the kubelet doesn't own (PodScheduled, readiness gates) and
    each condition's lastTransitionTime while its status stays the same."""
    previous = {c["type"]: c for c in old}
    ours = {c["type"] for c in new}
    merged = [c for c in old if c["type"] not in ours]
    for cond in new:
        before = previous.get(cond["type"])
        if before is not None and before.get("status") == cond["status"]:
            merged.append({**cond, "lastTransitionTime": before.get("lastTransitionTime")})
        else:
            merged.append({**cond, "lastTransitionTime": timestamp})
    order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    return sorted(merged, key=lambda c: order.index(c["type"]) if c["type"] in order else len(order))


def pod_status(old_status: Obj, *, restart_policy: str, sandbox_ready: bool, init: list[ContainerRecord],
               containers: list[ContainerRecord], pod_ip: str | None, host_ip: str,
               start_time: str | None, timestamp: str | None = None) -> Obj:
    """The full status the kubelet writes, keeping what it doesn't own (qosClass, ...)."""
    ts = timestamp or rfc3339()
    phase = pod_phase(restart_policy, init, containers)
    status = dict(old_status)
    status["phase"] = phase
    status["conditions"] = merge_conditions(old_status.get("conditions") or [],
                                            pod_conditions(phase, sandbox_ready, init, containers), ts)
    status["hostIP"] = host_ip
    status["hostIPs"] = [{"ip": host_ip}]
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if start_time:
        status["startTime"] = start_time
    if init:
        status["initContainerStatuses"] = [container_status(r) for r in init]
    status["containerStatuses"] = [container_status(r) for r in containers]
    return status


def merge_patch(old: Any, new: Any) -> Any:
    """An RFC 7386 merge patch that turns ``old`` into ``new`` (nulls delete keys;
    lists are replaced whole)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: Obj = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch


# -- a node restart ---------------------------------------------------------------------
# After a node reboots, its kubelet finds every pod's sandbox gone: it keeps the pod
# objects (same names and UIDs), makes new sandboxes (with new IPs: the old ones died
# with their network namespaces) and starts the containers again, counting that as a
# restart; the run the reboot ended shows in lastState as "Unknown", exit code 255, as
# containerd reports a container that vanished with its host.

LOST_EXIT_CODE = 255
LOST_REASON = "Unknown"


def record_after_sandbox_loss(container_status: Obj, timestamp: str) -> ContainerRecord:
    """The kubelet's record of a container whose sandbox is gone, from its last status."""
    cs = container_status
    rec = ContainerRecord(cs["name"], cs.get("image", ""), cs.get("imageID", ""))
    rec.restart_count = int(cs.get("restartCount") or 0)
    rec.last_state = cs.get("lastState") or {}
    state = cs.get("state") or {}
    if RUNNING in state:
        ended: Obj = {"exitCode": LOST_EXIT_CODE, "reason": LOST_REASON,
                      "startedAt": state[RUNNING].get("startedAt"), "finishedAt": timestamp}
        if cs.get("containerID"):
            ended["containerID"] = cs["containerID"]
        rec.last_state = {TERMINATED: ended}
        rec.restart_count += 1
    elif TERMINATED in state:
        rec.last_state = {TERMINATED: state[TERMINATED]}
        rec.restart_count += 1
    return rec  # waiting, ContainerCreating: the new sandbox is on its way


def status_after_sandbox_loss(pod: Obj, timestamp: str | None = None) -> Obj | None:
    """The status a restarted node's kubelet gives a pod it finds without a sandbox:
    not ready, no pod IP, every container waiting for the new sandbox. None for a pod
    that has finished (nothing of it runs again) or never got a container status."""
    old = pod.get("status") or {}
    if old.get("phase") in ("Succeeded", "Failed") or not old.get("containerStatuses"):
        return None
    ts = timestamp or rfc3339()
    init = [record_after_sandbox_loss(cs, ts) for cs in old.get("initContainerStatuses") or []]
    containers = [record_after_sandbox_loss(cs, ts) for cs in old["containerStatuses"]]
    kept = {k: v for k, v in old.items() if k not in ("podIP", "podIPs")}
    return pod_status(kept, restart_policy=(pod.get("spec") or {}).get("restartPolicy") or "Always",
                      sandbox_ready=False, init=init, containers=containers, pod_ip=None,
                      host_ip=old.get("hostIP", ""), start_time=old.get("startTime"), timestamp=ts)


def seed_records(records: list[ContainerRecord], statuses: list[Obj]) -> None:
    """Carries restart counts and last states over from the pod's status into a new
    worker's records: a pod the kubelet picks up again after a restart keeps counting."""
    by_name = {cs.get("name"): cs for cs in statuses}
    for rec in records:
        cs = by_name.get(rec.name)
        if cs is not None:
            rec.restart_count = int(cs.get("restartCount") or 0)
            rec.last_state = cs.get("lastState") or {}
