"""Server-side Tables: columns, cells and ages as kubectl 1.32 expects them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from k8snet.lab.api import resources
from k8snet.lab.api.tables import format_label_selector, human_duration, selector_string
from k8snet.lab.api.tableview import to_table
from k8snet.lab.errors import ApiError

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(**kw: float) -> str:
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def table(key: str, *objs: dict, **kw) -> dict:
    return to_table(resources.by_key(key), list(objs), resource_version="42", now=NOW, **kw)


def cells(key: str, obj: dict) -> list:
    return table(key, obj)["rows"][0]["cells"]


def names(key: str) -> list[str]:
    return [c["name"] for c in table(key)["columnDefinitions"]]


@pytest.mark.parametrize("seconds,text", [
    (-5, "<invalid>"), (-1, "0s"), (-0.5, "0s"), (0, "0s"), (13, "13s"), (119, "119s"),
    (120, "2m"), (125, "2m5s"), (599, "9m59s"), (600, "10m"), (179 * 60 + 59, "179m"),
    (3 * 3600, "3h"), (3 * 3600 + 60 * 7, "3h7m"), (8 * 3600, "8h"), (47 * 3600, "47h"),
    (48 * 3600, "2d"), (50 * 3600, "2d2h"), (8 * 86400, "8d"), (729 * 86400, "729d"),
    (730 * 86400, "2y"), (731 * 86400, "2y1d"), (8 * 365 * 86400, "8y"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_table_shape_and_partial_metadata() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                        "creationTimestamp": ago(minutes=5)},
           "spec": {"containers": [{"name": "nginx"}]}, "status": {"phase": "Pending"}}
    t = table("pods", pod)
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "42"}
    assert t["columnDefinitions"][0]["format"] == "name"
    assert [c["priority"] for c in t["columnDefinitions"]] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    obj = t["rows"][0]["object"]
    assert obj == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": pod["metadata"]}
    assert table("pods", pod, include_object="Object")["rows"][0]["object"] == pod
    assert table("pods", pod, include_object="None")["rows"][0]["object"] is None
    assert table("pods", pod, with_headers=False)["columnDefinitions"] == []
    with pytest.raises(ApiError) as err:
        table("pods", pod, include_object="Bogus")
    assert err.value.code == 400
    json.dumps(t)  # the whole table is plain JSON


def test_column_definitions_are_stable_between_calls() -> None:
    for res in resources.RESOURCES:
        a = to_table(res, [], resource_version="1")["columnDefinitions"]
        a[0]["name"] = "mutated by a caller"
        b = to_table(res, [], resource_version="2")["columnDefinitions"]
        c = to_table(res, [], resource_version="3")["columnDefinitions"]
        assert json.dumps(b) == json.dumps(c) and b[0]["name"] != "mutated by a caller"


def test_every_served_resource_has_real_columns() -> None:
    assert names("pods") == ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node",
                             "Readiness Gates"]
    assert names("services") == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]
    assert names("endpoints") == ["Name", "Endpoints", "Age"]
    assert names("discovery.k8s.io/endpointslices") == ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    assert names("apps/deployments") == ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers",
                                         "Images", "Selector"]
    assert names("apps/replicasets") == ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images",
                                         "Selector"]
    assert names("secrets") == ["Name", "Type", "Data", "Age"]
    assert names("configmaps") == ["Name", "Data", "Age"]
    assert names("namespaces") == ["Name", "Status", "Age"]
    assert names("nodes")[:5] == ["Name", "Status", "Roles", "Age", "Version"]
    assert names("events") == names("events.k8s.io/events") == [
        "Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count", "Name"]
    assert names("serviceaccounts") == ["Name", "Secrets", "Age"]
    for res in resources.RESOURCES:
        cols = to_table(res, [], resource_version="1")["columnDefinitions"]
        assert any(c["format"] == "name" for c in cols), res.key
        assert all(c["description"] for c in cols), res.key


def running(name: str, ready: bool = True, restarts: int = 0, finished: str | None = None) -> dict:
    cs = {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": ago(hours=1)}}}
    if finished:
        cs["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": finished}}
    return cs


def pod(containers: list[str], statuses: list[dict], **extra) -> dict:
    p = {"metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(seconds=13)},
         "spec": {"containers": [{"name": c} for c in containers], "nodeName": "kind-worker"},
         "status": {"phase": "Running", "podIPs": [{"ip": "10.244.1.5"}], "containerStatuses": statuses}}
    for k, v in extra.items():
        p[k].update(v)
    return p


def test_pod_running() -> None:
    assert cells("pods", pod(["nginx"], [running("nginx")])) == [
        "web", "1/1", "Running", "0", "13s", "10.244.1.5", "kind-worker", "<none>", "<none>"]


def test_pod_pending_unscheduled() -> None:
    p = {"metadata": {"name": "web", "creationTimestamp": ago(seconds=1)},
         "spec": {"containers": [{"name": "a"}, {"name": "b"}]}, "status": {"phase": "Pending"}}
    assert cells("pods", p) == ["web", "0/2", "Pending", "0", "1s", "<none>", "<none>", "<none>", "<none>"]


@pytest.mark.parametrize("state,status", [
    ({"waiting": {"reason": "ContainerCreating"}}, "ContainerCreating"),
    ({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}, "CrashLoopBackOff"),
    ({"waiting": {"reason": "ErrImagePull"}}, "ErrImagePull"),
    ({"waiting": {"reason": "ImagePullBackOff"}}, "ImagePullBackOff"),
    ({"terminated": {"exitCode": 0, "reason": "Completed"}}, "Completed"),
    ({"terminated": {"exitCode": 2}}, "ExitCode:2"),
    ({"terminated": {"exitCode": 137, "signal": 9}}, "Signal:9"),
])
def test_pod_status_from_container_state(state: dict, status: str) -> None:
    p = pod(["c"], [{"name": "c", "ready": False, "restartCount": 0, "state": state}])
    assert cells("pods", p)[1:3] == ["0/1", status]


def test_pod_first_container_state_wins() -> None:
    statuses = [{"name": "a", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                {"name": "b", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]
    assert cells("pods", pod(["a", "b"], statuses))[2] == "CrashLoopBackOff"


def test_pod_completed_but_one_running() -> None:
    statuses = [{"name": "a", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                running("b")]
    p = pod(["a", "b"], statuses)
    assert cells("pods", p)[1:3] == ["1/2", "NotReady"]
    p["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    assert cells("pods", p)[2] == "Running"


def test_pod_restarts_with_last_restart_age() -> None:
    p = pod(["a"], [running("a", restarts=5, finished=ago(seconds=5))])
    assert cells("pods", p)[3] == "5 (5s ago)"
    assert cells("pods", pod(["a"], [running("a", restarts=2)]))[3] == "2"


def test_pod_running_but_not_ready() -> None:
    assert cells("pods", pod(["a"], [running("a", ready=False)]))[1:3] == ["0/1", "Running"]


def test_pod_terminating_and_succeeded_conditions() -> None:
    p = pod(["a"], [running("a")], metadata={"deletionTimestamp": ago(seconds=1)})
    assert cells("pods", p)[2] == "Terminating"
    done = pod(["a"], [{"name": "a", "ready": False, "restartCount": 0,
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
               status={"phase": "Succeeded"}, metadata={"deletionTimestamp": ago(seconds=1)})
    row = table("pods", done)["rows"][0]
    assert row["cells"][2] == "Completed"  # terminal pods never show Terminating
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                  "message": "The pod has completed successfully."}]
    assert "conditions" not in table("pods", p)["rows"][0]


def test_pod_init_containers() -> None:
    base = {"metadata": {"name": "web", "creationTimestamp": ago(seconds=3)},
            "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "c"}]},
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "c", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}}

    def with_init(*states: dict) -> dict:
        p = json.loads(json.dumps(base))
        p["status"]["initContainerStatuses"] = [
            {"name": f"i{n + 1}", "ready": False, "restartCount": 0, "state": s} for n, s in enumerate(states)]
        return p

    assert cells("pods", with_init({"running": {}}, {"waiting": {"reason": "PodInitializing"}}))[2] == "Init:0/2"
    assert cells("pods", with_init({"terminated": {"exitCode": 0}}, {"running": {}}))[2] == "Init:1/2"
    assert cells("pods", with_init({"terminated": {"exitCode": 1, "reason": "Error"}}, {}))[2] == "Init:Error"
    assert cells("pods", with_init({"terminated": {"exitCode": 3}}, {}))[2] == "Init:ExitCode:3"
    assert cells("pods", with_init({"waiting": {"reason": "CrashLoopBackOff"}}, {}))[2] == "Init:CrashLoopBackOff"
    assert cells("pods", with_init({"terminated": {"exitCode": 0}}, {"terminated": {"exitCode": 0}}))[2] == \
        "PodInitializing"


def test_pod_sidecar_counts_in_ready() -> None:
    p = pod(["c"], [running("c")])
    p["spec"]["initContainers"] = [{"name": "side", "restartPolicy": "Always"}]
    p["status"]["initContainerStatuses"] = [{"name": "side", "ready": True, "started": True, "restartCount": 1,
                                             "state": {"running": {}}}]
    assert cells("pods", p)[1:4] == ["2/2", "Running", "1"]


def test_pod_readiness_gates() -> None:
    p = pod(["c"], [running("c")])
    p["spec"]["readinessGates"] = [{"conditionType": "x/a"}, {"conditionType": "x/b"}]
    p["status"]["conditions"] = [{"type": "x/a", "status": "True"}]
    assert cells("pods", p)[8] == "1/2"


def svc(type_: str = "ClusterIP", **spec) -> dict:
    return {"metadata": {"name": "my-nginx", "creationTimestamp": ago(seconds=21)},
            "spec": {"type": type_, "clusterIP": "10.0.162.149", "clusterIPs": ["10.0.162.149"], **spec},
            "status": {"loadBalancer": {}}}


def test_service_cluster_ip() -> None:
    s = svc(ports=[{"port": 80, "protocol": "TCP", "targetPort": 80}], selector={"run": "my-nginx"})
    assert cells("services", s) == ["my-nginx", "ClusterIP", "10.0.162.149", "<none>", "80/TCP", "21s", "run=my-nginx"]


def test_service_node_ports_and_dns_ports() -> None:
    s = svc("NodePort", ports=[{"name": "http", "port": 8080, "nodePort": 31704, "protocol": "TCP"},
                               {"name": "https", "port": 443, "nodePort": 32453, "protocol": "TCP"}])
    assert cells("services", s)[3:5] == ["<none>", "8080:31704/TCP,443:32453/TCP"]
    dns = svc(ports=[{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}, {"port": 9153, "protocol": "TCP"}])
    assert cells("services", dns)[4] == "53/UDP,53/TCP,9153/TCP"
    assert cells("services", svc())[4] == "<none>"
    assert cells("services", svc())[6] == "<none>"


def test_service_external_ips() -> None:
    lb = svc("LoadBalancer", ports=[{"port": 80, "nodePort": 30163, "protocol": "TCP"}])
    assert cells("services", lb)[3] == "<pending>"
    lb["status"]["loadBalancer"] = {"ingress": [{"ip": "172.18.0.10"}, {"hostname": "a.example"}]}
    assert cells("services", lb)[3] == "172.18.0.10,a.example"
    lb["spec"]["externalIPs"] = ["1.2.3.4"]
    assert cells("services", lb)[3] == "172.18.0.10,a.example,1.2.3.4"
    assert cells("services", svc(externalIPs=["1.1.1.1", "2.2.2.2"]))[3] == "1.1.1.1,2.2.2.2"
    ext = {"metadata": {"name": "x"}, "spec": {"type": "ExternalName", "externalName": "example.com"}}
    assert cells("services", ext)[1:4] == ["ExternalName", "<none>", "example.com"]
    headless = svc(clusterIP="None", clusterIPs=["None"])
    assert cells("services", headless)[2] == "None"


def test_endpoints() -> None:
    ep = {"metadata": {"name": "my-nginx", "creationTimestamp": ago(minutes=1)}, "subsets": [
        {"addresses": [{"ip": "10.244.2.5"}, {"ip": "10.244.3.4"}], "notReadyAddresses": [{"ip": "10.244.1.9"}],
         "ports": [{"port": 80, "protocol": "TCP"}]}]}
    assert cells("endpoints", ep) == ["my-nginx", "10.244.2.5:80,10.244.3.4:80", "60s"]
    assert cells("endpoints", {"metadata": {"name": "e"}})[1] == "<none>"
    many = {"metadata": {"name": "e"}, "subsets": [
        {"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 5)], "ports": [{"port": 80}, {"port": 443}]}]}
    assert cells("endpoints", many)[1] == "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 5 more..."
    bare = {"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]}
    assert cells("endpoints", bare)[1] == "10.0.0.1"


def test_endpoint_slice() -> None:
    es = {"metadata": {"name": "my-nginx-7vzhx", "creationTimestamp": ago(seconds=21)}, "addressType": "IPv4",
          "ports": [{"name": "", "port": 80, "protocol": "TCP"}],
          "endpoints": [{"addresses": ["10.244.2.5"]}, {"addresses": ["10.244.3.4"]}]}
    assert cells("discovery.k8s.io/endpointslices", es) == ["my-nginx-7vzhx", "IPv4", "80", "10.244.2.5,10.244.3.4", "21s"]
    empty = {"metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": None, "ports": None}
    assert cells("discovery.k8s.io/endpointslices", empty)[2:4] == ["<unset>", "<unset>"]
    big = {"metadata": {"name": "e"}, "addressType": "IPv4", "ports": [{"port": p} for p in (1, 2, 3, 4)],
           "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(5)]}
    assert cells("discovery.k8s.io/endpointslices", big)[2:4] == ["1,2,3 + 1 more...", "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more..."]


def test_deployment_and_replica_set() -> None:
    template = {"metadata": {"labels": {"run": "my-nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}, {"name": "side", "image": "busybox"}]}}
    d = {"metadata": {"name": "my-nginx", "creationTimestamp": ago(minutes=3)},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"run": "my-nginx"}}, "template": template},
         "status": {"replicas": 2, "readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}}
    assert cells("apps/deployments", d) == ["my-nginx", "1/2", 2, 1, "3m", "nginx,side", "nginx,busybox", "run=my-nginx"]
    fresh = {"metadata": {"name": "d"}, "spec": {"replicas": 3, "template": template}, "status": {}}
    assert cells("apps/deployments", fresh)[1:4] == ["0/3", 0, 0]
    rs = {"metadata": {"name": "my-nginx-5d7f", "creationTimestamp": ago(minutes=3)},
          "spec": {"replicas": 2, "selector": {"matchLabels": {"run": "my-nginx", "pod-template-hash": "5d7f"}},
                   "template": template}, "status": {"replicas": 2, "readyReplicas": 2}}
    assert cells("apps/replicasets", rs) == ["my-nginx-5d7f", 2, 2, 2, "3m", "nginx,side", "nginx,busybox",
                                             "pod-template-hash=5d7f,run=my-nginx"]


def test_selectors() -> None:
    sel = {"matchLabels": {"b": "1"}, "matchExpressions": [
        {"key": "a", "operator": "In", "values": ["y", "x"]}, {"key": "c", "operator": "Exists"},
        {"key": "d", "operator": "DoesNotExist"}, {"key": "e", "operator": "NotIn", "values": ["z"]}]}
    assert selector_string(sel) == "a in (x,y),b=1,c,!d,e notin (z)"
    assert selector_string(None) == selector_string({}) == ""
    assert format_label_selector({}) == "<none>"


def test_secret_configmap_namespace_serviceaccount() -> None:
    s = {"metadata": {"name": "nginxsecret", "creationTimestamp": ago(seconds=9)}, "type": "kubernetes.io/tls",
         "data": {"tls.crt": "eA==", "tls.key": "eA=="}}
    assert cells("secrets", s) == ["nginxsecret", "kubernetes.io/tls", 2, "9s"]
    cm = {"metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"b": "AA=="}}
    assert cells("configmaps", cm) == ["c", 2, "<unknown>"]
    ns = {"metadata": {"name": "default", "creationTimestamp": ago(days=3)}, "status": {"phase": "Active"}}
    assert cells("namespaces", ns) == ["default", "Active", "3d"]
    sa = {"metadata": {"name": "default", "creationTimestamp": ago(hours=5, minutes=2)}}
    assert cells("serviceaccounts", sa) == ["default", 0, "5h2m"]


def test_node() -> None:
    node = {"metadata": {"name": "kind-control-plane", "creationTimestamp": ago(minutes=30),
                         "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master"}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "172.31.0.2"}, {"type": "Hostname", "address": "x"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian", "kernelVersion": "6.1",
                                    "containerRuntimeVersion": ""}}}
    assert cells("nodes", node) == ["kind-control-plane", "Ready,SchedulingDisabled", "control-plane,master", "30m",
                                    "v1.32.0", "172.31.0.2", "<none>", "Debian", "6.1", "<unknown>"]
    bare = {"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    assert cells("nodes", bare)[1:3] == ["NotReady", "<none>"]
    assert cells("nodes", {"metadata": {"name": "n"}})[1] == "Unknown"


def test_core_event() -> None:
    ev = {"metadata": {"name": "web.17a", "namespace": "default"}, "type": "Normal", "reason": "Scheduled",
          "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{nginx}"},
          "source": {"component": "kubelet", "host": "kind-worker"}, "message": " Successfully assigned \n",
          "firstTimestamp": ago(minutes=4), "lastTimestamp": ago(seconds=30), "count": 3}
    assert cells("events", ev) == ["30s", "Normal", "Scheduled", "pod/web", "spec.containers{nginx}",
                                   "kubelet, kind-worker", "Successfully assigned", "4m", 3, "web.17a"]
    new_style = {"metadata": {"name": "e"}, "type": "Normal", "reason": "Pulled", "message": "m",
                 "involvedObject": {"kind": "Pod", "name": "web"}, "eventTime": ago(seconds=7),
                 "reportingComponent": "kubelet", "reportingInstance": "n1"}
    assert cells("events", new_style)[0:9] == ["7s", "Normal", "Pulled", "pod/web", "", "kubelet, n1", "m", "7s", 1]


def test_events_k8s_io_event() -> None:
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
          "eventTime": ago(minutes=2), "reportingController": "default-scheduler", "reportingInstance": "",
          "action": "Binding", "reason": "Scheduled", "type": "Normal", "note": "Successfully assigned default/web",
          "regarding": {"kind": "Pod", "namespace": "default", "name": "web"},
          "series": {"count": 4, "lastObservedTime": ago(seconds=10)}}
    assert cells("events.k8s.io/events", ev) == ["10s", "Normal", "Scheduled", "pod/web", "", "default-scheduler",
                                                 "Successfully assigned default/web", "2m", 4, "e1"]
