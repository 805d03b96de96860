"""Measurements run from inside the cluster, by the stdlib-only probe (k8snet/probe).

Each function ships the probe script in a ConfigMap, runs it in a ``python`` image pod
(``image=`` or ``$K8SNET_PROBE_IMAGE``, default ``python:3.12``) that mounts it, waits
for the pod to finish (a watch on the pod, not polling), reads the JSON lines it
printed from the pod's log and deletes the pod. No exec and no custom image, so the
same call works on any cluster.
Each returns a :class:`Measurement`: a DataFrame of raw rows plus a summary dict.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import analysis, probe, results
from .cluster import Cluster, endpoints_frame, ready_backends
from .lab.errors import ApiError

DEFAULT_IMAGE = "python:3.12"
PROBE_CONFIGMAP = "k8snet-probe"
# under /tmp: every image has it, and the lab can make mount points only below
# existing directories (it shares the host's root filesystem)
PROBE_MOUNT = "/tmp/k8snet-probe"
ECHO_PORT = 9000


class ProbeError(RuntimeError):
    """A probe pod failed or printed no complete result."""


@dataclass
class Measurement:
    """Raw rows, a summary and the parameters; unpacks as ``df, summary = ...``."""

    data: pd.DataFrame
    summary: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:
        yield self.data
        yield self.summary

    def save(self, name: str, cluster_info: Any) -> Path:
        """Writes data/results/<name>.csv and its provenance JSON (see :mod:`k8snet.results`)."""
        return results.save(self.data, name, self.params, cluster_info)


def probe_image(image: str | None = None) -> str:
    return image or os.environ.get("K8SNET_PROBE_IMAGE") or DEFAULT_IMAGE


def _probe_pod(name: str, args: Sequence[str], image: str, *, node: str | None, restart: str,
               enable_service_links: bool, dns_config: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": restart,
        "enableServiceLinks": enable_service_links,
        "terminationGracePeriodSeconds": 0,
        "containers": [{
            "name": "probe", "image": image,
            # stdout block-buffered (no -u): a server probe flushes its first line itself
            "command": ["python3", f"{PROBE_MOUNT}/probe.py", *args],
            "volumeMounts": [{"name": "probe", "mountPath": PROBE_MOUNT, "readOnly": True}],
        }],
        "volumes": [{"name": "probe", "configMap": {"name": PROBE_CONFIGMAP}}],
    }
    if node:
        spec["nodeName"] = node
    if dns_config:
        spec["dnsConfig"] = dns_config
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "k8snet-probe", "k8snet/probe": args[0]}},
            "spec": spec}


def _ship_probe(cluster: Cluster, namespace: str) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": PROBE_CONFIGMAP},
                   "data": {"probe.py": probe.script()}}, namespace)


def _delete_pod(cluster: Cluster, name: str, namespace: str) -> None:
    with contextlib.suppress(ApiError):
        cluster.delete("Pod", name, namespace, grace_period_seconds=0)


def parse_lines(log: str) -> tuple[list[dict[str, Any]], bool]:
    """The results in a probe's log — each JSON-object line, and each row of a
    ``{"columns": [...], "rows": [...]}`` table line as an object — and whether its
    final ``done`` line came."""
    rows: list[dict[str, Any]] = []
    done = False
    for line in log.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if "done" in obj:
            done = True
        elif "columns" in obj and "rows" in obj:
            columns = obj["columns"]
            rows.extend(dict(zip(columns, row)) for row in obj["rows"])
        else:
            rows.append(obj)
    return rows, done


def run_probe(cluster: Cluster, namespace: str, args: Sequence[str], *, image: str | None = None,
              node: str | None = None, timeout: float = 180.0, enable_service_links: bool = True,
              dns_config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Runs one probe job to completion in a fresh pod and returns its JSON lines."""
    _ship_probe(cluster, namespace)
    name = f"k8snet-probe-{args[0]}-{uuid.uuid4().hex[:5]}"
    cluster.apply(_probe_pod(name, args, probe_image(image), node=node, restart="Never",
                             enable_service_links=enable_service_links, dns_config=dns_config), namespace)
    try:
        pod = _wait_ended(cluster, name, namespace, timeout)
        log = cluster.logs(name, namespace)
        rows, done = parse_lines(log)
        phase = (pod.get("status") or {}).get("phase")
        if phase != "Succeeded" or not done:
            tail = "\n".join(log.splitlines()[-10:])
            raise ProbeError(f"probe pod {name} ended {phase}" + ("" if done else " without its final line")
                             + f"; last log lines:\n{tail}")
        return rows
    finally:
        _delete_pod(cluster, name, namespace)


ENDED = ("Succeeded", "Failed")


def _wait_ended(cluster: Cluster, name: str, namespace: str, timeout: float) -> dict[str, Any]:
    """The probe pod once it has ended, from a watch on that one pod
    (:meth:`Cluster.observe`): the event comes as soon as the kubelet writes the final
    status, where polling every 0.2 s would add 0.1 s per probe run on average. At the
    deadline, or when the pod is gone, ``Cluster.wait`` says why it has not ended
    (phase, waiting reasons, events)."""
    with contextlib.closing(cluster.observe("Pod", namespace, name=name, timeout=timeout)) as changes:
        for pods in changes:
            if not pods:
                break
            if (pods[0].get("status") or {}).get("phase") in ENDED:
                return pods[0]
    return cluster.wait("Pod", name, namespace=namespace, condition="complete", timeout=0, progress=False)[0]


@contextlib.contextmanager
def probe_server(cluster: Cluster, namespace: str, args: Sequence[str], *, image: str | None = None,
                 node: str | None = None, timeout: float = 180.0) -> Iterator[dict[str, Any]]:
    """A long-running probe pod (e.g. ``echo``) for the block; yields the ready pod."""
    _ship_probe(cluster, namespace)
    name = f"k8snet-probe-{args[0]}-{uuid.uuid4().hex[:5]}"
    cluster.apply(_probe_pod(name, args, probe_image(image), node=node, restart="Always",
                             enable_service_links=False), namespace)
    try:
        pod = cluster.wait("Pod", name, namespace=namespace, timeout=timeout, progress=False)[0]
        # Ready means the process started; its first log line means it is listening
        deadline = time.monotonic() + 30
        while not parse_lines(cluster.logs(name, namespace))[0] and time.monotonic() < deadline:
            time.sleep(0.1)
        yield pod
    finally:
        _delete_pod(cluster, name, namespace)


def _node_of(cluster: Cluster, pod: str, namespace: str) -> tuple[str, str | None]:
    obj = cluster.get("Pod", pod, namespace)
    if obj is None:
        raise ProbeError(f"pod {pod} not found in namespace {namespace}")
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    if not status.get("podIP"):
        raise ProbeError(f"pod {pod} has no IP yet (phase {status.get('phase')})")
    return status["podIP"], spec.get("nodeName")


# -- load balancing ----------------------------------------------------------------------------

#: kube-proxy applies endpoint changes at its next sync: up to its minSyncPeriod after the
#: change (1 s by default, in kind too) plus the sync itself
PROXY_SYNC_SECONDS = 1.5
#: the same on a k8snet lab, whose kube-proxy syncs a change at once, or at most its
#: minSyncPeriod (``k8snet.lab.proxy.proxy.MIN_SYNC_PERIOD_SECONDS``, 0.05 s) after the last sync
LAB_PROXY_SYNC_SECONDS = 0.5


def proxy_sync_seconds(cluster: Cluster) -> float:
    """How long to let kube-proxy catch up with an endpoint change on ``cluster``."""
    return LAB_PROXY_SYNC_SECONDS if cluster.lab_facts() is not None else PROXY_SYNC_SECONDS


def wait_backends(cluster: Cluster, service: str, namespace: str, count: int, timeout: float = 120.0) -> int:
    """Waits until ``service`` has exactly ``count`` ready backends
    (:func:`~k8snet.cluster.ready_backends`: a pod behind a two-port Service counts
    once), then one proxy sync, so a
    measurement that starts now sees all of them from its first connection (a pod
    joining mid-run would get fewer connections and skew the uniformity test).
    Returns the number of ready endpoints.

    The count follows a watch on the Service's Endpoints (:meth:`Cluster.observe`),
    so it is seen the moment the endpoints controller writes it, without a request
    every few tenths of a second."""
    ready = 0
    with contextlib.closing(cluster.observe("Endpoints", namespace, name=service, timeout=timeout)) as changes:
        for endpoints in changes:
            ready = len(ready_backends(endpoints_frame(endpoints)))
            if ready == count:
                break
        else:
            raise ProbeError(f"service {service} has {ready} ready endpoints after {timeout:.0f} s, not {count}")
    time.sleep(proxy_sync_seconds(cluster))
    return ready


def lb_distribution(cluster: Cluster, service: str, namespace: str = "default", connections: int = 300,
                    keepalive: bool = False, port: int | None = None, *, path: str = "/hostname",
                    image: str | None = None, node: str | None = None, timeout: float = 180.0) -> Measurement:
    """Which backend answered each of ``connections`` HTTP requests to a Service's
    ClusterIP — a new connection each, or one kept-alive connection (``keepalive``).

    The backends must answer with their pod name (agnhost ``serve-hostname``, or
    ``netexec`` at /hostname). The summary has per-backend counts (0 for ready
    endpoints that never answered), the chi-square test against uniform, errors and
    how many TCP connections were opened.
    """
    svc = cluster.get("Service", service, namespace)
    if svc is None or not svc.get("spec"):
        raise ProbeError(f"service {namespace}/{service} " + ("not found" if svc is None else "has no spec"))
    spec = svc["spec"]
    ports = spec.get("ports") or []
    port = port or (ports[0]["port"] if ports else 80)
    host = spec["clusterIP"] if spec.get("clusterIP") not in (None, "None") else f"{service}.{namespace}"
    expected = ready_backends(cluster.endpoints(namespace, service))
    args = ["lb", "--host", host, "--port", str(port), "--path", path, "--count", str(connections)]
    t0 = time.monotonic()
    rows = run_probe(cluster, namespace, args + (["--keepalive"] if keepalive else []), image=image, node=node,
                     timeout=timeout)
    elapsed = time.monotonic() - t0
    df = pd.DataFrame(rows)
    for column in ("backend", "error", "status", "connect_us", "total_us", "conn"):
        if column not in df:
            df[column] = None
    df = df[["i", "backend", "status", "connect_us", "total_us", "conn", "error"]]
    counts = analysis.backend_counts(df["backend"], expected)
    summary: dict[str, Any] = {
        "service": service, "cluster_ip": host, "port": port, "connections": connections, "keepalive": keepalive,
        "errors": int(df["error"].notna().sum()), "tcp_connections": int(df["conn"].nunique()),
        "backends_expected": len(expected), "backends_seen": int(sum(1 for c in counts.values() if c)),
        "counts": counts, "seconds": round(elapsed, 2),
    }
    if len(counts) >= 2 and any(counts.values()):
        chi = analysis.chi_square_uniform(counts)
        summary.update(chi2=chi.statistic, p_value=chi.p_value, dof=chi.dof)
    params = {"service": service, "namespace": namespace, "connections": connections, "keepalive": keepalive,
              "port": port, "path": path, "image": probe_image(image)}
    return Measurement(df, summary, params)


# -- DNS -------------------------------------------------------------------------------------------

def dns_latency(cluster: Cluster, names: Sequence[str] | str, namespace: str = "default", samples: int = 20, *,
                external: Sequence[str] = ("example.com",), image: str | None = None, node: str | None = None,
                timeout: float = 180.0, dns_config: dict[str, Any] | None = None) -> Measurement:
    """Lookup latency (µs) and query count per name form, through the probe pod's own
    resolver configuration (search list, ndots): for each Service name the short name,
    ``name.namespace`` and the FQDN with a trailing dot, and each ``external`` name.

    Each row is one lookup: ``latency_us`` and ``queries`` from the emulated stub
    resolver (an A and an AAAA query in parallel for each name tried, as getaddrinfo
    with AF_UNSPEC sends them; our own UDP queries, so each is counted and timed),
    ``trace`` the queries as JSON, and ``getaddrinfo_us`` the system resolver's time
    for comparison. ``dns_config`` is the probe pod's ``spec.dnsConfig`` (e.g.
    ``{"options": [{"name": "ndots", "value": "1"}]}``).
    """
    services = [names] if isinstance(names, str) else list(names)
    args = ["dns", "--namespace", namespace, "--samples", str(samples)]
    for svc in services:
        args += ["--service", svc]
    for ext in external:
        args += ["--external", ext]
    rows = run_probe(cluster, namespace, args, image=image, node=node, timeout=timeout, dns_config=dns_config)
    resolver = next((r for r in rows if r.get("kind") == "resolver"), {})
    lookups = [r for r in rows if r.get("kind") == "lookup"]
    df = pd.DataFrame(lookups)
    if df.empty:
        raise ProbeError("the DNS probe made no lookups")
    df["answer"] = df["answer"].map(lambda a: ",".join(a))
    df["trace"] = df["trace"].map(json.dumps)
    df = df[["sample", "target", "form", "name", "latency_us", "queries", "rcode", "answer", "getaddrinfo_us",
             "getaddrinfo_ip", "trace"]]
    by_form = analysis.percentiles(df, "latency_us", by="form")
    summary = {
        "resolver": {k: resolver.get(k) for k in ("nameservers", "search", "ndots", "domain")},
        "percentiles_us": by_form.to_dict(orient="index"),
        "queries": df.groupby("form", sort=False)["queries"].median().to_dict(),
        "answered": df.groupby("form", sort=False)["answer"].apply(lambda a: float((a != "").mean())).to_dict(),
    }
    params = {"services": services, "namespace": namespace, "samples": samples, "external": list(external),
              "image": probe_image(image), "dns_config": dns_config}
    return Measurement(df, summary, params)


# -- pod to pod -------------------------------------------------------------------------------------

def pod_to_pod(cluster: Cluster, src_pod: str | None, dst_pod: str, namespace: str = "default", *,
               port: int = 8080, tries: int = 3, image: str | None = None, timeout: float = 180.0) -> Measurement:
    """Reachability and the source IP the server saw, for traffic between pods.

    ``dst_pod`` must run agnhost ``netexec`` (its /clientip reports the peer address).
    The probe pod, placed on ``src_pod``'s node, connects directly (path ``direct``)
    and, when ``src_pod`` runs netexec too, asks it to dial ``dst_pod`` (path ``via``:
    agnhost's /dial, as the Kubernetes e2e tests do) so the pair itself is measured.
    ``nat`` in the summary is True when any server saw another address than the sender's.
    """
    dst_ip, dst_node = _node_of(cluster, dst_pod, namespace)
    src_ip, src_node = _node_of(cluster, src_pod, namespace) if src_pod else (None, None)
    args = ["dial", "--host", dst_ip, "--port", str(port), "--tries", str(tries)]
    if src_ip:
        args += ["--via", src_ip, "--via-port", str(port)]
    df = pd.DataFrame(run_probe(cluster, namespace, args, image=image, node=src_node, timeout=timeout))
    for column in ("src_ip", "seen_ip", "ok", "error"):
        if column not in df:
            df[column] = None
    df = df[["path", "i", "src_ip", "seen_ip", "ok", "error"]]
    ok = df[df["ok"].astype(bool)]
    summary = {
        "src_pod": src_pod, "src_ip": src_ip, "src_node": src_node,
        "dst_pod": dst_pod, "dst_ip": dst_ip, "dst_node": dst_node,
        "reachable": bool(len(ok)) and bool(df["ok"].astype(bool).all()),
        "seen_ips": sorted(set(ok["seen_ip"])),
        "nat": bool((ok["seen_ip"] != ok["src_ip"]).any()),
    }
    params = {"src_pod": src_pod, "dst_pod": dst_pod, "namespace": namespace, "port": port, "tries": tries}
    return Measurement(df, summary, params)


# -- env ---------------------------------------------------------------------------------------------

def env(cluster: Cluster, namespace: str = "default", *, enable_service_links: bool = True,
        image: str | None = None, timeout: float = 180.0) -> Measurement:
    """The Service environment variables a pod started *now* in ``namespace`` gets.

    A container's environment is fixed when it starts, so this shows what any pod
    created at this moment sees; for an existing pod use ``Cluster.env`` (exec).
    """
    rows = run_probe(cluster, namespace, ["env"], image=image, timeout=timeout,
                     enable_service_links=enable_service_links)
    df = pd.DataFrame(rows, columns=["name", "value"])
    services = sorted({n[: -len("_SERVICE_HOST")] for n in df["name"] if n.endswith("_SERVICE_HOST")})
    summary = {"variables": len(df), "services": services, "enable_service_links": enable_service_links}
    return Measurement(df, summary, {"namespace": namespace, "enable_service_links": enable_service_links})


# -- raw round trips ------------------------------------------------------------------------------------

def rtt_baseline(cluster: Cluster, namespace: str = "default", samples: int = 200, *, server_node: str | None = None,
                 client_node: str | None = None, image: str | None = None, timeout: float = 180.0) -> Measurement:
    """Raw UDP and TCP round trips (µs) between two probe pods: an ``echo`` server pod
    and a client pod — the floor that DNS and Service latencies are compared with."""
    with probe_server(cluster, namespace, ["echo", "--port", str(ECHO_PORT)], image=image, node=server_node,
                      timeout=timeout) as server:
        server_ip = server["status"]["podIP"]
        rows = run_probe(cluster, namespace, ["rtt", "--host", server_ip, "--port", str(ECHO_PORT),
                                              "--count", str(samples)], image=image, node=client_node,
                         timeout=timeout)
    df = pd.DataFrame(rows, columns=["proto", "i", "rtt_us", "ok"])
    pct = analysis.percentiles(df[df["ok"].astype(bool)], "rtt_us", by="proto")
    summary = {"server_ip": server_ip, "server_node": server["spec"].get("nodeName"),
               "percentiles_us": pct.to_dict(orient="index"),
               "udp_p50_us": float(pct["p50"].astype(float)["udp"]) if "udp" in pct.index else None,
               "lost": int((~df["ok"].astype(bool)).sum())}
    params = {"namespace": namespace, "samples": samples, "server_node": server_node, "client_node": client_node}
    return Measurement(df, summary, params)


# -- connection latency ----------------------------------------------------------------------------

def connect_latency(cluster: Cluster, targets: dict[str, str], namespace: str = "default", port: int = 80, *,
                    connections: int = 300, rounds: int = 2, path: str = "/", node: str | None = None,
                    image: str | None = None, timeout: float = 180.0) -> Measurement:
    """TCP connect time (µs) and whole request time per new connection, for each of
    ``targets`` ({label: address}, e.g. a ClusterIP and a pod IP behind it).

    Every run's probe pod goes to the same ``node``, and the targets take turns for
    ``rounds`` rounds of ``connections`` each, so drift in the machine's load falls on
    all of them alike. Summary: percentiles of ``connect_us`` per target and each
    target's median over the first target's.
    """
    frames = []
    for rnd in range(rounds):
        for label, host in targets.items():
            args = ["lb", "--host", host, "--port", str(port), "--path", path, "--count", str(connections)]
            rows = run_probe(cluster, namespace, args, image=image, node=node, timeout=timeout)
            frames.append(pd.DataFrame(rows).assign(target=label, address=host, round=rnd))
    df = pd.concat(frames, ignore_index=True)
    if "error" not in df:
        df["error"] = None
    df = df[["target", "address", "round", "i", "connect_us", "total_us", "backend", "error"]]
    ok = df[df["error"].isna()]
    pct = analysis.percentiles(ok, "connect_us", by="target")
    first = next(iter(targets))
    summary = {"percentiles_us": pct.to_dict(orient="index"), "errors": int(df["error"].notna().sum()),
               "ratio_p50": {t: float(pct.loc[t, "p50"] / pct.loc[first, "p50"]) for t in pct.index}}
    params = {"targets": dict(targets), "namespace": namespace, "port": port, "connections": connections,
              "rounds": rounds, "path": path, "node": node, "image": probe_image(image)}
    return Measurement(df, summary, params)
