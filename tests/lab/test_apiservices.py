"""apiregistration.k8s.io/v1 APIServices with real kubectl: the Local APIServices of
the served groups, and an aggregated one stored but not available (the lab does not
proxy aggregated APIs)."""

from __future__ import annotations

import json

_METRICS = """apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.lab-test.example.com
spec:
  group: lab-test.example.com
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service: {namespace: kube-system, name: lab-test-server}
"""


def test_local_apiservices_are_listed_available(kubectl):
    lines = kubectl("get", "apiservices", stderr=False).splitlines()
    assert lines[0].split() == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    rows = {line.split()[0]: line.split()[1:3] for line in lines[1:]}
    for name in ("v1.", "v1.apps", "v1.batch", "v1.apiregistration.k8s.io"):
        assert rows[name] == ["Local", "True"], rows


def test_aggregated_apiservice_is_stored_not_available(kubectl):
    kubectl("apply", "-f", "-", input=_METRICS)
    try:
        row = kubectl("get", "apiservice", "v1beta1.lab-test.example.com", "--no-headers", stderr=False)
        assert row.split()[1:4] == ["kube-system/lab-test-server", "False", "(ServiceNotFound)"]
        obj = json.loads(kubectl("get", "apiservice", "v1beta1.lab-test.example.com", "-o", "json", stderr=False))
        assert obj["spec"]["service"]["port"] == 443
        assert "does not proxy aggregated APIs" in kubectl("describe", "apiservice", "v1beta1.lab-test.example.com")
        # not aggregated: its group is not discovered
        assert "lab-test.example.com" not in kubectl("api-versions", stderr=False)
    finally:
        kubectl("delete", "apiservice", "v1beta1.lab-test.example.com")
