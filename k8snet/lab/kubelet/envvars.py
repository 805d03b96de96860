"""A container's environment, computed the way the kubelet computes it.

Two parts, both pure functions:

- :func:`service_env`: the docker-link style ``<SVC>_SERVICE_HOST`` / ``<SVC>_PORT_…``
  variables (kubernetes ``pkg/kubelet/envvars/envvars.go`` and ``getServiceEnvVarMap``
  in ``pkg/kubelet/kubelet_pods.go``). They are a snapshot of the Services that exist
  when the container starts, which is why the tutorial recreates its pods after
  creating the Service.
- :func:`container_env`: the container's own ``env`` / ``envFrom`` resolved against
  the pod, ConfigMaps and Secrets, with ``$(VAR)`` expansion, merged with the service
  variables (``makeEnvironmentVariables``).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Callable

from ..contracts import Obj

#: ``(namespace, name) -> object or None`` for ConfigMaps and Secrets.
Lookup = Callable[[str, str], "Obj | None"]

MASTER_NAMESPACE = "default"
MASTER_SERVICES = frozenset({"kubernetes"})


class EnvError(Exception):
    """The environment cannot be built; the kubelet reports the container as waiting
    with reason ``CreateContainerConfigError`` and this message."""


# -- service links ----------------------------------------------------------------

def _env_name(name: str) -> str:
    return name.replace("-", "_").upper()


def _has_cluster_ip(service: Obj) -> bool:
    """``IsServiceIPSet``: headless ("None") and ExternalName ("") services get no variables."""
    return (service.get("spec") or {}).get("clusterIP") not in (None, "", "None")


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def service_vars(service: Obj) -> dict[str, str]:
    """``envvars.FromServices`` for one service."""
    spec = service.get("spec") or {}
    ports = spec.get("ports") or []
    if not _has_cluster_ip(service) or not ports:
        return {}
    prefix = _env_name(service["metadata"]["name"])
    ip = spec["clusterIP"]
    out = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(ports[0]["port"])}
    for port in ports:  # every named port (only the first may be unnamed)
        if port.get("name"):
            out[f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port["port"])
    for i, port in enumerate(ports):  # docker-link variables
        proto = port.get("protocol") or "TCP"
        url = f"{proto.lower()}://{_join_host_port(ip, port['port'])}"
        if i == 0:
            out[f"{prefix}_PORT"] = url
        port_prefix = f"{prefix}_PORT_{port['port']}_{proto.upper()}"
        out[port_prefix] = url
        out[f"{port_prefix}_PROTO"] = proto.lower()
        out[f"{port_prefix}_PORT"] = str(port["port"])
        out[f"{port_prefix}_ADDR"] = ip
    return out


def service_env(services: list[Obj], namespace: str, enable_service_links: bool) -> dict[str, str]:
    """The service variables a container in ``namespace`` sees (``getServiceEnvVarMap``).

    ``services`` is every Service of every namespace that exists as the container
    starts. The ``kubernetes`` Service of ``default`` is always included; the pod
    namespace's services only with ``enableServiceLinks``, and a same-named service
    there replaces the master one.
    """
    chosen: dict[str, Obj] = {}
    for svc in services:
        if not _has_cluster_ip(svc):
            continue
        meta = svc.get("metadata") or {}
        name, ns = meta.get("name", ""), meta.get("namespace", "")
        if ns == MASTER_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
        elif ns == namespace and enable_service_links:
            chosen[name] = svc
    out: dict[str, str] = {}
    for svc in chosen.values():
        out.update(service_vars(svc))
    return out


# -- $(VAR) expansion ---------------------------------------------------------------

def expand(text: str, *contexts: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion (third_party/forked/golang/expansion).

    ``$(NAME)`` becomes the first context's value, or stays as written when no
    context has it; ``$$`` is an escaped ``$``; any other ``$`` is literal.
    """
    out: list[str] = []
    checkpoint = cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1:]
            if rest[0] == "$":
                out.append("$")
                advance = 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close == -1:  # incomplete reference: keep "$(" and go on
                    out.append("$(")
                    advance = 1
                else:
                    name = rest[1:close]
                    out.append(next((c[name] for c in contexts if name in c), f"$({name})"))
                    advance = close + 1
            else:
                out.append("$" + rest[0])
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


# -- downward API ------------------------------------------------------------------

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def _format_map(m: dict[str, str]) -> str:
    """``fieldpath.FormatMap``: sorted ``key="value"`` lines (Go %q quoting)."""
    return "\n".join(f"{k}={json.dumps(m[k], ensure_ascii=False)}" for k in sorted(m))


def field_ref_value(field_path: str, pod: Obj, pod_ip: str | None = None, host_ip: str | None = None) -> str:
    """``podFieldSelectorRuntimeValue``: the value of a ``valueFrom.fieldRef``."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    pod_ips = [p.get("ip", "") for p in status.get("podIPs") or []] or ([status["podIP"]] if status.get("podIP") else [])
    if pod_ip:
        pod_ips = [pod_ip] + [ip for ip in pod_ips if ip != pod_ip]
    host_ips = [h.get("ip", "") for h in status.get("hostIPs") or []] or ([status["hostIP"]] if status.get("hostIP") else [])
    if host_ip:
        host_ips = [host_ip] + [ip for ip in host_ips if ip != host_ip]
    match = _SUBSCRIPT.match(field_path)
    if match:
        return (meta.get(match.group(1)) or {}).get(match.group(2), "")
    simple = {
        "metadata.name": lambda: meta.get("name", ""),
        "metadata.namespace": lambda: meta.get("namespace", ""),
        "metadata.uid": lambda: meta.get("uid", ""),
        "metadata.labels": lambda: _format_map(meta.get("labels") or {}),
        "metadata.annotations": lambda: _format_map(meta.get("annotations") or {}),
        "spec.nodeName": lambda: spec.get("nodeName", ""),
        "spec.serviceAccountName": lambda: spec.get("serviceAccountName", ""),
        "spec.schedulerName": lambda: spec.get("schedulerName", ""),
        "spec.restartPolicy": lambda: spec.get("restartPolicy", ""),
        "spec.terminationGracePeriodSeconds": lambda: str(spec.get("terminationGracePeriodSeconds", 30)),
        "status.phase": lambda: status.get("phase", ""),
        "status.podIP": lambda: pod_ips[0] if pod_ips else "",
        "status.podIPs": lambda: ",".join(pod_ips),
        "status.hostIP": lambda: host_ips[0] if host_ips else "",
        "status.hostIPs": lambda: ",".join(host_ips),
    }
    if field_path not in simple:
        raise EnvError(f'field label not supported: {field_path}')
    return simple[field_path]()


# -- the container's environment ------------------------------------------------------

def _secret_values(secret: Obj) -> dict[str, str]:
    # Secret data is base64 on the wire; surrogateescape keeps non-UTF-8 bytes intact
    # when the value is handed to a process environment.
    return {k: base64.b64decode(v).decode("utf-8", "surrogateescape") for k, v in (secret.get("data") or {}).items()}


def container_env(container: Obj, pod: Obj, service_vars: dict[str, str], *,
                  config_maps: Lookup, secrets: Lookup,
                  pod_ip: str | None = None, host_ip: str | None = None) -> list[str]:
    """The container's environment as ``K=V`` strings (``makeEnvironmentVariables``).

    ``envFrom`` first, then ``env`` in order (each may expand ``$(VAR)`` from the
    variables before it and from the service variables), then the service variables
    the container did not define itself. ``config_maps`` / ``secrets`` look an object
    up by ``(namespace, name)`` and return None when it does not exist. ``pod_ip`` /
    ``host_ip`` override the pod status, which the kubelet may not have written yet.
    Raises :class:`EnvError` for a missing non-optional ConfigMap, Secret or key.
    """
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    cache: dict[tuple[str, str], dict[str, str] | None] = {}

    def source(kind: str, name: str, optional: bool) -> dict[str, str] | None:
        if (kind, name) not in cache:
            if kind == "configmap":
                obj = config_maps(namespace, name)
                cache[(kind, name)] = None if obj is None else dict(obj.get("data") or {})
            else:
                obj = secrets(namespace, name)
                cache[(kind, name)] = None if obj is None else _secret_values(obj)
        values = cache[(kind, name)]
        if values is None and not optional:
            raise EnvError(f'{kind} "{name}" not found')
        return values

    env: dict[str, str] = {}
    for env_from in container.get("envFrom") or []:
        for kind, ref in (("configmap", env_from.get("configMapRef")), ("secret", env_from.get("secretRef"))):
            if ref is None:
                continue
            values = source(kind, ref.get("name", ""), bool(ref.get("optional")))
            for key, value in (values or {}).items():
                env[env_from.get("prefix", "") + key] = value

    for var in container.get("env") or []:
        name, value, value_from = var["name"], var.get("value") or "", var.get("valueFrom")
        if value:
            value = expand(value, env, service_vars)
        elif value_from:
            if value_from.get("fieldRef"):
                value = field_ref_value(value_from["fieldRef"]["fieldPath"], pod, pod_ip, host_ip)
            elif value_from.get("configMapKeyRef") or value_from.get("secretKeyRef"):
                kind = "configmap" if value_from.get("configMapKeyRef") else "secret"
                ref = value_from.get("configMapKeyRef") or value_from["secretKeyRef"]
                optional = bool(ref.get("optional"))
                values = source(kind, ref.get("name", ""), optional)
                if values is None:
                    continue  # optional and absent: the variable is not set at all
                if ref.get("key") not in values:
                    if optional:
                        continue
                    label = "ConfigMap" if kind == "configmap" else "Secret"
                    raise EnvError(f"couldn't find key {ref.get('key')} in {label} {namespace}/{ref.get('name')}")
                value = values[ref["key"]]
            elif value_from.get("resourceFieldRef"):
                raise EnvError("valueFrom.resourceFieldRef is not supported by the lab kubelet")
        env[name] = value

    return [f"{k}={v}" for k, v in env.items()] + [f"{k}={v}" for k, v in service_vars.items() if k not in env]
