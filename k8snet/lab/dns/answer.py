"""One DNS query in wire format → its response in wire format, from a :class:`ClusterRecords`.

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
            response.set_rcode(dns.rcode.Rcode.make(result.rcode))
            if result.authoritative:
                response.flags |= dns.flags.AA
            response.answer = result.answer
            response.authority = result.authority
            response.additional = result.additional

    if not udp:
        return response.to_wire(max_size=TCP_MAX)
    limit = query.payload if query.edns >= 0 else UDP_DEFAULT_PAYLOAD
    return response.to_wire(max_size=max(limit, UDP_DEFAULT_PAYLOAD), prefer_truncation=True)
