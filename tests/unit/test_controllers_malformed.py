"""A malformed object already in the store (written before validation refused its
shape) is reported and skipped; the controllers go on for every other object."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from k8snet.lab.api.core import ApiCore, now_rfc3339
from k8snet.lab.controllers.util import MalformedObject, controller_ref, owner_refs, selector_matches, spec_replicas
from tests.unit.test_controllers_api import NS, deployment, eventually, lab, rolled_out, run_lab  # noqa: F401

_ = lab  # the fixture, imported for pytest


def _stored(core: ApiCore, key: str, obj: dict[str, Any]) -> None:
    """Writes straight into the store, past admission, as an old lab version could have."""
    meta = obj["metadata"]
    meta.update(namespace=NS, uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339())
    core.store.create(key, NS, meta["name"], obj)


def test_shape_helpers_never_raise_on_bad_shapes() -> None:
    assert owner_refs({"metadata": {"ownerReferences": "x"}}) == []
    assert owner_refs({"metadata": {"ownerReferences": ["x", {"uid": "u"}]}}) == [{"uid": "u"}]
    assert controller_ref({"metadata": {"ownerReferences": [{"uid": "u", "controller": "yes"}]}}) is None
    assert not selector_matches({"matchLabels": {"a": "b"}}, "a=b")  # type: ignore[arg-type]
    assert spec_replicas({"spec": {}}) == 1 and spec_replicas({"spec": {"replicas": 0}}) == 0
    for bad in ("2", 1.5, 2 ** 70, -1, True):
        with pytest.raises(MalformedObject):
            spec_replicas({"spec": {"replicas": bad}})


def test_controllers_go_on_past_malformed_objects(lab) -> None:  # noqa: F811
    async def scenario(core: ApiCore) -> None:
        labels = {"app": "bad"}
        _stored(core, "pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "orphan", "labels": {"app": "web"}, "ownerReferences": "x"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
        _stored(core, "apps/replicasets", {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                           "metadata": {"name": "bad", "labels": labels},
                                           "spec": {"replicas": "2", "selector": {"matchLabels": labels},
                                                    "template": {"metadata": {"labels": labels}, "spec": {
                                                        "containers": [{"name": "c", "image": "nginx"}]}}}})
        await core.create("apps/deployments", NS, deployment("web", 2))

        async def web_rolled_out() -> bool:
            return await rolled_out(core, "web", 2)

        await eventually(web_rolled_out, timeout=20)

        async def warned() -> bool:
            events = (await core.list("events", NS))["items"]
            return any(e["involvedObject"].get("name") == "bad" and e["reason"] == "FailedSync"
                       and "spec.replicas" in e["message"] for e in events)

        await eventually(warned)

    run_lab(lab, scenario)
