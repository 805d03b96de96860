"""Benchmark: is the lab's event loop (controllers, kubelets, proxy) safe from hostile
request bodies? (issue 10, item 4: isolation of the API server)

    sudo python3 benchmarks/bench_isolation.py --lab NAME [--label before]   # a running lab
    sudo python3 benchmarks/bench_isolation.py --compare [--name isob]       # inline vs workers

Samples, over one persistent HTTPS connection, ``/healthz`` every 20 ms, and every
second a controller's reaction time (a pod created → seen bound to a node by a
watch: the scheduler's and the watch's round trip through the supervisor's loop),
first with the lab idle, then while hostile-but-allowed requests run in parallel
processes, each in a loop on its own connection:

- ``bomb``: the 419-byte billion-laughs YAML ConfigMap (refused with 400);
- ``json``: a ~1.4 MiB ConfigMap (1400 keys of 1 KiB) as JSON, alternately PUT,
  strategic-merge-patched and JSON-patched (replace /data);
- ``yaml``: the same object as YAML, alternately PUT and server-side applied;
- ``nested``: a ~1 MiB JSON ConfigMap whose unknown field holds 5000 lists nested
  95 deep (allowed: the limit is 100; the field is dropped), PUT.

``--compare`` brings up one lab per setting of ``K8SNET_API_BODY_WORKERS`` (0: every
body decoded in the event loop, as before isolation; unset: the default pool) and
measures both in one run. Writes data/results/isolation-bench.csv (one row per
setting, phase and metric) and isolation-bench.json (machine and conditions).
:func:`one_run` is ``benchmarks/run.py``'s ``isolation`` row: a fresh lab, the default
setting.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime as dt
import http.client
import json
import multiprocessing
import os
import platform
import ssl
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from k8snet.lab import lifecycle  # noqa: E402
from k8snet.lab.config import LabConfig  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "data" / "results"
NS = "bench-iso"
ALIAS_BOMB = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n"
              '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
              + "".join(f"  {n}: &{n} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
                        for p, n in zip("abcdefgh", "bcdefghi")))
LOAD_KINDS = ("bomb", "json", "yaml", "nested")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class Https:
    """One keep-alive HTTPS connection with the admin certificate of a kubeconfig."""

    def __init__(self, kubeconfig: str, timeout: float = 120.0):
        cfg = yaml.safe_load(Path(kubeconfig).read_text())
        cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
        host, port = cluster["server"].removeprefix("https://").split(":")
        ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        with tempfile.NamedTemporaryFile("wb") as cert, tempfile.NamedTemporaryFile("wb") as key:
            cert.write(base64.b64decode(user["client-certificate-data"]))
            cert.flush()
            key.write(base64.b64decode(user["client-key-data"]))
            key.flush()
            ctx.load_cert_chain(cert.name, key.name)
        self.conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=timeout)
        self.server = (host, int(port), ctx)

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str = "application/json") -> tuple[int, bytes]:
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            return resp.status, resp.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()  # the server may close a keep-alive connection: once more on a new one
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            return resp.status, resp.read()


# -- hostile-but-allowed bodies ------------------------------------------------------

def big_configmap(name: str) -> dict[str, Any]:
    """~1.4 MiB as JSON: a ConfigMap's data just under its 1 MiB limit and a 400 KiB
    unknown field (dropped); under etcd's 1.5 MiB and the 3 MiB body limit."""
    fill = uuid.uuid4().hex * 31  # ~1 KiB, new per call so every write changes the object
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {f"key-{i:04d}": fill for i in range(1000)}, "padding": "p" * 400_000}


def nested_configmap(name: str) -> dict[str, Any]:
    deep: Any = []
    for _ in range(93):  # 95 levels below the root, counted as the server counts them
        deep = [deep]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"},
            "extraField": [deep] * 5000}


def load_loop(kind: str, kubeconfig: str, stop: Any, out: Any, ready: Any) -> None:
    """One load process: requests of one kind in a loop; says when it is ``ready`` (its
    object created), reports (op, seconds, code) to ``out``."""
    api = Https(kubeconfig)
    cms = f"/api/v1/namespaces/{NS}/configmaps"
    name = f"{kind}-{os.getpid()}"
    if kind != "bomb":
        first = nested_configmap(name) if kind == "nested" else big_configmap(name)
        code, body = api.request("POST", cms, json.dumps(first).encode())
        if code != 201:
            print(f"{kind}: creating {name} failed: {body[:300]!r}", file=sys.stderr)
    ready.put(kind)
    samples: list[tuple[str, float, int]] = []
    try:
        _requests(kind, api, cms, name, stop, samples)
    finally:
        out.put(samples)


def _requests(kind: str, api: Https, cms: str, name: str, stop: Any, samples: list[tuple[str, float, int]]) -> None:
    i = 0
    while not stop.is_set():
        i += 1
        if kind == "bomb":
            op, method, path, body, ctype = "bomb", "POST", cms, ALIAS_BOMB.encode(), "application/yaml"
        elif kind == "json":
            obj = big_configmap(name)
            op, method, path, ctype = [("json-put", "PUT", f"{cms}/{name}", "application/json"),
                                       ("json-smp", "PATCH", f"{cms}/{name}", "application/strategic-merge-patch+json"),
                                       ("json-patch", "PATCH", f"{cms}/{name}", "application/json-patch+json")][i % 3]
            payload: Any = ([{"op": "replace", "path": "/data", "value": obj["data"]}] if op == "json-patch"
                            else {"data": obj["data"]} if op == "json-smp" else obj)
            body = json.dumps(payload).encode()
        elif kind == "yaml":
            obj = big_configmap(name)
            op, method, path, ctype = [("yaml-put", "PUT", f"{cms}/{name}", "application/yaml"),
                                       ("yaml-apply", "PATCH", f"{cms}/{name}?fieldManager=bench&force=true",
                                        "application/apply-patch+yaml")][i % 2]
            body = yaml.safe_dump(obj).encode()
        else:
            op, method, path, body, ctype = ("nested-put", "PUT", f"{cms}/{name}",
                                             json.dumps(nested_configmap(name)).encode(), "application/json")
        started = time.monotonic()
        code, _ = api.request(method, path, body, ctype)
        samples.append((op, time.monotonic() - started, code))


# -- what the loop's other users see ----------------------------------------------------

class Probe:
    """/healthz latency every 20 ms and pod → bound reaction every second, until stopped."""

    def __init__(self, kubeconfig: str):
        self.kubeconfig = kubeconfig
        self.healthz: list[float] = []
        self.reactions: list[float] = []
        self.stop = threading.Event()
        self.bound: dict[str, float] = {}
        self._bound_changed = threading.Condition()
        self.threads = [threading.Thread(target=self._healthz, daemon=True),
                        threading.Thread(target=self._react, daemon=True),
                        threading.Thread(target=self._watch, daemon=True)]

    def __enter__(self) -> Probe:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for t in self.threads[:2]:
            t.join()

    def _healthz(self) -> None:
        api = Https(self.kubeconfig)
        while not self.stop.is_set():
            started = time.monotonic()
            code, _ = api.request("GET", "/healthz")
            assert code == 200
            self.healthz.append(time.monotonic() - started)
            time.sleep(max(0.0, 0.02 - (time.monotonic() - started)))

    def _watch(self) -> None:
        """Pods of the namespace as a watch stream: when each is first seen bound."""
        host, port, ctx = Https(self.kubeconfig).server
        conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=3600)
        conn.request("GET", f"/api/v1/namespaces/{NS}/pods?watch=true&allowWatchBookmarks=false")
        resp = conn.getresponse()
        while True:
            line = resp.readline()
            if not line:
                return
            pod = json.loads(line)["object"]
            if (pod.get("spec") or {}).get("nodeName"):
                with self._bound_changed:
                    self.bound.setdefault(pod["metadata"]["name"], time.monotonic())
                    self._bound_changed.notify_all()

    def _react(self) -> None:
        api = Https(self.kubeconfig)
        pods = f"/api/v1/namespaces/{NS}/pods"
        while not self.stop.is_set():
            name = f"react-{uuid.uuid4().hex[:8]}"
            pod = {"metadata": {"name": name}, "spec": {"terminationGracePeriodSeconds": 0, "containers": [
                {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}
            started = time.monotonic()
            code, body = api.request("POST", pods, json.dumps(pod).encode())
            assert code == 201, body[:300]
            with self._bound_changed:
                self._bound_changed.wait_for(lambda name=name: name in self.bound, timeout=60)
            if name in self.bound:
                self.reactions.append(self.bound[name] - started)
            api.request("DELETE", f"{pods}/{name}", json.dumps({"gracePeriodSeconds": 0}).encode())
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_ms": statistics.median(values) * 1000, "p99_ms": percentile(values, 99) * 1000,
            "max_ms": max(values) * 1000}


def measure(kubeconfig: str, idle_s: float, load_s: float, load: dict[str, int]) -> dict[str, Any]:
    api = Https(kubeconfig)
    api.request("POST", "/api/v1/namespaces", json.dumps({"metadata": {"name": NS}}).encode())
    time.sleep(1.0)  # the namespace's service account and its token controller settle
    result: dict[str, Any] = {}
    with Probe(kubeconfig) as probe:
        time.sleep(idle_s)
    result["idle"] = {"healthz": stats(probe.healthz), "pod_bound": stats(probe.reactions)}
    ctx = multiprocessing.get_context("spawn")
    stop, out, ready = ctx.Event(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=load_loop, args=(kind, kubeconfig, stop, out, ready))
             for kind, count in load.items() for _ in range(count)]
    for p in procs:
        p.start()
    for _ in procs:  # sample the load, not the processes' start-up (a spawned child imports its parent's __main__)
        ready.get(timeout=300)
    with Probe(kubeconfig) as probe:
        time.sleep(load_s)
    stop.set()
    samples = [s for _ in procs for s in out.get(timeout=300)]
    for p in procs:
        p.join()
    ops: dict[str, dict[str, Any]] = {}
    for op in sorted({s[0] for s in samples}):
        mine = [s for s in samples if s[0] == op]
        ops[op] = {**stats([s[1] for s in mine]), "codes": sorted({s[2] for s in mine})}
    result["load"] = {"healthz": stats(probe.healthz), "pod_bound": stats(probe.reactions), "requests": ops}
    api.request("DELETE", f"/api/v1/namespaces/{NS}")
    return result


def rows_of(label: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for phase in ("idle", "load"):
        metrics = {k: v for k, v in result[phase].items() if k != "requests"}
        metrics.update(result[phase].get("requests", {}))
        for metric, s in metrics.items():
            rows.append({"setting": label, "phase": phase, "metric": metric, "n": s["n"],
                         "p50_ms": s.get("p50_ms"), "p99_ms": s.get("p99_ms"), "max_ms": s.get("max_ms"),
                         "codes": " ".join(map(str, s.get("codes", [])))})
    return rows


def run_on_new_lab(name: str, workers: str | None, idle_s: float, load_s: float,
                   load: dict[str, int]) -> dict[str, Any]:
    saved = os.environ.pop("K8SNET_API_BODY_WORKERS", None)
    if workers is not None:
        os.environ["K8SNET_API_BODY_WORKERS"] = workers  # read by the supervisor lab up starts
    try:
        st = lifecycle.up(LabConfig(name=name, nodes=2))
    finally:
        os.environ.pop("K8SNET_API_BODY_WORKERS", None)
        if saved is not None:
            os.environ["K8SNET_API_BODY_WORKERS"] = saved
    try:
        return measure(str(st.kubeconfig), idle_s, load_s, load)
    finally:
        lifecycle.down(name)


def one_run(lab: str, idle_s: float = 10.0, load_s: float = 30.0, json_writers: int = 0, yaml_writers: int = 2,
            nested_writers: int = 0) -> dict[str, float]:
    """A fresh lab ``lab`` with the default body workers (down again on return): /healthz
    and pod binding idle, then under one bomb process and that many processes of each
    other kind (the defaults: the load of the README's recorded figure);
    p50 / p99 in milliseconds."""
    result = run_on_new_lab(lab, None, idle_s, load_s, {"bomb": 1, "json": json_writers, "yaml": yaml_writers,
                                                      "nested": nested_writers})
    bomb = result["load"]["requests"].get("bomb", {"n": 0})
    if bomb["n"] == 0 or bomb["codes"] != [400]:
        # the bomb's answer time means something only if it was answered, and refused
        raise RuntimeError(f"the alias bomb was not refused with 400 alone: {bomb}")
    idle, load = result["idle"], result["load"]
    samples = {"healthz_idle": idle["healthz"], "pod_bound_idle": idle["pod_bound"], "healthz_load": load["healthz"],
               "pod_bound_load": load["pod_bound"], **{op.replace("-", "_"): s for op, s in load["requests"].items()}}
    out: dict[str, float] = {}
    for name, s in samples.items():
        if s["n"]:  # a short phase may see no pod bound
            out |= {f"{name}_p50_ms": s["p50_ms"], f"{name}_p99_ms": s["p99_ms"], f"{name}_n": s["n"]}
    return out


def load_of(args: argparse.Namespace) -> dict[str, int]:
    return {"bomb": args.bombs, "json": args.json, "yaml": args.yaml, "nested": args.nested}


def main() -> int:
    parser = argparse.ArgumentParser()
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--lab", help="measure this running lab")
    target.add_argument("--compare", action="store_true",
                        help="bring up a lab with K8SNET_API_BODY_WORKERS=0, then one with the default; measure both")
    parser.add_argument("--label", default="current", help="the setting's name in the results (--lab)")
    parser.add_argument("--name", default="isob", help="the lab --compare brings up (and down)")
    parser.add_argument("--out", default="isolation-bench", help="file name (without .csv/.json) in data/results")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of sampling without load")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of sampling under load")
    parser.add_argument("--bombs", type=int, default=1, help="processes sending the alias bomb")
    parser.add_argument("--json", type=int, default=2, help="processes writing ~1.4 MiB JSON")
    parser.add_argument("--yaml", type=int, default=2, help="processes writing ~1.4 MiB YAML")
    parser.add_argument("--nested", type=int, default=1, help="processes writing 95-deep JSON")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]  # other work on the machine skews the timings: record it
    if args.lab:
        st = lifecycle.status(args.lab)
        if st.phase != "Ready" or st.kubeconfig is None:
            raise SystemExit(f"lab {args.lab!r} is {st.phase}: {st.message}")
        results = {args.label: measure(str(st.kubeconfig), args.idle, args.seconds, load_of(args))}
    else:
        results = {"inline (K8SNET_API_BODY_WORKERS=0)": run_on_new_lab(args.name, "0", args.idle, args.seconds,
                                                                        load_of(args)),
                   "workers (default)": run_on_new_lab(args.name, None, args.idle, args.seconds, load_of(args))}
    rows = [r for label, res in results.items() for r in rows_of(label, res)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{args.out}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    provenance = {
        "benchmark": "benchmarks/bench_isolation.py", "argv": sys.argv[1:],
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "nodes": 2, "load_processes": load_of(args), "idle_s": args.idle, "load_s": args.seconds,
        "machine": {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "loadavg_1m_start": load_start, "loadavg_1m_end": os.getloadavg()[0]},
        "results": results,
        "goals": {"bomb_p99_ms": 100, "healthz_under_load_p99_ms": 50},
    }
    (RESULTS / f"{args.out}.json").write_text(json.dumps(provenance, indent=2) + "\n")
    for label, res in results.items():
        print(label)
        for row in rows_of(label, res):
            print(f"  {row['phase']:5} {row['metric']:12} n={row['n']:<5} p50={row['p50_ms'] or 0:8.1f} ms "
                  f"p99={row['p99_ms'] or 0:8.1f} ms max={row['max_ms'] or 0:8.1f} ms {row['codes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
