"""k8snet.cluster's pure parts: manifest parsing, cluster kind detection, Status errors."""

import json
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from k8snet.cluster import api_error, cluster_kind, documents

DEPLOY_AND_SVC = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {replicas: 2}
---
# a comment-only document is skipped
---
apiVersion: v1
kind: Service
metadata: {name: web}
"""


def test_documents_from_yaml_text_path_dict_and_list(tmp_path):
    objs = documents(DEPLOY_AND_SVC)
    assert [o["kind"] for o in objs] == ["Deployment", "Service"]
    path = tmp_path / "m.yaml"
    path.write_text(DEPLOY_AND_SVC)
    assert documents(path) == objs and documents(str(path)) == objs
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    assert documents([pod, DEPLOY_AND_SVC]) == [pod, *objs]
    assert documents({"apiVersion": "v1", "kind": "List", "items": [pod]}) == [pod]


def test_documents_rejects_non_objects():
    with pytest.raises(ValueError, match="apiVersion and kind"):
        documents("just: data\n")


def node(name, provider="", labels=None):
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"providerID": provider}}


@pytest.mark.parametrize(("nodes", "version", "kind"), [
    ([node("k8snet-control-plane", "k8snet://k8snet/k8snet-control-plane")], "v1.32.0", "k8snet-lab"),
    ([node("kind-control-plane", "kind://docker/kind/kind-control-plane")], "v1.32.0", "kind"),
    ([node("minikube", labels={"minikube.k8s.io/name": "minikube"})], "v1.32.0", "minikube"),
    ([node("k3d-dev-server-0")], "v1.31.4+k3s1", "k3d"),
    ([node("pi")], "v1.31.4+k3s1", "k3s"),
    ([node("gke-x", "gce://proj/zone/gke-x")], "v1.30.5-gke.1", "gke"),
    ([node("ip-10-0-0-1", "aws:///eu-west-1a/i-0abc")], "v1.30.5-eks-1", "eks"),
    ([node("box")], "v1.32.0", "other"),
])
def test_cluster_kind(nodes, version, kind):
    assert cluster_kind(nodes, version) == kind


def test_api_error_keeps_the_servers_status():
    err = ApiException(status=404, reason="Not Found")
    err.body = json.dumps({"kind": "Status", "code": 404, "reason": "NotFound",
                           "message": 'services "web" not found'})
    converted = api_error(err)
    assert (converted.code, converted.reason, converted.message) == (404, "NotFound", 'services "web" not found')


# -- what a lab publishes about itself, read back as any client reads it -------------------

def test_lab_facts_round_trip_through_the_configmap():
    import yaml

    from k8snet import LabFacts
    from k8snet.lab.bootstrap import kube_proxy_configmap, lab_facts_configmap
    from k8snet.lab.config import LabConfig

    config = LabConfig(name="demo", proxy_mode="nftables", node_cidr="172.31.3.0/24", state_dir=Path("/nowhere"))
    cm = lab_facts_configmap(config)
    assert (cm["metadata"]["namespace"], cm["metadata"]["name"]) == ("kube-public", "k8snet-lab")
    assert all(isinstance(v, str) for v in cm["data"].values()), "ConfigMap data holds strings only"
    facts = LabFacts.from_data(cm["data"])
    assert facts == LabFacts.of(config) and facts.context == "k8snet-demo"
    assert facts.loadbalancer_pool == config.loadbalancer_pool and facts.host_ip == "172.31.3.1"
    assert cm["data"]["loadBalancerPool"] == "172.31.3.200-172.31.3.250"
    with pytest.raises(ValueError, match="lacks hostIP"):
        LabFacts.from_data({k: v for k, v in cm["data"].items() if k != "hostIP"})

    proxy = kube_proxy_configmap(config)
    conf = yaml.safe_load(proxy["data"]["config.conf"])
    assert (proxy["metadata"]["namespace"], proxy["metadata"]["name"]) == ("kube-system", "kube-proxy")
    assert conf["kind"] == "KubeProxyConfiguration" and conf["mode"] == "nftables"
    assert conf["clusterCIDR"] == config.pod_cidr
