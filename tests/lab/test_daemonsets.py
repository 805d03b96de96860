"""apps/v1 DaemonSets with real kubectl: one pod per node, the Table columns,
``rollout status`` through a rolling image update, ``describe daemonset``."""

from __future__ import annotations

import json

_AGENT = """apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: c
        image: busybox:1.36
        command: ["sleep", "3600"]
"""


def _nodes_running(kubectl, image: str) -> list[str]:
    pods = json.loads(kubectl("get", "pods", "-l", "app=agent", "-o", "json", stderr=False))["items"]
    return sorted(p["spec"]["nodeName"] for p in pods
                  if not p["metadata"].get("deletionTimestamp") and p["spec"]["containers"][0]["image"] == image)


def test_daemonset_runs_one_pod_per_node_and_rolls_an_update(kubectl):
    nodes = sorted(json.loads(kubectl("get", "nodes", "-o", "json", stderr=False))["items"],
                   key=lambda n: n["metadata"]["name"])
    names = [n["metadata"]["name"] for n in nodes]
    kubectl("apply", "-f", "-", input=_AGENT)
    kubectl("rollout", "status", "daemonset/agent", "--timeout=60s")
    assert _nodes_running(kubectl, "busybox:1.36") == names
    header, row = kubectl("get", "daemonset", "agent", stderr=False).splitlines()
    assert header.split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR",
                              "AGE"]
    count = str(len(names))
    assert row.split()[:7] == ["agent", count, count, count, count, count, "<none>"]
    described = kubectl("describe", "daemonset", "agent")
    assert f"Desired Number of Nodes Scheduled: {count}" in described and "SuccessfulCreate" in described
    kubectl("set", "image", "daemonset/agent", "c=busybox:1.37")
    kubectl("rollout", "status", "daemonset/agent", "--timeout=90s")
    assert _nodes_running(kubectl, "busybox:1.37") == names
