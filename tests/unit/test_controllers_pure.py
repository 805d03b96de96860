"""Decisions of the ReplicaSet controller, scheduler, endpoints and garbage collector."""

from k8snet.lab.controllers.endpoints import desired_endpoints, resolve_target_port
from k8snet.lab.controllers.endpointslice import MAX_ENDPOINTS, plan_slices
from k8snet.lab.controllers.garbagecollector import dangling
from k8snet.lab.controllers.replicaset import pod_from_template, pods_to_delete, replica_set_status, slow_start_batches
from k8snet.lab.controllers.scheduler import choose_node, placed_pods, tolerates, wants_scheduling
from k8snet.lab.controllers.util import selector_matches


def pod(name, node="", phase="Running", ready=True, created="2026-01-01T00:00:00Z", ip=None, labels=None,
        owner=None, ports=None, deleting=False, restarts=0):
    meta = {"name": name, "namespace": "default", "uid": f"uid-{name}", "creationTimestamp": created,
            "labels": labels if labels is not None else {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:10:00Z"
    status = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                              "lastTransitionTime": created}],
              "containerStatuses": [{"restartCount": restarts}]}
    if ip:
        status["podIP"] = ip
    return {"metadata": meta, "spec": {"nodeName": node, "containers": [{"name": "c", "ports": ports or []}]},
            "status": status}


# -- ReplicaSet ------------------------------------------------------------------

def test_scale_down_removes_least_valuable_pods_first():
    pods = [
        pod("ready-old", node="n1", created="2026-01-01T00:00:00Z"),
        pod("ready-new", node="n2", created="2026-01-01T00:05:00Z"),
        pod("unready", node="n1", ready=False),
        pod("pending", node="n2", phase="Pending", ready=False),
        pod("unscheduled", node="", phase="Pending", ready=False),
    ]
    order = [p["metadata"]["name"] for p in pods_to_delete(pods, 5)]
    assert order == ["unscheduled", "pending", "unready", "ready-new", "ready-old"]
    assert [p["metadata"]["name"] for p in pods_to_delete(pods, 2)] == ["unscheduled", "pending"]


def test_scale_down_prefers_doubled_up_nodes_then_restarts():
    pods = [pod("a", node="n1"), pod("b", node="n1"), pod("c", node="n2")]
    assert pods_to_delete(pods, 1)[0]["metadata"]["name"] in ("a", "b")
    pods = [pod("x", node="n1", restarts=0), pod("y", node="n2", restarts=3)]
    assert pods_to_delete(pods, 1)[0]["metadata"]["name"] == "y"


def test_slow_start_batches():
    assert slow_start_batches(10) == [1, 2, 4, 3]
    assert slow_start_batches(0) == []


def test_pod_from_template_and_status():
    rs = {"metadata": {"name": "web-abc", "namespace": "default", "uid": "rs1", "generation": 2},
          "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                   "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
                                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    body = pod_from_template(rs)
    assert body["metadata"]["generateName"] == "web-abc-"
    assert body["metadata"]["labels"] == {"app": "web", "pod-template-hash": "abc"}
    assert body["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                                                   "uid": "rs1", "controller": True, "blockOwnerDeletion": True}]
    pods = [pod("a", labels={"app": "web", "pod-template-hash": "abc"}), pod("b", ready=False)]
    assert replica_set_status(rs, pods) == {"replicas": 2, "fullyLabeledReplicas": 1, "readyReplicas": 1,
                                            "availableReplicas": 1, "observedGeneration": 2}
    assert replica_set_status(rs, []) == {"replicas": 0, "observedGeneration": 2}


def test_label_selector_expressions():
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "canary", "operator": "DoesNotExist"}]}
    assert selector_matches(sel, {"app": "web", "tier": "a"})
    assert not selector_matches(sel, {"app": "web", "tier": "c"})
    assert not selector_matches(sel, {"app": "web", "tier": "a", "canary": "1"})
    assert selector_matches({}, {"x": "y"}) and not selector_matches(None, {"x": "y"})


# -- scheduler -------------------------------------------------------------------

def node(name, ready=True, labels=None, taints=None, unschedulable=False):
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_scheduler_spreads_one_owner_then_balances():
    nodes = [node("n1"), node("n2")]
    p = pod("p", phase="Pending", owner="rs1")
    # n1 has more pods overall but none of this owner: spreading the owner wins.
    placed = [("n1", "other"), ("n1", "other"), ("n2", "rs1")]
    assert choose_node(p, nodes, placed) == ("n1", "")
    assert choose_node(p, nodes, [("n1", "x")]) == ("n2", "")
    assert choose_node(p, nodes, []) == ("n1", "")  # name order breaks ties


def test_scheduler_spreading_skips_terminating_pods():
    # "scale --replicas=0" then "--replicas=2": the owner's three old pods (one on n1,
    # two on n2) are still Terminating. Counted, they push both new pods onto n1;
    # kube-scheduler's PodTopologySpread ignores them, so the new pods spread.
    nodes = [node("n1"), node("n2")]
    leaving = [pod("old-1", node="n1", owner="rs1", deleting=True),
               pod("old-2", node="n2", owner="rs1", deleting=True),
               pod("old-3", node="n2", owner="rs1", deleting=True),
               pod("done", node="n1", owner="rs1", phase="Succeeded")]
    placed = placed_pods(leaving)
    assert placed == [("n1", ""), ("n2", ""), ("n2", "")]  # still load on their nodes, not rs1's spread
    first, _ = choose_node(pod("new-1", phase="Pending", owner="rs1"), nodes, placed)
    placed.append((first, "rs1"))
    second, _ = choose_node(pod("new-2", phase="Pending", owner="rs1"), nodes, placed)
    assert {first, second} == {"n1", "n2"}


def test_scheduler_filters_and_explains():
    p = pod("p", phase="Pending")
    p["spec"]["nodeSelector"] = {"disk": "ssd"}
    nodes = [node("n1", labels={"disk": "ssd"}, ready=False), node("n2")]
    name, why = choose_node(p, nodes, [])
    assert name is None
    assert why == ("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                   "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }.")
    tainted = node("cp", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])
    q = pod("q", phase="Pending")
    assert choose_node(q, [tainted], [])[0] is None
    q["spec"]["tolerations"] = [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]
    assert choose_node(q, [tainted], []) == ("cp", "")
    assert choose_node(q, [], [])[1] == "no nodes available to schedule pods"


def test_scheduler_only_takes_its_pending_pods():
    assert wants_scheduling(pod("a", phase="Pending"))
    assert not wants_scheduling(pod("a", node="n1"))
    other = pod("a", phase="Pending")
    other["spec"]["schedulerName"] = "my-scheduler"
    assert not wants_scheduling(other)
    assert tolerates([{"operator": "Exists"}], {"key": "k", "effect": "NoExecute"})
    assert not tolerates([{"key": "k", "value": "v"}], {"key": "k", "value": "w", "effect": "NoSchedule"})


# -- endpoints -------------------------------------------------------------------

SVC = {"metadata": {"name": "web", "namespace": "default", "uid": "svc1", "labels": {"app": "web"}},
       "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.20",
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}
HTTP = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_named_target_ports_resolve_per_pod():
    assert resolve_target_port({"port": 80, "targetPort": 9376}, pod("a")) == 9376
    assert resolve_target_port({"port": 80}, pod("a")) == 80
    assert resolve_target_port({"port": 80, "targetPort": "http"}, pod("a", ports=HTTP)) == 8080
    assert resolve_target_port({"port": 80, "targetPort": "http", "protocol": "UDP"}, pod("a", ports=HTTP)) is None


def test_endpoints_split_ready_and_not_ready():
    pods = [pod("b", node="n2", ip="10.244.2.5", ports=HTTP, ready=False),
            pod("a", node="n1", ip="10.244.1.5", ports=HTTP),
            pod("noip", ports=HTTP),
            pod("done", ip="10.244.1.9", phase="Succeeded", ports=HTTP),
            pod("going", ip="10.244.1.7", ports=HTTP, deleting=True),
            pod("other", ip="10.244.1.8", labels={"app": "db"}, ports=HTTP)]
    ep = desired_endpoints(SVC, pods)
    assert ep["metadata"] == {"name": "web", "namespace": "default", "labels": {"app": "web"}}
    assert ep["subsets"] == [{
        "addresses": [{"ip": "10.244.1.5", "nodeName": "n1",
                       "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}}],
        "notReadyAddresses": [{"ip": "10.244.2.5", "nodeName": "n2",
                               "targetRef": {"kind": "Pod", "namespace": "default", "name": "b", "uid": "uid-b"}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]
    assert "subsets" not in desired_endpoints(SVC, [])


def test_slices_from_nothing_and_minimal_updates():
    pods = [pod("a", node="n1", ip="10.244.1.5", ports=HTTP), pod("b", node="n2", ip="10.244.2.5", ports=HTTP,
                                                                   ready=False),
            pod("going", node="n1", ip="10.244.1.7", ports=HTTP, deleting=True)]
    creates, updates, deletes = plan_slices(SVC, pods, [])
    assert (len(creates), updates, deletes) == (1, [], [])
    s = creates[0]
    assert s["metadata"]["generateName"] == "web-"
    assert s["metadata"]["labels"] == {"app": "web", "kubernetes.io/service-name": "web",
                                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert s["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert s["addressType"] == "IPv4" and s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    conds = {e["targetRef"]["name"]: e["conditions"] for e in s["endpoints"]}
    assert conds == {"a": {"ready": True, "serving": True, "terminating": False},
                     "b": {"ready": False, "serving": False, "terminating": False},
                     "going": {"ready": False, "serving": True, "terminating": True}}
    assert all("zone" not in e for e in s["endpoints"])

    existing = {**s, "metadata": {**s["metadata"], "name": "web-x1"}}
    assert plan_slices(SVC, pods, [existing]) == ([], [], [])  # nothing changed: no writes
    creates, updates, deletes = plan_slices(SVC, pods[:1], [existing])
    assert creates == [] and deletes == [] and [e["targetRef"]["name"] for e in updates[0]["endpoints"]] == ["a"]
    # No backends left: the same slice becomes the empty placeholder with no ports.
    creates, updates, deletes = plan_slices(SVC, [], [existing])
    assert creates == [] and deletes == []
    assert [(u["metadata"]["name"], u["ports"], u["endpoints"]) for u in updates] == [(existing["metadata"]["name"], [], [])]
    placeholder = updates[0]
    assert plan_slices(SVC, [], [placeholder]) == ([], [], [])
    # Backends again: the placeholder is rewritten, not deleted and replaced.
    creates, updates, deletes = plan_slices(SVC, pods[:1], [placeholder])
    assert creates == [] and deletes == [] and updates[0]["metadata"]["name"] == existing["metadata"]["name"]
    assert [e["targetRef"]["name"] for e in updates[0]["endpoints"]] == ["a"]


def test_slices_hold_at_most_100_endpoints():
    pods = [pod(f"p{i:03}", ip=f"10.244.{i // 200}.{i % 200 + 2}", ports=HTTP) for i in range(250)]
    creates, _, _ = plan_slices(SVC, pods, [])
    assert [len(s["endpoints"]) for s in creates] == [MAX_ENDPOINTS, MAX_ENDPOINTS, 50]


def test_headless_label():
    headless = {**SVC, "spec": {**SVC["spec"], "clusterIP": "None"}}
    assert desired_endpoints(headless, [])["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


# -- garbage collector ---------------------------------------------------------------

def test_dangling_owner_references():
    refs = [{"uid": "a"}, {"uid": "b"}]
    assert dangling(refs, {"a": False, "b": False}) == (True, [])
    assert dangling(refs, {"a": False, "b": True}) == (False, [{"uid": "b"}])
    assert dangling([], {}) == (False, [])
