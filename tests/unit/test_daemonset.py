"""apps/v1 DaemonSet: its strategy (defaults, validation, Table) and the DaemonSet
controller against the real API core (one pod per node that should run it)."""

from __future__ import annotations

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
DS = by_key("apps/daemonsets")


def daemonset(name: str = "agent", image: str = "busybox:1.36", **template_spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}], **template_spec}}}}


def test_defaults_validation_and_table(tmp_path):
    adm = Admission(LabConfig(state_dir=tmp_path), lambda key: [])
    out = adm.admit_create(DS, daemonset())
    assert out["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                             "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert out["spec"]["revisionHistoryLimit"] == 10 and out["metadata"]["generation"] == 1
    with pytest.raises(ApiError) as bad:
        adm.admit_create(DS, daemonset(restartPolicy="Never"))
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Never"' in bad.value.message
    out["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    out["status"] = {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                     "updatedNumberScheduled": 2, "numberAvailable": 1}
    table = to_table(DS, [out], resource_version="1", now=datetime(2026, 1, 1, 0, 0, 5, tzinfo=timezone.utc))
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age"]
    assert table["rows"][0]["cells"][:8] == ["agent", 2, 2, 1, 2, 1, "<none>", "5s"]


async def _pods(core: ApiCore) -> list[dict[str, Any]]:
    listed = await core.list("pods", NS, label_selector="app=agent")
    return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]


def test_controller_runs_one_pod_per_node_rolls_updates_and_respects_taints(lab):
    async def scenario(core: ApiCore) -> None:
        await core.create("apps/daemonsets", NS, daemonset())

        async def on_nodes(image: str, nodes: set[str]) -> list[dict[str, Any]]:
            pods = await _pods(core)
            placed = {p["spec"]["nodeName"] for p in pods if p["spec"]["containers"][0]["image"] == image}
            return pods if placed == nodes and len(pods) == len(nodes) else []

        pods = await eventually(lambda: on_nodes("busybox:1.36", {"n1", "n2"}))
        assert all(p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet" for p in pods)
        assert any(t["key"] == "node.kubernetes.io/unschedulable" for t in pods[0]["spec"]["tolerations"])

        async def status_ready() -> bool:
            s = (await core.get("apps/daemonsets", NS, "agent")).get("status", {})
            return s.get("desiredNumberScheduled") == 2 and s.get("numberReady") == 2 and s.get("numberAvailable") == 2

        await eventually(status_ready)
        await core.patch("apps/daemonsets", NS, "agent",
                         {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:1.37"}]}}}},
                         patch_type="strategic")
        await eventually(lambda: on_nodes("busybox:1.37", {"n1", "n2"}), timeout=20)
        await core.patch("nodes", None, "n2", {"spec": {"taints": [{"key": "dedicated", "effect": "NoSchedule"}]}})
        await eventually(lambda: on_nodes("busybox:1.37", {"n1"}))

        async def desired_one() -> bool:
            s = (await core.get("apps/daemonsets", NS, "agent")).get("status", {})
            return s.get("desiredNumberScheduled") == 1 and s.get("updatedNumberScheduled") == 1

        await eventually(desired_one)

    run_lab(lab, scenario)
