"""Defaults, validation, allocation and admission: pure functions, no root."""

from __future__ import annotations

import base64
import copy
import random

import pytest

from k8snet.lab.api import strvalidation as sv
from k8snet.lab.api.admission import Admission
from k8snet.lab.api.resources import by_key
from k8snet.lab.config import LabConfig
from k8snet.lab.errors import ApiError

PODS, SVCS, DEPLOY, RS = by_key("pods"), by_key("services"), by_key("apps/deployments"), by_key("apps/replicasets")
SECRETS, NS, CM, SLICES = by_key("secrets"), by_key("namespaces"), by_key("configmaps"), by_key(
    "discovery.k8s.io/endpointslices")


class Store:
    """Just enough of a store for the allocator's lister."""

    def __init__(self) -> None:
        self.objects: dict[str, list[dict]] = {}

    def lister(self, key: str) -> list[dict]:
        return self.objects.get(key, [])

    def add(self, key: str, obj: dict) -> dict:
        self.objects.setdefault(key, []).append(obj)
        return obj


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def adm(store: Store, tmp_path) -> Admission:
    return Admission(LabConfig(state_dir=tmp_path), store.lister, suffix=lambda: "abcde")


def pod(name="web", image="nginx:1.27", **spec) -> dict:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "nginx", "image": image}], **spec}}


def svc(name="web", **spec) -> dict:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}


def deploy(name="web", labels=None, selector=None) -> dict:
    labels = labels or {"app": "web"}
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": selector or labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}}


def causes(exc: pytest.ExceptionInfo[ApiError]) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in exc.value.details["causes"]]


# -- defaults ----------------------------------------------------------------

def test_pod_defaults(adm):
    p = adm.admit_create(PODS, pod())
    spec, c = p["spec"], p["spec"]["containers"][0]
    assert (p["apiVersion"], p["kind"]) == ("v1", "Pod")
    assert spec["restartPolicy"] == "Always" and spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler" and spec["terminationGracePeriodSeconds"] == 30
    assert spec["securityContext"] == {} and spec["enableServiceLinks"] is True
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    assert c["terminationMessagePath"] == "/dev/termination-log" and c["terminationMessagePolicy"] == "File"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert p["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    vol = spec["volumes"][0]
    assert vol["name"] == "kube-api-access-abcde"
    sources = vol["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1]["configMap"] == {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert c["volumeMounts"] == [{"name": "kube-api-access-abcde", "readOnly": True,
                                  "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
    assert {t["key"] for t in spec["tolerations"]} == {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}


@pytest.mark.parametrize("image,policy", [("nginx", "Always"), ("nginx:latest", "Always"),
                                          ("nginx:1.27", "IfNotPresent"), ("reg:5000/nginx", "Always"),
                                          ("reg:5000/nginx:1", "IfNotPresent"), ("nginx@sha256:ab", "IfNotPresent")])
def test_image_pull_policy(adm, image, policy):
    assert adm.admit_create(PODS, pod(image=image))["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_no_token_when_automount_false_and_probe_defaults(adm):
    p = pod(automountServiceAccountToken=False)
    p["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"port": 80}}
    p["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    out = adm.admit_create(PODS, p)
    assert "volumes" not in out["spec"]
    probe = out["spec"]["containers"][0]["readinessProbe"]
    assert probe == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                     "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert out["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_qos_guaranteed(adm):
    p = pod()
    p["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert adm.admit_create(PODS, p)["status"]["qosClass"] == "Guaranteed"
    p["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
    assert adm.admit_create(PODS, p)["status"]["qosClass"] == "Burstable"


def test_service_defaults_and_allocation(adm):
    s = adm.admit_create(SVCS, svc())
    spec = s["spec"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster" and "externalTrafficPolicy" not in spec
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    ip = spec["clusterIP"].split(".")
    assert ip[:2] == ["10", "96"] and int(ip[2]) >= 1  # dynamic IPs come from the upper band
    assert s["status"] == {"loadBalancer": {}}


def test_loadbalancer_defaults(adm):
    spec = adm.admit_create(SVCS, svc(type="LoadBalancer"))["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster" and spec["allocateLoadBalancerNodePorts"] is True
    assert 30000 <= spec["ports"][0]["nodePort"] <= 32767


def test_headless_and_externalname(adm):
    spec = adm.admit_create(SVCS, svc(clusterIP="None"))["spec"]
    assert spec["clusterIPs"] == ["None"] and spec["ipFamilyPolicy"] == "SingleStack"
    bare = {"metadata": {"name": "h", "namespace": "default"}, "spec": {"clusterIP": "None"}}
    spec = adm.admit_create(SVCS, bare)["spec"]
    assert spec["ipFamilyPolicy"] == "RequireDualStack" and spec["ipFamilies"] == ["IPv4", "IPv6"]
    ext = {"metadata": {"name": "e", "namespace": "default"},
           "spec": {"type": "ExternalName", "externalName": "example.com"}}
    spec = adm.admit_create(SVCS, ext)["spec"]
    assert "clusterIP" not in spec and "ipFamilies" not in spec


def test_deployment_defaults(adm):
    d = adm.admit_create(DEPLOY, deploy())
    spec = d["spec"]
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    tspec = spec["template"]["spec"]
    assert tspec["restartPolicy"] == "Always" and "enableServiceLinks" not in tspec and "volumes" not in tspec
    assert d["metadata"]["generation"] == 1 and d["status"] == {}
    assert adm.admit_create(RS, deploy())["spec"]["replicas"] == 1


def test_secret_namespace_slice_defaults(adm):
    s = adm.admit_create(SECRETS, {"metadata": {"name": "s", "namespace": "default"},
                                   "data": {"a": base64.b64encode(b"x").decode()}, "stringData": {"b": "hi"}})
    assert s["type"] == "Opaque" and "stringData" not in s
    assert base64.b64decode(s["data"]["b"]) == b"hi" and base64.b64decode(s["data"]["a"]) == b"x"
    ns = adm.admit_create(NS, {"metadata": {"name": "lab"}})
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "lab"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]} and ns["status"] == {"phase": "Active"}
    es = adm.admit_create(SLICES, {"metadata": {"name": "x", "namespace": "default"}, "addressType": "IPv4",
                                   "endpoints": [{"addresses": ["10.244.1.5"]}], "ports": [{"port": 80}]})
    assert es["ports"] == [{"port": 80, "protocol": "TCP", "name": ""}]


def test_defaults_are_idempotent(adm, store):
    p = adm.admit_create(PODS, pod())
    again = adm.admit_update(PODS, p, copy.deepcopy(p), None)
    assert again == p


# -- validation --------------------------------------------------------------

def test_invalid_pod_messages(adm):
    bad = {"metadata": {"name": "invalid1", "namespace": "default"},
           "spec": {"containers": [{"name": "A"}, {"name": "A", "image": "x"}]}}
    with pytest.raises(ApiError) as e:
        adm.admit_create(PODS, bad)
    assert e.value.code == 422 and e.value.reason == "Invalid"
    got = causes(e)
    assert "spec.containers[0].image: Required value" in got
    assert ("spec.containers[0].name: Invalid value: \"A\": " + sv.regex_error(
        sv.DNS1123_LABEL_MSG, sv.DNS1123_LABEL_FMT, "my-name", "123-abc")) in got
    assert e.value.message.startswith('Pod "invalid1" is invalid: ')


def test_missing_containers_and_bad_ports(adm):
    with pytest.raises(ApiError) as e:
        adm.admit_create(PODS, {"metadata": {"name": "p", "namespace": "default"}, "spec": {}})
    assert causes(e) == ["spec.containers: Required value"]
    p = pod()
    p["spec"]["containers"][0]["ports"] = [{"containerPort": 70000}]
    with pytest.raises(ApiError) as e:
        adm.admit_create(PODS, p)
    assert causes(e) == [
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]


def test_service_name_is_dns1035(adm):
    with pytest.raises(ApiError) as e:
        adm.admit_create(SVCS, svc(name="1abc"))
    assert causes(e) == ["metadata.name: Invalid value: \"1abc\": a DNS-1035 label must consist of lower case "
                         "alphanumeric characters or '-', start with an alphabetic character, and end with an "
                         "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
                         "'[a-z]([-a-z0-9]*[a-z0-9])?')"]


def test_service_type_and_ports(adm):
    with pytest.raises(ApiError) as e:
        adm.admit_create(SVCS, svc(type="Foo"))
    assert causes(e)[0] == ('spec.type: Unsupported value: "Foo": supported values: '
                            '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"')
    with pytest.raises(ApiError) as e:
        adm.admit_create(SVCS, {"metadata": {"name": "x", "namespace": "default"}, "spec": {}})
    assert causes(e) == ["spec.ports: Required value"]
    with pytest.raises(ApiError) as e:
        adm.admit_create(SVCS, svc(ports=[{"port": 80}, {"port": 81}]))
    assert causes(e) == ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]


def test_deployment_selector_mismatch(adm):
    with pytest.raises(ApiError) as e:
        adm.admit_create(DEPLOY, deploy(labels={"app": "web"}, selector={"app": "other"}))
    assert causes(e) == ['spec.template.metadata.labels: Invalid value: {"app":"web"}: '
                         '`selector` does not match template `labels`']
    assert e.value.details["group"] == "apps"
    assert e.value.message.startswith('Deployment.apps "web" is invalid')
    d = deploy()
    del d["spec"]["selector"]
    with pytest.raises(ApiError) as e:
        adm.admit_create(DEPLOY, d)
    assert causes(e) == ["spec.selector: Required value"]


def test_label_syntax(adm):
    p = pod()
    p["metadata"]["labels"] = {"bad key": "ok", "k": "bad value!"}
    with pytest.raises(ApiError) as e:
        adm.admit_create(PODS, p)
    got = causes(e)
    assert got[0].startswith('metadata.labels: Invalid value: "bad key": name part must consist of')
    assert got[1].startswith('metadata.labels: Invalid value: "bad value!": a valid label must be an empty string')


def test_secret_and_configmap_keys(adm):
    with pytest.raises(ApiError) as e:
        adm.admit_create(SECRETS, {"metadata": {"name": "t", "namespace": "default"}, "type": "kubernetes.io/tls",
                                   "data": {"bad key": ""}})
    got = causes(e)
    assert got[0].startswith('data[bad key]: Invalid value: "bad key": a valid config key must consist')
    assert "data[tls.crt]: Required value" in got and "data[tls.key]: Required value" in got
    with pytest.raises(ApiError) as e:
        adm.admit_create(SECRETS, {"metadata": {"name": "t", "namespace": "default"}, "data": {"a": "!!"}})
    assert e.value.code == 400
    with pytest.raises(ApiError) as e:
        adm.admit_create(CM, {"metadata": {"name": "c", "namespace": "default"}, "data": {"..x": "1"}})
    assert causes(e)[-1] == 'data[..x]: Invalid value: "..x": must not start with \'..\''


# -- allocation --------------------------------------------------------------

def test_requested_cluster_ip(adm, store):
    store.add("services", adm.admit_create(SVCS, svc(name="kubernetes", clusterIP="10.96.0.1")))
    with pytest.raises(ApiError) as e:
        adm.admit_create(SVCS, svc(name="other", clusterIP="10.96.0.1"))
    assert causes(e) == ['spec.clusterIPs: Invalid value: ["10.96.0.1"]: failed to allocate IP 10.96.0.1: '
                         'provided IP is already allocated']
    with pytest.raises(ApiError) as e:
        adm.admit_create(SVCS, svc(name="other", clusterIP="10.0.0.1"))
    assert causes(e) == ['spec.clusterIPs: Invalid value: ["10.0.0.1"]: failed to allocate IP 10.0.0.1: the '
                         'provided IP (10.0.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/16']


def test_node_ports(adm, store):
    with pytest.raises(ApiError) as e:
        adm.admit_create(SVCS, svc(type="NodePort", ports=[{"port": 80, "nodePort": 80}]))
    assert causes(e) == ["spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. "
                         "The range of valid ports is 30000-32767"]
    store.add("services", adm.admit_create(SVCS, svc(type="NodePort", ports=[{"port": 80, "nodePort": 30080}])))
    with pytest.raises(ApiError) as e:
        adm.admit_create(SVCS, svc(name="b", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    assert causes(e) == ["spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"]
    both = adm.admit_create(SVCS, svc(name="dns", type="NodePort", ports=[
        {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]))
    assert both["spec"]["ports"][0]["nodePort"] == both["spec"]["ports"][1]["nodePort"] != 30080


def test_random_ips_avoid_used_and_reserved(store, tmp_path):
    cfg = LabConfig(state_dir=tmp_path, service_cidr="10.96.0.0/29")  # .2-.6 usable dynamically
    adm = Admission(cfg, store.lister)
    seen = set()
    for i in range(5):
        s = store.add("services", adm.admit_create(SVCS, svc(name=f"s{i}")))
        seen.add(s["spec"]["clusterIP"])
    assert seen == {f"10.96.0.{i}" for i in range(2, 7)}
    with pytest.raises(ApiError) as e:
        adm.admit_create(SVCS, svc(name="full"))
    assert "range is full" in causes(e)[0]


def test_update_keeps_and_releases_allocations(adm, store):
    old = store.add("services", adm.admit_create(SVCS, svc(type="NodePort")))
    node_port, ip = old["spec"]["ports"][0]["nodePort"], old["spec"]["clusterIP"]
    # A PUT of the original manifest (no clusterIP, no nodePort) keeps both.
    replaced = adm.admit_update(SVCS, old, svc(type="NodePort"), None)
    assert replaced["spec"]["clusterIP"] == ip and replaced["spec"]["ports"][0]["nodePort"] == node_port
    back = adm.admit_update(SVCS, old, copy.deepcopy(old) | {"spec": old["spec"] | {"type": "ClusterIP"}}, None)
    assert "nodePort" not in back["spec"]["ports"][0] and "externalTrafficPolicy" not in back["spec"]
    up = adm.admit_update(SVCS, back, copy.deepcopy(back) | {"spec": back["spec"] | {"type": "NodePort"}}, None)
    assert 30000 <= up["spec"]["ports"][0]["nodePort"] <= 32767 and up["spec"]["clusterIP"] == ip
    changed = copy.deepcopy(old)
    changed["spec"]["clusterIP"] = changed["spec"]["clusterIPs"][0] = "10.96.0.50"
    with pytest.raises(ApiError) as e:
        adm.admit_update(SVCS, old, changed, None)
    assert causes(e) == ['spec.clusterIPs[0]: Invalid value: "10.96.0.50": may not change once set']


# -- admission update rules ---------------------------------------------------

def test_pod_update_only_image(adm):
    old = adm.admit_create(PODS, pod())
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.28"
    assert adm.admit_update(PODS, old, new, None)["spec"]["containers"][0]["image"] == "nginx:1.28"
    new["spec"]["restartPolicy"] = "Never"
    with pytest.raises(ApiError) as e:
        adm.admit_update(PODS, old, new, None)
    assert causes(e)[0].startswith("spec: Forbidden: pod updates may not change fields other than")


def test_status_subresource_rules(adm):
    old = adm.admit_create(PODS, pod())
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running"}
    new["metadata"]["labels"] = {"x": "y"}
    assert adm.admit_update(PODS, old, new, None)["status"] == old["status"]
    out = adm.admit_update(PODS, old, new, "status")
    assert out["status"] == {"phase": "Running"} and "labels" not in out["metadata"]


def test_deployment_update_generation_and_selector(adm):
    old = adm.admit_create(DEPLOY, deploy())
    old["metadata"]["uid"] = "u1"
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    del new["metadata"]["uid"]
    out = adm.admit_update(DEPLOY, old, new, None)
    assert out["metadata"]["generation"] == 2 and out["metadata"]["uid"] == "u1"
    assert adm.admit_update(DEPLOY, out, copy.deepcopy(out), None)["metadata"]["generation"] == 2
    status = copy.deepcopy(out) | {"status": {"replicas": 3}}
    assert adm.admit_update(DEPLOY, out, status, "status")["metadata"]["generation"] == 2
    moved = deploy(labels={"app": "x"})
    with pytest.raises(ApiError) as e:
        adm.admit_update(DEPLOY, out, moved, None)
    assert causes(e) == ['spec.selector: Invalid value: {"matchLabels":{"app":"x"}}: field is immutable']


def test_secret_type_immutable(adm):
    old = adm.admit_create(SECRETS, {"metadata": {"name": "s", "namespace": "default"}})
    with pytest.raises(ApiError) as e:
        adm.admit_update(SECRETS, old, old | {"type": "kubernetes.io/basic-auth"}, None)
    assert causes(e) == ['type: Invalid value: "kubernetes.io/basic-auth": field is immutable']


def test_random_suffix_alphabet():
    from k8snet.lab.generatednames import NAME_ALPHABET, random_suffix
    random.seed(1)
    s = random_suffix()
    assert len(s) == 5 and set(s) <= set(NAME_ALPHABET)


def test_account_automount_false(adm, store):
    store.add("serviceaccounts", {"metadata": {"name": "quiet", "namespace": "default"},
                                  "automountServiceAccountToken": False})
    assert "volumes" not in adm.admit_create(PODS, pod(serviceAccountName="quiet"))["spec"]
    assert adm.admit_create(PODS, pod(serviceAccountName="quiet", automountServiceAccountToken=True))["spec"]["volumes"]
    assert adm.admit_create(PODS, pod(serviceAccountName="other"))["spec"]["volumes"]


def test_status_write_leaves_the_request_alone(adm):
    """A status write copies only the stored object and the new status."""
    old = adm.admit_create(PODS, pod())
    new = {"metadata": {"resourceVersion": "7", "labels": {"x": "y"}}, "status": {"phase": "Running"}}
    out = adm.admit_update(PODS, old, new, "status")
    assert out["metadata"]["resourceVersion"] == "7" and out["spec"] == old["spec"]
    out["status"]["phase"] = "Failed"
    assert new["status"] == {"phase": "Running"} and new["metadata"] == {"resourceVersion": "7", "labels": {"x": "y"}}
    assert "status" not in adm.admit_update(PODS, old, {"metadata": {}}, "status")
