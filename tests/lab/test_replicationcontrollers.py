"""v1 ReplicationControllers with real kubectl: apply, the Table columns, ``scale``,
``describe``, ``get all`` (the ``all`` category)."""

from __future__ import annotations

_WEB = """apiVersion: v1
kind: ReplicationController
metadata:
  name: web
spec:
  replicas: 2
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx
"""


def test_replication_controller_keeps_and_scales_its_pods(kubectl):
    kubectl("apply", "-f", "-", input=_WEB)
    kubectl("wait", "--for=jsonpath={.status.readyReplicas}=2", "rc/web", "--timeout=60s")
    header, row = kubectl("get", "rc", "web", "-o", "wide", stderr=False).splitlines()
    assert header.split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert row.split()[:4] == ["web", "2", "2", "2"] and row.split()[-1] == "app=web"
    kubectl("scale", "rc", "web", "--replicas=3")
    kubectl("wait", "--for=jsonpath={.status.readyReplicas}=3", "rc/web", "--timeout=60s")
    assert "Replicas:     3 current / 3 desired" in kubectl("describe", "rc", "web")
    assert "replicationcontroller/web" in kubectl("get", "all", stderr=False)
