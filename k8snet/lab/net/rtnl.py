"""The few ``ip`` commands pod set-up needs, sent as rtnetlink requests without a process.

A pod's node side and pod side are a handful of ``ip -batch`` lines each (an address,
a link up, two or three routes). Running them through ``ip`` cost a process per side
per pod: a fork/exec from the large supervisor and a child-watcher thread, the biggest
remaining share of its event loop in a 100-pod start (docs/performance.md, "Pod
start-up"). :func:`apply` takes the same lines and sends each as one rtnetlink request
on a ``NETLINK_ROUTE`` socket of the calling thread's network namespace (run it in a
thread switched into the namespace: ``nsutil.run_in_netns``), waiting for the kernel's
acknowledgement, so a failed line stops the rest and raises as ``ip -batch`` would.

Only these forms are understood (anything else is a ValueError, never guessed):

    addr add ADDR/PREFIX dev DEV
    link set DEV up
    link add NAME type veth peer name PEER netns NETNS
    link del DEV
    route add|replace DEST[/PREFIX] dev DEV [scope link]
    route add|replace default via GATEWAY dev DEV

Why by hand and not pyroute2 (the well-kept rtnetlink library): measured with
``benchmarks/bench_rtnl.py`` (pyroute2 0.9.7, 2-core lab machine, 1-min load 0.9-1.0,
medians; docs/performance.md, "Pod start-up"):

- import: ``from pyroute2 import IPRoute`` adds 74 ms (70-109, 20 runs) on top of the
  supervisor's ~0.58 s import, so to every ``lab up``; this module adds 1.2 ms.
- per pod, podnet's node side and pod side from two threads (60 runs): 1.9 ms of CPU
  here; 9.5 ms with pyroute2's ``IPRoute()`` opened in the same netns-switched
  threads; 25 ms with ``IPRoute(netns=...)``, which forks a child to open each socket
  (from a small process: forking the supervisor costs more). For a 100-pod start that
  is 0.8-2.3 CPU-seconds more, of ~4.3 in all.
- what it sends is fixed and small (address, link up, route), the code that builds it
  ~80 lines, checked against ``ip -batch`` by ``tests/unit/test_rtnl.py``; pyroute2
  would save those lines but not the need for that test.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable
from contextlib import ExitStack

from k8snet.lab.net.nsutil import NetError, check_ifname, netns_path

# linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h, linux/if.h
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 20, 24
IFF_UP = 0x1
IFLA_IFNAME, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST = 254, 3, 1
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253

_NLMSGHDR = struct.Struct("=IHHII")   # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")   # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")   # family, dst_len, src_len, tos, table, protocol, scope, type, flags
_RTATTR = struct.Struct("=HH")         # len, type
_NLMSGERR = struct.Struct("=i")        # error (negative errno), then the request's header


class RtnlError(NetError):
    """The kernel refused a line; the message names the line, like ``ip``'s."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.errno = code


def _attr(kind: int, data: bytes) -> bytes:
    raw = _RTATTR.pack(_RTATTR.size + len(data), kind) + data
    return raw + b"\0" * (-len(raw) % 4)


def _index(dev: str) -> int:
    try:
        return socket.if_nametoindex(dev)  # asks the calling thread's namespace
    except OSError:
        raise RtnlError(errno.ENODEV, f'Cannot find device "{dev}"') from None


def _ifname(name: str) -> bytes:
    return check_ifname(name).encode() + b"\0"


def _ipv4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def _netns_fd(name: str, files: ExitStack) -> int:
    """An open descriptor of named namespace ``name``, closed when ``files`` is."""
    try:
        fd = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise RtnlError(errno.ENOENT, f'Invalid "netns" value "{name}"') from None
    files.callback(os.close, fd)
    return fd


def _request(words: list[str], files: ExitStack) -> tuple[int, int, bytes]:
    """(message type, flags, body) for one command line split into words; descriptors
    the request refers to (a peer's namespace) stay open until ``files`` is closed."""
    match words:
        case ["link", "add", name, "type", "veth", "peer", "name", peer, "netns", netns]:
            # the peer is described by its own ifinfomsg and attributes, nested in the
            # link's kind-specific data, as iproute2's link_veth sends it
            peer_msg = (_IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _attr(IFLA_IFNAME, _ifname(peer))
                        + _attr(IFLA_NET_NS_FD, struct.pack("=I", _netns_fd(netns, files))))
            info = _attr(IFLA_INFO_KIND, b"veth\0") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_msg))
            return (RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                    _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _attr(IFLA_IFNAME, _ifname(name))
                    + _attr(IFLA_LINKINFO, info))
        case ["link", "del", dev]:
            return RTM_DELLINK, 0, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, _index(dev), 0, 0)
        case ["addr", "add", cidr, "dev", dev]:
            iface = ipaddress.IPv4Interface(cidr)
            addr = iface.ip.packed
            body = _IFADDRMSG.pack(socket.AF_INET, iface.network.prefixlen, 0, RT_SCOPE_UNIVERSE, _index(dev))
            return RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body + _attr(IFA_LOCAL, addr) + _attr(IFA_ADDRESS, addr)
        case ["link", "set", dev, "up"]:
            return RTM_NEWLINK, 0, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, _index(dev), IFF_UP, IFF_UP)
        case ["route", ("add" | "replace") as verb, "default", "via", gateway, "dev", dev]:
            body = _RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
            return (RTM_NEWROUTE, _route_flags(verb),
                    body + _attr(RTA_GATEWAY, _ipv4(gateway)) + _attr(RTA_OIF, struct.pack("=I", _index(dev))))
        case ["route", ("add" | "replace") as verb, dest, "dev", dev, *rest] if rest in ([], ["scope", "link"]):
            net = ipaddress.IPv4Network(dest)
            scope = RT_SCOPE_LINK if rest else RT_SCOPE_UNIVERSE
            body = _RTMSG.pack(socket.AF_INET, net.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST, 0)
            return (RTM_NEWROUTE, _route_flags(verb),
                    body + _attr(RTA_DST, net.network_address.packed) + _attr(RTA_OIF, struct.pack("=I", _index(dev))))
    raise ValueError(f"not a command rtnl understands: {' '.join(words)!r}")


def _route_flags(verb: str) -> int:
    return NLM_F_CREATE | (NLM_F_REPLACE if verb == "replace" else NLM_F_EXCL)


def _ack(sock: socket.socket, seq: int) -> int:
    """The kernel's answer to request ``seq``: 0 or a positive errno."""
    while True:
        data = sock.recv(65536)
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind, _, got_seq, _ = _NLMSGHDR.unpack_from(data, offset)
            if kind == NLMSG_ERROR and got_seq == seq:
                return -_NLMSGERR.unpack_from(data, offset + _NLMSGHDR.size)[0]
            offset += max((length + 3) & ~3, _NLMSGHDR.size)


def apply(commands: Iterable[str]) -> None:
    """Runs ``commands`` (``ip -batch`` lines of the forms above) in the calling
    thread's network namespace, in order; raises RtnlError at the first refusal."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        for seq, line in enumerate(commands, start=1):
            with ExitStack() as files:
                kind, flags, body = _request(line.split(), files)
                sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0)
                          + body)
                err = _ack(sock, seq)
            if err:
                raise RtnlError(err, f"{line}: {os.strerror(err)}")
