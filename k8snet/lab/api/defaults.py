"""The API server's defaulting (``pkg/apis/*/v1/defaults.go``) and create-time
bookkeeping (the registry strategies' ``PrepareForCreate`` and the ServiceAccount,
DefaultTolerationSeconds and Priority admission plugins).

Every function mutates the object it is given (admission passes a private copy)
and is idempotent, so defaulting an already-defaulted object changes nothing.
"""

from __future__ import annotations

import base64
from typing import Any, Callable

from k8snet.lab.api.resources import Resource
from k8snet.lab.contracts import Obj
from k8snet.lab.generatednames import random_suffix

SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
SA_VOLUME_PREFIX = "kube-api-access-"


def _set(d: dict[str, Any], key: str, value: Any) -> None:
    if d.get(key) in (None, ""):
        d[key] = value


# -- pods ---------------------------------------------------------------------

def _image_pull_policy(image: str) -> str:
    # The tag is after the last ':' that follows the last '/'; a digest pins the image.
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _default_http_get(action: dict[str, Any] | None) -> None:
    if isinstance(action, dict):
        _set(action, "path", "/")
        _set(action, "scheme", "HTTP")


def _default_probe(probe: dict[str, Any] | None) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        if not probe.get(key):
            probe[key] = value
    _default_http_get(probe.get("httpGet"))


def _default_field_ref(holder: dict[str, Any] | None) -> None:
    ref = (holder or {}).get("fieldRef")
    if isinstance(ref, dict):
        _set(ref, "apiVersion", "v1")


def _default_container(c: dict[str, Any], host_network: bool) -> None:
    _set(c, "terminationMessagePath", "/dev/termination-log")
    _set(c, "terminationMessagePolicy", "File")
    if isinstance(c.get("image"), str) and c["image"]:
        _set(c, "imagePullPolicy", _image_pull_policy(c["image"]))
    if c.get("resources") is None:
        c["resources"] = {}
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
            if host_network and not port.get("hostPort") and port.get("containerPort"):
                port["hostPort"] = port["containerPort"]
    for env in c.get("env") or []:
        if isinstance(env, dict):
            _default_field_ref(env.get("valueFrom"))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    for hook in ((c.get("lifecycle") or {}).get(h) for h in ("postStart", "preStop")):
        if isinstance(hook, dict):
            _default_http_get(hook.get("httpGet"))


def _default_volume(v: dict[str, Any]) -> None:
    for source in ("secret", "configMap", "projected", "downwardAPI"):
        src = v.get(source)
        if isinstance(src, dict):
            _set(src, "defaultMode", 420)
    for item in (v.get("downwardAPI") or {}).get("items") or []:
        _default_field_ref(item)
    for proj in (v.get("projected") or {}).get("sources") or []:
        for item in ((proj or {}).get("downwardAPI") or {}).get("items") or []:
            _default_field_ref(item)
    if isinstance(v.get("hostPath"), dict):
        _set(v["hostPath"], "type", "")


def default_pod_spec(spec: dict[str, Any]) -> None:
    """SetDefaults_PodSpec plus its containers and volumes (pods and templates)."""
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "restartPolicy", "Always")
    _set(spec, "schedulerName", "default-scheduler")
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    host_network = bool(spec.get("hostNetwork"))
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                _default_container(c, host_network)
    for v in spec.get("volumes") or []:
        if isinstance(v, dict):
            _default_volume(v)


def default_pod(pod: Obj) -> None:
    spec = pod.setdefault("spec", {})
    default_pod_spec(spec)
    if spec.get("enableServiceLinks") is None:  # SetDefaults_Pod only, not templates
        spec["enableServiceLinks"] = True
    # The deprecated alias and the real field mirror each other.
    if spec.get("serviceAccountName") and not spec.get("serviceAccount"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    elif spec.get("serviceAccount") and not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"]


def _qos_class(spec: dict[str, Any]) -> str:
    """pkg/apis/core/helper/qos: Guaranteed, Burstable or BestEffort."""
    containers = [c for k in ("initContainers", "containers") for c in spec.get(k) or [] if isinstance(c, dict)]
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        if requests or limits:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in limits or (r in requests and str(requests[r]) != str(limits[r])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def inject_service_account(pod: Obj, suffix: Callable[[], str] = random_suffix,
                           account_automount: bool = True) -> None:
    """What the ServiceAccount admission plugin adds on create: the account name and
    the projected token volume, mounted read-only in every container. The pod's
    automountServiceAccountToken wins over the account's (``account_automount``)."""
    spec = pod.setdefault("spec", {})
    _set(spec, "serviceAccountName", spec.get("serviceAccount") or "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    automount = spec.get("automountServiceAccountToken")
    if automount is False or (automount is None and not account_automount):
        return
    containers = [c for k in ("initContainers", "containers") for c in spec.get(k) or [] if isinstance(c, dict)]
    if any(m.get("mountPath") == SA_MOUNT_PATH for c in containers for m in c.get("volumeMounts") or []):
        return  # the user mounted something there already: the plugin backs off
    name = SA_VOLUME_PREFIX + suffix()
    spec.setdefault("volumes", []).append({"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [
            {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}})
    for c in containers:
        c.setdefault("volumeMounts", []).append({"name": name, "readOnly": True, "mountPath": SA_MOUNT_PATH})


def _admit_pod_extras(pod: Obj) -> None:
    """DefaultTolerationSeconds and Priority admission plugins."""
    spec = pod["spec"]
    tolerations = spec.setdefault("tolerations", [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == key for t in tolerations if isinstance(t, dict)):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    if spec.get("priority") is None:
        spec["priority"] = 0
    _set(spec, "preemptionPolicy", "PreemptLowerPriority")


# -- services -----------------------------------------------------------------

def default_service(svc: Obj) -> None:
    spec = svc.setdefault("spec", {})
    _set(spec, "type", "ClusterIP")
    kind = spec["type"]
    _set(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        cfg = spec.setdefault("sessionAffinityConfig", {}).setdefault("clientIP", {})
        if not cfg.get("timeoutSeconds"):
            cfg["timeoutSeconds"] = 10800
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
            if port.get("targetPort") in (None, 0, ""):
                port["targetPort"] = port.get("port")
    if kind == "ExternalName":
        return
    _set(spec, "internalTrafficPolicy", "Cluster")
    if kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and spec.get("externalIPs")):
        _set(spec, "externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    # Single-stack IPv4 cluster (alloc.go initIPFamilyFields): a headless service
    # without a selector is the one case that asks for both families.
    headless_no_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
    _set(spec, "ipFamilyPolicy", "RequireDualStack" if headless_no_selector else "SingleStack")
    if not spec.get("ipFamilies"):
        dual = headless_no_selector and spec["ipFamilyPolicy"] != "SingleStack"
        spec["ipFamilies"] = ["IPv4", "IPv6"] if dual else ["IPv4"]


# -- apps ---------------------------------------------------------------------

def _default_template(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        default_pod_spec(template.setdefault("spec", {}))


def default_deployment(d: Obj) -> None:
    spec = d.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = spec.setdefault("strategy", {})
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if not isinstance(ru, dict):
            ru = strategy["rollingUpdate"] = {}
        _set(ru, "maxUnavailable", "25%")
        _set(ru, "maxSurge", "25%")
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _default_template(spec)


def default_replicaset(rs: Obj) -> None:
    spec = rs.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _default_template(spec)


# -- everything else ------------------------------------------------------------

def default_secret(secret: Obj) -> None:
    _set(secret, "type", "Opaque")
    # v1 → internal conversion: stringData wins over data and is never stored.
    string_data = secret.pop("stringData", None) or {}
    if string_data:
        data = secret.get("data") or {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        secret["data"] = data


def default_namespace(ns: Obj) -> None:
    name = (ns.get("metadata") or {}).get("name")
    if name:
        ns.setdefault("metadata", {}).setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    status = ns.get("status")
    if not isinstance(status, dict):
        status = ns["status"] = {}
    _set(status, "phase", "Active")


def _default_ports(ports: list[Any] | None, *, named: bool) -> None:
    for p in ports or []:
        if isinstance(p, dict):
            _set(p, "protocol", "TCP")
            if named and p.get("name") is None:
                p["name"] = ""  # discovery/v1 SetDefaults_EndpointPort; kubectl describe needs it


def default_endpoints(ep: Obj) -> None:
    for subset in ep.get("subsets") or []:
        _default_ports((subset or {}).get("ports"), named=False)


def default_endpointslice(es: Obj) -> None:
    _default_ports(es.get("ports"), named=True)
    for e in es.get("endpoints") or []:
        if isinstance(e, dict):
            cond = e.setdefault("conditions", {})
            if cond.get("ready") is not None:
                # the endpointslice API mirrors ready into serving/!terminating when absent
                cond.setdefault("serving", cond["ready"])
                cond.setdefault("terminating", False)


def default_node(node: Obj) -> None:
    status = node.get("status")
    if isinstance(status, dict) and status.get("capacity") and not status.get("allocatable"):
        status["allocatable"] = dict(status["capacity"])  # SetDefaults_NodeStatus


_DEFAULTERS: dict[str, Callable[[Obj], None]] = {
    "pods": default_pod,
    "services": default_service,
    "apps/deployments": default_deployment,
    "apps/replicasets": default_replicaset,
    "secrets": default_secret,
    "namespaces": default_namespace,
    "endpoints": default_endpoints,
    "discovery.k8s.io/endpointslices": default_endpointslice,
    "nodes": default_node,
}


def apply_defaults(res: Resource, obj: Obj) -> Obj:
    """Defaults applied on every write (the real server defaults on decode)."""
    obj["apiVersion"] = res.api_version
    obj["kind"] = res.kind
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        obj["metadata"] = {}
    fn = _DEFAULTERS.get(res.key)
    if fn:
        fn(obj)
    return obj


def prepare_for_create(res: Resource, obj: Obj, suffix: Callable[[], str] = random_suffix,
                       account_automount: bool = True) -> Obj:
    """The strategies' PrepareForCreate and the mutating admission plugins.

    Status is reset because clients may not set it on create (nodes excepted),
    generation starts at 1 where the kind tracks it.
    """
    key = res.key
    meta = obj.setdefault("metadata", {})
    if key == "pods":
        inject_service_account(obj, suffix, account_automount)
        _admit_pod_extras(obj)
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj.get("spec") or {})}
    elif key == "services":
        obj["status"] = {"loadBalancer": {}}
    elif key in ("apps/deployments", "apps/replicasets"):
        obj["status"] = {}
        meta["generation"] = 1
    elif key == "namespaces":
        obj["status"] = {"phase": "Active"}
        finalizers = obj.setdefault("spec", {}).setdefault("finalizers", [])
        if "kubernetes" not in finalizers:
            finalizers.append("kubernetes")
    return obj
