"""A pod's /etc/resolv.conf and /etc/hosts, as the kubelet writes them.

Sources: kubernetes/kubernetes pkg/kubelet/network/dns/dns.go (GetPodDNS,
appendDNSConfig) and pkg/kubelet/kubelet_pods.go (managedHostsFileContent).
Pure functions: the kubelet writes their result into the pod's folder.
"""

from __future__ import annotations

from typing import Any

MAX_NAMESERVERS = 3
MAX_SEARCHES = 32


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, searches, options) of a resolv.conf."""
    nameservers, searches, options = [], [], []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            nameservers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            searches = fields[1:]
        elif fields[0] == "options":
            options.extend(fields[1:])
    return nameservers, searches, options


def _merge_options(base: list[str], extra: list[dict[str, Any]]) -> list[str]:
    """dnsConfig options override the policy's options of the same name."""
    merged: dict[str, str | None] = {}
    for opt in base:
        name, _, value = opt.partition(":")
        merged[name] = value or None
    for option in extra:
        merged[option["name"]] = option.get("value")
    return [name if value is None else f"{name}:{value}" for name, value in merged.items()]


def resolv_conf(spec: dict[str, Any], namespace: str, *, cluster_domain: str, dns_ip: str,
                host_resolv: str = "") -> str:
    """The pod's resolv.conf for its ``dnsPolicy`` (ClusterFirst, Default, None) and ``dnsConfig``."""
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not spec.get("hostNetwork")):
        nameservers = [dns_ip]
        searches = [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
        options = ["ndots:5"]
    elif policy == "None":
        nameservers, searches, options = [], [], []
    else:  # Default, or ClusterFirst on the host network: the node's resolver
        nameservers, searches, options = parse_resolv_conf(host_resolv)
    config = spec.get("dnsConfig") or {}
    for ns in config.get("nameservers") or []:
        if ns not in nameservers:
            nameservers.append(ns)
    for s in config.get("searches") or []:
        if s not in searches:
            searches.append(s)
    options = _merge_options(options, config.get("options") or [])
    lines = []
    if searches:
        lines.append("search " + " ".join(searches[:MAX_SEARCHES]))
    lines += [f"nameserver {ns}" for ns in nameservers[:MAX_NAMESERVERS]]
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def pod_hostname(pod: dict[str, Any]) -> str:
    """spec.hostname, else the pod name (truncated to 63 characters like the kubelet)."""
    name = pod["spec"].get("hostname") or pod["metadata"]["name"]
    return name[:63].rstrip("-.")


def pod_fqdn(pod: dict[str, Any], cluster_domain: str) -> str | None:
    sub = pod["spec"].get("subdomain")
    if not sub:
        return None
    return f"{pod_hostname(pod)}.{sub}.{pod['metadata']['namespace']}.svc.{cluster_domain}"


def hosts_file(pod: dict[str, Any], pod_ips: list[str], cluster_domain: str) -> str:
    """The kubelet's managed hosts file, with the pod's own IPs and HostAliases."""
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    hostname = pod_hostname(pod)
    fqdn = pod_fqdn(pod, cluster_domain)
    for ip in pod_ips:
        lines.append(f"{ip}\t{fqdn}\t{hostname}" if fqdn else f"{ip}\t{hostname}")
    aliases = pod["spec"].get("hostAliases") or []
    if aliases:
        lines += ["", "# Entries added by HostAliases."]
        for alias in aliases:
            lines.append(f"{alias['ip']}\t" + "\t".join(alias.get("hostnames") or []))
    return "\n".join(lines) + "\n"
