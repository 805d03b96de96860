"""Jobs (pkg/registry/batch/job/strategy.go, pkg/apis/batch/v1/defaults.go,
pkg/apis/batch/validation).

Create: defaults (parallelism, completions, backoffLimit, completionMode, suspend,
podReplacementPolicy), status reset, generation 1, and unless ``manualSelector`` the
generated selector (``batch.kubernetes.io/controller-uid=<uid>``) with the batch labels
on the pod template. Update: generation counts spec changes; the selector, the
template and completions are immutable. The Job controller
(:mod:`k8snet.lab.controllers.job`) runs the pods.

The lab's controller runs NonIndexed Jobs; Indexed completion, pod failure and
success policies and per-index backoff are refused on create rather than ignored.
"""

from __future__ import annotations

from datetime import datetime

from ...contracts import Obj
from .. import defaults, tables, validation
from ..apiresource import Resource, status_subresource
from ..fielderrors import FieldErrors
from .strategy import AdmissionContext, Printing, Strategy

RESOURCE = Resource("batch", "v1", "jobs", "job", "Job", True, categories=("all",),
                    subresources=(status_subresource("Job"),))
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
# The labels before 1.27, still set for selectors written against them.
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
DEFAULT_BACKOFF_LIMIT = 6
_NOT_IN_LAB = ("podFailurePolicy", "successPolicy", "backoffLimitPerIndex", "maxFailedIndexes", "managedBy")


def default_job(job: Obj) -> None:
    """SetDefaults_Job."""
    spec = job.setdefault("spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = DEFAULT_BACKOFF_LIMIT
    defaults.set_default(spec, "completionMode", "NonIndexed")
    if spec.get("suspend") is None:
        spec["suspend"] = False
    defaults.set_default(spec, "podReplacementPolicy", "TerminatingOrFailed")
    defaults.default_template(spec)


def generated_selector(job: Obj) -> Obj:
    return {"matchLabels": {CONTROLLER_UID_LABEL: job["metadata"].get("uid", "")}}


def _label_template(job: Obj) -> None:
    """generateSelector's template labels: the controller uid and job name, new and legacy keys."""
    meta = job["metadata"]
    template = job["spec"].get("template")
    if not isinstance(template, dict):
        return
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    if not isinstance(labels, dict):
        return
    for key, value in ((CONTROLLER_UID_LABEL, meta.get("uid", "")), (JOB_NAME_LABEL, meta.get("name", "")),
                       (LEGACY_CONTROLLER_UID_LABEL, meta.get("uid", "")), (LEGACY_JOB_NAME_LABEL, meta.get("name", ""))):
        labels.setdefault(key, value)


def _validate_job(errs: FieldErrors, job: Obj) -> None:
    spec = job.get("spec") or {}
    validation.validate_replicated(errs, job, "job", restart_policies=("Never", "OnFailure"))
    for key in ("parallelism", "completions", "backoffLimit"):
        value = spec.get(key)
        if isinstance(value, int) and value < 0:
            errs.invalid(f"spec.{key}", value, "must be greater than or equal to 0")
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and deadline <= 0:
        errs.invalid("spec.activeDeadlineSeconds", deadline, "must be greater than 0")
    mode = spec.get("completionMode")
    if mode not in ("NonIndexed", "Indexed"):
        errs.not_supported("spec.completionMode", mode, ("Indexed", "NonIndexed"))
    elif mode == "Indexed":
        errs.forbidden("spec.completionMode", "Indexed Jobs are not implemented by the lab's Job controller")
    for key in _NOT_IN_LAB:
        if spec.get(key) is not None:
            errs.forbidden(f"spec.{key}", "not implemented by the lab's Job controller")
    if spec.get("manualSelector") is not True and spec.get("selector") != generated_selector(job):
        errs.invalid("spec.selector", spec.get("selector"), "`selector` not auto-generated")


def _validate_job_update(errs: FieldErrors, new: Obj, old: Obj) -> None:
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    validation.validate_selector_update(errs, new, old)
    for key in ("template", "completions", "completionMode"):
        if new_spec.get(key) != old_spec.get(key):
            errs.immutable(f"spec.{key}", new_spec.get(key))


# -- kubectl get ---------------------------------------------------------------------

JOB_COLUMNS = [
    tables.NAME_COLUMN,
    tables.column("Status", "string", "Status of the job."),
    tables.column("Completions", "string", "The completion status of the job."),
    tables.column("Duration", "string", "Time required to complete the job."),
    tables.AGE_COLUMN, tables.CONTAINERS_COLUMN, tables.IMAGES_COLUMN,
    tables.column("Selector", "string", tables.field_doc("V1JobSpec", "selector", "A label query over pods that should "
                  "match the pod count. Normally, the system sets this field for you."), 1),
]


def _has_condition(job: Obj, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def job_status_cell(job: Obj) -> str:
    """printJob's STATUS: the first of Complete, Failed, Terminating, Suspended,
    FailureTarget that holds, else Running."""
    if _has_condition(job, "Complete"):
        return "Complete"
    if _has_condition(job, "Failed"):
        return "Failed"
    if tables.object_meta(job).get("deletionTimestamp"):
        return "Terminating"
    for ctype in ("Suspended", "FailureTarget"):
        if _has_condition(job, ctype):
            return ctype
    return "Running"


def completions_cell(job: Obj) -> str:
    spec, succeeded = job.get("spec") or {}, (job.get("status") or {}).get("succeeded", 0)
    if spec.get("completions") is not None:
        return f"{succeeded}/{spec['completions']}"
    parallelism = spec.get("parallelism") or 0
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def duration_cell(job: Obj, now: datetime) -> str:
    status = job.get("status") or {}
    start = tables.parse_time(status.get("startTime"))
    if start is None:
        return ""
    end = tables.parse_time(status.get("completionTime")) or now
    return tables.human_duration((end - start).total_seconds())


def print_job(job: Obj, now: datetime) -> tuple[tables.Cells, tables.RowConditions | None]:
    spec = job.get("spec") or {}
    names, images = tables.container_cells(spec.get("template") or {})
    return [tables.object_meta(job).get("name", ""), job_status_cell(job), completions_cell(job),
            duration_cell(job, now), tables.age(job, now), names, images,
            tables.format_label_selector(spec.get("selector"))], None


class JobStrategy(Strategy):
    tracks_generation = True
    table = Printing(JOB_COLUMNS, print_job)

    def default(self, obj: Obj) -> None:
        default_job(obj)

    def prepare_for_create(self, obj: Obj, ctx: AdmissionContext) -> None:
        super().prepare_for_create(obj, ctx)
        spec = obj["spec"]
        if spec.get("manualSelector") is not True:
            _label_template(obj)
            if spec.get("selector") is None:
                spec["selector"] = generated_selector(obj)

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        _validate_job(errs, obj)

    def validate_update(self, errs: FieldErrors, new: Obj, old: Obj) -> None:
        _validate_job_update(errs, new, old)


STRATEGY = JobStrategy(RESOURCE)
