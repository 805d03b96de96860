"""Service environment variables and container env resolution, as the kubelet does them."""

from __future__ import annotations

import base64

import pytest

from k8snet.lab.kubelet.envvars import EnvError, container_env, expand, service_env

KUBERNETES = {"metadata": {"name": "kubernetes", "namespace": "default"},
              "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}}


def svc(name: str, ns: str, ip: str, *ports: dict) -> dict:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": list(ports)}}


MY_NGINX = svc("my-nginx", "default", "10.0.162.149",
               {"name": "http", "port": 80, "protocol": "TCP"}, {"name": "https", "port": 443, "protocol": "TCP"})


def test_kubernetes_service_only_set() -> None:
    env = service_env([KUBERNETES], "default", True)
    assert env == {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
    }


def test_two_port_service_matches_the_spec() -> None:
    env = service_env([KUBERNETES, MY_NGINX], "default", True)
    mine = {k: v for k, v in env.items() if k.startswith("MY_NGINX")}
    assert mine == {
        "MY_NGINX_SERVICE_HOST": "10.0.162.149", "MY_NGINX_SERVICE_PORT": "80",
        "MY_NGINX_SERVICE_PORT_HTTP": "80", "MY_NGINX_SERVICE_PORT_HTTPS": "443",
        "MY_NGINX_PORT": "tcp://10.0.162.149:80",
        "MY_NGINX_PORT_80_TCP": "tcp://10.0.162.149:80", "MY_NGINX_PORT_80_TCP_PROTO": "tcp",
        "MY_NGINX_PORT_80_TCP_PORT": "80", "MY_NGINX_PORT_80_TCP_ADDR": "10.0.162.149",
        "MY_NGINX_PORT_443_TCP": "tcp://10.0.162.149:443", "MY_NGINX_PORT_443_TCP_PROTO": "tcp",
        "MY_NGINX_PORT_443_TCP_PORT": "443", "MY_NGINX_PORT_443_TCP_ADDR": "10.0.162.149",
    }


def test_unnamed_udp_and_missing_protocol() -> None:
    dns = svc("kube-dns", "kube-system", "10.96.0.10", {"name": "dns", "port": 53, "protocol": "UDP"},
              {"port": 9153})
    env = service_env([dns], "kube-system", True)
    assert env["KUBE_DNS_SERVICE_PORT"] == "53"
    assert env["KUBE_DNS_SERVICE_PORT_DNS"] == "53"
    assert env["KUBE_DNS_PORT"] == "udp://10.96.0.10:53"
    assert env["KUBE_DNS_PORT_53_UDP_PROTO"] == "udp"
    assert env["KUBE_DNS_PORT_9153_TCP"] == "tcp://10.96.0.10:9153"


def test_namespace_filter_links_flag_and_skipped_services() -> None:
    other = svc("other", "team", "10.96.5.5", {"port": 80})
    headless = svc("headless", "default", "None", {"port": 80})
    external = {"metadata": {"name": "ext", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "example.com"}}
    all_services = [KUBERNETES, MY_NGINX, other, headless, external]
    env = service_env(all_services, "default", True)
    assert "MY_NGINX_SERVICE_HOST" in env and "OTHER_SERVICE_HOST" not in env
    assert not any(k.startswith(("HEADLESS", "EXT_")) for k in env)
    # enableServiceLinks: false keeps only the master service
    assert set(service_env(all_services, "default", False)) == set(service_env([KUBERNETES], "default", True))
    team = service_env(all_services, "team", True)
    assert team["OTHER_SERVICE_HOST"] == "10.96.5.5" and team["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert "MY_NGINX_SERVICE_HOST" not in team


def test_pod_namespace_kubernetes_service_wins() -> None:
    shadow = svc("kubernetes", "team", "10.96.9.9", {"port": 8443})
    for order in ([KUBERNETES, shadow], [shadow, KUBERNETES]):
        env = service_env(order, "team", True)
        assert env["KUBERNETES_SERVICE_HOST"] == "10.96.9.9"
        assert env["KUBERNETES_SERVICE_PORT"] == "8443"
        assert service_env(order, "team", False)["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"


@pytest.mark.parametrize("text,result", [
    ("$(A)", "a"), ("x$(A)y$(B)", "xaybsvc"), ("$(MISSING)", "$(MISSING)"), ("$$(A)", "$(A)"),
    ("$$", "$"), ("a$b", "a$b"), ("$(A", "$(A"), ("end$", "end$"), ("$()", "$()"), ("$(A)$(A)", "aa"),
])
def test_expand(text: str, result: str) -> None:
    assert expand(text, {"A": "a"}, {"B": "bsvc", "A": "shadowed"}) == result


POD = {"metadata": {"name": "web", "namespace": "default", "uid": "u-1", "labels": {"app": "web", "tier": "fe"},
                    "annotations": {"note": 'say "hi"'}},
       "spec": {"nodeName": "kind-worker", "serviceAccountName": "default"},
       "status": {"podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}], "hostIP": "172.31.0.3"}}
CMS = {("default", "cfg"): {"data": {"MODE": "prod", "LEVEL": "3"}}}
SECRETS = {("default", "creds"): {"data": {"user": base64.b64encode(b"admin").decode(),
                                           "pass": base64.b64encode(b"s3cret").decode()}}}


def env_of(container: dict, service_vars: dict | None = None, **kw) -> list[str]:
    return container_env(container, POD, service_vars or {}, config_maps=lambda ns, n: CMS.get((ns, n)),
                         secrets=lambda ns, n: SECRETS.get((ns, n)), **kw)


def test_container_env_full() -> None:
    services = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "MY_NGINX_SERVICE_HOST": "10.0.162.149"}
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}}, {"prefix": "DB_", "secretRef": {"name": "creds"}}],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NS", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
            {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "LABELS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}},
            {"name": "ANN", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations"}}},
            {"name": "MODE", "value": "debug-$(MODE)"},
            {"name": "LVL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "LEVEL"}}},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pass"}}},
            {"name": "URL", "value": "http://$(MY_NGINX_SERVICE_HOST):80/$(POD_NAME)/$(LATER)"},
            {"name": "LATER", "value": "x"},
            {"name": "KUBERNETES_SERVICE_HOST", "value": "override"},
            {"name": "EMPTY"},
        ],
    }
    env = env_of(container, services)
    assert env == [
        "MODE=debug-prod", "LEVEL=3", "DB_user=admin", "DB_pass=s3cret",
        "POD_NAME=web", "POD_NS=default", "POD_UID=u-1", "POD_IP=10.244.1.5", "HOST_IP=172.31.0.3",
        "NODE=kind-worker", "SA=default", "APP=web", 'LABELS=app="web"\ntier="fe"', 'ANN=note="say \\"hi\\""',
        "LVL=3", "PASS=s3cret", "URL=http://10.0.162.149:80/web/$(LATER)", "LATER=x",
        "KUBERNETES_SERVICE_HOST=override", "EMPTY=",
        "MY_NGINX_SERVICE_HOST=10.0.162.149",
    ]


def test_pod_ip_override_before_status_is_written() -> None:
    container = {"env": [{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}
    assert env_of(container, pod_ip="10.244.1.99") == ["IP=10.244.1.99"]


def test_missing_sources() -> None:
    with pytest.raises(EnvError, match='configmap "nope" not found'):
        env_of({"envFrom": [{"configMapRef": {"name": "nope"}}]})
    with pytest.raises(EnvError, match='secret "nope" not found'):
        env_of({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]})
    with pytest.raises(EnvError, match="couldn't find key NOPE in ConfigMap default/cfg"):
        env_of({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "NOPE"}}}]})
    optional = {"envFrom": [{"configMapRef": {"name": "nope", "optional": True}}],
                "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "NOPE", "optional": True}}},
                        {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}}}]}
    assert env_of(optional) == []
