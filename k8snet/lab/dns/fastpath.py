"""The UDP fast path: replies built once, then sent again for the same query bytes.

Why (docs/performance.md, "Cluster DNS"): under ``dnsperf -q 100`` the server spent
about three quarters of its time in dnspython (parse the query, build RRsets, render
the reply) and most of the rest in asyncio's datagram transport, answering the same
few questions over and over. Here a query is answered by :func:`answer_wire` the
first time; its reply is kept, and a repeat costs one dict lookup and putting the
query's ID in front of the stored bytes, in a thread of its own that does nothing but
``recvfrom``/``sendto`` (the event loop keeps TCP, the health probes and nothing
per packet).

The key is the whole query after its 2-byte ID: flags, counts, the question exactly
as sent and the EDNS record, which is everything the reply depends on besides the
records themselves, so a stored reply is byte for byte what :func:`answer_wire`
would build now (up to the order of records, see below). The name is not lowercased: the reply echoes the question in the
client's letter case (resolvers using 0x20 randomisation check it), so each casing
is an entry of its own.

Record order: dnspython shuffles the records of an RRset each time it renders a
reply, as CoreDNS's ``loadbalance`` plugin in kubeadm's Corefile does, so clients
that take the first address of a headless Service spread over its endpoints. A
stored reply would freeze that order; so a reply with more than one answer record
is stored as :data:`VARIANTS` renderings (the first that many queries build one
each, as before) and repeats take them in turn.

The store is dropped as a whole whenever :attr:`ClusterRecords.generation` moves,
i.e. on every watch event that changes the records (a reply built while it moved
goes into the dropped store, never into the new one), and when it holds more than
:data:`MAX_BYTES` (names of pod records are unbounded).
"""

from __future__ import annotations

import logging
import socket
import threading

import dns.rcode

from .answer import answer_wire
from .records import ClusterRecords

log = logging.getLogger(__name__)

MAX_BYTES = 8 << 20
VARIANTS = 64  # orders kept per multi-record reply: enough that each endpoint comes first about equally often
RECV_SIZE = 65535  # a UDP query may carry anything up to this; larger is not a datagram


class ReplyCache:
    """Replies to UDP queries, keyed by the query without its ID, for one generation."""

    def __init__(self, records: ClusterRecords, max_bytes: int = MAX_BYTES):
        self.records = records
        self.max_bytes = max_bytes
        self._table: tuple[int, dict[bytes, bytes | list[bytes]]] = (records.generation, {})
        self._bytes = 0
        self._turn = 0

    def answer(self, wire: bytes) -> bytes | None:
        """The reply to a UDP query (None: drop it), from the store when it is there."""
        generation, entries = self._table
        if generation != self.records.generation:
            generation, entries = self._new_table()
        key = wire[2:]
        stored = entries.get(key)
        if isinstance(stored, bytes):
            return wire[:2] + stored
        if stored is not None and len(stored) == VARIANTS:
            self._turn = turn = (self._turn + 1) % VARIANTS
            return wire[:2] + stored[turn]
        reply = answer_wire(self.records, wire, udp=True)
        # SERVFAIL means "try again later": never make it the answer until the next change.
        if reply is None or len(reply) < 12 or reply[3] & 0xF == dns.rcode.SERVFAIL:
            return reply
        if self._bytes > self.max_bytes:
            generation, entries = self._new_table()
            stored = None
        self._bytes += len(reply) + (len(key) if stored is None else 0)
        if stored is not None:
            stored.append(reply[2:])
        elif reply[6:8] in (b"\0\0", b"\0\1"):  # ANCOUNT 0 or 1: one order only
            entries[key] = reply[2:]
        else:
            entries[key] = [reply[2:]]
        return reply

    def _new_table(self) -> tuple[int, dict[bytes, bytes | list[bytes]]]:
        self._table = (self.records.generation, {})
        self._bytes = 0
        return self._table


class UdpLoop:
    """Answers the datagrams of a bound UDP socket from a daemon thread until closed."""

    def __init__(self, sock: socket.socket, cache: ReplyCache):
        self.sock = sock
        self.cache = cache
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="dns-udp", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closing = True
        try:
            # Wakes the thread blocked in recvfrom (Linux does so even for an unconnected
            # UDP socket, then reports ENOTCONN).
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(5)
        self.sock.close()

    def _run(self) -> None:
        recvfrom, sendto, answer = self.sock.recvfrom, self.sock.sendto, self.cache.answer
        while not self._closing:
            try:
                wire, addr = recvfrom(RECV_SIZE)
                reply = answer(wire)
                if reply is not None:
                    sendto(reply, addr)
            except OSError:
                continue  # ICMP errors of clients gone away, or the shutdown in close()
            except Exception:  # e.g. a reply too big even for TC: drop it, keep serving
                log.exception("dropping a UDP query")
