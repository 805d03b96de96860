"""Reliability: many clients at once with watches that lose and repeat nothing, and a
supervisor SIGKILLed at each stage of ``lab up`` leaving nothing behind after ``down``.

The concurrency test runs 20 clients x 25 pods (500 pods, 20 watches at once): about
45 s on a busy 2-core machine.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from k8snet.lab import lifecycle
from k8snet.lab.config import LabConfig
from k8snet.lab.polling import wait_until

from .hoststate import host_snapshot, lab_leftovers
from .kube import pod

CLIENTS, PODS_PER_CLIENT = 20, 25
#: busybox sleep as PID 1 of its container ignores SIGTERM and would hold every delete
#: for the 30 s grace period; this one stops at once, like a well-behaved server.
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


# -- concurrency ---------------------------------------------------------------------

@dataclass
class Event:
    type: str
    name: str
    uid: str
    rv: int
    phase: str | None


@dataclass
class ClientRun:
    """One client's namespace, the pods it made and what its watch saw."""
    namespace: str
    api: client.ApiClient
    watch_api: client.ApiClient
    events: list[Event] = field(default_factory=list)
    watch_error: BaseException | None = None
    all_deleted: threading.Event = field(default_factory=threading.Event)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def pod_names(self) -> list[str]:
        return [f"p{i}" for i in range(PODS_PER_CLIENT)]


def _watch(run: ClientRun, since: str, deadline: float) -> None:
    """Records every pod event of ``run.namespace`` from resourceVersion ``since`` until
    every pod was DELETED (one stream: a reconnect could repeat or skip nothing we check)."""
    deleted: set[str] = set()
    w = watch.Watch()
    try:
        for ev in w.stream(client.CoreV1Api(run.watch_api).list_namespaced_pod, run.namespace,
                           resource_version=since, timeout_seconds=int(deadline - time.monotonic())):
            p = ev["object"]
            run.events.append(Event(ev["type"], p.metadata.name, p.metadata.uid, int(p.metadata.resource_version),
                                    p.status.phase if p.status else None))
            if ev["type"] == "DELETED":
                deleted.add(p.metadata.name)
                if len(deleted) == PODS_PER_CLIENT:
                    w.stop()
    except BaseException as err:  # reported by the test, with the namespace
        run.watch_error = err
    finally:
        run.all_deleted.set()


def _all_running(run: ClientRun) -> dict[str, int] | None:
    """The pods' resourceVersions once all are Running, else None."""
    pods = run.core.list_namespaced_pod(run.namespace).items
    if len(pods) == PODS_PER_CLIENT and all(p.status.phase == "Running" for p in pods):
        return {p.metadata.name: int(p.metadata.resource_version) for p in pods}
    return None


def _check_events(run: ClientRun, running_rvs: dict[str, int]) -> list[str]:
    """What is wrong with the events a watch saw (empty when nothing)."""
    problems = []
    names = set(run.pod_names())
    by_pod: dict[str, list[Event]] = {}
    for ev in run.events:
        by_pod.setdefault(ev.name, []).append(ev)
    if set(by_pod) != names:
        problems.append(f"events for {sorted(set(by_pod) ^ names)} differ from the pods made")
    rvs = [ev.rv for ev in run.events]
    if rvs != sorted(rvs) or len(set(rvs)) != len(rvs):
        problems.append("the watch's resourceVersions are not strictly increasing (a repeated or reordered event)")
    for name, evs in sorted(by_pod.items()):
        types = [ev.type for ev in evs]
        if types[0] != "ADDED" or types.count("ADDED") != 1:
            problems.append(f"{name}: expected one ADDED first, saw {types}")
        if types[-1] != "DELETED" or types.count("DELETED") != 1:
            problems.append(f"{name}: expected one DELETED last, saw {types}")
        if len({ev.uid for ev in evs}) != 1:
            problems.append(f"{name}: events of more than one uid")
        if name in running_rvs and running_rvs[name] not in {ev.rv for ev in evs}:
            problems.append(f"{name}: the Running version {running_rvs[name]} a list returned never came by the watch")
        if not any(ev.phase == "Running" for ev in evs):
            problems.append(f"{name}: no event showed it Running")
    return problems


def _namespace_gone(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
    except ApiException as err:
        return err.status == 404
    return False


def _timed(what: str, timings: dict[str, float], fn: Callable[[], object]) -> None:
    t0 = time.monotonic()
    fn()
    timings[what] = round(time.monotonic() - t0, 1)


def test_concurrent_clients_and_watches_lose_and_repeat_nothing(kubeconfig):
    """20 clients at once, each making 25 busybox pods in its own namespace while it watches that namespace: every
    pod is ADDED once, seen Running, DELETED once, every event in resourceVersion order,
    none lost (the version a list shows Running came by the watch); the namespaces go."""
    runs = [ClientRun(f"rel-{uuid.uuid4().hex[:6]}-{i}", config.new_client_from_config(config_file=kubeconfig),
                      config.new_client_from_config(config_file=kubeconfig)) for i in range(CLIENTS)]
    timings: dict[str, float] = {}
    deadline = time.monotonic() + 300
    watchers: list[threading.Thread] = []
    try:
        for run in runs:
            run.core.create_namespace({"metadata": {"name": run.namespace}})
            since = run.core.list_namespaced_pod(run.namespace).metadata.resource_version
            t = threading.Thread(target=_watch, args=(run, since, deadline), daemon=True)
            t.start()
            watchers.append(t)

        def create(run: ClientRun) -> None:
            for name in run.pod_names():
                run.core.create_namespaced_pod(run.namespace, pod(name, "busybox", SLEEPER))

        running: dict[str, dict[str, int]] = {}

        def wait_running(run: ClientRun) -> None:
            running[run.namespace] = wait_until(f"{PODS_PER_CLIENT} Running pods in {run.namespace}",
                                                lambda: _all_running(run), timeout=240, interval=0.5)

        def delete(run: ClientRun) -> None:
            for name in run.pod_names():
                run.core.delete_namespaced_pod(name, run.namespace)
            assert run.all_deleted.wait(timeout=max(1.0, deadline - time.monotonic())), run.namespace

        with ThreadPoolExecutor(CLIENTS) as pool:
            _timed("create", timings, lambda: list(pool.map(create, runs)))
            _timed("running", timings, lambda: list(pool.map(wait_running, runs)))
            _timed("delete", timings, lambda: list(pool.map(delete, runs)))
        for t in watchers:
            t.join(timeout=10)
        problems = {run.namespace: _check_events(run, running[run.namespace]) for run in runs}
        errors = {run.namespace: repr(run.watch_error) for run in runs if run.watch_error is not None}
        assert errors == {}
        assert {ns: p for ns, p in problems.items() if p} == {}
    finally:
        t0 = time.monotonic()
        for run in runs:
            try:
                run.core.delete_namespace(run.namespace)
            except ApiException as err:
                if err.status != 404:
                    raise
        core = runs[0].core
        wait_until("the namespaces to be gone", lambda: all(_namespace_gone(core, r.namespace) for r in runs),
                   timeout=120, interval=0.5)
        timings["namespaces gone"] = round(time.monotonic() - t0, 1)
        for run in runs:
            run.api.close()
            run.watch_api.close()
        print(f"\n{CLIENTS} x {PODS_PER_CLIENT} pods, seconds: {timings}")


# -- SIGKILL at each stage of `lab up` -------------------------------------------------
# test_lifecycle.py kills a Ready lab's supervisor (then `up` cleans the stale lab);
# these kill `lab up` and its supervisor before Ready, then `lab down` must clean up.

def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k8snet", "lab", *args], capture_output=True, text=True, timeout=180)


def _netns(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix)]


def _supervisor_started(cfg: LabConfig) -> bool:
    pid = lifecycle.status(cfg.name).pid
    return pid is not None and Path(f"/proc/{pid}").exists()


def _network_made(cfg: LabConfig) -> bool:
    """The host veth and every node's namespace are there."""
    nodes = {cfg.node_netns(i) for i in range(cfg.nodes)}
    return Path(f"/sys/class/net/{cfg.host_ifname}").exists() and nodes <= set(_netns(cfg.netns_prefix))


def _api_answers(cfg: LabConfig) -> bool:
    try:
        server = yaml.safe_load(cfg.kubeconfig_path.read_text())["clusters"][0]["cluster"]["server"]
        unverified = ssl._create_unverified_context()  # the lab's CA is not what is tested here
        with urllib.request.urlopen(f"{server}/healthz", timeout=1, context=unverified) as resp:
            return bool(resp.status == 200)
    except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError, urllib.error.URLError):
        return False


def _pod_runs(cfg: LabConfig) -> bool:
    """A pod's namespace (cluster DNS is the first pod) has a process in it."""
    for ns in _netns(f"{cfg.netns_prefix}p"):
        if subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.strip():
            return True
    return False


STAGES: dict[str, Callable[[LabConfig], bool]] = {
    "supervisor-started": _supervisor_started,
    "network-made": _network_made,
    "api-answers": _api_answers,
    "first-pod-runs": _pod_runs,
}


@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize("killed", ["up-and-supervisor", "supervisor"])
def test_sigkill_during_up_leaves_nothing(state_root, stage, killed):
    """SIGKILL the supervisor once ``stage`` is reached. ``up-and-supervisor``: `lab up`
    first, so neither can clean up, and `lab down` must. ``supervisor``: `lab up` sees it
    die, must fail with one clear line and remove the lab itself. Either way no namespace,
    interface, address, route, rule, mount, process or state folder of the lab is left,
    and the host is as before."""
    name = f"k{list(STAGES).index(stage)}{killed[0]}{os.getpid() % 10000}"
    cfg = LabConfig(name=name, nodes=2)
    before = host_snapshot(name)
    up = subprocess.Popen([sys.executable, "-m", "k8snet", "lab", "up", "--name", name, "--nodes", "2"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # The lab may take another node network than the default: read the saved config.
        wait_until(f"lab {name} to reach {stage}",
                   lambda: (cfg.state_dir / "config.json").exists() and STAGES[stage](lifecycle.load_config(name)),
                   timeout=60, interval=0.01)
        assert lifecycle.status(name).phase != "Ready", f"{stage} came only after Ready: nothing tested"
        supervisor = lifecycle.status(name).pid
        assert supervisor is not None
        if killed == "up-and-supervisor":
            up.kill()
            up.wait(timeout=10)
        os.kill(supervisor, signal.SIGKILL)
        if killed == "supervisor":
            out, _ = up.communicate(timeout=60)
            assert up.returncode != 0 and f"lab {name!r} failed to start" in out, out
            assert lab_leftovers(name) == {}, "`up` removes what its dead supervisor made"
        elif stage != "supervisor-started":
            assert lab_leftovers(name), "a killed supervisor leaves its lab behind until `down`"
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        down = _cli("down", "--name", name)
    assert down.returncode == 0, down.stdout + down.stderr
    assert lab_leftovers(name) == {}
    assert host_snapshot(name) == before
    assert not (state_root / name).exists()
