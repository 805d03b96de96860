"""Connect to a cluster — the embedded lab by default, any kubeconfig context on request —
and the small :class:`Cluster` facade the notebooks use.

Everything goes through the official ``kubernetes`` client and the public API, so a
notebook that runs against the lab runs unchanged against kind, minikube or a cloud
cluster. API failures surface as :class:`k8snet.lab.errors.ApiError` carrying the
server's own ``Status`` reason and message.

What the lab tells about itself also comes through the API (:class:`LabFacts`, from
ConfigMap ``kube-public/k8snet-lab``; the proxy mode from ``kube-system/kube-proxy``),
so a learner who reaches the lab as a normal user through its kubeconfig context
``k8snet-<lab>`` sees the same facts as root does.
"""

from __future__ import annotations

import builtins  # the classes below have a list() method, which shadows list in their annotations
import contextlib
import json
import math
import os
import time
import uuid
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import urllib3
import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError, ResourceNotFoundError
from tqdm.auto import tqdm

from .kubectlenv import kubectl_namespace
from .lab import kubeconfig as lab_kubeconfig
from .lab import lifecycle
from .lab.config import LabConfig
from .lab.errors import ApiError
from .lab.labfacts import LAB_FACTS_CONFIGMAP, LAB_FACTS_NAMESPACE
from .lab.labfacts import LabFacts as LabFacts  # re-exported: the type of Cluster.lab
from .probe.probe import is_service_env

Manifest = str | Path | dict[str, Any] | Iterable[Any]

#: kubectl's short names for the kinds the notebooks use
KIND_ALIASES = {
    "po": "Pod", "pod": "Pod", "pods": "Pod", "svc": "Service", "service": "Service", "services": "Service",
    "deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
    "rs": "ReplicaSet", "replicaset": "ReplicaSet", "replicasets": "ReplicaSet",
    "ep": "Endpoints", "endpoints": "Endpoints", "ns": "Namespace", "namespace": "Namespace",
    "namespaces": "Namespace", "no": "Node", "node": "Node", "nodes": "Node",
    "cm": "ConfigMap", "configmap": "ConfigMap", "configmaps": "ConfigMap",
    "job": "Job", "jobs": "Job", "ds": "DaemonSet", "daemonset": "DaemonSet",
}


class WaitTimeout(TimeoutError):
    """``Cluster.wait`` gave up; the message says what was not ready and why."""


def api_error(err: ApiException | DynamicApiError) -> ApiError:
    """The server's ``Status`` (reason, message) as our ApiError."""
    body: Any = getattr(err, "body", None)
    try:
        status = json.loads(body) if isinstance(body, (str, bytes)) else {}
    except ValueError:
        status = {}
    code = int(status.get("code") or getattr(err, "status", 0) or 0)
    return ApiError(code, status.get("reason") or str(getattr(err, "reason", "")),
                    status.get("message") or str(body or err), status.get("details"))


def documents(manifest: Manifest) -> list[dict[str, Any]]:
    """Objects from a path, YAML text (several documents), a dict, or a list of those;
    ``kind: List`` is flattened like kubectl does."""
    if isinstance(manifest, Path) or (isinstance(manifest, str) and "\n" not in manifest
                                      and manifest.endswith((".yaml", ".yml", ".json"))):
        manifest = Path(manifest).read_text()
    if isinstance(manifest, str):
        items: list[Any] = [doc for doc in yaml.safe_load_all(manifest) if doc]
    elif isinstance(manifest, dict):
        items = [manifest]
    else:
        items = [obj for part in manifest for obj in documents(part)]
    out: list[dict[str, Any]] = []
    for obj in items:
        if not isinstance(obj, dict) or "kind" not in obj or "apiVersion" not in obj:
            raise ValueError(f"not a Kubernetes object (needs apiVersion and kind): {str(obj)[:80]}")
        out.extend(documents(obj["items"]) if obj["kind"].endswith("List") and "items" in obj else [obj])
    return out


@dataclass(frozen=True)
class ClusterInfo:
    kind: str  # k8snet-lab, kind, minikube, k3d, k3s, gke, eks, aks or other
    version: str
    nodes: list[str]
    proxy_mode: str | None
    server: str
    context: str | None
    kernels: list[str] = field(default_factory=list)
    lab: LabFacts | None = None  # what a k8snet lab publishes about itself; None on other clusters


@dataclass(frozen=True)
class ExecResult:
    stdout: str
    stderr: str
    returncode: int


def _selectors(selector: str | None, name: str | None) -> dict[str, str]:
    """A list or watch request's label and field selectors."""
    kwargs = {"label_selector": selector} if selector else {}
    if name:
        kwargs["field_selector"] = f"metadata.name={name}"
    return kwargs


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _in_order(objs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(objs, key=_key)


def endpoints_frame(objs: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per (address, port) of each Endpoints object, ready or not."""
    rows = []
    for ep in objs:
        for subset in ep.get("subsets") or []:
            for ready, key in ((True, "addresses"), (False, "notReadyAddresses")):
                for addr in subset.get(key) or []:
                    for port in subset.get("ports") or [{}]:
                        rows.append({
                            "service": ep["metadata"]["name"], "namespace": ep["metadata"]["namespace"],
                            "ip": addr.get("ip"), "port": port.get("port"), "protocol": port.get("protocol"),
                            "port_name": port.get("name"), "ready": ready, "node": addr.get("nodeName"),
                            "pod": (addr.get("targetRef") or {}).get("name"),
                        })
    frame = pd.DataFrame(rows, columns=["service", "namespace", "ip", "port", "protocol", "port_name",
                                        "ready", "node", "pod"])
    return frame.sort_values(["namespace", "service", "ip", "port"], ignore_index=True)


def ready_backends(endpoints: pd.DataFrame) -> builtins.list[str]:
    """The ready backends of an :func:`endpoints_frame`: each pod once, by name, whatever
    its ports (an address without a pod, by IP): hostNetwork pods share their node's IP."""
    ready = endpoints[endpoints["ready"]]
    return sorted(set(ready["pod"].fillna(ready["ip"])))


def cluster_kind(nodes: list[dict[str, Any]], version: str) -> str:
    """Guesses the distribution from what nodes and the version string reveal."""
    provider = " ".join((n.get("spec") or {}).get("providerID") or "" for n in nodes)
    labels = {k for n in nodes for k in ((n.get("metadata") or {}).get("labels") or {})}
    names = [(n.get("metadata") or {}).get("name", "") for n in nodes]
    if provider.startswith("k8snet://"):
        return "k8snet-lab"
    if "kind://" in provider:
        return "kind"
    if any(k.startswith("minikube.k8s.io/") for k in labels):
        return "minikube"
    if "+k3s" in version:
        return "k3d" if any(n.startswith("k3d-") for n in names) else "k3s"
    for marker, kind in (("gce://", "gke"), ("aws://", "eks"), ("azure://", "aks")):
        if marker in provider:
            return kind
    return "other"


def _condition(obj: dict[str, Any], kind: str) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond["status"]) if cond.get("status") is not None else None
    return None


def _age_free_labels(labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


class Cluster:
    """A connected cluster. Namespaced calls default to ``"default"``.

    ``lab`` is the lab's :class:`~k8snet.lab.lifecycle.LabStatus` when this process can
    read the lab's state folder (root on the machine that runs it): only then can it
    look inside the nodes' kernels (:mod:`k8snet.datapath`). What any user can know
    about a lab comes from :meth:`lab_facts` (through the API).
    """

    def __init__(self, api_client: client.ApiClient, *, context: str | None = None,
                 lab: lifecycle.LabStatus | None = None, kubeconfig: str | Path | None = None) -> None:
        self.api_client = api_client
        self.context = context
        #: the kubeconfig file this connection came from (None: $KUBECONFIG or ~/.kube/config)
        self.kubeconfig = Path(kubeconfig) if kubeconfig else None
        self.lab = lab
        self._lab_facts: tuple[LabFacts | None] | None = None

    # The typed APIs are made on first use: importing CoreV1Api and its models costs
    # about 0.5 s, and the facade's common calls go through the dynamic client instead
    # (exec and a pod's events still use CoreV1Api).
    @cached_property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client)

    @cached_property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api_client)

    @classmethod
    def from_kubeconfig(cls, path: str | Path | None = None, context: str | None = None) -> Cluster:
        return cls(config.new_client_from_config(config_file=str(path) if path else None, context=context),
                   context=context, kubeconfig=path)

    def __repr__(self) -> str:
        where = f"lab {self.lab.name!r}" if self.lab else f"context {self.context!r}"
        return f"<Cluster {where} at {self.server}>"

    @property
    def server(self) -> str:
        return str(self.api_client.configuration.host)

    @cached_property
    def dynamic(self) -> DynamicClient:
        return DynamicClient(self.api_client)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ApiException, DynamicApiError) as err:
            raise api_error(err) from None

    def resource(self, kind: str, api_version: str | None = None) -> Any:
        """The dynamic client's resource for a kind, kubectl short name or plural."""
        kind = KIND_ALIASES.get(kind.lower(), kind)
        try:
            if api_version:
                return self.dynamic.resources.get(api_version=api_version, kind=kind)
            return self.dynamic.resources.get(kind=kind)
        except ResourceNotFoundError:
            try:
                return self.dynamic.resources.get(name=kind.lower())
            except ResourceNotFoundError:
                raise ValueError(f"the server has no resource type {kind!r}") from None

    # -- objects -------------------------------------------------------------------------
    def apply(self, manifest: Manifest, namespace: str = "default") -> list[dict[str, Any]]:
        """Creates each object, or updates it (JSON merge patch) when it exists already.

        Objects without ``metadata.namespace`` go to ``namespace``. Returns the objects
        as the server stored them.
        """
        out = []
        for obj in documents(manifest):
            res = self.resource(obj["kind"], obj["apiVersion"])
            ns = (obj.get("metadata") or {}).get("namespace") or namespace if res.namespaced else None
            name = (obj.get("metadata") or {}).get("name")
            # look first: a partial object (an update) would fail create's validation
            # with 422 before the server ever says 409 AlreadyExists
            exists = bool(name and self._exists(res, name, ns))
            if exists:
                stored = self._call(res.patch, body=obj, name=name, namespace=ns,
                                    content_type="application/merge-patch+json")
            else:
                stored = self._call(res.create, body=obj, namespace=ns)
            out.append(stored.to_dict())
        return out

    def delete(self, manifest_or_kind: Manifest, name: str | None = None, namespace: str = "default",
               *, wait: bool = False, timeout: float = 60.0, grace_period_seconds: int | None = None) -> list[str]:
        """Deletes the objects of a manifest, or one object by ``kind`` and ``name``;
        objects already gone are fine. Returns ``kind/name`` of what was deleted.
        ``grace_period_seconds=0`` removes a pod without waiting for its kubelet
        (``kubectl delete --grace-period=0 --force``; ``--now`` is a grace period of 1)."""
        if name is not None:
            targets = [(str(manifest_or_kind), name, namespace)]
        else:
            targets = [(o["kind"], o["metadata"]["name"], (o.get("metadata") or {}).get("namespace") or namespace)
                       for o in documents(manifest_or_kind)]
        deleted = []
        for kind, obj_name, ns in targets:
            res = self.resource(kind)
            try:
                res.delete(name=obj_name, namespace=ns if res.namespaced else None,
                           grace_period_seconds=grace_period_seconds)
                deleted.append(f"{res.kind}/{obj_name}")
            except NotFoundError:
                continue
            except DynamicApiError as err:
                raise api_error(err) from None
            if wait:
                self.wait(res.kind, obj_name, namespace=ns, condition="deleted", timeout=timeout, progress=False)
        return deleted

    def _exists(self, res: Any, name: str, namespace: str | None) -> bool:
        try:
            res.get(name=name, namespace=namespace)
            return True
        except NotFoundError:
            return False
        except DynamicApiError as err:
            raise api_error(err) from None

    def get(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
        res = self.resource(kind)
        try:
            obj: dict[str, Any] = res.get(name=name, namespace=namespace if res.namespaced else None).to_dict()
            return obj
        except NotFoundError:
            return None
        except DynamicApiError as err:
            raise api_error(err) from None

    def list(self, kind: str, namespace: str | None = "default", selector: str | None = None,
             name: str | None = None) -> list[dict[str, Any]]:
        """Objects of a kind; ``namespace=None`` lists all namespaces."""
        res = self.resource(kind)
        listed = self._call(res.get, namespace=namespace if res.namespaced else None, **_selectors(selector, name))
        return _in_order(listed.to_dict().get("items") or [])

    def observe(self, kind: str, namespace: str | None = "default", selector: str | None = None,
                name: str | None = None, *, timeout: float = 60.0) -> Generator[builtins.list[dict[str, Any]], None, None]:
        """The objects of a kind as they change: the current list first, then the whole
        list again after each change. The changes come from a watch that starts at the
        list's resourceVersion, so none falls in between and none is polled for (the
        API server pushes each one as it is stored). Ends after ``timeout`` seconds;
        the caller stops earlier by leaving its loop. As client-go's reflector does, a
        watch that breaks is started again from the last resourceVersion seen, and when
        the server no longer has that history (410 Gone) the objects are listed again."""
        res = self.resource(kind)
        ns = namespace if res.namespaced else None
        selectors = _selectors(selector, name)
        deadline = time.monotonic() + timeout

        def listed() -> tuple[dict[tuple[str, str], dict[str, Any]], str | None]:
            body = self._call(res.get, namespace=ns, **selectors).to_dict()
            return {_key(o): o for o in body.get("items") or []}, (body.get("metadata") or {}).get("resourceVersion")

        objs, version = listed()
        yield _in_order(objs.values())
        while (left := deadline - time.monotonic()) > 0:
            # timeoutSeconds is whole seconds: the server ends the watch at most 1 s late;
            # the client gives up reading a few seconds after that (a connection gone silent)
            seconds = max(1, math.ceil(left))
            events = watch.Watch().stream(res.get, namespace=ns, resource_version=version, serialize=False,
                                          timeout_seconds=seconds, _request_timeout=(10, seconds + 5), **selectors)
            try:
                for event in events:
                    obj = event["raw_object"]
                    version = obj["metadata"]["resourceVersion"]
                    if event["type"] == "DELETED":
                        objs.pop(_key(obj), None)
                    else:  # ADDED, MODIFIED: the watch asks for no BOOKMARKs
                        objs[_key(obj)] = obj
                    yield _in_order(objs.values())
            except (ApiException, DynamicApiError) as err:
                if err.status != 410:
                    raise api_error(err) from None
                objs, version = listed()
                yield _in_order(objs.values())
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError):
                continue  # the stream broke off: watch again from ``version``
            finally:
                events.close()  # ends the watch request

    # -- waiting ---------------------------------------------------------------------------
    def _is(self, condition: str, kind: str, obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        spec = obj.get("spec") or {}
        if condition == "exists":
            return True
        if condition == "complete":
            if kind == "Pod":
                return status.get("phase") in ("Succeeded", "Failed")
            return _condition(obj, "Complete") == "True" or _condition(obj, "Failed") == "True"
        if condition != "ready":
            raise ValueError(f"unknown condition {condition!r}: use ready, complete, exists or deleted")
        if kind in ("Pod", "Node"):
            return _condition(obj, "Ready") == "True"
        if kind in ("Deployment", "ReplicaSet", "StatefulSet"):
            want = spec.get("replicas", 1)
            fresh = (status.get("observedGeneration") or 0) >= (obj["metadata"].get("generation") or 0)
            updated = kind != "Deployment" or (status.get("updatedReplicas") or 0) == want
            return fresh and updated and (status.get("readyReplicas") or 0) == want \
                and (status.get("replicas") or 0) == want
        if kind == "Service":
            if spec.get("type") == "ExternalName" or not spec.get("selector"):
                return True
            return bool(self._ready_addresses(obj["metadata"]["name"], obj["metadata"]["namespace"]))
        if kind == "Namespace":
            return status.get("phase") == "Active"
        return True

    def _ready_addresses(self, service: str, namespace: str) -> builtins.list[dict[str, Any]]:
        try:
            ep = self.get("Endpoints", service, namespace)
        except ApiError:
            return []
        return [a for s in (ep or {}).get("subsets") or [] for a in s.get("addresses") or []]

    def wait(self, kind: str, name: str | None = None, *, namespace: str = "default", selector: str | None = None,
             condition: str = "ready", timeout: float = 60.0, count: int | None = None,
             progress: bool = True) -> builtins.list[dict[str, Any]]:
        """Waits until the named object (or every object matching ``selector``, at least
        ``count`` of them, default 1) meets ``condition``: ``ready`` (pods, nodes,
        Deployments, ReplicaSets, Services with ready endpoints), ``complete`` (pods that
        ended, Jobs), ``exists`` or ``deleted``. Returns the objects.

        Raises WaitTimeout saying what is not ready and why: pod phase, container
        waiting reasons and messages, recent events, a Service's unmatched selector.
        """
        res = self.resource(kind)
        kind = res.kind
        ns = namespace if res.namespaced else None
        want = count or 1
        what = f"{kind.lower()} {name}" if name else f"{kind.lower()}s matching {selector or 'everything'}"
        objs: list[dict[str, Any]] = []
        # a Service is ready by its Endpoints, which a watch on Services does not see
        changes = self._poll(kind, ns, selector, name, timeout) if kind == "Service" and condition == "ready" \
            else self.observe(kind, ns, selector, name, timeout=timeout)
        with contextlib.closing(changes), \
                tqdm(total=want, desc=f"{what}: {condition}", unit=kind.lower(), disable=not progress, leave=False) as bar:
            for objs in changes:
                if condition == "deleted":
                    done, total = (not objs), 1
                    bar.n = 0 if objs else 1
                else:
                    ok = [o for o in objs if self._is(condition, kind, o)]
                    total = max(want, len(objs))
                    done = len(objs) >= want and len(ok) == len(objs)
                    bar.total, bar.n = total, len(ok)
                bar.refresh()
                if done:
                    return objs
        raise WaitTimeout(self._explain(kind, what, condition, timeout, objs, ns))

    def _poll(self, kind: str, namespace: str | None, selector: str | None, name: str | None,
              timeout: float) -> Generator[builtins.list[dict[str, Any]], None, None]:
        """The objects every 0.2 s until ``timeout``: for conditions a watch on the
        objects themselves cannot see."""
        deadline = time.monotonic() + timeout
        while True:
            yield self.list(kind, namespace, selector, name)
            if time.monotonic() >= deadline:
                return
            time.sleep(0.2)

    def _explain(self, kind: str, what: str, condition: str, timeout: float, objs: builtins.list[dict[str, Any]],
                 namespace: str | None) -> str:
        head = f"{what} not {condition} after {timeout:g} s"
        if condition == "deleted":
            return f"{head}: still there: " + ", ".join(o["metadata"]["name"] for o in objs)
        if not objs:
            return f"{head}: no such object in namespace {namespace}"
        lines = [head + ":"]
        for obj in objs:
            if not self._is(condition, kind, obj):
                lines += ["  " + line for line in self.why(kind, obj)]
        return "\n".join(lines)

    def why(self, kind: str, obj: dict[str, Any]) -> builtins.list[str]:
        """Why one object is not ready, in a few lines."""
        meta, status, spec = obj["metadata"], obj.get("status") or {}, obj.get("spec") or {}
        name, ns = meta["name"], meta.get("namespace")
        if kind == "Pod":
            return self._why_pod(obj)
        if kind in ("Deployment", "ReplicaSet", "StatefulSet"):
            lines = [f"{kind.lower()} {name}: {status.get('readyReplicas') or 0}/{spec.get('replicas', 1)} replicas ready"]
            sel = ",".join(f"{k}={v}" for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items())
            pods = self.list("Pod", ns, sel) if sel else []
            for pod in [p for p in pods if _condition(p, "Ready") != "True"][:3]:
                lines += ["  " + line for line in self._why_pod(pod)]
            return lines
        if kind == "Service":
            sel = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items())
            pods = self.list("Pod", ns, sel)
            if not pods:
                return [f"service {name}: its selector {sel} matches no pod in namespace {ns}, so it has no endpoints"]
            lines = [f"service {name}: selector {sel} matches {len(pods)} pod(s), none ready"]
            return lines + ["  " + line for p in pods[:3] for line in self._why_pod(p)]
        return [f"{kind.lower()} {name}: status {json.dumps(status, default=str)[:200]}"]

    def _why_pod(self, pod: dict[str, Any]) -> builtins.list[str]:
        meta, status = pod["metadata"], pod.get("status") or {}
        parts = [f"pod {meta['name']}: phase {status.get('phase', 'Unknown')}"]
        if node := (pod.get("spec") or {}).get("nodeName"):
            parts[0] += f" on {node}"
        for cond in status.get("conditions") or []:
            if cond.get("status") != "True" and (cond.get("reason") or cond.get("message")):
                parts.append(f"{cond['type']}=False: {cond.get('reason') or ''} {cond.get('message') or ''}".strip())
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            if w := state.get("waiting"):
                parts.append(f"container {cs['name']} waiting: {w.get('reason')}: {w.get('message') or ''}".rstrip(": "))
            elif t := state.get("terminated"):
                parts.append(f"container {cs['name']} terminated: {t.get('reason')} (exit code {t.get('exitCode')})"
                             + (f": {t['message']}" if t.get("message") else ""))
            elif not cs.get("ready"):
                parts.append(f"container {cs['name']} running but not ready (restarts {cs.get('restartCount', 0)})")
        try:
            events = self.core.list_namespaced_event(
                meta["namespace"], field_selector=f"involvedObject.name={meta['name']},involvedObject.kind=Pod").items
        except ApiException:
            events = []
        for ev in sorted(events, key=lambda e: str(e.last_timestamp or e.event_time or ""))[-3:]:
            parts.append(f"event {ev.type} {ev.reason}: {ev.message}")
        return [parts[0]] + ["  " + p for p in parts[1:]]

    # -- tables ---------------------------------------------------------------------------------
    def pods(self, namespace: str | None = "default", selector: str | None = None) -> pd.DataFrame:
        rows = []
        for p in self.list("Pod", namespace, selector):
            st, spec = p.get("status") or {}, p.get("spec") or {}
            cs = st.get("containerStatuses") or []
            rows.append({
                "name": p["metadata"]["name"], "namespace": p["metadata"]["namespace"],
                "node": spec.get("nodeName"), "ip": st.get("podIP"), "host_ip": st.get("hostIP"),
                "phase": st.get("phase"), "ready": _condition(p, "Ready") == "True",
                # kubectl's "Terminating": deleted, still shutting down
                "terminating": bool(p["metadata"].get("deletionTimestamp")),
                "containers": f"{sum(1 for c in cs if c.get('ready'))}/{len(spec.get('containers') or [])}",
                "restarts": sum(int(c.get("restartCount") or 0) for c in cs),
                "labels": _age_free_labels(p["metadata"].get("labels")),
            })
        return pd.DataFrame(rows, columns=["name", "namespace", "node", "ip", "host_ip", "phase", "ready",
                                           "terminating", "containers", "restarts", "labels"])

    def services(self, namespace: str | None = "default") -> pd.DataFrame:
        rows = []
        for s in self.list("Service", namespace):
            spec = s.get("spec") or {}
            ingress = ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            rows.append({
                "name": s["metadata"]["name"], "namespace": s["metadata"]["namespace"],
                "type": spec.get("type"), "cluster_ip": spec.get("clusterIP"),
                "external_ip": ",".join(i.get("ip") or i.get("hostname") or "" for i in ingress) or None,
                "ports": ",".join(f"{p['port']}" + (f":{p['nodePort']}" if p.get("nodePort") else "")
                                  + f"/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []),
                "selector": _age_free_labels(spec.get("selector")),
            })
        return pd.DataFrame(rows, columns=["name", "namespace", "type", "cluster_ip", "external_ip", "ports", "selector"])

    def endpoints(self, namespace: str | None = "default", service: str | None = None) -> pd.DataFrame:
        """One row per (address, port) of each Service's Endpoints, ready or not."""
        return endpoints_frame(self.list("Endpoints", namespace, name=service))

    def nodes(self) -> pd.DataFrame:
        rows = []
        for n in self.list("Node", None):
            st = n.get("status") or {}
            addrs = {a["type"]: a["address"] for a in st.get("addresses") or []}
            info = st.get("nodeInfo") or {}
            rows.append({
                "name": n["metadata"]["name"], "ready": _condition(n, "Ready") == "True",
                "internal_ip": addrs.get("InternalIP"), "external_ip": addrs.get("ExternalIP"),
                "pod_cidr": (n.get("spec") or {}).get("podCIDR"),
                "kubelet": info.get("kubeletVersion"), "kernel": info.get("kernelVersion"),
                "os": info.get("osImage"),
            })
        return pd.DataFrame(rows, columns=["name", "ready", "internal_ip", "external_ip", "pod_cidr", "kubelet",
                                           "kernel", "os"])

    # -- namespaces -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def namespace(self, prefix: str = "study", *, timeout: float = 60.0, kubectl: bool = False) -> Iterator[str]:
        """A fresh namespace ``<prefix>-xxxxxx`` for the block; deleted afterwards, even on
        errors, waiting (up to ``timeout``) until its objects are gone. With ``kubectl``,
        it is also the current namespace of the ``kubectl`` this process starts (a
        notebook's ``!kubectl`` cells), on this cluster: see :meth:`kubectl_namespace`."""
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self._call(self.resource("Namespace").create, body={"apiVersion": "v1", "kind": "Namespace",
                                                            "metadata": {"name": name}})
        try:
            with self.kubectl_namespace(name) if kubectl else contextlib.nullcontext(None):
                yield name
        finally:
            with contextlib.suppress(ApiError):
                self.delete("Namespace", name)
            try:
                self.wait("Namespace", name, condition="deleted", timeout=timeout, progress=False)
            except WaitTimeout as err:
                # a namespace still terminating must not hide the block's own exception
                warnings.warn(str(err), stacklevel=3)

    def kubectl_namespace(self, namespace: str) -> contextlib.AbstractContextManager[Path]:
        """For the block, ``kubectl`` started by this process talks to this cluster with
        ``namespace`` as its current namespace, so the tutorial's commands run as written
        (a private one-context kubeconfig in ``$KUBECONFIG``; :mod:`k8snet.kubectlenv`)."""
        return kubectl_namespace(namespace, kubeconfig=self.kubeconfig, context=self.context)

    # -- facts ------------------------------------------------------------------------------------
    def info(self) -> ClusterInfo:
        version = self._call(client.VersionApi(self.api_client).get_code).git_version
        nodes = self.list("Node", None)
        facts = self.lab_facts()
        kind = "k8snet-lab" if facts else cluster_kind(nodes, version)
        kernels = sorted({((n.get("status") or {}).get("nodeInfo") or {}).get("kernelVersion") or "" for n in nodes} - {""})
        return ClusterInfo(kind, version, [n["metadata"]["name"] for n in nodes], self._kube_proxy_mode(),
                           self.server, self.context, kernels, facts)

    def lab_facts(self) -> LabFacts | None:
        """What a k8snet lab publishes about itself (ConfigMap ``kube-public/k8snet-lab``):
        name, node network, the host's address there, LoadBalancer pool, ...; None on a
        cluster that is not a k8snet lab. Read once, then kept."""
        if self._lab_facts is None:
            try:
                cm = self.get("ConfigMap", LAB_FACTS_CONFIGMAP, LAB_FACTS_NAMESPACE)
            except ApiError as err:
                if err.code != 403:
                    raise
                cm = None
            facts: LabFacts | None = LabFacts.from_data(cm.get("data") or {}) if cm else None
            self._lab_facts = (facts,)
        return self._lab_facts[0]

    def _kube_proxy_mode(self) -> str | None:
        """From kube-proxy's ConfigMap, where kubeadm-style clusters keep it (an empty
        mode means iptables on Linux); ``None`` when the cluster does not say."""
        try:
            cm = self.get("ConfigMap", "kube-proxy", "kube-system")
        except ApiError:
            return None
        text = ((cm or {}).get("data") or {}).get("config.conf")
        if not text:
            return None
        try:
            mode = (yaml.safe_load(text) or {}).get("mode")
        except yaml.YAMLError:
            return None
        return mode or "iptables"

    # -- inside pods ------------------------------------------------------------------------------
    def exec(self, pod: str, command: builtins.list[str] | str, namespace: str = "default", container: str | None = None,
             *, timeout: float = 60.0) -> ExecResult:
        """Runs a command in a running container (needs the exec subresource)."""
        from kubernetes.stream import stream

        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        kwargs: dict[str, Any] = {"container": container} if container else {}
        try:
            ws = stream(self.core.connect_get_namespaced_pod_exec, pod, namespace, command=argv,
                        stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False, **kwargs)
        except ApiException as err:
            raise api_error(err) from None
        ws.run_forever(timeout=timeout)
        out, errout = ws.read_stdout() or "", ws.read_stderr() or ""
        rc = ws.returncode
        ws.close()
        return ExecResult(out, errout, int(rc) if rc is not None else -1)

    def logs(self, pod: str, namespace: str = "default", container: str | None = None) -> str:
        query = [("container", container)] if container else []
        resp = self._call(self.dynamic.request, "GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
                          query_params=query, serialize=False)
        return str(resp.data.decode("utf-8", "replace"))

    def env(self, pod: str, namespace: str = "default", container: str | None = None) -> dict[str, str]:
        """The Service environment variables a running container got at its start (via exec)."""
        result = self.exec(pod, ["printenv"], namespace, container)
        if result.returncode != 0:  # images without coreutils
            result = self.exec(pod, ["env"], namespace, container)
        pairs = (line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        return {k: v for k, v in sorted(pairs) if is_service_env(k, v)}


def connect(context: str | None = None, *, lab: str | None = None, kubeconfig: str | Path | None = None) -> Cluster:
    """A cluster to study.

    With a kubeconfig ``context`` (or ``$K8SNET_CONTEXT``, or an explicit ``kubeconfig``
    file) that cluster; otherwise the embedded lab ``lab`` (default ``$K8SNET_LAB``, else
    ``k8snet``). Root attaches to that lab when it is Ready and starts it when not; a
    normal user, who cannot read the lab's state folder, goes through the lab's context
    ``k8snet-<lab>``, which ``sudo k8snet lab up`` merged into their ``~/.kube/config``.
    When neither works the LabError says what to do, on one line.
    """
    context = context or os.environ.get("K8SNET_CONTEXT") or None
    # the env var lets notebooks call connect() bare and still find a test run's lab
    lab = lab or os.environ.get("K8SNET_LAB") or "k8snet"
    if context or kubeconfig:
        return _with_lab_status(Cluster.from_kubeconfig(kubeconfig, context))
    status = lifecycle.readable_status(lab)
    if status.phase not in ("Ready", lifecycle.UNREADABLE) and os.geteuid() == 0:
        status = lifecycle.up(LabConfig(name=lab))
    if status.phase == "Ready" and status.kubeconfig is not None:
        with contextlib.suppress(PermissionError):  # a kubeconfig only root may read: try the context
            return Cluster(config.new_client_from_config(config_file=str(status.kubeconfig)), context=None, lab=status,
                           kubeconfig=status.kubeconfig)
    lab_context = lab_kubeconfig.context_name(lab)
    if lab_context in _kubeconfig_contexts():
        return _with_lab_status(Cluster.from_kubeconfig(None, lab_context))
    raise lifecycle.LabError(
        f"lab {lab!r} is not running or not readable by this user, and the kubeconfig has no context "
        f"{lab_context!r}: "
        f"run 'sudo k8snet lab up --name {lab}' from your own account (it adds that context to your "
        "~/.kube/config), or set K8SNET_CONTEXT to another cluster's context")


def _kubeconfig_contexts() -> set[str]:
    """Context names in the default kubeconfig ($KUBECONFIG or ~/.kube/config)."""
    try:
        contexts, _ = config.list_kube_config_contexts()
    except (config.ConfigException, OSError):
        return set()
    return {c["name"] for c in contexts or []}


def _with_lab_status(cluster: Cluster) -> Cluster:
    """Attaches the lab's LabStatus when the cluster is a k8snet lab this process can
    read the state of (root on its machine, same API server), as connect() to the lab
    does: the data-path views need it."""
    try:
        facts = cluster.lab_facts()
    except (ApiError, OSError, urllib3.exceptions.HTTPError):
        return cluster  # unreachable now: the first real call will say so
    status = lifecycle.readable_status(facts.name) if facts else None
    if status is not None and status.phase == "Ready" and status.server == cluster.server:
        cluster.lab = status
    return cluster
