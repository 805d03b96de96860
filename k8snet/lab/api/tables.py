"""Server-side ``meta.k8s.io/v1`` Tables, the way ``kubectl get`` wants them.

kubectl asks for ``as=Table`` and prints whatever columns and cells the server
sends, so the columns and cell logic here follow the real API server's printers
(kubernetes ``pkg/printers/internalversion/printers.go``, 1.32) and the ages follow
``apimachinery/pkg/util/duration.HumanDuration``. The server always renders the
wide (priority 1) columns too; kubectl hides them unless ``-o wide``.

Column definitions are module constants: ``kubectl get -w`` re-prints its header
unless the definitions of every watch event deep-equal the list's, so they must
never be rebuilt with different content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Callable

from ..contracts import Obj
from ..errors import ApiError
from .selectors import selector_string

Cells = list[Any]
RowConditions = list[Obj]
Printer = Callable[[Obj, datetime], "tuple[Cells, RowConditions | None]"]


# -- column definitions -------------------------------------------------------

@dataclass(frozen=True)
class FieldDoc:
    """A column description that is a field's API documentation, as ``SwaggerDoc()``
    gives it to the Go printers, looked up when a Table is first served.

    Read from the installed ``kubernetes`` client's models (generated from the same
    OpenAPI text), so descriptions are real without being copied in here. Not at
    import: loading the ~40 models the columns name cost ~0.4 s of every ``lab up``
    (the supervisor imports this module before it starts). Fields that reference
    another type carry no text there; ``default`` is Go's.
    """

    model: str
    field: str
    default: str = ""

    def text(self) -> str:
        return _field_doc_text(self.model, self.field, self.default)


@cache
def _field_doc_text(model: str, field: str, default: str) -> str:
    try:
        from kubernetes.client import models
        fields = getattr(models, model).model_fields
    except (ImportError, AttributeError):
        return default
    for attr, info in fields.items():
        if (info.serialization_alias or attr) == field:
            return info.description or default
    return default


def field_doc(model: str, field: str, default: str = "") -> FieldDoc:
    """The description of a column that shows ``model``'s ``field`` (see :class:`FieldDoc`)."""
    return FieldDoc(model, field, default)


def column(name: str, type_: str, description: str | FieldDoc, priority: int = 0, format_: str = "") -> Obj:
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


def column_definitions(columns: list[Obj]) -> list[Obj]:
    """``columns`` as a Table's ``columnDefinitions``: fresh dicts (callers may change
    them), with every :class:`FieldDoc` turned into its text."""
    return [{**c, "description": c["description"].text() if isinstance(c["description"], FieldDoc)
             else c["description"]} for c in columns]


NAME_COLUMN = column("Name", "string", field_doc("V1ObjectMeta", "name"), format_="name")
AGE_COLUMN = column("Age", "string", field_doc("V1ObjectMeta", "creationTimestamp"))
CONTAINERS_COLUMN = column("Containers", "string", "Names of each container in the template.", 1)
IMAGES_COLUMN = column("Images", "string", "Images referenced by each container in the template.", 1)

POD_COLUMNS = [
    NAME_COLUMN,
    column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    column("Status", "string", "The aggregate status of the containers in this pod."),
    column("Restarts", "string", "The number of times the containers in this pod have been restarted "
                               "and when the last container in this pod has restarted."),
    AGE_COLUMN,
    column("IP", "string", field_doc("V1PodStatus", "podIP"), 1),
    column("Node", "string", field_doc("V1PodSpec", "nodeName"), 1),
    column("Nominated Node", "string", field_doc("V1PodStatus", "nominatedNodeName"), 1),
    column("Readiness Gates", "string", field_doc("V1PodSpec", "readinessGates"), 1),
]
SERVICE_COLUMNS = [
    NAME_COLUMN,
    column("Type", "string", field_doc("V1ServiceSpec", "type")),
    column("Cluster-IP", "string", field_doc("V1ServiceSpec", "clusterIP")),
    column("External-IP", "string", field_doc("V1ServiceSpec", "externalIPs")),
    column("Port(s)", "string", field_doc("V1ServiceSpec", "ports")),
    AGE_COLUMN,
    column("Selector", "string", field_doc("V1ServiceSpec", "selector"), 1),
]
ENDPOINTS_COLUMNS = [NAME_COLUMN, column("Endpoints", "string", field_doc("V1Endpoints", "subsets")), AGE_COLUMN]
ENDPOINT_SLICE_COLUMNS = [
    NAME_COLUMN,
    column("AddressType", "string", field_doc("V1EndpointSlice", "addressType")),
    column("Ports", "string", field_doc("V1EndpointSlice", "ports")),
    column("Endpoints", "string", field_doc("V1EndpointSlice", "endpoints")),
    AGE_COLUMN,
]
DEPLOYMENT_COLUMNS = [
    NAME_COLUMN,
    column("Ready", "string", "Number of the pod with ready state"),
    column("Up-to-date", "string", field_doc("V1DeploymentStatus", "updatedReplicas")),
    column("Available", "string", field_doc("V1DeploymentStatus", "availableReplicas")),
    AGE_COLUMN, CONTAINERS_COLUMN, IMAGES_COLUMN,
    column("Selector", "string", field_doc("V1DeploymentSpec", "selector", "Label selector for pods. "
        "Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. "
        "It must match the pod template's labels."), 1),
]
REPLICA_SET_COLUMNS = [
    NAME_COLUMN,
    column("Desired", "integer", field_doc("V1ReplicaSetSpec", "replicas")),
    column("Current", "integer", field_doc("V1ReplicaSetStatus", "replicas")),
    column("Ready", "integer", field_doc("V1ReplicaSetStatus", "readyReplicas")),
    AGE_COLUMN, CONTAINERS_COLUMN, IMAGES_COLUMN,
    column("Selector", "string", field_doc("V1ReplicaSetSpec", "selector", "Selector is a label query over pods "
        "that should match the replica count. Label keys and values that must match in order to be controlled "
        "by this replica set. It must match the pod template's labels."), 1),
]
SECRET_COLUMNS = [
    NAME_COLUMN,
    column("Type", "string", field_doc("V1Secret", "type")),
    column("Data", "string", field_doc("V1Secret", "data")),
    AGE_COLUMN,
]
CONFIG_MAP_COLUMNS = [NAME_COLUMN, column("Data", "string", field_doc("V1ConfigMap", "data")), AGE_COLUMN]
NAMESPACE_COLUMNS = [NAME_COLUMN, column("Status", "string", "The status of the namespace"), AGE_COLUMN]
NODE_COLUMNS = [
    NAME_COLUMN,
    column("Status", "string", "The status of the node"),
    column("Roles", "string", "The roles of the node"),
    AGE_COLUMN,
    column("Version", "string", field_doc("V1NodeSystemInfo", "kubeletVersion")),
    column("Internal-IP", "string", field_doc("V1NodeStatus", "addresses"), 1),
    column("External-IP", "string", field_doc("V1NodeStatus", "addresses"), 1),
    column("OS-Image", "string", field_doc("V1NodeSystemInfo", "osImage"), 1),
    column("Kernel-Version", "string", field_doc("V1NodeSystemInfo", "kernelVersion"), 1),
    column("Container-Runtime", "string", field_doc("V1NodeSystemInfo", "containerRuntimeVersion"), 1),
]
EVENT_COLUMNS = [
    column("Last Seen", "string", field_doc("CoreV1Event", "lastTimestamp")),
    column("Type", "string", field_doc("CoreV1Event", "type")),
    column("Reason", "string", field_doc("CoreV1Event", "reason")),
    column("Object", "string", field_doc("CoreV1Event", "involvedObject", "The object that this event is about.")),
    column("Subobject", "string", field_doc("V1ObjectReference", "fieldPath"), 1),
    column("Source", "string", field_doc("CoreV1Event", "source", "The component reporting this event. "
                                                                "Should be a short machine understandable string."), 1),
    column("Message", "string", field_doc("CoreV1Event", "message")),
    column("First Seen", "string", field_doc("CoreV1Event", "firstTimestamp"), 1),
    column("Count", "string", field_doc("CoreV1Event", "count"), 1),
    column("Name", "string", field_doc("V1ObjectMeta", "name"), 1, "name"),
]
SERVICE_ACCOUNT_COLUMNS = [NAME_COLUMN, column("Secrets", "string", field_doc("V1ServiceAccount", "secrets")), AGE_COLUMN]
# The generic convertor the real server uses for kinds without a printer.
# pkg/printers/internalversion: roles print name and creation time; bindings their role
# and, with -o wide, their subjects.
ROLE_COLUMNS = [NAME_COLUMN, column("Created At", "date", field_doc("V1ObjectMeta", "creationTimestamp"))]
ROLE_BINDING_COLUMNS = [
    NAME_COLUMN, column("Role", "string", field_doc(
        "V1RoleBinding", "roleRef", "RoleRef can reference a Role in the current namespace or a ClusterRole in the "
        "global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.")), AGE_COLUMN,
    column("Users", "string", "Users in the roleBinding", 1),
    column("Groups", "string", "Groups in the roleBinding", 1),
    column("ServiceAccounts", "string", "ServiceAccounts in the roleBinding", 1),
]
DEFAULT_COLUMNS = [NAME_COLUMN, column("Created At", "date", field_doc("V1ObjectMeta", "creationTimestamp"))]


# -- time ---------------------------------------------------------------------

def human_duration(seconds: float) -> str:
    """apimachinery ``duration.HumanDuration``: precise when young, coarse when old."""
    s = int(seconds)  # Go's int(d.Seconds()) truncates toward zero
    if s < -1:
        return "<invalid>"  # a clock more than a second ahead of ours
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 Time or MicroTime, or None when unset (Go's zero time)."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def since(value: str | None, now: datetime) -> str:
    """``translateTimestampSince``: ``<unknown>`` for an unset timestamp."""
    t = parse_time(value)
    if t is None:
        return "<unknown>"
    return human_duration((now - t).total_seconds())


# -- shared cell formats --------------------------------------------------------

def format_labels(labels: dict[str, str] | None) -> str:
    """``labels.FormatLabels``: sorted ``k=v`` pairs, or ``<none>``."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_cell(selector: Obj | None) -> str:
    """A LabelSelector as the printers show it: :func:`selector_string`, or
    ``<invalid>`` for one LabelSelectorAsSelector refuses (an unknown operator)."""
    try:
        return selector_string(selector)
    except ApiError:
        return "<invalid>"


def format_label_selector(selector: Obj | None) -> str:
    """``metav1.FormatLabelSelector``: like :func:`selector_string` but ``<none>`` when empty."""
    return selector_cell(selector) or "<none>"


def container_cells(template: Obj) -> tuple[str, str]:
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def _list_with_more(items: list[str], max_items: int = 3, empty: str = "<unset>") -> str:
    """The printers' "a,b,c + N more..." lists."""
    shown = ",".join(items[:max_items])
    if len(items) > max_items:
        return f"{shown} + {len(items) - max_items} more..."
    return shown or empty


def object_meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def age(obj: Obj, now: datetime) -> str:
    return since(object_meta(obj).get("creationTimestamp"), now)


# -- printers -------------------------------------------------------------------

_POD_SUCCEEDED = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                   "message": "The pod has completed successfully."}]
_POD_FAILED = [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]


def _is_restartable_init(container: Obj | None) -> bool:
    return container is not None and container.get("restartPolicy") == "Always"


def _condition_true(conditions: list[Obj], type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


def _first_condition_true(conditions: list[Obj], type_: str) -> bool:
    """``isPodInitializedConditionTrue``: the first condition of that type decides."""
    for c in conditions:
        if c.get("type") == type_:
            return c.get("status") == "True"
    return False


def _later(current: str | None, candidate: str | None) -> str | None:
    if not candidate:
        return current
    if current is None or parse_time(current) < parse_time(candidate):  # type: ignore[operator]
        return candidate
    return current


def print_pod(pod: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    spec, status, meta = pod.get("spec") or {}, pod.get("status") or {}, object_meta(pod)
    conditions = status.get("conditions") or []
    phase = status.get("phase", "")
    reason = status.get("reason") or phase
    for c in conditions:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    row_conditions = {"Succeeded": _POD_SUCCEEDED, "Failed": _POD_FAILED}.get(phase)

    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total = len(spec.get("containers") or []) + sum(_is_restartable_init(c) for c in init_specs.values())
    ready = restarts = sidecar_restarts = 0
    last_restart: str | None = None
    last_sidecar_restart: str | None = None

    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        state, finished = cs.get("state") or {}, ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        restarts += cs.get("restartCount", 0)
        last_restart = _later(last_restart, finished)
        sidecar = _is_restartable_init(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += cs.get("restartCount", 0)
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and terminated.get("exitCode", 0) == 0:
            continue
        if sidecar and cs.get("started"):
            ready += bool(cs.get("ready"))
            continue
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode', 0)}"
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _first_condition_true(conditions, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        # Last to first, so the first container's state is the one that shows.
        for cs in reversed(status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            restarts += cs.get("restartCount", 0)
            last_restart = _later(last_restart, ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                reason = (f"Signal:{terminated['signal']}" if terminated.get("signal")
                          else f"ExitCode:{terminated.get('exitCode', 0)}")
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last_restart:
        restarts_cell = f"{restarts} ({since(last_restart, now)} ago)"

    pod_ips = status.get("podIPs") or []
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        by_type: dict[str, str] = {}
        for c in conditions:
            by_type.setdefault(c.get("type", ""), c.get("status", ""))
        gates_cell = f"{sum(by_type.get(g.get('conditionType')) == 'True' for g in gates)}/{len(gates)}"
    cells = [
        meta.get("name", ""), f"{ready}/{total}", reason, restarts_cell, age(pod, now),
        (pod_ips[0].get("ip") if pod_ips else "") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_cell,
    ]
    return cells, row_conditions


def _load_balancer_ips(svc: Obj, wide: bool) -> str:
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    found = sorted({i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")})
    text = ",".join(found)
    if not wide and len(text) > 16:
        text = text[:13] + "..."
    return text


def service_external_ip(svc: Obj, wide: bool = True) -> str:
    """``getServiceExternalIP`` (the server renders with wide=True)."""
    spec = svc.get("spec") or {}
    external = spec.get("externalIPs") or []
    svc_type = spec.get("type", "")
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if svc_type == "LoadBalancer":
        lb = _load_balancer_ips(svc, wide)
        if external:
            return ",".join(([*lb.split(",")] if lb else []) + external)
        return lb or "<pending>"
    if svc_type == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def service_ports(ports: list[Obj]) -> str:
    """``makePortString``: ``80/TCP`` or ``8080:31704/TCP``, comma-joined."""
    pieces = []
    for p in ports:
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            pieces.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            pieces.append(f"{p.get('port')}/{proto}")
    return ",".join(pieces)


def print_service(svc: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    spec = svc.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [
        object_meta(svc).get("name", ""), spec.get("type", ""), cluster_ips[0] if cluster_ips else "<none>",
        service_external_ip(svc, wide=True), service_ports(spec.get("ports") or []) or "<none>",
        age(svc, now), format_labels(spec.get("selector")),
    ], None


def format_endpoints(endpoints: Obj) -> str:
    """``formatEndpoints``: up to 3 ready ``ip:port`` (bare IPs for port-less subsets)."""
    subsets = endpoints.get("subsets") or []
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    for ss in subsets:
        addresses = [a.get("ip", "") for a in ss.get("addresses") or []]
        ports = ss.get("ports") or []
        if not ports:
            count += len(addresses)
            shown.extend(addresses[: max(0, 3 - len(shown))])
            continue
        for port in ports:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == 3:
                    break
                shown.append(f"[{ip}]:{port.get('port')}" if ":" in ip else f"{ip}:{port.get('port')}")
    text = ",".join(shown)
    return f"{text} + {count - 3} more..." if count > 3 else text


def print_endpoints(ep: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    return [object_meta(ep).get("name", ""), format_endpoints(ep), age(ep, now)], None


def print_endpoint_slice(es: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    ports = []
    for p in es.get("ports") or []:
        if p.get("port") is not None:
            ports.append(str(p["port"]))
        elif p.get("name") is not None:
            ports.append(p["name"])
        else:
            ports.append("*")
    addresses = [a for ep in es.get("endpoints") or [] for a in ep.get("addresses") or []]
    return [object_meta(es).get("name", ""), es.get("addressType", ""), _list_with_more(ports),
            _list_with_more(addresses), age(es, now)], None


def print_deployment(d: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    names, images = container_cells(spec.get("template") or {})
    return [
        object_meta(d).get("name", ""), f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("updatedReplicas", 0), status.get("availableReplicas", 0), age(d, now),
        names, images, selector_cell(spec.get("selector")),
    ], None


def print_replica_set(rs: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    names, images = container_cells(spec.get("template") or {})
    return [
        object_meta(rs).get("name", ""), spec.get("replicas", 1), status.get("replicas", 0),
        status.get("readyReplicas", 0), age(rs, now), names, images,
        format_label_selector(spec.get("selector")),
    ], None


def print_secret(s: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    # stringData is write-only (merged into data on write), so only data counts.
    return [object_meta(s).get("name", ""), s.get("type", ""), len(s.get("data") or {}), age(s, now)], None


def print_config_map(cm: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    return [object_meta(cm).get("name", ""), len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
            age(cm, now)], None


def print_namespace(ns: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    return [object_meta(ns).get("name", ""), (ns.get("status") or {}).get("phase", ""), age(ns, now)], None


def node_roles(labels: dict[str, str]) -> list[str]:
    """``findNodeRoles``: ``node-role.kubernetes.io/<role>`` keys and ``kubernetes.io/role`` values."""
    roles = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/"):]:
            roles.add(key[len("node-role.kubernetes.io/"):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return sorted(roles)


def print_node(node: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    status, spec = node.get("status") or {}, node.get("spec") or {}
    ready = {c.get("type"): c for c in status.get("conditions") or []}.get("Ready")
    states = [("Ready" if ready.get("status") == "True" else "NotReady") if ready else "Unknown"]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    info = status.get("nodeInfo") or {}
    addresses = status.get("addresses") or []

    def address(kind: str) -> str:
        return next((a.get("address", "") for a in addresses if a.get("type") == kind), "<none>")

    return [
        object_meta(node).get("name", ""), ",".join(states),
        ",".join(node_roles(object_meta(node).get("labels") or {})) or "<none>",
        age(node, now), info.get("kubeletVersion", ""), address("InternalIP"), address("ExternalIP"),
        info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ], None


def _core_event(ev: Obj) -> Obj:
    """An events.k8s.io/v1 Event in core/v1 shape; the real server prints both
    through one printer after converting to the internal type."""
    if ev.get("apiVersion") != "events.k8s.io/v1" and "regarding" not in ev and "note" not in ev:
        return ev
    return {
        "metadata": ev.get("metadata") or {},
        "involvedObject": ev.get("regarding") or {},
        "reason": ev.get("reason", ""),
        "message": ev.get("note", ""),
        "type": ev.get("type", ""),
        "source": ev.get("deprecatedSource") or {},
        "firstTimestamp": ev.get("deprecatedFirstTimestamp"),
        "lastTimestamp": ev.get("deprecatedLastTimestamp"),
        "count": ev.get("deprecatedCount", 0),
        "eventTime": ev.get("eventTime"),
        "series": ev.get("series"),
        "reportingComponent": ev.get("reportingController", ""),
        "reportingInstance": ev.get("reportingInstance", ""),
    }


def print_event(event: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    ev = _core_event(event)
    first = (since(ev["firstTimestamp"], now) if ev.get("firstTimestamp") else since(ev.get("eventTime"), now))
    last = since(ev["lastTimestamp"], now) if ev.get("lastTimestamp") else first
    count = ev.get("count") or 0
    if ev.get("series"):
        last = since(ev["series"].get("lastObservedTime"), now)
        count = ev["series"].get("count", 0)
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    involved = ev.get("involvedObject") or {}
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = ev.get("source") or {}
    component = source.get("component") or ev.get("reportingComponent") or ""
    instance = source.get("host") or ev.get("reportingInstance") or ""
    return [
        last, ev.get("type", ""), ev.get("reason", ""), target, involved.get("fieldPath", ""),
        f"{component}, {instance}" if instance else component, (ev.get("message") or "").strip(),
        first, count, object_meta(ev).get("name", ""),
    ], None


def print_service_account(sa: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    return [object_meta(sa).get("name", ""), len(sa.get("secrets") or []), age(sa, now)], None


def print_role(role: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    return [object_meta(role).get("name", ""), object_meta(role).get("creationTimestamp", "")], None


def print_role_binding(binding: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    """``printRoleBinding``: ``Role/<name>`` or ``ClusterRole/<name>``, then the subjects by kind."""
    ref = binding.get("roleRef") or {}
    subjects = [s for s in binding.get("subjects") or [] if isinstance(s, dict)]

    def names(kind: str) -> str:
        return ", ".join(s.get("name", "") for s in subjects if s.get("kind") == kind)

    accounts = ", ".join(f'{s.get("namespace", "")}/{s.get("name", "")}' for s in subjects
                         if s.get("kind") == "ServiceAccount")
    return [object_meta(binding).get("name", ""), f'{ref.get("kind", "")}/{ref.get("name", "")}', age(binding, now),
            names("User"), names("Group"), accounts], None


def print_default(obj: Obj, now: datetime) -> tuple[Cells, RowConditions | None]:
    return [object_meta(obj).get("name", ""), object_meta(obj).get("creationTimestamp", "")], None
