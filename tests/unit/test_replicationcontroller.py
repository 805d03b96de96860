"""v1 ReplicationController: defaults from the template's labels, validation, the
scale subresource's selector, and the ReplicationController manager keeping
spec.replicas pods, against the real API core."""

from __future__ import annotations

from typing import Any

import pytest

from k8snet.lab.api.admission import Admission
from k8snet.lab.api.core import ApiCore
from k8snet.lab.api.resources import by_key
from k8snet.lab.config import LabConfig
from k8snet.lab.errors import ApiError
from tests.unit import test_controllers_api as controllers
from tests.unit.test_controllers_api import NS, eventually, run_lab

lab = controllers.lab  # the in-process API core and controllers (a fixture)
RC = by_key("replicationcontrollers")


def rc(replicas: int | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"template": {"metadata": {"labels": {"app": "old"}},
                                         "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}, **spec}
    if replicas is not None:
        body["replicas"] = replicas
    return {"metadata": {"name": "old", "namespace": NS}, "spec": body}


def test_defaults_and_validation(tmp_path):
    adm = Admission(LabConfig(state_dir=tmp_path), lambda key: [])
    out = adm.admit_create(RC, rc())
    assert out["spec"]["selector"] == {"app": "old"} and out["metadata"]["labels"] == {"app": "old"}
    assert out["spec"]["replicas"] == 1 and out["metadata"]["generation"] == 1
    with pytest.raises(ApiError) as bad:
        adm.admit_create(RC, rc(selector={"app": "other"}))
    assert "spec.template.metadata.labels: Invalid value" in bad.value.message
    assert "`selector` does not match template `labels`" in bad.value.message


def test_manager_keeps_replicas_and_scales(lab):
    async def scenario(core: ApiCore) -> None:
        await core.create("replicationcontrollers", NS, rc(replicas=2))

        async def running(n: int) -> list[dict[str, Any]]:
            pods = [p for p in (await core.list("pods", NS, label_selector="app=old"))["items"]
                    if not p["metadata"].get("deletionTimestamp") and p.get("status", {}).get("phase") == "Running"]
            return pods if len(pods) == n else []

        pods = await eventually(lambda: running(2))
        ref = pods[0]["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["apiVersion"]) == ("ReplicationController", "v1")
        scale = await core.get("replicationcontrollers", NS, "old", subresource="scale")
        assert scale["status"]["selector"] == "app=old"
        await core.patch("replicationcontrollers", NS, "old", {"spec": {"replicas": 3}}, subresource="scale")
        await eventually(lambda: running(3))

        async def ready() -> bool:
            s = (await core.get("replicationcontrollers", NS, "old")).get("status", {})
            return s.get("replicas") == 3 and s.get("readyReplicas") == 3

        await eventually(ready)

    run_lab(lab, scenario)
