"""pods/portforward: SPDY/3.1 framing, and the handler driven by real clients.

The runtime here is a test double of the seam only: its ``port_forward`` connects to
a real local HTTP server (pod port 80) or fails like containerd (any other port), so
the protocol layer (the SPDY tunnel kubectl uses, the v4 channels of the Python
client, errors, closing) is exercised by kubectl, the ``kubernetes`` client and a
small SPDY client built from the module's own frames.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import struct
import tempfile
import zlib

import aiohttp
import pytest
from aiohttp import web

from k8snet.lab.api import spdy
from k8snet.lab.api.portforward import TUNNEL_PROTOCOL, parse_ports, serve_port_forward
from k8snet.lab.errors import ApiError, PortForwardError
from k8snet.lab.kubelet.portforward import _go_dial_error
from tests.unit._kubectl_discovery import add_discovery

NS = "default"
PAGE = b"<h1>Welcome to nginx!</h1>\n"
BIG = bytes(range(256)) * 16384  # 4 MiB: many frames, many WebSocket messages


# -- framing -----------------------------------------------------------------------------

def test_dictionary_is_the_spdy3_one() -> None:
    # zlib streams name their dictionary by Adler-32; Go's spdy reader checks it.
    assert len(spdy.DICTIONARY) == 1423 and zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2


def test_header_blocks_share_one_zlib_stream_per_direction() -> None:
    client, server = spdy.HeaderCodec(), spdy.HeaderCodec()
    reader = spdy.FrameReader(server)
    wire = b"".join(spdy.syn_stream(client, sid, {"streamType": [kind], "port": ["80"], "requestID": ["0"]})
                    for sid, kind in ((1, "error"), (3, "data")))
    wire += spdy.data_frame(3, b"GET / HTTP/1.1\r\n\r\n", fin=True) + spdy.ping(1)
    frames: list[spdy.Frame] = []
    for i in range(len(wire)):  # cut anywhere, as WebSocket messages may cut the byte pipe
        frames += reader.feed(wire[i:i + 1])
    assert [(f.kind, f.stream_id) for f in frames] == [(spdy.SYN_STREAM, 1), (spdy.SYN_STREAM, 3), (0, 3),
                                                       (spdy.PING, 1)]
    assert frames[0].headers == {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]}
    assert frames[1].headers["streamtype"] == ["data"]  # the second block only decodes with the first's state
    assert frames[2].payload == b"GET / HTTP/1.1\r\n\r\n" and frames[2].fin


def test_server_frames_layout() -> None:
    codec = spdy.HeaderCodec()
    reply = spdy.syn_reply(codec, 5, {}, fin=True)
    assert reply[:8] == struct.pack(">HHI", 0x8003, spdy.SYN_REPLY, 0x01000000 | (len(reply) - 8))
    assert struct.unpack(">I", reply[8:12])[0] == 5
    inflated = zlib.decompressobj(zdict=spdy.DICTIONARY).decompress(reply[12:])
    assert inflated == b"\x00\x00\x00\x00"  # no headers
    assert spdy.data_frame(7, b"abc") == b"\x00\x00\x00\x07\x00\x00\x00\x03abc"
    assert spdy.data_frame(7, b"", fin=True) == b"\x00\x00\x00\x07\x01\x00\x00\x00"
    assert spdy.rst_stream(3, spdy.CANCEL) == b"\x80\x03\x00\x03\x00\x00\x00\x08\x00\x00\x00\x03\x00\x00\x00\x05"


def test_malformed_input_is_refused() -> None:
    with pytest.raises(spdy.SpdyError, match="version 2"):
        spdy.FrameReader(spdy.HeaderCodec()).feed(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")
    with pytest.raises(spdy.SpdyError, match="lowercased"):
        spdy.parse_header_block(b"\x00\x00\x00\x01\x00\x00\x00\x04Port\x00\x00\x00\x0280")
    with pytest.raises(spdy.SpdyError, match="truncated"):
        spdy.parse_header_block(b"\x00\x00\x00\x01\x00\x00\x00\x09port")
    with pytest.raises(spdy.SpdyError, match="bad header block"):
        spdy.FrameReader(spdy.HeaderCodec()).feed(struct.pack(">HHII", 0x8003, spdy.SYN_REPLY, 8, 1) + b"junk")


def test_ports_query() -> None:
    assert parse_ports(["80,443", "8080"]) == [80, 443, 8080]
    for bad, message in (("x", 'unable to parse "x"'), ("0", 'port "0" must be > 0'), ("70000", "unable to parse")):
        with pytest.raises(ApiError, match=message):
            parse_ports([bad])


def test_dial_errors_read_like_go() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    assert _go_dial_error("tcp4", "127.0.0.1:81", refused) == "dial tcp4 127.0.0.1:81: connect: connection refused"
    assert _go_dial_error("tcp6", "[::1]:81", TimeoutError()) == "dial tcp6 [::1]:81: i/o timeout"


# -- the handler with real clients ------------------------------------------------------------

def make_pod(name: str, phase: str = "Running") -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "resourceVersion": "7",
                         "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]},
            "status": {"phase": phase, "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}]}}


PODS = {"web": make_pod("web"), "pending": make_pod("pending", "Pending")}


class LocalPorts:
    """Pod port 80 is a local HTTP server; nothing listens on any other port."""

    def __init__(self, http_port: int) -> None:
        self.http_port = http_port
        self.opened: list[int] = []

    async def port_forward(self, namespace: str, pod: str, port: int):
        self.opened.append(port)
        if port == 80:
            return await asyncio.open_connection("127.0.0.1", self.http_port)
        raise PortForwardError(f'error forwarding port {port} to pod sandbox-{pod}, uid : failed to connect to '
                               f'localhost:{port} inside namespace "sandbox-{pod}", IPv4: dial tcp4 '
                               f'127.0.0.1:{port}: connect: connection refused ')


async def http_server() -> tuple[asyncio.base_events.Server, int]:
    """A server closing after each answer: BIG for ``GET /big``, PAGE for anything else."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        body = BIG if request.startswith(b"GET /big ") else PAGE
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def build_app(runtime: LocalPorts) -> web.Application:
    def pod_of(request: web.Request) -> dict:
        pod = PODS.get(request.match_info["name"])
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{request.match_info["name"]}" not found')
        return pod

    def wrap(handler):
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except ApiError as err:
                return web.json_response(err.status(), status=err.code)
        return wrapped

    async def get_pod(request: web.Request) -> web.StreamResponse:
        return web.json_response(pod_of(request))

    async def forward(request: web.Request) -> web.StreamResponse:
        return await serve_port_forward(request, runtime, pod_of(request))

    app = web.Application()
    add_discovery(app, [{"name": "pods/portforward", "singularName": "", "namespaced": True,
                         "kind": "PodPortForwardOptions", "verbs": ["create", "get"]}])
    base = "/api/v1/namespaces/{ns}/pods/{name}"
    app.router.add_get(base, get_pod)
    app.router.add_route("*", f"{base}/portforward", wrap(forward))
    return app


async def start(runtime: LocalPorts) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(build_app(runtime))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def run_with_server(test) -> None:
    """Runs ``test(url, runtime)`` against the app and a local 'pod' HTTP server."""
    async def main() -> None:
        pod_server, http_port = await http_server()
        runtime = LocalPorts(http_port)
        runner, url = await start(runtime)
        try:
            await asyncio.wait_for(test(url, runtime), 60)
        finally:
            await runner.cleanup()
            pod_server.close()
    asyncio.run(main())


async def http_get(port: int, path: str = "/") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path.encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


class SpdyClient:
    """Just enough of client-go's side of the tunnel to drive the server by hand."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.codec = spdy.HeaderCodec()
        self.reader = spdy.FrameReader(self.codec)
        self.pending: list[spdy.Frame] = []

    async def open(self, sid: int, kind: str, port: int, request_id: str) -> None:
        await self.ws.send_bytes(spdy.syn_stream(self.codec, sid, {"streamType": [kind], "port": [str(port)],
                                                                   "requestID": [request_id]}))

    async def frames_until(self, done) -> list[spdy.Frame]:
        seen: list[spdy.Frame] = []
        while True:
            while self.pending:
                seen.append(self.pending.pop(0))
                if done(seen):
                    return seen
            msg = await self.ws.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            self.pending += self.reader.feed(msg.data)


def test_spdy_tunnel_by_hand() -> None:
    async def test(url: str, runtime: LocalPorts) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{url}/api/v1/namespaces/{NS}/pods/web/portforward",
                                          protocols=(TUNNEL_PROTOCOL,)) as ws:
                assert ws.protocol == TUNNEL_PROTOCOL
                client = SpdyClient(ws)
                await ws.send_bytes(spdy.ping(1))
                await client.open(1, "error", 80, "0")
                await client.open(3, "data", 80, "0")
                await ws.send_bytes(spdy.data_frame(1, b"", fin=True))
                await ws.send_bytes(spdy.data_frame(3, b"GET / HTTP/1.1\r\n\r\n", fin=True))
                frames = await client.frames_until(lambda seen: sum(f.fin and f.kind == 0 for f in seen) == 2)
                assert (frames[0].kind, frames[0].stream_id) == (spdy.PING, 1)  # echoed
                replies = [f for f in frames if f.kind == spdy.SYN_REPLY]
                assert [(f.stream_id, f.fin, f.headers) for f in replies] == [(1, False, {}), (3, False, {})]
                body = b"".join(f.payload for f in frames if f.kind == 0 and f.stream_id == 3)
                assert body.startswith(b"HTTP/1.1 200 OK") and body.endswith(PAGE)
                assert not any(f.payload for f in frames if f.kind == 0 and f.stream_id == 1)  # no error

                # nothing listens on 81: the error stream says so, then both streams end
                await client.open(5, "error", 81, "1")
                await client.open(7, "data", 81, "1")
                frames = await client.frames_until(lambda seen: sum(f.fin and f.kind == 0 for f in seen) == 2)
                error = b"".join(f.payload for f in frames if f.kind == 0 and f.stream_id == 5).decode()
                assert error.startswith("error forwarding port 81 to pod sandbox-web, uid : failed to connect to "
                                        "localhost:81 inside namespace")
                # a stream without a valid type is rejected with a FIN reply
                await client.open(9, "bogus", 80, "2")
                frames = await client.frames_until(lambda seen: any(f.kind == spdy.SYN_REPLY for f in seen))
                assert frames[-1].stream_id == 9 and frames[-1].fin
                assert runtime.opened == [80, 81]
    run_with_server(test)


def test_refusals_before_the_upgrade() -> None:
    async def test(url: str, runtime: LocalPorts) -> None:
        async with aiohttp.ClientSession() as session:
            base = f"{url}/api/v1/namespaces/{NS}/pods"
            async with session.get(f"{base}/web/portforward?ports=80") as plain:
                assert plain.status == 400 and (await plain.json())["message"] == "Upgrade request required"
            async with session.post(f"{base}/web/portforward", headers={
                    "Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                    "X-Stream-Protocol-Version": "portforward.k8s.io"}) as raw_spdy:
                assert raw_spdy.status == 400 and "raw SPDY upgrade is not supported" in (await raw_spdy.json())["message"]
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await session.ws_connect(f"{base}/pending/portforward", protocols=(TUNNEL_PROTOCOL,))
            assert err.value.status == 400
            async with session.get(f"{base}/pending/portforward", headers={"Upgrade": "websocket"}) as pending:
                assert (await pending.json())["message"] == ("unable to forward port because pod is not running. "
                                                           "Current status=Pending")
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await session.ws_connect(f"{base}/web/portforward", protocols=("v4.channel.k8s.io",))
            assert err.value.status == 400  # the channel protocols need ?ports=
        assert runtime.opened == []
    run_with_server(test)


def test_python_client_portforward() -> None:
    from kubernetes import client
    from kubernetes.stream import portforward

    async def test(url: str, runtime: LocalPorts) -> None:
        def fetch() -> tuple[bytes, str | None, str | None]:
            api = client.CoreV1Api(client.ApiClient(client.Configuration(host=url)))
            pf = portforward(api.connect_get_namespaced_pod_portforward, "web", NS, ports="80,81")
            sock = pf.socket(80)
            sock.settimeout(10)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            sock.close()
            refused = pf.socket(81)
            refused.settimeout(10)
            assert refused.recv(10) == b""  # closed after the error
            errors = pf.error(80), pf.error(81)
            pf.close()
            return answer, *errors

        answer, ok_error, refused_error = await asyncio.to_thread(fetch)
        assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(PAGE)
        assert ok_error is None
        assert refused_error is not None and "failed to connect to localhost:81" in refused_error
        assert sorted(runtime.opened) == [80, 81]
    run_with_server(test)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kubectl_env(home: str, url: str) -> dict[str, str]:
    """An environment whose kubeconfig points kubectl at ``url``."""
    kubeconfig = os.path.join(home, "config")
    with open(kubeconfig, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: t, cluster: {{server: "{url}"}}}}]
contexts: [{{name: t, context: {{cluster: t, user: t, namespace: default}}}}]
current-context: t
users: [{{name: t, user: {{}}}}]
""")
    return {**os.environ, "KUBECONFIG": kubeconfig, "HOME": home}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")
def test_kubectl_port_forward() -> None:
    async def test(url: str, runtime: LocalPorts) -> None:
        with tempfile.TemporaryDirectory() as home:
            local = free_port()
            proc = await asyncio.create_subprocess_exec(
                "kubectl", "port-forward", "pod/web", f"{local}:80",
                env=kubectl_env(home, url),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), 30)  # type: ignore[union-attr]
                assert line.decode().startswith(f"Forwarding from 127.0.0.1:{local} -> 80"), line
                for _ in range(2):  # two connections over the same tunnel
                    answer = await http_get(local)
                    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(PAGE)
                big = await http_get(local, "/big")
                assert big.endswith(BIG) and len(big) < len(BIG) + 200
                assert runtime.opened == [80, 80, 80]
            finally:
                proc.terminate()
                _, err = await proc.communicate()
            assert b"error" not in err.lower(), err
    run_with_server(test)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")
def test_kubectl_reports_the_refused_port() -> None:
    async def test(url: str, runtime: LocalPorts) -> None:
        with tempfile.TemporaryDirectory() as home:
            local = free_port()
            proc = await asyncio.create_subprocess_exec(
                "kubectl", "port-forward", "pod/web", f"{local}:81",
                env=kubectl_env(home, url),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                await asyncio.wait_for(proc.stdout.readline(), 30)  # type: ignore[union-attr]
                try:
                    answer = await http_get(local)
                except ConnectionResetError:  # kubectl drops the connection: a close or, racing our write, a reset
                    answer = b""
                assert answer == b""
                _, err = await asyncio.wait_for(proc.communicate(), 30)
            finally:
                if proc.returncode is None:
                    proc.terminate()
                    await proc.wait()
            assert "error forwarding port 81 to pod sandbox-web, uid : failed to connect to localhost:81" in err.decode()
    run_with_server(test)
