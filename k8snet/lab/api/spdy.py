"""SPDY/3.1 framing, the part ``kubectl port-forward`` needs (server side).

kubectl tunnels SPDY inside a WebSocket (``SPDY/3.1+portforward.k8s.io``): the binary
WebSocket messages are just a byte pipe, cut anywhere, so :class:`FrameReader` buffers
bytes and yields whole frames. Layout (draft 3.1, as moby/spdystream reads and writes it):

* control frame: ``1 | version(15)=3 | type(16) | flags(8) | length(24) | payload``
* data frame:    ``0 | stream id(31) | flags(8) | length(24) | payload``

Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are ``count(32)`` then
``len(32) name len(32) value`` pairs, zlib-compressed with the SPDY/3 dictionary as
*one* stream per direction for the whole connection (a sync flush after each block).
spdystream has no flow control, so WINDOW_UPDATE and SETTINGS are only parsed.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

VERSION = 3

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS = 1, 2, 3, 4
PING, GOAWAY, HEADERS, WINDOW_UPDATE = 6, 7, 8, 9

FLAG_FIN = 0x01

# RST_STREAM status codes (the SPDY/3.1 draft, section 2.6.3).
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6

# The largest frame a reader accepts: the 24-bit length field's maximum.
MAX_FRAME = (1 << 24) - 1

# The SPDY/3 header compression dictionary (the SPDY/3 draft, section 2.6.10.1), 1423 bytes as Go's
# spdy package uses it (no trailing NUL): zlib checks its Adler-32, so it must be exact.
DICTIONARY = (
    b"\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03put"
    b"\x00\x00\x00\x06delete\x00\x00\x00\x05trace\x00\x00\x00\x06accept\x00\x00\x00\x0eaccept-charset"
    b"\x00\x00\x00\x0faccept-encoding\x00\x00\x00\x0faccept-language\x00\x00\x00\raccept-ranges"
    b"\x00\x00\x00\x03age\x00\x00\x00\x05allow\x00\x00\x00\rauthorization\x00\x00\x00\rcache-control"
    b"\x00\x00\x00\nconnection\x00\x00\x00\x0ccontent-base\x00\x00\x00\x10content-encoding"
    b"\x00\x00\x00\x10content-language\x00\x00\x00\x0econtent-length\x00\x00\x00\x10content-location"
    b"\x00\x00\x00\x0bcontent-md5\x00\x00\x00\rcontent-range\x00\x00\x00\x0ccontent-type"
    b"\x00\x00\x00\x04date\x00\x00\x00\x04etag\x00\x00\x00\x06expect\x00\x00\x00\x07expires"
    b"\x00\x00\x00\x04from\x00\x00\x00\x04host\x00\x00\x00\x08if-match\x00\x00\x00\x11if-modified-since"
    b"\x00\x00\x00\rif-none-match\x00\x00\x00\x08if-range\x00\x00\x00\x13if-unmodified-since"
    b"\x00\x00\x00\rlast-modified\x00\x00\x00\x08location\x00\x00\x00\x0cmax-forwards"
    b"\x00\x00\x00\x06pragma\x00\x00\x00\x12proxy-authenticate\x00\x00\x00\x13proxy-authorization"
    b"\x00\x00\x00\x05range\x00\x00\x00\x07referer\x00\x00\x00\x0bretry-after\x00\x00\x00\x06server"
    b"\x00\x00\x00\x02te\x00\x00\x00\x07trailer\x00\x00\x00\x11transfer-encoding\x00\x00\x00\x07upgrade"
    b"\x00\x00\x00\nuser-agent\x00\x00\x00\x04vary\x00\x00\x00\x03via\x00\x00\x00\x07warning"
    b"\x00\x00\x00\x10www-authenticate\x00\x00\x00\x06method\x00\x00\x00\x03get\x00\x00\x00\x06status"
    b"\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\x00\x00\x00\x08HTTP/1.1\x00\x00\x00\x03url"
    b"\x00\x00\x00\x06public\x00\x00\x00\nset-cookie\x00\x00\x00\nkeep-alive\x00\x00\x00\x06origin"
    b"100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    b"203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    b"401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    b"503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00"
    b" Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    b"application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,"
    b"deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


class SpdyError(Exception):
    """A malformed frame or header block: the connection cannot continue."""


@dataclass(frozen=True)
class Frame:
    """One frame. ``kind`` is the control type, or 0 for a data frame.

    ``stream_id`` is the stream the frame is about (the ping id for PING, the last
    good stream for GOAWAY), ``payload`` the rest after the fields this module parses.
    """

    kind: int
    flags: int
    stream_id: int
    payload: bytes = b""
    headers: dict[str, list[str]] | None = None

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


class HeaderCodec:
    """The connection's two zlib streams (one per direction) for header blocks."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        # Go's spdy framer compresses at BestCompression; any level decodes the same.
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS, zdict=DICTIONARY)

    def decode(self, block: bytes) -> dict[str, list[str]]:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as err:
            raise SpdyError(f"bad header block: {err}") from None
        return parse_header_block(raw)

    def encode(self, headers: dict[str, list[str]]) -> bytes:
        """Compressed block; must be sent in the order encoded (one shared stream)."""
        return self._deflate.compress(header_block(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)


def header_block(headers: dict[str, list[str]]) -> bytes:
    """The uncompressed name/value block; several values of a name are NUL-joined."""
    out = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        key, value = name.lower().encode(), "\x00".join(values).encode()
        out += [struct.pack(">I", len(key)), key, struct.pack(">I", len(value)), value]
    return b"".join(out)


def parse_header_block(raw: bytes) -> dict[str, list[str]]:
    def take(pos: int) -> tuple[bytes, int]:
        if pos + 4 > len(raw):
            raise SpdyError("truncated header block")
        (size,) = struct.unpack_from(">I", raw, pos)
        end = pos + 4 + size
        if end > len(raw):
            raise SpdyError("truncated header block")
        return raw[pos + 4:end], end

    if len(raw) < 4:
        raise SpdyError("truncated header block")
    (count,) = struct.unpack_from(">I", raw, 0)
    headers: dict[str, list[str]] = {}
    pos = 4
    for _ in range(count):
        name, pos = take(pos)
        value, pos = take(pos)
        key = name.decode("latin-1")
        if key != key.lower():
            raise SpdyError(f"header was not lowercased: {key!r}")
        headers.setdefault(key, []).extend(value.decode("latin-1").split("\x00"))
    return headers


class FrameReader:
    """Turns a byte stream cut at arbitrary places into frames."""

    def __init__(self, codec: HeaderCodec) -> None:
        self.codec = codec
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 8:
            (length,) = struct.unpack_from(">I", self._buffer, 4)
            length &= MAX_FRAME
            if len(self._buffer) < 8 + length:
                break
            head, body = bytes(self._buffer[:8]), bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            frames.append(self._parse(head, body))
        return frames

    def _parse(self, head: bytes, body: bytes) -> Frame:
        first, flags = struct.unpack_from(">I", head, 0)[0], head[4]
        if not first & 0x80000000:
            return Frame(0, flags, first & 0x7FFFFFFF, body)
        version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise SpdyError(f"unsupported SPDY version {version}")
        if kind == SYN_STREAM:
            if len(body) < 10:
                raise SpdyError("short SYN_STREAM")
            # stream id, associated stream id, priority and slot, then the header block
            return Frame(kind, flags, _stream_id(body), headers=self.codec.decode(body[10:]))
        if kind in (SYN_REPLY, HEADERS):
            if len(body) < 4:
                raise SpdyError("short header frame")
            return Frame(kind, flags, _stream_id(body), headers=self.codec.decode(body[4:]))
        if kind in (RST_STREAM, PING, GOAWAY, WINDOW_UPDATE):
            if len(body) < 4:
                raise SpdyError(f"short control frame of type {kind}")
            stream = struct.unpack_from(">I", body, 0)[0] if kind == PING else _stream_id(body)
            return Frame(kind, flags, stream, body[4:])
        return Frame(kind, flags, 0, body)  # SETTINGS and unknown types: the caller ignores them


def _stream_id(body: bytes) -> int:
    return struct.unpack_from(">I", body, 0)[0] & 0x7FFFFFFF


def _control(kind: int, flags: int, body: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(body)) + body


def data_frame(stream_id: int, data: bytes, *, fin: bool = False) -> bytes:
    if len(data) > MAX_FRAME:
        raise ValueError("data frame too large")
    return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data


def syn_reply(codec: HeaderCodec, stream_id: int, headers: dict[str, list[str]], *, fin: bool = False) -> bytes:
    return _control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + codec.encode(headers))


def syn_stream(codec: HeaderCodec, stream_id: int, headers: dict[str, list[str]], *, fin: bool = False) -> bytes:
    """A SYN_STREAM (what the client sends; the server side needs it only in tests)."""
    return _control(SYN_STREAM, FLAG_FIN if fin else 0,
                    struct.pack(">IIBB", stream_id, 0, 0, 0) + codec.encode(headers))


def rst_stream(stream_id: int, status: int) -> bytes:
    return _control(RST_STREAM, 0, struct.pack(">II", stream_id, status))


def ping(ping_id: int) -> bytes:
    return _control(PING, 0, struct.pack(">I", ping_id))


def goaway(last_stream_id: int, status: int = 0) -> bytes:
    return _control(GOAWAY, 0, struct.pack(">II", last_stream_id, status))
