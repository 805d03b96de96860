"""The Job controller: runs a Job's pods to completion (pkg/controller/job).

Each reconcile counts the Job's pods (by controller ownerReference): active ones
(not finished, not being deleted: ``podReplacementPolicy: TerminatingOrFailed``
replaces a terminating pod at once), succeeded and failed. It then

- finishes the Job: ``Complete`` (with ``SuccessCriteriaMet`` before it, as since 1.31)
  once ``completions`` pods succeeded (or, without completions, one succeeded and none
  is active); ``Failed`` (after ``FailureTarget``) with reason ``BackoffLimitExceeded``
  when failures (failed pods, plus container restarts under ``OnFailure``) exceed
  ``backoffLimit``, or ``DeadlineExceeded`` after ``activeDeadlineSeconds``; the
  remaining active pods of a failed Job are deleted;
- otherwise keeps ``min(parallelism, completions - succeeded)`` pods active, creating
  them after the failure backoff (10 s doubling per failure, at most 6 min) and
  deleting the newest extra ones; a ``suspend``ed Job keeps none (``Suspended``).

A finished Job with ``ttlSecondsAfterFinished`` is deleted (foreground, so its pods
first) that long after it finished, as the TTL-after-finished controller does.

Succeeded and failed counts never go down: a finished pod someone deleted stays
counted (the real controller tracks that with a pod finalizer).

Pods carry the template's labels (the API server added the batch labels to it), the
Job's controller reference, and ``generateName: <job>-``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..config import LabConfig
from ..contracts import ApiClient, Obj
from ..errors import ApiError
from ..timefmt import now, rfc3339
from .base import Controller, Informers
from .util import is_controlled_by, is_deleting, is_pod_ready, owner_ref_to, parse_time, restart_count

JOBS = "batch/jobs"
BACKOFF_BASE_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 360.0
_FINISHED = ("Complete", "Failed")


def _condition(job: Obj, ctype: str) -> Obj | None:
    return next((c for c in (job.get("status") or {}).get("conditions") or [] if c.get("type") == ctype), None)


def is_finished(job: Obj) -> bool:
    return any((_condition(job, t) or {}).get("status") == "True" for t in _FINISHED)


def pod_from_template(job: Obj) -> Obj:
    template = job["spec"]["template"]
    tmeta = template.get("metadata") or {}
    metadata: dict[str, Any] = {
        "generateName": f"{job['metadata']['name']}-",
        "namespace": job["metadata"]["namespace"],
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [owner_ref_to(job, "batch/v1", "Job")],
    }
    if tmeta.get("annotations"):
        metadata["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": dict(template.get("spec") or {})}


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _finished_at(pod: Obj) -> datetime | None:
    """When a failed pod's last container ended (the backoff counts from there)."""
    times = [parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
             for cs in (pod.get("status") or {}).get("containerStatuses") or []]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def wanted_active(job: Obj, succeeded: int) -> int:
    spec = job["spec"]
    if spec.get("suspend"):
        return 0
    parallelism = int(spec.get("parallelism") or 0)
    completions = spec.get("completions")
    if completions is None:
        return 0 if succeeded > 0 else parallelism
    return max(0, min(parallelism, int(completions) - succeeded))


def backoff_seconds(failures: int) -> float:
    """The delay before a new pod after ``failures`` failures (the pod backoff)."""
    if failures <= 0:
        return 0.0
    return min(BACKOFF_BASE_SECONDS * 2 ** (failures - 1), BACKOFF_MAX_SECONDS)


def _condition_entry(ctype: str, reason: str, message: str, at: str, status: str = "True") -> Obj:
    return {"type": ctype, "status": status, "lastProbeTime": at, "lastTransitionTime": at,
            "reason": reason, "message": message}


class JobController(Controller):
    component = "job-controller"

    def __init__(self, client: ApiClient, config: LabConfig, *, informers: Informers | None = None):
        super().__init__(client, config, informers=informers)
        self.jobs = self.watch(JOBS, self.enqueue)
        self.pods = self.watch("pods", self.enqueue_controller("Job"))

    def resync(self) -> None:
        self.enqueue_all(self.jobs)

    # -- reconcile --------------------------------------------------------------
    async def reconcile(self, key: tuple[str, str]) -> None:
        ns, name = key
        job = self.jobs.get(ns, name)
        if job is None or is_deleting(job):
            return
        pods = [p for p in self.pods.items(ns) if is_controlled_by(p, job)]
        active = [p for p in pods if _phase(p) not in ("Succeeded", "Failed") and not is_deleting(p)]
        old = job.get("status") or {}
        succeeded = max(int(old.get("succeeded") or 0), sum(1 for p in pods if _phase(p) == "Succeeded"))
        failed = max(int(old.get("failed") or 0), sum(1 for p in pods if _phase(p) == "Failed"))
        status: Obj = {k: v for k, v in old.items() if k in ("conditions", "startTime", "completionTime")}
        if is_finished(job):
            await self._delete_all(job, active)  # a failed Job's leftovers
            if await self._expire(job):
                return
            active = []
        else:
            active = await self._sync(job, pods, active, succeeded, failed, status)
        await self._write_status(job, status, active, succeeded, failed, pods)

    async def _sync(self, job: Obj, pods: list[Obj], active: list[Obj], succeeded: int, failed: int,
                    status: Obj) -> list[Obj]:
        """Finishes the Job or moves its active pods toward what it wants; the pods
        that stay active."""
        spec, at = job["spec"], rfc3339(now())
        self._track_suspension(job, status, at)
        if spec.get("suspend"):
            await self._delete_all(job, active)
            return []
        status.setdefault("startTime", at)
        why = self._failure(job, active, failed, status)
        if why is not None:
            reason, message = why
            self._finish(status, "FailureTarget", "Failed", reason, message, at)
            await self.recorder.record(job, "Warning", reason, message, kind="Job", api_version="batch/v1")
            await self._delete_all(job, active)
            return []
        completions = spec.get("completions")
        if (completions is not None and succeeded >= int(completions)) or (
                completions is None and succeeded > 0 and not active):
            self._finish(status, "SuccessCriteriaMet", "Complete", "CompletionsReached",
                         "Reached expected number of succeeded pods", at)
            status["completionTime"] = at
            await self.recorder.record(job, "Normal", "Completed", "Job completed", kind="Job", api_version="batch/v1")
            await self._delete_all(job, active)
            return []
        diff = wanted_active(job, succeeded) - len(active)
        if diff > 0:
            wait = self._backoff_left(pods, failed)
            if wait > 0:
                self.queue.add_after((job["metadata"]["namespace"], job["metadata"]["name"]), wait)
                return active
            active = active + await self._create(job, diff)
        elif diff < 0:
            extra = sorted(active, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)[:-diff]
            await self._delete_all(job, extra)
            active = [p for p in active if p not in extra]
        self._requeue_at_deadline(job, status)
        return active

    async def _expire(self, job: Obj) -> bool:
        """ttlSecondsAfterFinished (the TTL-after-finished controller): a finished Job
        goes that long after it finished, with its pods (foreground deletion)."""
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        finished = next((c for c in (job.get("status") or {}).get("conditions") or []
                         if c.get("type") in _FINISHED and c.get("status") == "True"), None)
        at = parse_time((finished or {}).get("lastTransitionTime"))
        if ttl is None or at is None:
            return False
        left = at.timestamp() + ttl - now().timestamp()
        m = job["metadata"]
        if left > 0:
            self.queue.add_after((m["namespace"], m["name"]), left + 0.05)
            return False
        try:
            await self.client.delete(JOBS, m["namespace"], m["name"], propagation_policy="Foreground",
                                     preconditions={"uid": m["uid"]})
        except ApiError as err:
            if err.code not in (404, 409):
                raise
        return True

    def _failure(self, job: Obj, active: list[Obj], failed: int, status: Obj) -> tuple[str, str] | None:
        spec = job["spec"]
        restarts = sum(restart_count(p) for p in active) if \
            (spec["template"].get("spec") or {}).get("restartPolicy") == "OnFailure" else 0
        if failed + restarts > int(spec.get("backoffLimit", 6)):
            return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        deadline, start = spec.get("activeDeadlineSeconds"), parse_time(status.get("startTime"))
        if deadline is not None and start is not None and (now() - start).total_seconds() >= deadline:
            return "DeadlineExceeded", "Job was active longer than specified deadline"
        return None

    def _requeue_at_deadline(self, job: Obj, status: Obj) -> None:
        deadline, start = job["spec"].get("activeDeadlineSeconds"), parse_time(status.get("startTime"))
        if deadline is not None and start is not None:
            left = start.timestamp() + deadline - now().timestamp()
            self.queue.add_after((job["metadata"]["namespace"], job["metadata"]["name"]), max(left, 0) + 0.05)

    @staticmethod
    def _backoff_left(pods: list[Obj], failed: int) -> float:
        last = max((t for p in pods if _phase(p) == "Failed" and (t := _finished_at(p)) is not None), default=None)
        if last is None:
            return 0.0
        return last.timestamp() + backoff_seconds(failed) - now().timestamp()

    @staticmethod
    def _finish(status: Obj, interim: str, final: str, reason: str, message: str, at: str) -> None:
        conditions = [c for c in status.get("conditions") or [] if c.get("type") not in (interim, final)]
        status["conditions"] = [*conditions, _condition_entry(interim, reason, message, at),
                                _condition_entry(final, reason, message, at)]

    @staticmethod
    def _track_suspension(job: Obj, status: Obj, at: str) -> None:
        current = _condition(job, "Suspended")
        suspended = bool(job["spec"].get("suspend"))
        if suspended == ((current or {}).get("status") == "True"):
            return
        if current is None and not suspended:
            return
        entry = (_condition_entry("Suspended", "JobSuspended", "Job suspended", at) if suspended else
                 _condition_entry("Suspended", "JobResumed", "Job resumed", at, status="False"))
        others = [c for c in status.get("conditions") or [] if c.get("type") != "Suspended"]
        status["conditions"] = [*others, entry]
        if not suspended:
            status["startTime"] = at  # a resumed Job's deadline counts from now

    async def _create(self, job: Obj, count: int) -> list[Obj]:
        created = []
        for _ in range(count):
            try:
                pod = await self.client.create("pods", job["metadata"]["namespace"], pod_from_template(job))
            except ApiError as err:
                await self.recorder.record(job, "Warning", "FailedCreate", f"Error creating: {err.message}",
                                           kind="Job", api_version="batch/v1")
                raise
            created.append(pod)
            await self.recorder.record(job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                                       kind="Job", api_version="batch/v1")
        return created

    async def _delete_all(self, job: Obj, pods: list[Obj]) -> None:
        for pod in pods:
            m = pod["metadata"]
            try:
                await self.client.delete("pods", m["namespace"], m["name"], preconditions={"uid": m["uid"]})
            except ApiError as err:
                if err.code not in (404, 409):
                    raise
                continue
            await self.recorder.record(job, "Normal", "SuccessfulDelete", f"Deleted pod: {m['name']}",
                                       kind="Job", api_version="batch/v1")

    async def _write_status(self, job: Obj, status: Obj, active: list[Obj], succeeded: int, failed: int,
                            pods: list[Obj]) -> None:
        # JobStatus: the counts are omitempty, ready and terminating pointers (always
        # written by the controller), uncountedTerminatedPods an empty object.
        counts = {"active": len(active), "succeeded": succeeded, "failed": failed}
        status.update({k: v for k, v in counts.items() if v})
        status["ready"] = sum(1 for p in active if is_pod_ready(p))
        status["terminating"] = sum(1 for p in pods if is_deleting(p) and _phase(p) not in ("Succeeded", "Failed"))
        status["uncountedTerminatedPods"] = {}
        if status != (job.get("status") or {}):
            m = job["metadata"]
            await self.client.update(JOBS, m["namespace"], m["name"], {**job, "status": status}, subresource="status")
