"""A tiny model of docker's default networking, for contrast with Kubernetes' flat one.

Each "host" is a network namespace with its own private bridge ``docker0`` on
172.17.0.0/16 — the *same* subnet on every host, as docker does — and each
"container" is a namespace plugged into that bridge. Hosts share a LAN. A container
is reachable from another host only through a published host port: a DNAT rule on
its host plus a socket that holds the port (docker-proxy's job), and outgoing
traffic is masqueraded to the host's LAN address. Two containers cannot publish the
same host port, and a server sees the *host's* address, not the container's.

Servers and clients are threads of this process whose sockets live in the container
namespaces (no child processes). Everything happens inside ``k8snet-dm-<pid>-*``
namespaces, never in the host's: links are created straight into their namespace,
sysctls written from a thread switched into it, iptables run under ``ip netns exec``.
Needs root on Linux.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import ipaddress
import os
import platform
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd

from .lab.net import nsutil

PREFIX = "k8snet-dm-"
BRIDGE_NET = ipaddress.ip_network("172.17.0.0/16")  # docker's default, on every host alike
LAN_NET = ipaddress.ip_network("192.168.50.0/24")


class PortClash(RuntimeError):
    """A host port is already published by another container on that host."""


@dataclass(frozen=True)
class Container:
    name: str
    host: str
    netns: str
    ip: str
    port: int


@dataclass(frozen=True)
class Reply:
    """One HTTP request from a container: who answered and which source address it saw."""

    client: str
    target: str
    ok: bool
    answered_by: str | None = None
    seen_ip: str | None = None
    error: str | None = None


def available() -> tuple[bool, str]:
    """Whether the sandbox can run here, and if not, why."""
    if platform.system() != "Linux":
        return False, "the docker-model sandbox needs Linux network namespaces"
    if os.geteuid() != 0:
        return False, "the docker-model sandbox needs root (it creates network namespaces)"
    missing = [tool for tool in ("ip", "iptables-restore") if shutil.which(tool) is None]
    if missing:
        return False, f"the docker-model sandbox needs {', '.join(missing)}"
    return True, ""


def remove_stale() -> list[str]:
    """Deletes sandbox namespaces left by processes that died before closing theirs."""
    removed = []
    for name in nsutil.list_netns(PREFIX):
        pid = name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            nsutil.delete_netns(name)
            removed.append(name)
    return removed


def _whoami_handler(container: str) -> type[BaseHTTPRequestHandler]:
    class Whoami(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = f"{container} {self.client_address[0]}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    return Whoami


@dataclass
class _Host:
    name: str
    netns: str
    lan_ip: str
    containers: list[Container] = field(default_factory=list)
    published: dict[int, Container] = field(default_factory=dict)


class DockerModel:
    """Hosts ``host1``, ``host2``… each with a private 172.17.0.0/16 bridge; use as a
    context manager (or call :meth:`close`; an atexit hook is the last resort)."""

    def __init__(self, hosts: int = 2) -> None:
        ok, why = available()
        if not ok:
            raise RuntimeError(why)
        remove_stale()
        self._base = f"{PREFIX}{os.getpid()}-{id(self) % 10000:04d}"
        self._servers: list[ThreadingHTTPServer] = []
        self._sockets: list[socket.socket] = []
        lan = list(LAN_NET.hosts())
        self.hosts = {f"host{i + 1}": _Host(f"host{i + 1}", f"{self._base}-host{i + 1}", str(lan[i]))
                      for i in range(hosts)}
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        bridge_gw = f"{next(BRIDGE_NET.hosts())}/{BRIDGE_NET.prefixlen}"
        nsutil.ip_batch_sync(f"netns add {h.netns}" for h in self.hosts.values())
        for h in self.hosts.values():
            nsutil.ip_batch_sync(["link set lo up", "link add docker0 type bridge",
                                  f"addr add {bridge_gw} dev docker0", "link set docker0 up"], h.netns)
            # a router: forwards between its bridge and the LAN
            nsutil.write_sysctls_sync(h.netns, {"net.ipv4.ip_forward": 1})
            # docker's masquerade rule: containers leave the host with the host's address
            self._iptables(h, [f"-A POSTROUTING -s {BRIDGE_NET} ! -o docker0 -j MASQUERADE"])
        # the LAN: a switch (bridge) in the first host's namespace would do as well; a
        # veth per host into host1 keeps it to plain point-to-point links for two hosts
        first, *others = self.hosts.values()
        nsutil.ip_batch_sync(["link add lan type bridge", "link set lan up",
                              f"addr add {first.lan_ip}/{LAN_NET.prefixlen} dev lan"], first.netns)
        for i, h in enumerate(others):
            nsutil.ip_batch_sync([f"link add lan{i} type veth peer name eth0 netns {h.netns}",
                                  f"link set lan{i} master lan up"], first.netns)
            nsutil.ip_batch_sync([f"addr add {h.lan_ip}/{LAN_NET.prefixlen} dev eth0", "link set eth0 up"], h.netns)

    def _iptables(self, host: _Host, rules: list[str]) -> None:
        text = "*nat\n" + "".join(f"{r}\n" for r in rules) + "COMMIT\n"
        res = subprocess.run(["ip", "netns", "exec", host.netns, "iptables-restore", "--noflush"],
                             input=text, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise nsutil.NetError(f"iptables-restore in {host.netns}: {res.stderr.strip()}")

    # -- containers -------------------------------------------------------------------
    def run(self, host: str, name: str, port: int = 80) -> Container:
        """A container on ``host`` with the next free bridge address (172.17.0.2, .3…
        as docker hands them out), serving HTTP on ``port``: it answers with its own
        name and the source address it saw."""
        h = self.hosts[host]
        index = len(h.containers)
        ip = str(BRIDGE_NET.network_address + 2 + index)
        c = Container(f"{name}@{host}", host, f"{h.netns}-{name}", ip, port)
        nsutil.ip_batch_sync([f"netns add {c.netns}"])
        nsutil.ip_batch_sync([f"link add veth{index} type veth peer name eth0 netns {c.netns}",
                              f"link set veth{index} master docker0 up"], h.netns)
        nsutil.ip_batch_sync(["link set lo up", f"addr add {ip}/{BRIDGE_NET.prefixlen} dev eth0",
                              "link set eth0 up", f"route add default via {next(BRIDGE_NET.hosts())}"], c.netns)
        sock = nsutil.listen_socket_in_netns(c.netns, "0.0.0.0", port)
        sock.setblocking(True)
        server = ThreadingHTTPServer(("0.0.0.0", port), _whoami_handler(c.name), bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        threading.Thread(target=server.serve_forever, name=f"dm:{c.name}", daemon=True).start()
        self._servers.append(server)
        h.containers.append(c)
        return c

    def publish(self, container: Container, host_port: int) -> None:
        """``docker run -p host_port:port``: reserve the host port, then DNAT it to the container."""
        h = self.hosts[container.host]
        try:
            # docker-proxy holds the port; a second container asking for it fails here
            self._sockets.append(nsutil.listen_socket_in_netns(h.netns, "0.0.0.0", host_port))
        except OSError as err:
            owner = h.published.get(host_port)
            raise PortClash(f"{container.host}: Bind for 0.0.0.0:{host_port} failed: port is already allocated"
                            + (f" (by {owner.name})" if owner else "") + f" [{err.strerror}]") from None
        self._iptables(h, [f"-A PREROUTING ! -i docker0 -p tcp --dport {host_port} "
                           f"-j DNAT --to-destination {container.ip}:{container.port}"])
        h.published[host_port] = container

    def dial(self, client: Container, ip: str, port: int, timeout: float = 2.0) -> Reply:
        """An HTTP GET from inside ``client`` to ``ip:port``."""
        def get() -> Reply:
            conn = http.client.HTTPConnection(ip, port, timeout=timeout)
            try:
                conn.request("GET", "/")
                who, seen = conn.getresponse().read().decode().split()
                return Reply(client.name, f"{ip}:{port}", True, who, seen)
            except OSError as err:
                return Reply(client.name, f"{ip}:{port}", False, error=type(err).__name__ + ": " + str(err))
            finally:
                conn.close()
        return nsutil.run_in_netns_sync(client.netns, get)

    def host_ip(self, host: str) -> str:
        return self.hosts[host].lan_ip

    def table(self) -> pd.DataFrame:
        """One row per container: its host, the host's LAN address, its own address, published ports."""
        rows = [{"container": c.name, "host": h.name, "host_ip": h.lan_ip, "container_ip": c.ip,
                 "published": ",".join(f"{p}->{c.port}" for p, owner in sorted(h.published.items()) if owner == c)}
                for h in self.hosts.values() for c in h.containers]
        return pd.DataFrame(rows, columns=["container", "host", "host_ip", "container_ip", "published"])

    # -- teardown ----------------------------------------------------------------------
    def close(self) -> None:
        """Stops the servers, closes the held ports and deletes every namespace; idempotent."""
        for server in self._servers:
            with contextlib.suppress(OSError):
                server.shutdown()
                server.server_close()
        for sock in self._sockets:
            sock.close()
        self._servers, self._sockets = [], []
        for name in nsutil.list_netns(self._base + "-"):
            nsutil.delete_netns(name)
        atexit.unregister(self.close)

    def __enter__(self) -> DockerModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Story:
    containers: pd.DataFrame
    steps: pd.DataFrame


def docker_story() -> Story:
    """The host-private model in four steps, in a sandbox that is gone afterwards:
    two hosts each run ``web`` (both get 172.17.0.2); host1's web dials the other's
    address (and reaches itself); it dials host2's published port 8080 (works, the
    server sees host1's address); ``api`` on host2 asks for port 8080 too (clash) and
    must take 8081."""
    steps: list[dict[str, object]] = []

    def record(step: str, reply: Reply | None = None, outcome: str | None = None) -> None:
        steps.append({"step": step, "client": reply.client if reply else None, "target": reply.target if reply else None,
                      "answered_by": reply.answered_by if reply else None, "seen_ip": reply.seen_ip if reply else None,
                      "outcome": outcome or ("ok" if reply and reply.ok else (reply.error if reply else ""))})

    with DockerModel() as dm:
        web1, web2 = dm.run("host1", "web"), dm.run("host2", "web")
        record("dial the other container's own address", dm.dial(web1, web2.ip, web2.port))
        dm.publish(web2, 8080)
        record("dial host2's published port 8080", dm.dial(web1, dm.host_ip("host2"), 8080))
        api = dm.run("host2", "api")
        try:
            dm.publish(api, 8080)
            record("publish api@host2 on host port 8080", outcome="ok")
        except PortClash as err:
            record("publish api@host2 on host port 8080", outcome=f"PortClash: {err}")
        dm.publish(api, 8081)
        record("dial host2's published port 8081", dm.dial(web1, dm.host_ip("host2"), 8081))
        return Story(dm.table(), pd.DataFrame(steps))
