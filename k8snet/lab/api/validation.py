"""The validation rules several kinds share, with the real API server's messages
(apimachinery's ``ValidateObjectMeta``, ``pkg/apis/core/validation``'s pod spec,
``pkg/apis/apps/validation``'s selector and template rules).

Each function adds causes to a :class:`FieldErrors`; the kinds' strategies
(:mod:`k8snet.lab.api.registry`) call them and admission raises one 422 Invalid
listing every problem, the way kubectl prints ``The Pod "x" is invalid:
* spec.containers[0].image: Required value``. It runs after defaulting.
"""

from __future__ import annotations

from typing import Any, Callable

from k8snet.lab.api import containervalidation as cv
from k8snet.lab.api import strvalidation as sv
from k8snet.lab.api.apiresource import Resource
from k8snet.lab.api.fielderrors import FieldErrors
from k8snet.lab.api.selectors import match_labels
from k8snet.lab.contracts import Obj
from k8snet.lab.errors import ApiError

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

NameCheck = Callable[[str], list[str]]
# Which rule each kind's metadata.name follows (the registries' NameIsDNS* choices).


# -- metadata -----------------------------------------------------------------

def validate_string_map(errs: FieldErrors, path: str, value: Any, check_value: NameCheck | None) -> None:
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
    validate_string_map(errs, path, labels, sv.is_valid_label_value)


def validate_object_meta(errs: FieldErrors, res: Resource, meta: dict[str, Any], name_check: NameCheck) -> None:
    name = meta.get("name")
    if not name:
        errs.required("metadata.name", "name or generateName is required")
    else:
        errs.each_invalid("metadata.name", name, name_check(name))
    if res.namespaced and not meta.get("namespace"):
        errs.required("metadata.namespace")
    elif not res.namespaced and meta.get("namespace"):
        errs.forbidden("metadata.namespace", "not allowed on this type")
    validate_labels(errs, "metadata.labels", meta.get("labels"))
    _validate_owner_references(errs, meta.get("ownerReferences"))
    annotations = meta.get("annotations")
    validate_string_map(errs, "metadata.annotations", {k.lower(): v for k, v in annotations.items()}
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


def validate_object_meta_update(errs: FieldErrors, new: dict[str, Any], old: dict[str, Any]) -> None:
    for key in ("name", "namespace", "uid"):
        if new.get(key) != old.get(key) and old.get(key):
            errs.immutable(f"metadata.{key}", new.get(key))


# -- pod spec ---------------------------------------------------------------------

def validate_port_number(errs: FieldErrors, path: str, value: Any, *, required: bool = True) -> None:
    if value in (None, 0):
        if required:
            errs.required(path)
        return
    if not isinstance(value, int) or isinstance(value, bool):
        errs.invalid(path, value, "must be an integer")
    else:
        errs.each_invalid(path, value, sv.is_valid_port_num(value))


def validate_int_or_port_name(errs: FieldErrors, path: str, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        errs.each_invalid(path, value, sv.is_valid_port_num(value))
    elif isinstance(value, str):
        if value.isdigit():
            errs.each_invalid(path, int(value), sv.is_valid_port_num(int(value)))
        else:
            errs.each_invalid(path, value, sv.is_valid_port_name(value))
    else:
        errs.invalid(path, value, "must be an integer or a port name")



def unique_label_name(errs: FieldErrors, path: str, name: Any, names: set[str]) -> None:
    """A required DNS-1123 label, unique among ``names`` (containers, volumes, ports);
    a valid new one joins ``names``."""
    if not name:
        errs.required(path)
    elif name in names:
        errs.duplicate(path, name)
    else:
        errs.each_invalid(path, name, sv.is_dns1123_label(name))
        names.add(name)


def _validate_container(errs: FieldErrors, path: str, c: Any, volumes: set[str], names: set[str],
                        require_image: bool) -> None:
    if not isinstance(c, dict):
        errs.invalid(path, c, "must be an object")
        return
    name = c.get("name")
    unique_label_name(errs, f"{path}.name", name, names)
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
        validate_port_number(errs, f"{pp}.containerPort", p.get("containerPort"))
        validate_port_number(errs, f"{pp}.hostPort", p.get("hostPort"), required=False)
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
        unique_label_name(errs, f"{vp}.name", name, names)
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
    validate_string_map(errs, f"{path}.nodeSelector", spec.get("nodeSelector"), sv.is_valid_label_value)


# -- services ---------------------------------------------------------------------


# -- apps -------------------------------------------------------------------------------

def selector_selects(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    """Whether the selector selects the template's labels; one with an unknown operator
    (reported on its own) is not compared, as ValidateDeploymentSpec skips the match
    when LabelSelectorAsSelector fails."""
    try:
        return match_labels(selector, labels)
    except ApiError:
        return True


def validate_label_selector(errs: FieldErrors, path: str, selector: dict[str, Any]) -> None:
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


def validate_replicated(errs: FieldErrors, obj: Obj, kind_word: str,
                        restart_policies: tuple[str, ...] = ("Always",)) -> None:
    """A workload's selector and pod template (ValidateReplicaSetSpec and its
    siblings): a non-empty selector that selects the template's labels, a valid pod
    spec with one of the kind's restart policies."""
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
        validate_label_selector(errs, "spec.selector", selector)
    template = spec.get("template")
    if not isinstance(template, dict):
        errs.required("spec.template")
        return
    labels = (template.get("metadata") or {}).get("labels") or {}
    validate_labels(errs, "spec.template.metadata.labels", labels)
    if selector and (selector.get("matchLabels") or selector.get("matchExpressions")) \
            and not selector_selects(selector, labels):
        errs.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    tspec = template.get("spec")
    validate_pod_spec(errs, "spec.template.spec", tspec)
    if isinstance(tspec, dict) and tspec.get("restartPolicy") not in (None, *restart_policies):
        errs.not_supported("spec.template.spec.restartPolicy", tspec["restartPolicy"], restart_policies)


def validate_selector_update(errs: FieldErrors, new: Obj, old: Obj) -> None:
    # apps/v1 and batch/v1 selectors are immutable.
    selector = (new.get("spec") or {}).get("selector")
    if selector != (old.get("spec") or {}).get("selector"):
        errs.immutable("spec.selector", selector)


# -- config objects -------------------------------------------------------------------

def validate_data_keys(errs: FieldErrors, data: Any, path: str) -> int:
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


def validate_immutable_data(errs: FieldErrors, new: Obj, old: Obj) -> None:
    if old.get("immutable"):
        if new.get("immutable") is not True:
            errs.forbidden("immutable", "field is immutable when `immutable` is set")
        for key in ("data", "binaryData"):
            if (new.get(key) or {}) != (old.get(key) or {}):
                errs.forbidden(key, "field is immutable when `immutable` is set")
