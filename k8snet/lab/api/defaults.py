"""The defaulting several kinds share (``pkg/apis/core/v1/defaults.go``): pod specs
(pods and every workload's template) and ports. Each kind's own defaults live in its
strategy (:mod:`k8snet.lab.api.registry`).

Every function mutates the object it is given (admission passes a private copy)
and is idempotent, so defaulting an already-defaulted object changes nothing.
"""

from __future__ import annotations

from typing import Any


def set_default(d: dict[str, Any], key: str, value: Any) -> None:
    if d.get(key) in (None, ""):
        d[key] = value


# -- pod specs --------------------------------------------------------------------

def _image_pull_policy(image: str) -> str:
    # The tag is after the last ':' that follows the last '/'; a digest pins the image.
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _default_http_get(action: dict[str, Any] | None) -> None:
    if isinstance(action, dict):
        set_default(action, "path", "/")
        set_default(action, "scheme", "HTTP")


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
        set_default(ref, "apiVersion", "v1")


def _default_container(c: dict[str, Any], host_network: bool) -> None:
    set_default(c, "terminationMessagePath", "/dev/termination-log")
    set_default(c, "terminationMessagePolicy", "File")
    if isinstance(c.get("image"), str) and c["image"]:
        set_default(c, "imagePullPolicy", _image_pull_policy(c["image"]))
    if c.get("resources") is None:
        c["resources"] = {}
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            set_default(port, "protocol", "TCP")
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
            set_default(src, "defaultMode", 420)
    for item in (v.get("downwardAPI") or {}).get("items") or []:
        _default_field_ref(item)
    for proj in (v.get("projected") or {}).get("sources") or []:
        for item in ((proj or {}).get("downwardAPI") or {}).get("items") or []:
            _default_field_ref(item)
    if isinstance(v.get("hostPath"), dict):
        set_default(v["hostPath"], "type", "")


def default_pod_spec(spec: dict[str, Any]) -> None:
    """SetDefaults_PodSpec plus its containers and volumes (pods and templates)."""
    set_default(spec, "dnsPolicy", "ClusterFirst")
    set_default(spec, "restartPolicy", "Always")
    set_default(spec, "schedulerName", "default-scheduler")
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


# -- workload templates ---------------------------------------------------------------

def default_template(spec: dict[str, Any]) -> None:
    """A workload's spec.template.spec gets the pod-spec defaults."""
    template = spec.get("template")
    if isinstance(template, dict):
        default_pod_spec(template.setdefault("spec", {}))


# -- ports ------------------------------------------------------------------------------


def default_ports(ports: list[Any] | None, *, named: bool) -> None:
    for p in ports or []:
        if isinstance(p, dict):
            set_default(p, "protocol", "TCP")
            if named and p.get("name") is None:
                p["name"] = ""  # discovery/v1 SetDefaults_EndpointPort; kubectl describe needs it
