"""Validation with the real API server's messages (``pkg/apis/core/validation``,
``pkg/apis/apps/validation``, apimachinery's ``ValidateObjectMeta``).

``validate(res, obj, old)`` raises one 422 Invalid listing every problem, the way
kubectl prints ``The Pod "x" is invalid: * spec.containers[0].image: Required value``.
It runs after defaulting, so it only sees defaulted objects.
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
from typing import Any, Callable

from k8snet.lab.api import containervalidation as cv
from k8snet.lab.api import rbacvalidation
from k8snet.lab.api import strvalidation as sv
from k8snet.lab.api.fielderrors import FieldErrors
from k8snet.lab.api.pathnames import name_problems
from k8snet.lab.api.resources import Resource
from k8snet.lab.api.selectors import match_labels
from k8snet.lab.contracts import Obj
from k8snet.lab.errors import ApiError, bad_request

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
PROTOCOLS = ("SCTP", "TCP", "UDP")
RESTART_POLICIES = ("Always", "Never", "OnFailure")
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI",
    "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk",
    "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
)
MAX_SECRET_BYTES = 1024 * 1024
POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)

NameCheck = Callable[[str], list[str]]
# Which rule each kind's metadata.name follows (the registries' NameIsDNS* choices).
_NAME_CHECKS: dict[str, NameCheck] = {
    "namespaces": sv.is_dns1123_label,
    "services": sv.is_dns1035_label,
    # rbac's ValidateRBACName: any path segment ("system:node", "kubeadm:node-proxier")
    **{f"rbac.authorization.k8s.io/{plural}": name_problems
       for plural in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")},
}


# -- metadata -----------------------------------------------------------------

def _validate_string_map(errs: FieldErrors, path: str, value: Any, check_value: NameCheck | None) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        errs.invalid(path, value, "must be a map of strings")
        return
    for k, v in value.items():
        errs.each_invalid(path, k, sv.is_qualified_name(k))
        if not isinstance(v, str):
            errs.invalid(f"{path}[{k}]", v, "must be a string")
        elif check_value:
            errs.each_invalid(path, v, check_value(v))


def validate_labels(errs: FieldErrors, path: str, labels: Any) -> None:
    _validate_string_map(errs, path, labels, sv.is_valid_label_value)


def _validate_metadata(errs: FieldErrors, res: Resource, meta: dict[str, Any]) -> None:
    name = meta.get("name")
    if not name:
        errs.required("metadata.name", "name or generateName is required")
    else:
        errs.each_invalid("metadata.name", name, _NAME_CHECKS.get(res.key, sv.is_dns1123_subdomain)(name))
    if res.namespaced and not meta.get("namespace"):
        errs.required("metadata.namespace")
    elif not res.namespaced and meta.get("namespace"):
        errs.forbidden("metadata.namespace", "not allowed on this type")
    validate_labels(errs, "metadata.labels", meta.get("labels"))
    _validate_owner_references(errs, meta.get("ownerReferences"))
    annotations = meta.get("annotations")
    _validate_string_map(errs, "metadata.annotations", {k.lower(): v for k, v in annotations.items()}
                         if isinstance(annotations, dict) else annotations, None)
    if isinstance(annotations, dict) and sum(len(k) + len(str(v)) for k, v in annotations.items()) > 262144:
        errs.too_long("metadata.annotations", 262144)


def _validate_owner_references(errs: FieldErrors, refs: Any) -> None:
    """ValidateOwnerReferences: every reference complete, at most one controller."""
    path = "metadata.ownerReferences"
    controller = ""
    for ref in refs or []:
        if not isinstance(ref, dict):
            continue
        version = str(ref.get("apiVersion") or "").rpartition("/")[2]
        for field, value, what in (("apiVersion", version, "version"), ("kind", ref.get("kind"), "kind"),
                                   ("name", ref.get("name"), "name"), ("uid", ref.get("uid"), "uid")):
            if not value:
                errs.invalid(f"{path}.{field}", ref.get(field) or "", f"{what} must not be empty")
        if ref.get("controller") is True:
            name = f"{ref.get('kind')}/{ref.get('name')}"
            if controller:
                errs.invalid(path, refs, 'Only one reference can have Controller set to true. Found "true" in '
                             f"references for {controller} and {name}")
            else:
                controller = name


def _validate_metadata_update(errs: FieldErrors, new: dict[str, Any], old: dict[str, Any]) -> None:
    for key in ("name", "namespace", "uid"):
        if new.get(key) != old.get(key) and old.get(key):
            errs.immutable(f"metadata.{key}", new.get(key))


# -- pod spec ---------------------------------------------------------------------

def _validate_port_number(errs: FieldErrors, path: str, value: Any, *, required: bool = True) -> None:
    if value in (None, 0):
        if required:
            errs.required(path)
        return
    if not isinstance(value, int) or isinstance(value, bool):
        errs.invalid(path, value, "must be an integer")
    else:
        errs.each_invalid(path, value, sv.is_valid_port_num(value))


def _validate_int_or_port_name(errs: FieldErrors, path: str, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        errs.each_invalid(path, value, sv.is_valid_port_num(value))
    elif isinstance(value, str):
        if value.isdigit():
            errs.each_invalid(path, int(value), sv.is_valid_port_num(int(value)))
        else:
            errs.each_invalid(path, value, sv.is_valid_port_name(value))
    else:
        errs.invalid(path, value, "must be an integer or a port name")


def _validate_container(errs: FieldErrors, path: str, c: Any, volumes: set[str], names: set[str],
                        require_image: bool) -> None:
    if not isinstance(c, dict):
        errs.invalid(path, c, "must be an object")
        return
    name = c.get("name")
    if not name:
        errs.required(f"{path}.name")
    elif name in names:
        errs.duplicate(f"{path}.name", name)
    else:
        errs.each_invalid(f"{path}.name", name, sv.is_dns1123_label(name))
        names.add(name)
    image = c.get("image")
    if not image:
        if require_image:
            errs.required(f"{path}.image")
    elif image != image.strip():
        errs.invalid(f"{path}.image", image, "must not have leading or trailing whitespace")
    policy = c.get("imagePullPolicy")
    if policy and policy not in PULL_POLICIES:
        errs.not_supported(f"{path}.imagePullPolicy", policy, PULL_POLICIES)
    port_names: set[str] = set()
    for i, p in enumerate(c.get("ports") or []):
        pp = f"{path}.ports[{i}]"
        if not isinstance(p, dict):
            errs.invalid(pp, p, "must be an object")
            continue
        if p.get("name"):
            if p["name"] in port_names:
                errs.duplicate(f"{pp}.name", p["name"])
            errs.each_invalid(f"{pp}.name", p["name"], sv.is_valid_port_name(p["name"]))
            port_names.add(p["name"])
        _validate_port_number(errs, f"{pp}.containerPort", p.get("containerPort"))
        _validate_port_number(errs, f"{pp}.hostPort", p.get("hostPort"), required=False)
        if p.get("protocol") not in PROTOCOLS:
            errs.not_supported(f"{pp}.protocol", p.get("protocol"), PROTOCOLS)
    for i, e in enumerate(c.get("env") or []):
        ep = f"{path}.env[{i}]"
        if not isinstance(e, dict) or not e.get("name"):
            errs.required(f"{ep}.name")
            continue
        errs.each_invalid(f"{ep}.name", e["name"], sv.is_relaxed_env_var_name(e["name"]))
        if e.get("value") and e.get("valueFrom"):
            errs.invalid(f"{ep}.valueFrom", "", "may not be specified when `value` is not empty")
    cv.validate_probes(errs, path, c)
    mount_paths: set[str] = set()
    for i, m in enumerate(c.get("volumeMounts") or []):
        mp = f"{path}.volumeMounts[{i}]"
        if not isinstance(m, dict):
            errs.invalid(mp, m, "must be an object")
            continue
        if not m.get("name"):
            errs.required(f"{mp}.name")
        elif m["name"] not in volumes:
            errs.not_found(f"{mp}.name", m["name"])
        cv.validate_sub_path(errs, mp, m)
        if not m.get("mountPath"):
            errs.required(f"{mp}.mountPath")
        elif m["mountPath"] in mount_paths:
            errs.invalid(f"{mp}.mountPath", m["mountPath"], "must be unique")
        else:
            mount_paths.add(m["mountPath"])


def _validate_volumes(errs: FieldErrors, path: str, volumes: Any) -> set[str]:
    names: set[str] = set()
    for i, v in enumerate(volumes or []):
        vp = f"{path}[{i}]"
        if not isinstance(v, dict):
            errs.invalid(vp, v, "must be an object")
            continue
        name = v.get("name")
        if not name:
            errs.required(f"{vp}.name")
        elif name in names:
            errs.duplicate(f"{vp}.name", name)
        else:
            errs.each_invalid(f"{vp}.name", name, sv.is_dns1123_label(name))
            names.add(name)
        for source in ("configMap", "secret"):
            if isinstance(v.get(source), dict):
                cv.validate_key_to_paths(errs, f"{vp}.{source}", v[source].get("items"))
        sources = [s for s in VOLUME_SOURCES if v.get(s) is not None]
        if not sources:
            errs.required(vp, "must specify a volume type")
        elif len(sources) > 1:
            errs.forbidden(f"{vp}.{sources[1]}", "may not specify more than 1 volume type")
    return names


def validate_pod_spec(errs: FieldErrors, path: str, spec: Any, *, require_image: bool = True) -> None:
    if not isinstance(spec, dict):
        errs.required(path)
        return
    volumes = _validate_volumes(errs, f"{path}.volumes", spec.get("volumes"))
    containers = spec.get("containers")
    if not containers:
        errs.required(f"{path}.containers")
    names: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            _validate_container(errs, f"{path}.{key}[{i}]", c, volumes, names, require_image)
    if spec.get("restartPolicy") not in RESTART_POLICIES:
        errs.not_supported(f"{path}.restartPolicy", spec.get("restartPolicy"), RESTART_POLICIES)
    if spec.get("dnsPolicy") not in DNS_POLICIES:
        errs.not_supported(f"{path}.dnsPolicy", spec.get("dnsPolicy"), DNS_POLICIES)
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and grace < 0:
        errs.invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than or equal to 0")
    for key in ("serviceAccountName", "nodeName"):
        if spec.get(key):
            errs.each_invalid(f"{path}.{key}", spec[key], sv.is_dns1123_subdomain(spec[key]))
    _validate_string_map(errs, f"{path}.nodeSelector", spec.get("nodeSelector"), sv.is_valid_label_value)


def _validate_pod(errs: FieldErrors, pod: Obj) -> None:
    validate_pod_spec(errs, "spec", pod.get("spec"))


def _validate_pod_update(errs: FieldErrors, new: Obj, old: Obj) -> None:
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    munged = copy.deepcopy(new_spec)
    # The mutable parts: images, activeDeadlineSeconds, added tolerations, and
    # nodeName once (that is what pods/binding does).
    for key in ("containers", "initContainers"):
        for c, o in zip(munged.get(key) or [], old_spec.get(key) or []):
            if isinstance(c, dict) and isinstance(o, dict):
                c["image"] = o.get("image")
                if o.get("imagePullPolicy") is not None:
                    c["imagePullPolicy"] = o["imagePullPolicy"]
    munged["activeDeadlineSeconds"] = old_spec.get("activeDeadlineSeconds")
    old_tol = old_spec.get("tolerations") or []
    if all(t in (munged.get("tolerations") or []) for t in old_tol):
        munged["tolerations"] = old_tol
    if not old_spec.get("nodeName"):
        munged["nodeName"] = old_spec.get("nodeName")
    if (old_spec.get("terminationGracePeriodSeconds") or 0) < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_spec.get("terminationGracePeriodSeconds")
    strip = lambda d: {k: v for k, v in d.items() if v is not None}  # noqa: E731
    if strip(munged) != strip(old_spec):
        errs.forbidden("spec", POD_UPDATE_FORBIDDEN)


# -- services ---------------------------------------------------------------------

def _validate_service(errs: FieldErrors, svc: Obj) -> None:
    spec = svc.get("spec") or {}
    kind = spec.get("type")
    if kind not in SERVICE_TYPES:
        errs.not_supported("spec.type", kind, SERVICE_TYPES)
    headless = spec.get("clusterIP") == "None"
    ports = spec.get("ports") or []
    if not ports and not headless and kind != "ExternalName":
        errs.required("spec.ports")
    seen_names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    for i, p in enumerate(ports):
        pp = f"spec.ports[{i}]"
        if not isinstance(p, dict):
            errs.invalid(pp, p, "must be an object")
            continue
        name = p.get("name") or ""
        if len(ports) > 1 and not name:
            errs.required(f"{pp}.name")
        elif name:
            if name in seen_names:
                errs.duplicate(f"{pp}.name", name)
            errs.each_invalid(f"{pp}.name", name, sv.is_dns1123_label(name))
            seen_names.add(name)
        _validate_port_number(errs, f"{pp}.port", p.get("port"))
        if p.get("protocol") not in PROTOCOLS:
            errs.not_supported(f"{pp}.protocol", p.get("protocol"), PROTOCOLS)
        if p.get("targetPort") is not None:
            _validate_int_or_port_name(errs, f"{pp}.targetPort", p["targetPort"])
        if p.get("nodePort") and kind in ("ClusterIP", "ExternalName"):
            errs.forbidden(f"{pp}.nodePort", f"may not be used when `type` is '{kind}'")
        key = (p.get("port"), p.get("protocol"))
        if key in seen_ports:
            errs.duplicate(pp, p)
        seen_ports.add(key)
    if kind == "ExternalName":
        ext = spec.get("externalName")
        if not ext:
            errs.required("spec.externalName")
        else:
            errs.each_invalid("spec.externalName", ext, sv.is_dns1123_subdomain(ext.rstrip(".")))
    for i, ip in enumerate(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])):
        if ip != "None":
            errs.each_invalid(f"spec.clusterIPs[{i}]", ip, sv.is_valid_ip(ip))
    if spec.get("clusterIP") and spec.get("clusterIPs") and spec["clusterIPs"][0] != spec["clusterIP"]:
        errs.invalid("spec.clusterIPs", spec["clusterIPs"], "first value must match `clusterIP`")
    if headless and kind in ("NodePort", "LoadBalancer"):
        errs.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services")
    affinity = spec.get("sessionAffinity")
    if affinity not in ("ClientIP", "None"):
        errs.not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None"))
    for i, ip in enumerate(spec.get("externalIPs") or []):
        errs.each_invalid(f"spec.externalIPs[{i}]", ip, sv.is_valid_ip(ip))
    for policy in ("internalTrafficPolicy", "externalTrafficPolicy"):
        value = spec.get(policy)
        if value and value not in ("Cluster", "Local"):
            errs.not_supported(f"spec.{policy}", value, ("Cluster", "Local"))
    _validate_string_map(errs, "spec.selector", spec.get("selector"), sv.is_valid_label_value)


def _validate_service_update(errs: FieldErrors, new: Obj, old: Obj) -> None:
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if "ExternalName" in (new_spec.get("type"), old_spec.get("type")):
        return  # moving to/from ExternalName releases or allocates the IP
    old_ips, new_ips = old_spec.get("clusterIPs") or [], new_spec.get("clusterIPs") or []
    for i, (o, n) in enumerate(zip(old_ips, new_ips)):
        if o != n:
            errs.invalid(f"spec.clusterIPs[{i}]", n, "may not change once set")


# -- apps -------------------------------------------------------------------------------

def _selector_matches(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    """Whether the selector selects the template's labels; one with an unknown operator
    (reported on its own) is not compared, as ValidateDeploymentSpec skips the match
    when LabelSelectorAsSelector fails."""
    try:
        return match_labels(selector, labels)
    except ApiError:
        return True


def _validate_label_selector(errs: FieldErrors, path: str, selector: dict[str, Any]) -> None:
    validate_labels(errs, f"{path}.matchLabels", selector.get("matchLabels"))
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        ep = f"{path}.matchExpressions[{i}]"
        op = (expr or {}).get("operator")
        values = (expr or {}).get("values") or []
        if op in ("In", "NotIn") and not values:
            errs.required(f"{ep}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        elif op in ("Exists", "DoesNotExist") and values:
            errs.forbidden(f"{ep}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        elif op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            errs.invalid(f"{ep}.operator", op, "not a valid selector operator")


def _validate_replicated(errs: FieldErrors, obj: Obj, kind_word: str) -> None:
    spec = obj.get("spec") or {}
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        errs.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
    selector = spec.get("selector")
    if selector is None:
        errs.required("spec.selector")
    elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
        errs.invalid("spec.selector", selector, f"empty selector is invalid for {kind_word}")
    else:
        _validate_label_selector(errs, "spec.selector", selector)
    template = spec.get("template")
    if not isinstance(template, dict):
        errs.required("spec.template")
        return
    labels = (template.get("metadata") or {}).get("labels") or {}
    validate_labels(errs, "spec.template.metadata.labels", labels)
    if selector and (selector.get("matchLabels") or selector.get("matchExpressions")) \
            and not _selector_matches(selector, labels):
        errs.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    tspec = template.get("spec")
    validate_pod_spec(errs, "spec.template.spec", tspec)
    if isinstance(tspec, dict) and tspec.get("restartPolicy") not in (None, "Always"):
        errs.not_supported("spec.template.spec.restartPolicy", tspec["restartPolicy"], ("Always",))


def _percent_or_int(value: Any) -> tuple[bool, int]:
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return True, int(value[:-1])
    if isinstance(value, int) and not isinstance(value, bool):
        return False, value
    return False, -1


def _validate_deployment(errs: FieldErrors, d: Obj) -> None:
    _validate_replicated(errs, d, "deployment")
    spec = d.get("spec") or {}
    strategy = spec.get("strategy") or {}
    stype = strategy.get("type")
    if stype not in ("Recreate", "RollingUpdate"):
        errs.not_supported("spec.strategy.type", stype, ("Recreate", "RollingUpdate"))
    elif stype == "Recreate" and strategy.get("rollingUpdate") is not None:
        errs.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
    elif stype == "RollingUpdate":
        ru = strategy.get("rollingUpdate") or {}
        values = {}
        for key in ("maxUnavailable", "maxSurge"):
            path = f"spec.strategy.rollingUpdate.{key}"
            pct, n = _percent_or_int(ru.get(key))
            if n < 0:
                errs.invalid(path, ru.get(key), "must be greater than or equal to 0" if isinstance(ru.get(key), int)
                             else "a valid percent string must be a numeric string followed by an ending '%' "
                                  "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")
            elif pct and key == "maxUnavailable" and n > 100:
                errs.invalid(path, ru.get(key), "must not be greater than 100%")
            values[key] = n
        if values.get("maxUnavailable") == 0 and values.get("maxSurge") == 0:
            errs.invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                         "may not be 0 when `maxSurge` is 0")
    for key in ("revisionHistoryLimit", "progressDeadlineSeconds", "minReadySeconds"):
        value = spec.get(key)
        if isinstance(value, int) and value < 0:
            errs.invalid(f"spec.{key}", value, "must be greater than or equal to 0")


def _validate_replicaset(errs: FieldErrors, rs: Obj) -> None:
    _validate_replicated(errs, rs, "replicaset")


def _validate_selector_update(errs: FieldErrors, new: Obj, old: Obj) -> None:
    # apps/v1 selectors are immutable.
    selector = (new.get("spec") or {}).get("selector")
    if selector != (old.get("spec") or {}).get("selector"):
        errs.immutable("spec.selector", selector)


# -- config objects -------------------------------------------------------------------

def _validate_data_keys(errs: FieldErrors, data: Any, path: str) -> int:
    size = 0
    if data is None:
        return 0
    if not isinstance(data, dict):
        errs.invalid(path, data, "must be a map")
        return 0
    for k, v in data.items():
        errs.each_invalid(f"{path}[{k}]", k, sv.is_config_map_key(k))
        size += len(v) if isinstance(v, (str, bytes)) else 0
    return size


def decode_secret_data(secret: Obj) -> dict[str, bytes]:
    """Secret ``data`` values are base64 on the wire; garbage is a decode error (400)."""
    out = {}
    kind = secret.get("kind", "Secret")
    for k, v in (secret.get("data") or {}).items():
        if not isinstance(v, str):
            raise bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: '
                              f"json: cannot unmarshal {type(v).__name__} into Go struct field {kind}.data of type []uint8")
        try:
            out[k] = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError) as e:
            raise bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: illegal base64 data: {e}') from e
    return out


def _validate_secret(errs: FieldErrors, secret: Obj) -> None:
    _validate_data_keys(errs, secret.get("data"), "data")
    data = decode_secret_data(secret)
    if sum(len(v) for v in data.values()) > MAX_SECRET_BYTES:
        errs.too_long("data", MAX_SECRET_BYTES)
    stype = secret.get("type")
    required_keys = {
        "kubernetes.io/tls": ("tls.crt", "tls.key"),
        "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
        "kubernetes.io/dockercfg": (".dockercfg",),
        "kubernetes.io/basic-auth": (),
        "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    }.get(stype or "", ())
    for k in required_keys:
        if k not in data:
            errs.required(f"data[{k}]")


def _validate_configmap(errs: FieldErrors, cm: Obj) -> None:
    size = _validate_data_keys(errs, cm.get("data"), "data")
    _validate_data_keys(errs, cm.get("binaryData"), "binaryData")
    for k in (cm.get("binaryData") or {}):
        if k in (cm.get("data") or {}):
            errs.invalid(f"data[{k}]", k, "duplicate of key present in binaryData")
    if size > MAX_SECRET_BYTES:
        errs.too_long("", MAX_SECRET_BYTES)


def _validate_immutable_data(errs: FieldErrors, new: Obj, old: Obj) -> None:
    if old.get("immutable"):
        if new.get("immutable") is not True:
            errs.forbidden("immutable", "field is immutable when `immutable` is set")
        for key in ("data", "binaryData"):
            if (new.get(key) or {}) != (old.get(key) or {}):
                errs.forbidden(key, "field is immutable when `immutable` is set")


def _validate_secret_update(errs: FieldErrors, new: Obj, old: Obj) -> None:
    if new.get("type") != old.get("type"):
        errs.immutable("type", new.get("type"))
    _validate_immutable_data(errs, new, old)


def _validate_endpointslice(errs: FieldErrors, es: Obj) -> None:
    address_type = es.get("addressType")
    if not address_type:
        errs.required("addressType")
    elif address_type not in ("FQDN", "IPv4", "IPv6"):
        errs.not_supported("addressType", address_type, ("FQDN", "IPv4", "IPv6"))
    for i, e in enumerate(es.get("endpoints") or []):
        addrs = (e or {}).get("addresses") or []
        if not addrs:
            errs.required(f"endpoints[{i}].addresses", "must contain at least 1 address")
        elif len(addrs) > 100:
            errs.invalid(f"endpoints[{i}].addresses", len(addrs), "must have at most 100 items")
        elif address_type in ("IPv4", "IPv6"):
            for j, a in enumerate(addrs):
                try:
                    ok = ipaddress.ip_address(a).version == (4 if address_type == "IPv4" else 6)
                except ValueError:
                    ok = False
                if not ok:
                    errs.invalid(f"endpoints[{i}].addresses[{j}]", a, f"must be a valid {address_type} address")
    for i, p in enumerate(es.get("ports") or []):
        if (p or {}).get("port") is not None:
            _validate_port_number(errs, f"ports[{i}].port", p["port"])


def _validate_endpoints(errs: FieldErrors, ep: Obj) -> None:
    for i, subset in enumerate(ep.get("subsets") or []):
        for key in ("addresses", "notReadyAddresses"):
            for j, a in enumerate((subset or {}).get(key) or []):
                errs.each_invalid(f"subsets[{i}].{key}[{j}].ip", (a or {}).get("ip"),
                                  sv.is_non_special_ip(str((a or {}).get("ip"))))
        for j, p in enumerate((subset or {}).get("ports") or []):
            _validate_port_number(errs, f"subsets[{i}].ports[{j}].port", (p or {}).get("port"))


def _validate_event(errs: FieldErrors, ev: Obj) -> None:
    involved = ev.get("involvedObject")
    if not isinstance(involved, dict):
        errs.required("involvedObject")
        return
    ns = (ev.get("metadata") or {}).get("namespace")
    if involved.get("namespace") and ns and involved["namespace"] != ns:
        errs.invalid("involvedObject.namespace", involved["namespace"], "does not match event.namespace")


_CREATE: dict[str, Callable[[FieldErrors, Obj], None]] = {
    "pods": _validate_pod,
    "services": _validate_service,
    "apps/deployments": _validate_deployment,
    "apps/replicasets": _validate_replicaset,
    "secrets": _validate_secret,
    "configmaps": _validate_configmap,
    "discovery.k8s.io/endpointslices": _validate_endpointslice,
    "endpoints": _validate_endpoints,
    "events": _validate_event,
    "rbac.authorization.k8s.io/roles": rbacvalidation.validate_role,
    "rbac.authorization.k8s.io/clusterroles": rbacvalidation.validate_cluster_role,
    "rbac.authorization.k8s.io/rolebindings": rbacvalidation.validate_role_binding,
    "rbac.authorization.k8s.io/clusterrolebindings": rbacvalidation.validate_cluster_role_binding,
}
_UPDATE: dict[str, Callable[[FieldErrors, Obj, Obj], None]] = {
    "pods": _validate_pod_update,
    "services": _validate_service_update,
    "apps/deployments": _validate_selector_update,
    "apps/replicasets": _validate_selector_update,
    "secrets": _validate_secret_update,
    "rbac.authorization.k8s.io/rolebindings": rbacvalidation.validate_binding_update,
    "rbac.authorization.k8s.io/clusterrolebindings": rbacvalidation.validate_binding_update,
    "configmaps": _validate_immutable_data,
}


def validate(res: Resource, obj: Obj, old: Obj | None = None) -> None:
    """Raises 422 Invalid with every cause found (create when ``old`` is None)."""
    errs = FieldErrors()
    meta = obj.get("metadata") or {}
    _validate_metadata(errs, res, meta)
    if res.key in _CREATE:
        _CREATE[res.key](errs, obj)
    if old is not None:
        _validate_metadata_update(errs, meta, old.get("metadata") or {})
        if res.key in _UPDATE:
            _UPDATE[res.key](errs, obj, old)
    errs.raise_if_any(res.group, res.kind, meta.get("name") or "")

