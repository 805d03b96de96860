"""apiregistration.k8s.io/v1 APIService: the local APIServices bootstrap creates, the
validation, the Available verdict (Local, or not proxied) and the Table."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from k8snet.lab.api.admission import Admission
from k8snet.lab.api.registry.apiservices import local_apiservice
from k8snet.lab.api.resources import GROUP_VERSIONS, by_key
from k8snet.lab.api.tableview import to_table
from k8snet.lab.config import LabConfig
from k8snet.lab.errors import ApiError

APISERVICES = by_key("apiregistration.k8s.io/apiservices")


def aggregated(name: str = "v1beta1.metrics.k8s.io") -> dict:
    return {"metadata": {"name": name},
            "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                     "versionPriority": 100, "insecureSkipTLSVerify": True,
                     "service": {"namespace": "kube-system", "name": "metrics-server", "port": 443}}}


@pytest.fixture
def adm(tmp_path) -> Admission:
    return Admission(LabConfig(state_dir=tmp_path), lambda key: [])


def _available(obj: dict) -> dict:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Available")


def test_every_served_group_version_has_a_local_apiservice(adm):
    names = [local_apiservice(g, v)["metadata"]["name"] for g, v in GROUP_VERSIONS]
    assert {"v1.", "v1.apps", "v1.batch", "v1.apiregistration.k8s.io"} <= set(names)
    core = adm.admit_create(APISERVICES, local_apiservice("", "v1"))
    assert core["spec"]["groupPriorityMinimum"] == 18000
    cond = _available(core)
    assert (cond["status"], cond["reason"]) == ("True", "Local") and cond["lastTransitionTime"]


def test_aggregated_apiservice_is_stored_but_not_available(adm):
    out = adm.admit_create(APISERVICES, aggregated())
    cond = _available(out)
    assert (cond["status"], cond["reason"]) == ("False", "ServiceNotFound")
    assert "does not proxy aggregated APIs" in cond["message"]
    # a client cannot mark it available: the status write keeps the server's verdict
    forged = copy.deepcopy(out)
    forged["status"] = {"conditions": [{"type": "Available", "status": "True", "reason": "Passed"}]}
    after = adm.admit_update(APISERVICES, out, forged, "status")
    assert _available(after)["status"] == "False"
    assert _available(after)["lastTransitionTime"] == cond["lastTransitionTime"]


@pytest.mark.parametrize("change, message", [
    (lambda o: o["metadata"].update(name="v1.metrics.k8s.io"), "metadata.name: Invalid value"),
    (lambda o: o["spec"].update(group="", version="v2"), "spec.group: Required value"),
    (lambda o: o["spec"].update(versionPriority=0), "spec.versionPriority: Invalid value"),
    (lambda o: o["spec"]["service"].pop("name"), "spec.service.name: Required value"),
    (lambda o: o["spec"].update(caBundle="Zm9v"), "may not be true if caBundle is present"),
    (lambda o: o["spec"].pop("service"), "local APIServices may not have insecureSkipTLSVerify"),
])
def test_validation(adm, change, message):
    obj = aggregated()
    change(obj)
    with pytest.raises(ApiError) as bad:
        adm.admit_create(APISERVICES, obj)
    assert bad.value.code == 422 and message in bad.value.message


def test_table_columns_and_cells(adm):
    local = adm.admit_create(APISERVICES, local_apiservice("apps", "v1"))
    remote = adm.admit_create(APISERVICES, aggregated())
    for o in (local, remote):
        o["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    table = to_table(APISERVICES, [local, remote], resource_version="1",
                     now=datetime(2026, 1, 1, 0, 5, tzinfo=timezone.utc))
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Service", "Available", "Age"]
    assert [r["cells"] for r in table["rows"]] == [
        ["v1.apps", "Local", "True", "5m"],
        ["v1beta1.metrics.k8s.io", "kube-system/metrics-server", "False (ServiceNotFound)", "5m"]]
