"""An asyncio DNS server (UDP and TCP on one port) answering from a :class:`ClusterRecords`.

Wire handling follows what resolvers expect from CoreDNS:

- every response is built with ``dns.message.make_response`` (same id, question and
  EDNS as the query); answers from the cluster zone have AA set, RA is never set
  (this server does not recurse: ``dig`` prints "recursion requested but not
  available", as it does against CoreDNS);
- a UDP response larger than the client's limit (512 bytes, or its EDNS payload
  size) is cut at an RRset boundary with TC set, so the client retries over TCP;
- a packet too short for a header, or a response, is dropped; one whose header
  parses but whose body does not gets FORMERR; a non-QUERY opcode gets NOTIMP; a
  bug while answering gets SERVFAIL. Nothing a client sends can stop the server.
"""

from __future__ import annotations

import asyncio
import logging
import struct

import dns.flags
import dns.message
import dns.opcode
import dns.rcode

from .records import ClusterRecords

log = logging.getLogger(__name__)

UDP_DEFAULT_PAYLOAD = 512  # RFC 1035 limit for a client without EDNS
TCP_MAX = 65535
TCP_IDLE_TIMEOUT = 10.0  # seconds a TCP client may stay silent between queries
HEADER = struct.Struct("!HH")  # id, flags: all a FORMERR reply needs to copy


def _header_only_reply(wire: bytes, rcode: int) -> bytes:
    """A reply echoing only the id and opcode of a query whose body is unreadable."""
    qid, flags = HEADER.unpack_from(wire)
    reply_flags = dns.flags.QR | (flags & (0x7800 | dns.flags.RD)) | (rcode & 0xF)
    return HEADER.pack(qid, reply_flags) + b"\x00" * 8


def answer_wire(records: ClusterRecords, wire: bytes, *, udp: bool) -> bytes | None:
    """The response to one query in wire format, or None to drop the packet."""
    if len(wire) < 12:
        return None
    if HEADER.unpack_from(wire)[1] & dns.flags.QR:
        return None  # never answer a response: that is how reflection loops start
    try:
        query = dns.message.from_wire(wire)
    except Exception:  # DNSException mostly, but garbage can raise ValueError & co too
        return _header_only_reply(wire, dns.rcode.FORMERR)

    response = dns.message.make_response(query)
    response.flags &= ~dns.flags.AA
    if query.opcode() != dns.opcode.QUERY:
        response.set_rcode(dns.rcode.NOTIMP)
    elif query.edns > 0:
        response.set_rcode(dns.rcode.BADVERS)  # RFC 6891: we speak EDNS version 0 only
    elif len(query.question) != 1:
        response.set_rcode(dns.rcode.FORMERR)
    else:
        q = query.question[0]
        try:
            result = records.resolve(q.name, q.rdtype, q.rdclass)
        except Exception:
            log.exception("answering %s failed", q)
            response.set_rcode(dns.rcode.SERVFAIL)
        else:
            response.set_rcode(result.rcode)
            if result.authoritative:
                response.flags |= dns.flags.AA
            response.answer = result.answer
            response.authority = result.authority
            response.additional = result.additional

    if not udp:
        return response.to_wire(max_size=TCP_MAX)
    limit = query.payload if query.edns >= 0 else UDP_DEFAULT_PAYLOAD
    return response.to_wire(max_size=max(limit, UDP_DEFAULT_PAYLOAD), prefer_truncation=True)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, records: ClusterRecords):
        self.records = records
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = answer_wire(self.records, data, udp=True)
        except Exception:  # e.g. a response too big even for TC: drop, keep serving
            log.exception("dropping a UDP query from %s", addr)
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable from a client that went away: nothing to do


class DnsServer:
    """UDP + TCP listener on ``host:port`` (port 0 picks a free port, the same for both)."""

    def __init__(self, records: ClusterRecords, host: str = "0.0.0.0", port: int = 53):
        self.records = records
        self.host = host
        self.port = port
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):  # port 0: the free UDP port may be taken for TCP; try another
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self.records), local_addr=(self.host, self.port))
            port = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port, reuse_address=True)
            except OSError:
                transport.close()
                if self.port:
                    raise
                continue
            self._udp, self.port = transport, port
            return
        raise OSError(f"no port free for both UDP and TCP on {self.host}")

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    async def __aenter__(self) -> DnsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """RFC 7766: 2-byte length-prefixed messages, several per connection."""
        try:
            while True:
                prefix = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                (length,) = struct.unpack("!H", prefix)
                wire = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE_TIMEOUT)
                reply = answer_wire(self.records, wire, udp=False)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            log.exception("TCP DNS connection failed")
        finally:
            writer.close()
