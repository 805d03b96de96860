"""The same flow through the official `kubernetes` Python client: create, list, watch, logs, exec."""

from __future__ import annotations

import pytest
from kubernetes import client, config, watch

from .kube import exec_in, pod, ready_pods, wait_until


@pytest.fixture()
def api(kubeconfig):
    api_client = config.new_client_from_config(config_file=kubeconfig)
    yield api_client
    api_client.close()


def test_create_list_watch_logs_exec(api, namespace):
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                          "ports": [{"containerPort": 80}]}]}}}}
    list_rv = core.list_namespaced_pod(namespace).metadata.resource_version
    apps.create_namespaced_deployment(namespace, dep)

    seen: set[str] = set()
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, namespace, resource_version=list_rv, timeout_seconds=30):
        p = event["object"]
        if event["type"] in ("ADDED", "MODIFIED") and p.status.phase == "Running":
            seen.add(p.metadata.name)
        if len(seen) == 2:
            w.stop()
    assert len(seen) == 2, "the watch should report both pods Running"

    pods = ready_pods(core, namespace, "app=web", 2)
    assert {p.spec.node_name for p in pods} and all(p.status.pod_ip.startswith("10.244.") for p in pods)
    assert all(p.status.container_statuses[0].image_id for p in pods)

    core.create_namespaced_service(namespace, {"metadata": {"name": "web"},
                                               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    svc = core.read_namespaced_service("web", namespace)
    assert svc.spec.cluster_ip.startswith("10.96.") and svc.spec.type == "ClusterIP"

    client_pod = pod("client", "busybox", ["sh", "-c", "echo hello from $(hostname); sleep 3600"])
    core.create_namespaced_pod(namespace, client_pod)
    ready_pods(core, namespace, "app=client", 1)
    logs = wait_until("the client's log line", lambda: core.read_namespaced_pod_log("client", namespace) or None)
    assert logs == "hello from client\n"

    out, _, code = exec_in(core, namespace, "client", ["wget", "-qO-", "http://web"])
    assert code == 0 and "Welcome to nginx!" in out
    _, _, code = exec_in(core, namespace, "client", ["sh", "-c", "exit 3"])
    assert code == 3
    out, err, code = exec_in(core, namespace, "client", ["sh", "-c", "echo out; echo err >&2"])
    assert (out, err, code) == ("out\n", "err\n", 0)


def test_version_node_info_and_a_streaming_list(api, namespace):
    """Client 37 against a v1.37 lab: /version, NodeSystemInfo (kubeProxyVersion empty, as
    kubelets leave it since 1.33) and a streaming list ending with its bookmark."""
    info = client.VersionApi(api).get_code()
    assert (info.git_version, info.minor, info.emulation_minor) == ("v1.37.1", "37", "37")
    core = client.CoreV1Api(api)
    for node in core.list_node().items:
        assert node.status.node_info.kubelet_version == "v1.37.1"
        assert node.status.node_info.kube_proxy_version == ""
    for name in ("a", "b"):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": {"set": "x"}}})
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    events = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, namespace, label_selector="set=x",
                          send_initial_events=True, resource_version_match="NotOlderThan",
                          allow_watch_bookmarks=True, timeout_seconds=10):
        events.append(event)
        if event["type"] == "BOOKMARK":
            w.stop()
    assert sorted(e["object"].metadata.name for e in events[:-1]) == ["a", "b"]
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    bookmark = events[-1]["raw_object"]["metadata"]
    assert bookmark["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bookmark["resourceVersion"]) >= int(rv)
