"""The lab's configuration: its name, state folder and address plan (docs/lab-architecture.md, "Network topology")."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
DEFAULT_STATE_ROOT = Path("/var/lib/k8snet")

#: kube-proxy's modes the lab implements; everything that offers or checks a mode
#: (LabConfig, the CLI's --proxy-mode, k8snet.lab.proxy.backend) reads it from here.
ProxyMode = Literal["iptables", "nftables"]
PROXY_MODES: tuple[ProxyMode, ...] = get_args(ProxyMode)
DEFAULT_PROXY_MODE: ProxyMode = "iptables"


def proxy_mode(text: str) -> ProxyMode:
    """``text`` as a :data:`ProxyMode`, or ValueError naming the modes there are."""
    for mode in PROXY_MODES:
        if text == mode:
            return mode
    raise ValueError(f"proxy mode must be {' or '.join(PROXY_MODES)}, not {text!r}")


def state_root() -> Path:
    """Where all labs keep their state: ``$K8SNET_STATE_ROOT`` or /var/lib/k8snet."""
    return Path(os.environ.get("K8SNET_STATE_ROOT", DEFAULT_STATE_ROOT))


@dataclass(frozen=True)
class LabConfig:
    """Everything that is fixed for the life of one lab.

    The lab name prefixes every network namespace it creates, so two labs with
    different names never touch each other's objects. Addresses may repeat
    between labs: each lab's node network lives in its own "wire" namespace.
    """

    name: str = "k8snet"
    # kind's multi-node shape: a control plane and two workers, so that spreading
    # (two replicas, three nodes) is a choice the scheduler makes, not a forced one
    nodes: int = 3
    proxy_mode: ProxyMode = DEFAULT_PROXY_MODE
    node_cidr: str = "172.31.0.0/24"
    pod_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/16"
    node_port_range: tuple[int, int] = (30000, 32767)
    cluster_domain: str = "cluster.local"
    kubernetes_version: str = "v1.37.1"
    # kube-apiserver's --service-account-max-token-expiration in seconds; 0: none (kubeadm's default)
    max_token_expiration_seconds: int = 0
    state_dir: Path = field(default=Path())

    def __post_init__(self) -> None:
        if not LAB_NAME_RE.match(self.name):
            raise ValueError(
                f"lab name {self.name!r} must be 1-12 lowercase letters or digits, starting with a letter"
            )
        if not 1 <= self.nodes <= 20:
            raise ValueError(f"--nodes must be between 1 and 20, not {self.nodes}")
        proxy_mode(self.proxy_mode)  # raises for an unknown mode
        if self.state_dir == Path():
            object.__setattr__(self, "state_dir", state_root() / self.name)

    # -- names -------------------------------------------------------------
    @property
    def netns_prefix(self) -> str:
        """Every network namespace of this lab starts with this prefix."""
        return f"k8snet-{self.name}-"

    @property
    def wire_netns(self) -> str:
        return f"{self.netns_prefix}wire"

    def node_name(self, index: int) -> str:
        """kind's naming: NAME-control-plane, NAME-worker, NAME-worker2, ..."""
        if index == 0:
            return f"{self.name}-control-plane"
        return f"{self.name}-worker" + ("" if index == 1 else str(index))

    @property
    def node_names(self) -> list[str]:
        return [self.node_name(i) for i in range(self.nodes)]

    def node_netns(self, index: int) -> str:
        return f"{self.netns_prefix}n{index}"

    # -- addresses ---------------------------------------------------------
    @property
    def host_ip(self) -> str:
        """The host's address on the node network (.1, like docker's bridge gateway
        on kind's network): the host end of the lab's one host veth."""
        return str(ipaddress.ip_network(self.node_cidr)[1])

    @property
    def host_ifname(self) -> str:
        """The host end of that veth: ``kn<lab>``, at most 14 characters."""
        return f"kn{self.name}"

    @property
    def wire_gateway_ip(self) -> str:
        """The wire bridge's own address (the last usable one, .254): the nodes'
        default gateway and where pods reach the API server. Not the host's .1, so
        the host never routes lab traffic."""
        return str(ipaddress.ip_network(self.node_cidr)[-2])

    def node_ip(self, index: int) -> str:
        return str(ipaddress.ip_network(self.node_cidr)[2 + index])

    def node_pod_cidr(self, index: int) -> str:
        """Node i gets 10.244.i.0/24 (kind, flannel)."""
        net = ipaddress.ip_network(self.pod_cidr)
        return str(list(net.subnets(new_prefix=24))[index])

    def service_ip(self, offset: int) -> str:
        return str(ipaddress.ip_network(self.service_cidr)[offset])

    @property
    def kubernetes_service_ip(self) -> str:
        return self.service_ip(1)

    @property
    def dns_service_ip(self) -> str:
        return self.service_ip(10)

    @property
    def loadbalancer_pool(self) -> list[str]:
        net = ipaddress.ip_network(self.node_cidr)
        return [str(net[i]) for i in range(200, 251)]

    # -- files -------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.state_dir / "store.sqlite"

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    @property
    def pods_dir(self) -> Path:
        """Per-pod files (resolv.conf, hosts, volumes, logs) live under here."""
        return self.state_dir / "pods"


def read_config(path: Path) -> LabConfig:
    """A lab's configuration as ``lifecycle.save_config`` wrote it (its ``config.json``);
    here, at the bottom of the layers, so the supervisor reads it without the lifecycle."""
    data = json.loads(path.read_text())
    data["state_dir"] = Path(data["state_dir"])
    data["node_port_range"] = tuple(data["node_port_range"])
    return LabConfig(**data)
