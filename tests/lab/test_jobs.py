"""batch/v1 Jobs with real kubectl: ``create job`` (a protobuf body), ``apply``, the
Table columns, ``wait --for=condition=complete|failed``, ``logs job/``, ``describe
job``, and the garbage collector removing a deleted Job's pods."""

from __future__ import annotations

import json

from k8snet.lab.polling import wait_until

_FAILING = """apiVersion: batch/v1
kind: Job
metadata:
  name: fails
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox:1.36
        command: ["sh", "-c", "exit 3"]
"""

_PARALLEL = """apiVersion: batch/v1
kind: Job
metadata:
  name: three
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox:1.36
        command: ["sh", "-c", "echo done"]
"""


def test_create_job_runs_to_completion_and_describes(kubectl):
    kubectl("create", "job", "pi", "--image=busybox:1.36", "--", "sh", "-c", "echo hello from a job")
    kubectl("wait", "--for=condition=complete", "job/pi", "--timeout=60s")
    assert "hello from a job" in kubectl("logs", "job/pi")
    header, row = kubectl("get", "job", "pi", stderr=False).splitlines()
    assert header.split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert row.split()[:3] == ["pi", "Complete", "1/1"]
    described = kubectl("describe", "job", "pi")
    for line in ("Completion Mode:  NonIndexed", "Backoff Limit:    6", "batch.kubernetes.io/job-name=pi",
                 "Pods Statuses:    0 Active (0 Ready) / 1 Succeeded / 0 Failed", "Job completed"):
        assert line in described, described
    pod = json.loads(kubectl("get", "pods", "-l", "job-name=pi", "-o", "json", stderr=False))["items"][0]
    ref = pod["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("Job", "pi", True)


def test_parallel_job_counts_completions(kubectl):
    kubectl("apply", "-f", "-", input=_PARALLEL)
    kubectl("wait", "--for=condition=complete", "job/three", "--timeout=60s")
    assert kubectl("get", "job", "three", "-o", "jsonpath={.status.succeeded}", stderr=False) == "3"
    assert "3/3" in kubectl("get", "job", "three", stderr=False)


def test_failing_job_stops_at_the_backoff_limit_and_its_pods_go_with_it(kubectl):
    kubectl("apply", "-f", "-", input=_FAILING)
    kubectl("wait", "--for=condition=failed", "job/fails", "--timeout=90s")
    status = json.loads(kubectl("get", "job", "fails", "-o", "json", stderr=False))["status"]
    assert status["failed"] == 2
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "Failed" in kubectl("get", "job", "fails", stderr=False)
    kubectl("delete", "job", "fails")
    wait_until("the deleted Job's pods to be garbage collected",
               lambda: "fails-" not in kubectl("get", "pods", stderr=False), timeout=30)
