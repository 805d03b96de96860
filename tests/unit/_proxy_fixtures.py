"""Service and EndpointSlice dicts (as the API returns them) for the proxy tests."""

from __future__ import annotations

from typing import Any

from k8snet.lab.proxy.model import NodeInfo

NODE = NodeInfo(name="kind-control-plane", ip="172.31.0.2", cluster_cidr="10.244.0.0/16")
OTHER_NODE = "kind-worker"


def service(name: str, ports: list[dict[str, Any]], *, ns: str = "default", cluster_ip: str = "10.96.0.20",
            type: str = "ClusterIP", status: dict | None = None, **spec: Any) -> dict[str, Any]:
    full_ports = [{"protocol": "TCP", **p} for p in ports]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": "1"},
            "spec": {"type": type, "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                     "ports": full_ports, "sessionAffinity": "None", **spec},
            "status": status or {"loadBalancer": {}}}


def endpoint(ip: str, *, node: str = "kind-control-plane", ready: bool = True, serving: bool | None = None,
             terminating: bool = False) -> dict[str, Any]:
    return {"addresses": [ip], "nodeName": node,
            "conditions": {"ready": ready, "serving": ready if serving is None else serving,
                           "terminating": terminating}}


def endpoint_slice(service_name: str, suffix: str, ports: list[dict[str, Any]], endpoints: list[dict[str, Any]],
                   *, ns: str = "default") -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{service_name}-{suffix}", "namespace": ns, "resourceVersion": "1",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "ports": [{"protocol": "TCP", **p} for p in ports], "endpoints": endpoints}


HTTP = [{"name": "http", "port": 80, "targetPort": 80}]
HTTP_EP = [{"name": "http", "port": 80}]


def case_clusterip_three_endpoints():
    return ([service("my-nginx", HTTP)],
            [endpoint_slice("my-nginx", "abcde", HTTP_EP,
                            [endpoint("10.244.0.5"), endpoint("10.244.1.7", node=OTHER_NODE),
                             endpoint("10.244.0.6")])])


def case_no_endpoints():
    return ([service("lonely", [{"name": "", "port": 8080, "targetPort": 8080}], cluster_ip="10.96.0.30")],
            [endpoint_slice("lonely", "xyz12", [{"name": "", "port": 8080}],
                            [endpoint("10.244.0.9", ready=False)])])


def case_nodeport():
    return ([service("web", [{"name": "http", "port": 80, "targetPort": 80, "nodePort": 30080}],
                     type="NodePort", cluster_ip="10.96.0.40", externalTrafficPolicy="Cluster")],
            [endpoint_slice("web", "aaaaa", HTTP_EP, [endpoint("10.244.0.5"), endpoint("10.244.1.5", node=OTHER_NODE)])])


def case_session_affinity():
    return ([service("sticky", HTTP, cluster_ip="10.96.0.50", sessionAffinity="ClientIP",
                     sessionAffinityConfig={"clientIP": {"timeoutSeconds": 10800}})],
            [endpoint_slice("sticky", "bbbbb", HTTP_EP, [endpoint("10.244.0.5"), endpoint("10.244.1.5", node=OTHER_NODE)])])


def case_kube_dns():
    ports = [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
             {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
             {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]
    slice_ports = [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53},
                   {"name": "metrics", "port": 9153}]
    return ([service("kube-dns", ports, ns="kube-system", cluster_ip="10.96.0.10")],
            [endpoint_slice("kube-dns", "k8s01", slice_ports, [endpoint("10.244.0.2"), endpoint("10.244.0.3")],
                            ns="kube-system")])


def case_named_target_port():
    # targetPort "http-web" resolves per endpoint: the pods behind the two slices
    # listen on different numbers; a third slice is for an unrelated port name.
    svc = service("named", [{"name": "web", "port": 80, "targetPort": "http-web"}], cluster_ip="10.96.0.60")
    return ([svc],
            [endpoint_slice("named", "old01", [{"name": "web", "port": 8080}], [endpoint("10.244.0.11")]),
             endpoint_slice("named", "new01", [{"name": "web", "port": 9090}],
                            [endpoint("10.244.1.12", node=OTHER_NODE)]),
             endpoint_slice("named", "oth01", [{"name": "other", "port": 7070}], [endpoint("10.244.0.13")])])


def case_multiple_slices():
    # Two slices, one endpoint listed in both (a handover), one not ready, one
    # terminating: only the three ready ones are used.
    return ([service("multi", HTTP, cluster_ip="10.96.0.70")],
            [endpoint_slice("multi", "s1aaa", HTTP_EP,
                            [endpoint("10.244.0.21"), endpoint("10.244.0.22", ready=False)]),
             endpoint_slice("multi", "s2bbb", HTTP_EP,
                            [endpoint("10.244.1.21", node=OTHER_NODE), endpoint("10.244.0.21"),
                             endpoint("10.244.1.22", node=OTHER_NODE, ready=False, serving=True, terminating=True),
                             endpoint("10.244.1.23", node=OTHER_NODE)])])


def case_loadbalancer():
    lb = service("lb", [{"name": "http", "port": 80, "targetPort": 80, "nodePort": 31080}], type="LoadBalancer",
                 cluster_ip="10.96.0.80", externalTrafficPolicy="Cluster", externalIPs=["192.168.10.10"],
                 status={"loadBalancer": {"ingress": [{"ip": "172.31.0.200", "ipMode": "VIP"}]}})
    local = service("lb-local", [{"name": "http", "port": 80, "targetPort": 80, "nodePort": 31081}],
                    type="LoadBalancer", cluster_ip="10.96.0.81", externalTrafficPolicy="Local",
                    healthCheckNodePort=32000,
                    status={"loadBalancer": {"ingress": [{"ip": "172.31.0.201", "ipMode": "VIP"}]}})
    eps = [endpoint("10.244.0.5"), endpoint("10.244.1.5", node=OTHER_NODE)]
    return ([lb, local],
            [endpoint_slice("lb", "lb001", HTTP_EP, eps), endpoint_slice("lb-local", "lbl01", HTTP_EP, eps)])


def case_loadbalancer_source_ranges():
    # Only clients in the ranges may use the load-balancer IP. The second range holds
    # the node's own address (172.31.0.2) but not the VIP (172.31.0.210), so the VIP
    # looping back as source is allowed only by the rule kube-proxy adds for that case.
    lb = service("fw", [{"name": "http", "port": 80, "targetPort": 80, "nodePort": 31090}], type="LoadBalancer",
                 cluster_ip="10.96.0.90", externalTrafficPolicy="Cluster",
                 loadBalancerSourceRanges=["203.0.113.0/24", "172.31.0.0/28"],
                 status={"loadBalancer": {"ingress": [{"ip": "172.31.0.210", "ipMode": "VIP"}]}})
    return ([lb], [endpoint_slice("fw", "fw001", HTTP_EP,
                                  [endpoint("10.244.0.5"), endpoint("10.244.1.5", node=OTHER_NODE)])])


def case_loadbalancer_source_ranges_no_endpoints():
    # The same firewall on a Service without endpoints: nftables mode keeps the
    # firewall (others are dropped), iptables mode has none (everyone is rejected).
    lb = service("fw-empty", [{"name": "http", "port": 80, "targetPort": 80, "nodePort": 31091}],
                 type="LoadBalancer", cluster_ip="10.96.0.91", externalTrafficPolicy="Cluster",
                 loadBalancerSourceRanges=["203.0.113.0/24"],
                 status={"loadBalancer": {"ingress": [{"ip": "172.31.0.211", "ipMode": "VIP"}]}})
    return ([lb], [endpoint_slice("fw-empty", "fwe01", HTTP_EP, [])])


def case_internal_traffic_policy_local():
    # "near" has an endpoint on this node and one elsewhere: only the local one is used.
    # "far" has endpoints only elsewhere: this node drops its traffic.
    near = service("near", HTTP, cluster_ip="10.96.0.100", internalTrafficPolicy="Local")
    far = service("far", HTTP, cluster_ip="10.96.0.101", internalTrafficPolicy="Local")
    return ([near, far],
            [endpoint_slice("near", "nr001", HTTP_EP, [endpoint("10.244.0.5"), endpoint("10.244.1.5", node=OTHER_NODE)]),
             endpoint_slice("far", "fr001", HTTP_EP, [endpoint("10.244.1.6", node=OTHER_NODE)])])


CASES = {name[len("case_"):]: fn for name, fn in dict(globals()).items() if name.startswith("case_")}
