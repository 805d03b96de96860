"""Reliability: many clients at once with watches that lose and repeat nothing, and a
supervisor SIGKILLed at each stage of ``lab up`` leaving nothing behind after ``down``.

The concurrency test's size: ``CLIENTS`` x ``PODS_PER_CLIENT`` pods. By default 10 x 10
(100 pods, 10 clients and 10 watches at once: fits a 2-core CI machine); with
``K8SNET_SOAK=1`` the full 20 x 25 (500 pods).
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

SOAK = os.environ.get("K8SNET_SOAK") == "1"
CLIENTS, PODS_PER_CLIENT = (20, 25) if SOAK else (10, 10)
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
    """CLIENTS clients at once (10, or 20 with K8SNET_SOAK=1), each making PODS_PER_CLIENT
    busybox pods (10, or 25) in its own namespace while it watches that namespace: every
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
