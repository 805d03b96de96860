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
would build now. The name is not lowercased: the reply echoes the question in the
client's letter case (resolvers using 0x20 randomisation check it), so each casing
is an entry of its own. The store is bounded (names of pod records are unbounded) and
is dropped as a whole whenever :attr:`ClusterRecords.generation` moves, i.e. on every
watch event that changes the records; a reply built while the generation moved goes
into the dropped store, never into the new one.
"""

from __future__ import annotations

import logging
import socket
import threading

import dns.rcode

from .records import ClusterRecords
from .answer import answer_wire

log = logging.getLogger(__name__)

MAX_ENTRIES = 10000
RECV_SIZE = 65535  # a UDP query may carry anything up to this; larger is not a datagram


class ReplyCache:
    """Replies to UDP queries, keyed by the query without its ID, for one generation."""

    def __init__(self, records: ClusterRecords, max_entries: int = MAX_ENTRIES):
        self.records = records
        self.max_entries = max_entries
        self._table: tuple[int, dict[bytes, bytes]] = (records.generation, {})

    def answer(self, wire: bytes) -> bytes | None:
        """The reply to a UDP query (None: drop it), from the store when it is there."""
        generation, entries = self._table
        if generation != self.records.generation:
            generation, entries = self._table = (self.records.generation, {})
        stored = entries.get(wire[2:])
        if stored is not None:
            return wire[:2] + stored
        reply = answer_wire(self.records, wire, udp=True)
        if reply is not None and len(reply) >= 4 and reply[3] & 0xF != dns.rcode.SERVFAIL:
            # SERVFAIL means "try again later": never make it the answer until the next change.
            if len(entries) >= self.max_entries:
                entries = {}
                self._table = (generation, entries)
            entries[wire[2:]] = reply[2:]
        return reply


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
