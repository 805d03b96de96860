"""APIServices (kube-aggregator: pkg/registry/apiservice, pkg/apis/apiregistration/validation,
the autoregister and available controllers).

The lab serves every API group itself and does not aggregate: there is no proxy to an
extension API server. So:

- the built-in APIServices (``v1.``, ``v1.apps``, ...), which kube-apiserver's
  autoregister controller creates for the groups it serves, are created at bootstrap
  (:func:`local_apiservice`) with no ``spec.service``: ``Available=True``, reason ``Local``;
- an APIService that names a ``spec.service`` is validated and stored, and its
  ``Available`` condition is ``False`` with reason ``ServiceNotFound`` and a message
  saying plainly that the lab does not proxy aggregated APIs. Its group is not added
  to discovery.

The Available condition is the server's verdict (upstream the available controller
writes it); the strategy computes it on every write, status writes included, so a
client cannot mark an aggregated API available.
"""

from __future__ import annotations

from datetime import datetime

from ...contracts import Obj
from ...timefmt import rfc3339
from .. import strvalidation as sv
from .. import tables
from ..apiresource import Resource, status_subresource
from ..clone import clone
from ..fielderrors import FieldErrors
from .strategy import AdmissionContext, Printing, Strategy

GROUP = "apiregistration.k8s.io"
RESOURCE = Resource(GROUP, "v1", "apiservices", "apiservice", "APIService", False, categories=("api-extensions",),
                    subresources=(status_subresource("APIService"),))
# The label autoregister puts on the APIServices it manages ("onstart": made at start).
AUTOMANAGED_LABEL = "kube-aggregator.kubernetes.io/automanaged"

# DefaultGenericAPIServicePriorities (pkg/controlplane/apiserver/aggregator.go) for the
# groups the lab serves: (groupPriorityMinimum, versionPriority).
_PRIORITIES: dict[tuple[str, str], tuple[int, int]] = {
    ("", "v1"): (18000, 1),
    ("apps", "v1"): (17800, 15),
    ("events.k8s.io", "v1"): (17750, 15),
    ("authentication.k8s.io", "v1"): (17700, 15),
    ("authorization.k8s.io", "v1"): (17600, 15),
    ("batch", "v1"): (17400, 15),
    ("rbac.authorization.k8s.io", "v1"): (17000, 15),
    ("coordination.k8s.io", "v1"): (16500, 15),
    ("discovery.k8s.io", "v1"): (16200, 15),
}
# The aggregator's own group and any group without an entry: the lowest built-in value.
_DEFAULT_PRIORITY = (1000, 15)
NOT_PROXIED = "the k8snet lab does not proxy aggregated APIs: {svc} is not served and its group is not discovered"


def apiservice_name(group: str, version: str) -> str:
    """``<version>.<group>``: ``v1.`` for the core group, ``v1.apps`` for apps."""
    return f"{version}.{group}"


def local_apiservice(group: str, version: str) -> Obj:
    """The APIService autoregister creates for a group-version the server serves itself."""
    group_priority, version_priority = _PRIORITIES.get((group, version), _DEFAULT_PRIORITY)
    return {
        "apiVersion": RESOURCE.api_version, "kind": RESOURCE.kind,
        "metadata": {"name": apiservice_name(group, version), "labels": {AUTOMANAGED_LABEL: "onstart"}},
        "spec": {"group": group, "version": version, "groupPriorityMinimum": group_priority,
                 "versionPriority": version_priority},
    }


def _service_ref(obj: Obj) -> Obj | None:
    service = (obj.get("spec") or {}).get("service")
    return service if isinstance(service, dict) else None


def available_condition(obj: Obj) -> Obj:
    """The available controller's verdict, as far as the lab can give one."""
    service = _service_ref(obj)
    if service is None:
        return {"type": "Available", "status": "True", "reason": "Local",
                "message": "Local APIServices are always available"}
    svc = f"service/{service.get('name', '')} in \"{service.get('namespace', '')}\""
    return {"type": "Available", "status": "False", "reason": "ServiceNotFound",
            "message": NOT_PROXIED.format(svc=svc)}


def with_availability(obj: Obj, old: Obj | None) -> None:
    """Sets status.conditions[Available]; its lastTransitionTime moves only when its status does."""
    condition = available_condition(obj)
    previous = next((c for c in ((old or {}).get("status") or {}).get("conditions") or []
                     if isinstance(c, dict) and c.get("type") == "Available"), None)
    same = previous is not None and previous.get("status") == condition["status"]
    condition["lastTransitionTime"] = previous.get("lastTransitionTime") if same and previous else rfc3339()
    obj["status"] = {"conditions": [condition]}


def _validate_apiservice(errs: FieldErrors, obj: Obj) -> None:
    """ValidateAPIService."""
    spec = obj.get("spec") or {}
    group, version = spec.get("group") or "", spec.get("version") or ""
    name = (obj.get("metadata") or {}).get("name") or ""
    if name != apiservice_name(group, version):
        errs.invalid("metadata.name", name, f"must be `spec.version+\".\"+spec.group`: {apiservice_name(group, version)!r}")
    if not group and version != "v1":
        errs.required("spec.group", "only v1 may have an empty group and it better be legacy kube")
    if group:
        for problem in sv.is_dns1123_subdomain(group):
            errs.invalid("spec.group", group, problem)
    if not version:
        errs.required("spec.version")
    else:
        for problem in sv.is_dns1035_label(version):
            errs.invalid("spec.version", version, problem)
    for key, high in (("groupPriorityMinimum", 20000), ("versionPriority", 1000)):
        value = spec.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= high:
            errs.invalid(f"spec.{key}", value, f"must be positive and less than {high}")
    service = _service_ref(obj)
    if service is None:
        if spec.get("caBundle"):
            errs.invalid("spec.caBundle", "<omitted>", "local APIServices may not have a caBundle")
        if spec.get("insecureSkipTLSVerify"):
            errs.invalid("spec.insecureSkipTLSVerify", True, "local APIServices may not have insecureSkipTLSVerify")
        return
    for key in ("namespace", "name"):
        if not service.get(key):
            errs.required(f"spec.service.{key}")
    port = service.get("port")
    if port is not None:
        for problem in sv.is_valid_port_num(port) if isinstance(port, int) else ["must be an integer"]:
            errs.invalid("spec.service.port", port, problem)
    if spec.get("insecureSkipTLSVerify") and spec.get("caBundle"):
        errs.invalid("spec.insecureSkipTLSVerify", True, "may not be true if caBundle is present")


# -- kubectl get (kube-aggregator's apiservice table convertor) -----------------------

APISERVICE_COLUMNS = [
    tables.NAME_COLUMN,
    tables.column("Service", "string", "The reference to the service that hosts this API endpoint."),
    tables.column("Available", "string", "Whether this service is available."),
    tables.AGE_COLUMN,
]


def service_cell(obj: Obj) -> str:
    service = _service_ref(obj)
    return "Local" if service is None else f"{service.get('namespace', '')}/{service.get('name', '')}"


def available_cell(obj: Obj) -> str:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Available":
            return "True" if c.get("status") == "True" else f"{c.get('status')} ({c.get('reason', '')})"
    return "Unknown"


def print_apiservice(obj: Obj, now: datetime) -> tuple[tables.Cells, tables.RowConditions | None]:
    return [tables.object_meta(obj).get("name", ""), service_cell(obj), available_cell(obj), tables.age(obj, now)], None


class APIServiceStrategy(Strategy):
    table = Printing(APISERVICE_COLUMNS, print_apiservice)

    def default(self, obj: Obj) -> None:
        """SetDefaults_ServiceReference: the service port is 443."""
        service = _service_ref(obj)
        if service is not None and service.get("port") is None:
            service["port"] = 443

    def name_problems(self, name: str) -> list[str]:
        # path-segment names (the core group's is "v1."); the spec check above ties it to group and version
        return [f"may not contain '{c}'" for c in ("/", "%") if c in name] + (
            [f"may not be '{name}'"] if name in (".", "..") else [])

    def prepare_for_create(self, obj: Obj, ctx: AdmissionContext) -> None:
        with_availability(obj, None)

    def prepare_for_update(self, new: Obj, old: Obj, ctx: AdmissionContext) -> None:
        with_availability(new, old)

    def prepare_for_status_update(self, new: Obj, old: Obj) -> Obj:
        out = super().prepare_for_status_update(new, old)
        with_availability(out, clone(old))
        return out

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        _validate_apiservice(errs, obj)


STRATEGY = APIServiceStrategy(RESOURCE)
