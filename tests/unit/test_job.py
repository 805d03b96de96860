"""batch/v1 Job: its strategy (defaults, generated selector, validation, Table) and
the Job controller against the real API core."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from k8snet.lab.api.admission import Admission
from k8snet.lab.api.core import ApiCore
from k8snet.lab.api.resources import by_key
from k8snet.lab.api.tableview import to_table
from k8snet.lab.config import LabConfig
from k8snet.lab.errors import ApiError
from tests.unit import test_controllers_api as controllers
from tests.unit.test_controllers_api import NS, eventually, run_lab

lab = controllers.lab  # the in-process API core and controllers (a fixture)
JOBS = by_key("batch/jobs")


def job(name: str = "pi", restart: str = "Never", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS, "uid": "u-1"},
            "spec": {"template": {"spec": {"restartPolicy": restart,
                                           "containers": [{"name": "c", "image": "busybox:1.36"}]}}, **spec}}


@pytest.fixture
def adm(tmp_path) -> Admission:
    return Admission(LabConfig(state_dir=tmp_path), lambda key: [])


def test_defaults_selector_and_batch_labels(adm):
    out = adm.admit_create(JOBS, job())
    spec = out["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert (spec["completionMode"], spec["suspend"], spec["podReplacementPolicy"]) == \
        ("NonIndexed", False, "TerminatingOrFailed")
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}
    assert spec["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": "u-1", "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "u-1", "job-name": "pi"}
    assert out["status"] == {} and out["metadata"]["generation"] == 1
    assert adm.admit_create(JOBS, job(parallelism=3))["spec"].get("completions") is None


def test_validation_messages(adm):
    with pytest.raises(ApiError) as bad:
        adm.admit_create(JOBS, job(restart="Always"))
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "Never", ' \
           '"OnFailure"' in bad.value.message
    with pytest.raises(ApiError) as bad:
        adm.admit_create(JOBS, job(selector={"matchLabels": {"a": "b"}}))
    assert "spec.selector: Invalid value" in bad.value.message and "not auto-generated" in bad.value.message
    with pytest.raises(ApiError) as bad:
        adm.admit_create(JOBS, job(completionMode="Indexed"))
    assert "not implemented by the lab" in bad.value.message


def test_update_keeps_status_bumps_generation_and_freezes_template(adm):
    old = adm.admit_create(JOBS, job())
    old["status"] = {"active": 1}
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 30
    new["status"] = {"succeeded": 9}
    out = adm.admit_update(JOBS, old, new, None)
    assert out["metadata"]["generation"] == 2 and out["status"] == {"active": 1}
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:1.37"
    with pytest.raises(ApiError) as bad:
        adm.admit_update(JOBS, old, new, None)
    assert "spec.template: Invalid value" in bad.value.message and "field is immutable" in bad.value.message


def test_table_cells():
    now = datetime(2026, 1, 1, 0, 1, 0, tzinfo=timezone.utc)
    done = {"metadata": {"name": "pi", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"completions": 3, "parallelism": 1, "template": {"spec": {"containers": [
                {"name": "c", "image": "busybox"}]}}, "selector": {"matchLabels": {"a": "b"}}},
            "status": {"succeeded": 3, "startTime": "2026-01-01T00:00:00Z",
                       "completionTime": "2026-01-01T00:00:12Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}}
    running = {"metadata": {"name": "q", "creationTimestamp": "2026-01-01T00:00:00Z"},
               "spec": {"parallelism": 2, "template": {}}, "status": {"startTime": "2026-01-01T00:00:30Z"}}
    table = to_table(JOBS, [done, running], resource_version="1", now=now)
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == \
        ["Name", "Status", "Completions", "Duration", "Age"]
    assert table["rows"][0]["cells"] == ["pi", "Complete", "3/3", "12s", "60s", "c", "busybox", "a=b"]
    assert table["rows"][1]["cells"][:4] == ["q", "Running", "0/1 of 2", "30s"]


async def _set_phase(core: ApiCore, pod: dict[str, Any], phase: str) -> None:
    m = pod["metadata"]
    await core.patch("pods", m["namespace"], m["name"], {"status": {"phase": phase}}, subresource="status")


async def _job_pods(core: ApiCore, name: str) -> list[dict[str, Any]]:
    listed = await core.list("pods", NS, label_selector=f"batch.kubernetes.io/job-name={name}")
    return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]


def test_controller_runs_completions_with_parallelism(lab):
    async def scenario(core: ApiCore) -> None:
        spec = job("work", completions=3, parallelism=2)
        del spec["metadata"]["uid"]
        await core.create("batch/jobs", NS, spec)

        async def running(n: int) -> list[dict[str, Any]]:
            pods = [p for p in await _job_pods(core, "work") if p.get("status", {}).get("phase") == "Running"]
            return pods if len(pods) == n else []

        first = await eventually(lambda: running(2))
        ref = first[0]["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["apiVersion"], ref["controller"]) == ("Job", "batch/v1", True)
        await _set_phase(core, first[0], "Succeeded")
        await _set_phase(core, first[1], "Succeeded")

        async def last_one() -> list[dict[str, Any]]:
            j = await core.get("batch/jobs", NS, "work")
            return await running(1) if j["status"].get("succeeded") == 2 else []

        await _set_phase(core, (await eventually(last_one))[0], "Succeeded")

        async def complete() -> dict[str, Any] | None:
            j = await core.get("batch/jobs", NS, "work")
            types = [c["type"] for c in j["status"].get("conditions") or [] if c["status"] == "True"]
            return j if types == ["SuccessCriteriaMet", "Complete"] else None

        done = await eventually(complete)
        assert done["status"]["succeeded"] == 3 and "completionTime" in done["status"]
        assert "active" not in done["status"] and done["status"]["ready"] == 0

    run_lab(lab, scenario)


def test_controller_fails_at_the_backoff_limit(lab):
    async def scenario(core: ApiCore) -> None:
        spec = job("flaky", backoffLimit=0)
        del spec["metadata"]["uid"]
        await core.create("batch/jobs", NS, spec)

        async def one_running() -> list[dict[str, Any]]:
            pods = [p for p in await _job_pods(core, "flaky") if p.get("status", {}).get("phase") == "Running"]
            return pods

        await _set_phase(core, (await eventually(one_running))[0], "Failed")

        async def failed() -> dict[str, Any] | None:
            j = await core.get("batch/jobs", NS, "flaky")
            conds = {c["type"]: c for c in j["status"].get("conditions") or []}
            return j if "Failed" in conds and conds["Failed"]["reason"] == "BackoffLimitExceeded" else None

        j = await eventually(failed)
        assert j["status"]["failed"] == 1 and "FailureTarget" in [c["type"] for c in j["status"]["conditions"]]
        table = to_table(JOBS, [j], resource_version="1")
        assert table["rows"][0]["cells"][1:3] == ["Failed", "0/1"]

    run_lab(lab, scenario)


def test_finished_job_goes_after_its_ttl(lab):
    async def scenario(core: ApiCore) -> None:
        spec = job("brief", ttlSecondsAfterFinished=0)
        del spec["metadata"]["uid"]
        await core.create("batch/jobs", NS, spec)

        async def one_running() -> list[dict[str, Any]]:
            return [p for p in await _job_pods(core, "brief") if p.get("status", {}).get("phase") == "Running"]

        await _set_phase(core, (await eventually(one_running))[0], "Succeeded")

        async def gone() -> bool:
            names = [j["metadata"]["name"] for j in (await core.list("batch/jobs", NS))["items"]]
            return "brief" not in names and not (await core.list("pods", NS, label_selector="job-name=brief"))["items"]

        await eventually(gone)

    run_lab(lab, scenario)
