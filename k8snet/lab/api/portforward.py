"""``pods/portforward``: TCP connections from a client to a port inside a pod.

Two wire protocols, both over a WebSocket upgrade of ``GET …/portforward``:

* ``SPDY/3.1+portforward.k8s.io`` (kubectl since 1.31, client-go's tunneling
  dialer): the WebSocket carries a SPDY/3.1 session as a byte pipe. For every local
  connection kubectl opens two SPDY streams sharing a ``requestID`` header, one with
  ``streamType: error`` and one with ``streamType: data``, each naming the ``port``.
  The data stream is piped to the pod; an error is written as text on the error
  stream; both are closed (FIN) when the connection ends (kubelet ``httpstream.go``).
* ``v4.channel.k8s.io`` / ``v4.base64.channel.k8s.io`` (the Python client): the
  ``ports`` query names the ports; port *i* uses channel 2i for data and 2i+1 for
  errors, each announced first by a frame carrying the port number (little endian),
  one connection per port, and the socket closes when they are done (kubelet
  ``websocket.go``).

A raw SPDY upgrade (kubectl's fallback) is refused with a clear message: kubectl only
falls back when the WebSocket upgrade fails, which it does not here.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any, Awaitable, Callable, Protocol

from aiohttp import WSMsgType, web

from ..contracts import Obj
from ..errors import ApiError, PortForwardError, bad_request
from . import spdy
from .streaming import refuse_non_websocket

log = logging.getLogger(__name__)

TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "v4.base64.channel.k8s.io")
_READ_SIZE = 32 * 1024
# After one direction of a connection ends, how long the other may still drain
# (containerd's port forwarder waits one second, like socat).
_DRAIN_GRACE = 1.0


class PortForwarder(Protocol):
    """What a node's runtime offers for ``pods/portforward``."""

    async def port_forward(self, namespace: str, pod: str,
                           port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]: ...


OpenPort = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
SendBytes = Callable[[bytes], Awaitable[None]]


# -- request checks -----------------------------------------------------------------

def check_running(pod: Obj) -> None:
    """A pod must be Running to forward to it (kubectl checks the same before it dials)."""
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    if phase != "Running":
        raise bad_request(f"unable to forward port because pod is not running. Current status={phase}")


def parse_ports(values: list[str]) -> list[int]:
    """The ``ports`` query (repeated and/or comma separated), checked like the kubelet."""
    ports: list[int] = []
    for value in values:
        if not value:
            raise bad_request('query parameter "ports" cannot be empty')
        for item in value.split(","):
            if not item.strip().isdigit() or int(item) > 65535:
                raise bad_request(f'unable to parse "{item}" as a port: strconv.ParseUint: parsing '
                                  f'"{item}": invalid syntax')
            if int(item) < 1:
                raise bad_request(f'port "{item}" must be > 0')
            ports.append(int(item))
    return ports


def _offered(request: web.Request) -> list[str]:
    return [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]


SPDY_PORTFORWARD_REFUSAL = ("this lab's API server serves port-forward over WebSocket only "
                            f"({TUNNEL_PROTOCOL} for kubectl 1.31 or later, {CHANNEL_PROTOCOLS[0]} for the "
                            "kubernetes Python client); a raw SPDY upgrade is not supported")


async def serve_port_forward(request: web.Request, runtime: object, pod: Obj) -> web.StreamResponse:
    """``GET …/pods/{name}/portforward`` upgraded to one of the two protocols.

    Raises ApiError (400) before the upgrade for a pod that is not running, bad
    ports, a non-WebSocket request or protocols neither side shares.
    """
    check_running(pod)
    refuse_non_websocket(request, SPDY_PORTFORWARD_REFUSAL)
    forward = getattr(runtime, "port_forward", None)
    if forward is None:
        raise bad_request("port-forward is not supported by this node's container runtime")
    meta = pod.get("metadata") or {}
    namespace, name = meta.get("namespace", ""), meta.get("name", "")

    async def open_port(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await forward(namespace, name, port)

    offered = _offered(request)
    if TUNNEL_PROTOCOL in offered:
        ws = web.WebSocketResponse(protocols=[TUNNEL_PROTOCOL], autoping=True, max_msg_size=0)
        await ws.prepare(request)
        await SpdyTunnel(ws, open_port).run()
        return ws
    ports = parse_ports(request.query.getall("ports", []) or request.query.getall("port", []))
    if not ports:
        raise bad_request('query parameter "ports" is required')
    protocol = next((p for p in CHANNEL_PROTOCOLS if p in offered), None)
    if offered and protocol is None:
        raise bad_request(f"requested protocol(s) are not supported: {', '.join(offered)}; supported: "
                          f"{TUNNEL_PROTOCOL}, {', '.join(CHANNEL_PROTOCOLS)}")
    # No protocol offered: the kubelet's default is the binary channel layout.
    ws = web.WebSocketResponse(protocols=[protocol] if protocol else [], autoping=True, max_msg_size=0)
    await ws.prepare(request)
    await ChannelForward(ws, open_port, ports, base64_frames=protocol == CHANNEL_PROTOCOLS[1]).run()
    return ws


# -- one forwarded connection -----------------------------------------------------------

class PodPipe:
    """One client connection piped to one pod port.

    Client bytes that arrive before the pod connection is open are kept and written
    first, so a client that sends its request at once loses nothing.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self._backlog: list[bytes] = []
        self._client_eof = False
        self._writer: asyncio.StreamWriter | None = None
        self.client_done = asyncio.Event()  # the client will send no more (FIN or reset)
        self._reset = False

    async def from_client(self, data: bytes) -> None:
        if self._writer is None:
            self._backlog.append(data)
            return
        if self._writer.is_closing():
            return
        self._writer.write(data)
        try:
            await self._writer.drain()
        except ConnectionError:
            self.reset()

    def client_eof(self) -> None:
        self._client_eof = True
        self.client_done.set()
        if self._writer is not None and not self._writer.is_closing() and self._writer.can_write_eof():
            self._writer.write_eof()

    def reset(self) -> None:
        """The client abandoned the connection: drop it on the pod side too."""
        self._reset = True
        self.client_done.set()
        if self._writer is not None:
            self._writer.close()

    async def run(self, open_port: OpenPort, to_client: SendBytes) -> str | None:
        """Connects and copies pod bytes to the client until EOF; the error text if any."""
        try:
            reader, writer = await open_port(self.port)
        except (PortForwardError, ApiError) as err:
            return err.message if isinstance(err, ApiError) else str(err)
        if self._reset:
            writer.close()
            return None
        for data in self._backlog:  # no await in between: nothing can overtake the backlog
            writer.write(data)
        self._backlog.clear()
        self._writer = writer
        if self._client_eof and writer.can_write_eof():
            writer.write_eof()
        try:
            while chunk := await reader.read(_READ_SIZE):
                await to_client(chunk)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            try:
                await asyncio.wait_for(self.client_done.wait(), _DRAIN_GRACE)
            except TimeoutError:
                pass
            writer.close()
        return None


# -- kubectl: SPDY tunnelled in WebSocket ------------------------------------------------

class _Pair:
    def __init__(self) -> None:
        self.error_id: int | None = None
        self.data_id: int | None = None
        self.port = 0


class SpdyTunnel:
    """The server side of one SPDY session carried by a WebSocket."""

    def __init__(self, ws: web.WebSocketResponse, open_port: OpenPort) -> None:
        self.ws = ws
        self.open_port = open_port
        self.codec = spdy.HeaderCodec()
        self.frames = spdy.FrameReader(self.codec)
        self._send_lock = asyncio.Lock()  # frames are written whole, headers in codec order
        self._pairs: dict[str, _Pair] = {}
        self._pipes: dict[int, PodPipe] = {}  # by data stream id
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_stream = 0

    async def send(self, build: Callable[[], bytes]) -> None:
        async with self._send_lock:
            if self.ws.closed:
                raise ConnectionResetError("the client closed the connection")
            await self.ws.send_bytes(build())

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    continue  # client-go sends SPDY in binary messages only
                for frame in self.frames.feed(msg.data):
                    if not await self._handle(frame):
                        return
        except spdy.SpdyError as err:
            log.info("port-forward: bad SPDY from the client: %s", err)
            try:
                await self.send(lambda: spdy.goaway(self._last_stream, 1))
            except (ConnectionError, RuntimeError):
                pass
        finally:
            for pipe in self._pipes.values():
                pipe.reset()
            for task in self._tasks:
                task.cancel()
            if not self.ws.closed:
                await self.ws.close(code=1000)

    async def _handle(self, frame: spdy.Frame) -> bool:
        """Acts on one frame; False when the session is over."""
        if frame.kind == 0:
            pipe = self._pipes.get(frame.stream_id)
            if pipe is not None:  # data on an error stream carries nothing for us
                if frame.payload:
                    await pipe.from_client(frame.payload)
                if frame.fin:
                    pipe.client_eof()
        elif frame.kind == spdy.SYN_STREAM:
            await self._new_stream(frame)
        elif frame.kind == spdy.RST_STREAM:
            pipe = self._pipes.get(frame.stream_id)
            if pipe is not None:
                pipe.reset()
        elif frame.kind == spdy.PING:
            await self.send(lambda: spdy.ping(frame.stream_id))  # answer with the same id
        elif frame.kind == spdy.GOAWAY:
            return False
        return True  # SETTINGS, WINDOW_UPDATE, HEADERS: spdystream needs nothing back

    async def _new_stream(self, frame: spdy.Frame) -> None:
        headers = frame.headers or {}
        sid = frame.stream_id
        self._last_stream = max(self._last_stream, sid)
        problem, port = _check_stream_headers(headers)
        # Replying (with FIN for a rejected stream) is what lets the client's
        # CreateStream return; the apimachinery spdy server replies the same way.
        await self.send(lambda: spdy.syn_reply(self.codec, sid, {}, fin=problem is not None))
        if problem is not None:
            log.info("port-forward: rejected stream %d: %s", sid, problem)
            return
        kind = headers["streamtype"][0]
        request_id = (headers.get("requestid") or [""])[0]
        if not request_id:  # clients before requestID: a data stream follows its error stream
            request_id = str(sid if kind == "error" else sid - 2)
        pair = self._pairs.setdefault(request_id, _Pair())
        pair.port = port
        if kind == "error":
            pair.error_id = sid
        else:
            pair.data_id = sid
            self._pipes[sid] = PodPipe(port)
        if pair.error_id is not None and pair.data_id is not None:
            del self._pairs[request_id]
            task = asyncio.create_task(self._forward(pair.data_id, pair.error_id, self._pipes[pair.data_id]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _forward(self, data_id: int, error_id: int, pipe: PodPipe) -> None:
        async def to_client(chunk: bytes) -> None:
            await self.send(lambda: spdy.data_frame(data_id, chunk))

        try:
            error = await pipe.run(self.open_port, to_client)
            if error:
                await self.send(lambda: spdy.data_frame(error_id, error.encode()))
            await self.send(lambda: spdy.data_frame(data_id, b"", fin=True))
            await self.send(lambda: spdy.data_frame(error_id, b"", fin=True))
        except (ConnectionError, RuntimeError):
            pass  # the client is gone
        finally:
            self._pipes.pop(data_id, None)


def _check_stream_headers(headers: dict[str, list[str]]) -> tuple[str | None, int]:
    """The kubelet's checks on a new stream: a valid port and a known stream type."""
    port_text = (headers.get("port") or [""])[0]
    if not port_text:
        return '"port" header is required', 0
    if not port_text.isdigit() or int(port_text) > 65535:
        return f'unable to parse "{port_text}" as a port', 0
    if int(port_text) < 1:
        return f'port "{port_text}" must be > 0', 0
    kind = (headers.get("streamtype") or [""])[0]
    if not kind:
        return '"streamType" header is required', 0
    if kind not in ("error", "data"):
        return f'invalid stream type "{kind}"', 0
    return None, int(port_text)


# -- the Python client: v4 channels ------------------------------------------------------

class ChannelForward:
    """One connection per requested port over the v4 channel framing."""

    def __init__(self, ws: web.WebSocketResponse, open_port: OpenPort, ports: list[int], *,
                 base64_frames: bool) -> None:
        self.ws = ws
        self.open_port = open_port
        self.pipes = [PodPipe(port) for port in ports]
        self.base64 = base64_frames
        self._lock = asyncio.Lock()

    async def send(self, channel: int, data: bytes) -> None:
        async with self._lock:
            if self.ws.closed:
                raise ConnectionResetError("the client closed the connection")
            if self.base64:
                await self.ws.send_str(chr(ord("0") + channel) + base64.b64encode(data).decode())
            else:
                await self.ws.send_bytes(bytes([channel]) + data)

    async def run(self) -> None:
        try:
            for i, pipe in enumerate(self.pipes):  # each channel first names its port
                port = pipe.port.to_bytes(2, "little")
                await self.send(2 * i, port)
                await self.send(2 * i + 1, port)
        except (ConnectionError, RuntimeError):
            return
        forwards: asyncio.Future[Any] = asyncio.gather(*(self._forward(i, pipe) for i, pipe in enumerate(self.pipes)))
        reader: asyncio.Future[Any] = asyncio.create_task(self._read_client())
        try:
            await asyncio.wait({forwards, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in self.pipes:  # v4 has no half-close: the socket closing ends everything
                pipe.reset()
            reader.cancel()
            try:
                await forwards
            except (ConnectionError, RuntimeError, asyncio.CancelledError):
                pass
            if not self.ws.closed:
                await self.ws.close(code=1000)

    async def _forward(self, index: int, pipe: PodPipe) -> None:
        async def to_client(chunk: bytes) -> None:
            await self.send(2 * index, chunk)

        error = await pipe.run(self.open_port, to_client)
        if error:
            try:
                await self.send(2 * index + 1, error.encode())
            except (ConnectionError, RuntimeError):
                pass

    async def _read_client(self) -> None:
        async for msg in self.ws:
            if msg.type == WSMsgType.BINARY:
                raw: bytes = msg.data
                if self.base64 and raw:
                    raw = bytes([raw[0] - ord("0")]) + base64.b64decode(raw[1:])
            elif msg.type == WSMsgType.TEXT:
                text: str = msg.data
                raw = (bytes([ord(text[0]) - ord("0")]) + base64.b64decode(text[1:])) if self.base64 and text \
                    else text.encode()
            else:
                continue
            if len(raw) < 2 or raw[0] % 2 or raw[0] // 2 >= len(self.pipes):
                continue  # empty, for an error channel, or for no port: nothing to forward
            await self.pipes[raw[0] // 2].from_client(raw[1:])
