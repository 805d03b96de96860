"""The DNS server: UDP and TCP on one port, answering from a :class:`ClusterRecords`.

UDP, nearly all of a pod's lookups, is served by :class:`~.fastpath.UdpLoop` in a
thread of its own from replies already built (see :mod:`.fastpath` for why); TCP
(RFC 7766: truncated answers retried, several queries per connection) runs on the
event loop and builds every reply with :func:`~.answer.answer_wire`. What the
replies contain, and how malformed queries are answered, is :mod:`.answer`'s job.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

from .answer import answer_wire
from .fastpath import ReplyCache, UdpLoop
from .records import ClusterRecords

log = logging.getLogger(__name__)

TCP_IDLE_TIMEOUT = 10.0  # seconds a TCP client may stay silent between queries


def _udp_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class DnsServer:
    """UDP + TCP listener on ``host:port`` (port 0 picks a free port, the same for both)."""

    def __init__(self, records: ClusterRecords, host: str = "0.0.0.0", port: int = 53):
        self.records = records
        self.host = host
        self.port = port
        self._udp: UdpLoop | None = None
        self._tcp: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        for _ in range(20):  # port 0: the free UDP port may be taken for TCP; try another
            sock = _udp_socket(self.host, self.port)
            port = sock.getsockname()[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port, reuse_address=True)
            except OSError:
                sock.close()
                if self.port:
                    raise
                continue
            self._udp, self.port = UdpLoop(sock, ReplyCache(self.records)), port
            self._udp.start()
            return
        raise OSError(f"no port free for both UDP and TCP on {self.host}")

    async def close(self) -> None:
        if self._udp is not None:
            await asyncio.to_thread(self._udp.close)
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
