"""ApiCore semantics: bookkeeping, conflicts, namespaces, finalizers, graceful pods,
subresources and watch filtering, on a real store and the real admission."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("k8snet.lab.api.schema") is None:  # written in parallel; stand in until it lands
    _schema = types.ModuleType("k8snet.lab.api.schema")
    _schema.unknown_fields = lambda res, obj: []  # type: ignore[attr-defined]
    sys.modules["k8snet.lab.api.schema"] = _schema

from k8snet.lab.api.admission import Admission  # noqa: E402
from k8snet.lab.api.core import ApiCore  # noqa: E402
from k8snet.lab.config import LabConfig  # noqa: E402
from k8snet.lab.errors import ApiError  # noqa: E402
from k8snet.lab.pki import Pki  # noqa: E402
from k8snet.lab.store import Store  # noqa: E402

POD = {"metadata": {"name": "web", "labels": {"app": "web"}},
       "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
DEPLOY = {"metadata": {"name": "d"}, "spec": {
    "selector": {"matchLabels": {"app": "d"}},
    "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def make_core(tmp_path: Path) -> ApiCore:
    config = LabConfig(name="t", state_dir=tmp_path)
    store = Store(tmp_path / "store.sqlite")
    pki = Pki(tmp_path / "pki")
    pki.create(["127.0.0.1"], ["localhost"])
    return ApiCore(config, store, Admission(config, store.objects), pki)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _with_ns(core: ApiCore, name: str = "default") -> None:
    await core.create("namespaces", None, {"metadata": {"name": name}})


async def _error(coro: Any) -> ApiError:
    with pytest.raises(ApiError) as err:
        await coro
    return err.value


def test_create_bookkeeping_and_duplicate(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = make_core(tmp_path)
        await _with_ns(core)
        pod = await core.create("pods", "default", {**POD, "metadata": {**POD["metadata"], "creationTimestamp": None}})
        meta = pod["metadata"]
        assert (pod["apiVersion"], pod["kind"], meta["namespace"]) == ("v1", "Pod", "default")
        assert len(meta["uid"]) == 36 and meta["creationTimestamp"].endswith("Z") and meta["resourceVersion"] == "2"
        assert "generation" not in meta
        err = await _error(core.create("pods", "default", POD))
        assert (err.code, err.message) == (409, 'pods "web" already exists')
        gen = await core.create("pods", "default", {**POD, "metadata": {"generateName": "web-"}})
        name = gen["metadata"]["name"]
        assert name.startswith("web-") and len(name) == 9 and set(name[4:]) <= set("bcdfghjklmnpqrstvwxz2456789")
        err = await _error(core.create("pods", "other", POD))
        assert (err.code, err.message) == (404, 'namespaces "other" not found')
        err = await _error(core.create("pods", "default", {**POD, "metadata": {"name": "x", "namespace": "kube"}}))
        assert err.code == 400
        dry = await core.create("pods", "default", {**POD, "metadata": {"name": "dry"}}, dry_run=True)
        assert dry["metadata"]["name"] == "dry" and await core.list("pods", "default", field_selector="metadata.name=dry") == {
            "kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "3"}, "items": []}
    run(scenario())


def test_update_conflict_and_generation(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = make_core(tmp_path)
        await _with_ns(core)
        d = await core.create("apps/deployments", "default", DEPLOY)
        assert d["metadata"]["generation"] == 1
        d["spec"]["replicas"] = 4
        d2 = await core.update("apps/deployments", "default", "d", d)
        assert d2["metadata"]["generation"] == 2
        err = await _error(core.update("apps/deployments", "default", "d", d))  # d carries the old version
        assert err.code == 409 and err.reason == "Conflict" and "the object has been modified" in err.message
        d2["metadata"]["labels"] = {"x": "y"}
        d3 = await core.update("apps/deployments", "default", "d", d2)
        assert d3["metadata"]["generation"] == 2  # metadata only: no bump
        err = await _error(core.update("apps/deployments", "default", "nope", {**DEPLOY, "metadata": {"name": "nope"}}))
        assert (err.code, err.message) == (404, 'deployments.apps "nope" not found')
    run(scenario())


def test_scale_status_and_patch(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = make_core(tmp_path)
        await _with_ns(core)
        await core.create("apps/deployments", "default", DEPLOY)
        scale = await core.patch("apps/deployments", "default", "d", {"spec": {"replicas": 0}}, subresource="scale")
        assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 0 and scale["status"]["selector"] == "app=d"
        d = await core.get("apps/deployments", "default", "d")
        assert d["spec"]["replicas"] == 0
        s = await core.update("apps/deployments", "default", "d", {**d, "status": {"replicas": 3}}, subresource="status")
        assert s["status"]["replicas"] == 3
        s = await core.update("apps/deployments", "default", "d", {**s, "status": {"replicas": 9}})
        assert s["status"]["replicas"] == 3  # a main-resource update keeps status
        p = await core.patch("apps/deployments", "default", "d", {"metadata": {"labels": {"a": "b"}}})
        assert p["metadata"]["labels"] == {"a": "b"}
        err = await _error(core.patch("apps/deployments", "default", "d", {"metadata": {"resourceVersion": "1"}}))
        assert err.reason == "Conflict"
    run(scenario())


def test_apply_patch_creates_and_requires_field_manager(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = make_core(tmp_path)
        await _with_ns(core)
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "1"}}
        err = await _error(core.patch("configmaps", "default", "cm", body, patch_type="apply"))
        assert err.code == 422 and "fieldManager" in err.message
        obj, created = await core.patch_created("configmaps", "default", "cm", body, patch_type="apply",
                                                field_manager="me")
        assert created and obj["data"] == {"a": "1"}
        obj, created = await core.patch_created("configmaps", "default", "cm", {**body, "data": {"a": "2"}},
                                                patch_type="apply", field_manager="me")
        assert not created and obj["data"] == {"a": "2"}
    run(scenario())


def test_delete_with_finalizers_and_preconditions(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = make_core(tmp_path)
        await _with_ns(core)
        cm = await core.create("configmaps", "default", {"metadata": {"name": "cm", "finalizers": ["example.com/x"]}})
        err = await _error(core.delete("configmaps", "default", "cm", preconditions={"uid": "other"}))
        assert err.code == 409
        deleting = await core.delete("configmaps", "default", "cm", preconditions={"uid": cm["metadata"]["uid"]})
        assert deleting["metadata"]["deletionTimestamp"] and deleting["metadata"]["deletionGracePeriodSeconds"] == 0
        assert (await core.get("configmaps", "default", "cm"))["metadata"]["finalizers"] == ["example.com/x"]
        await core.patch("configmaps", "default", "cm", {"metadata": {"finalizers": None}})
        err = await _error(core.get("configmaps", "default", "cm"))
        assert err.code == 404
        await core.create("configmaps", "default", {"metadata": {"name": "o"}})
        orphaned = await core.delete("configmaps", "default", "o", propagation_policy="Orphan")
        assert orphaned["metadata"]["finalizers"] == ["orphan"]
    run(scenario())


def test_namespace_termination(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = make_core(tmp_path)
        ns = await core.create("namespaces", None, {"metadata": {"name": "foo"}})
        assert ns["status"]["phase"] == "Active" and ns["spec"]["finalizers"] == ["kubernetes"]
        await core.create("configmaps", "foo", {"metadata": {"name": "a"}})
        ns = await core.delete("namespaces", None, "foo")
        assert ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
        err = await _error(core.create("configmaps", "foo", {"metadata": {"name": "b"}}))
        assert (err.code, err.reason) == (403, "Forbidden")
        assert err.message == ('configmaps "b" is forbidden: unable to create new content in namespace foo '
                               "because it is being terminated")
        await core.delete("configmaps", "foo", "a")
        ns = await core.get("namespaces", None, "foo")
        ns["spec"]["finalizers"] = []
        gone = await core.update("namespaces", None, "foo", ns, subresource="finalize")
        assert gone["metadata"]["name"] == "foo"
        assert (await core.list("namespaces"))["items"] == []
    run(scenario())


def test_graceful_pod_deletion_and_binding(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = make_core(tmp_path)
        await _with_ns(core)
        await core.create("pods", "default", {**POD, "metadata": {"name": "loose"}})
        await core.delete("pods", "default", "loose")  # unbound: removed at once
        assert (await core.list("pods"))["items"] == []
        await core.create("pods", "default", POD)
        status = await core.create("pods", "default", {"target": {"kind": "Node", "name": "n1"}},
                                   subresource="binding", name="web")
        assert status["status"] == "Success"
        err = await _error(core.create("pods", "default", {"target": {"name": "n2"}}, subresource="binding", name="web"))
        assert err.code == 409 and 'already assigned to node "n1"' in err.message
        pod = await core.get("pods", "default", "web")
        assert pod["spec"]["nodeName"] == "n1"
        assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in pod["status"]["conditions"])
        first = await core.delete("pods", "default", "web")
        assert first["metadata"]["deletionGracePeriodSeconds"] == 30
        assert (await core.get("pods", "default", "web"))["metadata"]["deletionTimestamp"]
        await core.delete("pods", "default", "web", grace_period_seconds=0)
        assert (await _error(core.get("pods", "default", "web"))).code == 404
    run(scenario())


def test_service_account_token(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = make_core(tmp_path)
        await _with_ns(core)
        await core.create("serviceaccounts", "default", {"metadata": {"name": "sa"}})
        tr = await core.create("serviceaccounts", "default", {"spec": {"expirationSeconds": 3600}},
                               subresource="token", name="sa")
        user = core.tokens.authenticate(tr["status"]["token"], core.tokens.issuer, core.store.get)
        assert user is not None and user.name == "system:serviceaccount:default:sa"
        assert tr["status"]["expirationTimestamp"].endswith("Z")
        err = await _error(core.create("serviceaccounts", "default", {}, subresource="token", name="nope"))
        assert err.code == 404
    run(scenario())


def test_watch_initial_events_selectors_and_410(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = make_core(tmp_path)
        await _with_ns(core)
        await core.create("pods", "default", POD)
        events = core.watch("pods", "default", label_selector="app=web", timeout_seconds=2)
        first = await events.__anext__()
        assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "web"
        await core.patch("pods", "default", "web", {"metadata": {"labels": {"app": "other"}}})
        gone = await events.__anext__()
        assert gone["type"] == "DELETED" and gone["object"]["metadata"]["labels"] == {"app": "web"}
        await core.patch("pods", "default", "web", {"metadata": {"labels": {"app": "web"}}})
        assert (await events.__anext__())["type"] == "ADDED"
        await events.aclose()
        listed = await core.list("pods")
        resumed = core.watch("pods", resource_version=listed["metadata"]["resourceVersion"], allow_bookmarks=True,
                             timeout_seconds=0.3)
        assert [e async for e in resumed] == []
        with pytest.raises(ApiError) as err:
            core.watch("pods", label_selector="a in b")
        assert err.value.code == 400
        core.store._compacted = 3  # as if the history had been trimmed
        with pytest.raises(ApiError) as err:
            await core.watch("pods", resource_version="1").__anext__()
        assert err.value.code == 410 and err.value.message == "too old resource version: 1 (3)"
    run(scenario())
