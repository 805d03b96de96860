"""pods/exec and pods/log handlers, driven by real clients.

The PodRuntime here is a test double of the seam only: its exec runs a real local
subprocess and its logs replay lines, so the protocol layer (handshake, channel
framing, exit status, close, query parameters) is exercised by aiohttp's WebSocket
client, the official ``kubernetes`` Python client and, when present, kubectl.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from k8snet.lab.api.streaming import serve_exec, serve_log
from k8snet.lab.errors import ApiError
from tests.unit._kubectl_discovery import add_discovery

NS = "default"


def make_pod(name: str, containers: list[str], **annotations: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "annotations": annotations,
                         "creationTimestamp": "2025-01-01T00:00:00Z", "resourceVersion": "7"},
            "spec": {"containers": [{"name": c, "image": "busybox"} for c in containers]},
            "status": {"phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}],
                       "containerStatuses": [
                           {"name": c, "ready": True, "restartCount": 0, "image": "busybox", "imageID": "",
                            "state": {"running": {"startedAt": "2025-01-01T00:00:01Z"}}} for c in containers]}}


PODS = {
    "web": make_pod("web", ["nginx"]),
    "two": make_pod("two", ["a", "b"]),
    "annotated": make_pod("annotated", ["a", "b"], **{"kubectl.kubernetes.io/default-container": "b"}),
}
waiting = make_pod("waiting", ["nginx"])
waiting["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
PODS["waiting"] = waiting


class LocalRuntime:
    """A PodRuntime whose containers are this machine: exec runs the command locally."""

    def __init__(self) -> None:
        self.execs: list[tuple[str, str, str, list[str], bool, bool]] = []
        self.log_calls: list[dict] = []
        self.log_lines: list[bytes] = []
        self.follow_more = asyncio.Queue()  # type: asyncio.Queue[bytes | None]

    async def exec(self, namespace: str, pod: str, container: str, command: list[str], *, stdin: bool,
                   tty: bool) -> asyncio.subprocess.Process:
        self.execs.append((namespace, pod, container, command, stdin, tty))
        if command == ["fail-to-start"]:
            raise ApiError(400, "BadRequest", f'container "{container}" is not running')
        return await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def logs(self, namespace: str, pod: str, container: str, *, follow: bool = False,
                   tail_lines: int | None = None, timestamps: bool = False, previous: bool = False,
                   limit_bytes: int | None = None) -> AsyncIterator[bytes]:
        self.log_calls.append({"container": container, "follow": follow, "tail_lines": tail_lines,
                               "timestamps": timestamps, "previous": previous})
        lines = self.log_lines[-tail_lines:] if tail_lines else list(self.log_lines)
        for line in lines:
            yield line if timestamps else line.split(b" ", 1)[1]
        while follow:
            more = await self.follow_more.get()
            if more is None:
                return
            yield more if timestamps else more.split(b" ", 1)[1]


async def _api_error(handler, request: web.Request) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return web.json_response(err.status(), status=err.code)


def build_app(runtime: LocalRuntime) -> web.Application:
    def pod_of(request: web.Request) -> dict:
        pod = PODS.get(request.match_info["name"])
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{request.match_info["name"]}" not found')
        return pod

    async def get_pod(request: web.Request) -> web.StreamResponse:
        return web.json_response(pod_of(request))

    async def exec_(request: web.Request) -> web.StreamResponse:
        return await serve_exec(request, runtime, pod_of(request))

    async def log_(request: web.Request) -> web.StreamResponse:
        return await serve_log(request, runtime, pod_of(request))

    app = web.Application()

    def wrap(handler):
        async def wrapped(request: web.Request) -> web.StreamResponse:
            return await _api_error(handler, request)
        return wrapped

    add_discovery(app, [
        {"name": "pods/exec", "singularName": "", "namespaced": True, "kind": "PodExecOptions", "verbs": ["create", "get"]},
        {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]}])
    base = "/api/v1/namespaces/{ns}/pods/{name}"
    app.router.add_get(base, wrap(get_pod))
    for sub in ("exec", "attach"):
        app.router.add_route("GET", f"{base}/{sub}", wrap(exec_))
        app.router.add_route("POST", f"{base}/{sub}", wrap(exec_))
    app.router.add_get(f"{base}/log", wrap(log_))
    return app


class Server:
    """The app on 127.0.0.1 in its own thread and loop, so synchronous clients can call it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.runtime: LocalRuntime
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            self.runtime = LocalRuntime()
            self.runner = web.AppRunner(build_app(self.runtime))
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        self.loop.run_until_complete(start())
        ready.set()
        self.loop.run_forever()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, coro):  # run a coroutine on the server's loop (for the runtime's queue)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def server():
    s = Server()
    try:
        yield s
    finally:
        s.stop()


# -- aiohttp WebSocket client ------------------------------------------------------------

async def ws_exec(url: str, query: str, protocols: tuple[str, ...], send: list[bytes | str] = (),
                  after_send_close: bool = False) -> tuple[str | None, dict[int, bytes], int | None, list[bytes]]:
    """Runs one exec; returns (protocol, bytes per channel, close code, raw frames)."""
    frames: list[bytes] = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{url}/api/v1/namespaces/{NS}/pods/{query}", protocols=protocols) as ws:
            for item in send:
                if isinstance(item, str):
                    await ws.send_str(item)
                else:
                    await ws.send_bytes(item)
            if after_send_close:
                await ws.close()
            async for msg in ws:
                frames.append(msg.data if isinstance(msg.data, bytes) else msg.data.encode())
            channels: dict[int, bytes] = {}
            for f in frames:
                if ws.protocol and "base64" in ws.protocol:
                    ch, data = f[0] - ord("0"), base64.b64decode(f[1:])
                else:
                    ch, data = f[0], f[1:]
                channels[ch] = channels.get(ch, b"") + data
            return ws.protocol, channels, ws.close_code, frames


def test_exec_v5_stdout_stderr_and_exit_code(server: Server) -> None:
    q = "web/exec?command=sh&command=-c&command=echo%20out%3B%20echo%20err%20%3E%262%3B%20exit%203&stdout=true&stderr=true"
    proto, ch, code, _ = asyncio.run(ws_exec(server.url, q, ("v5.channel.k8s.io", "v4.channel.k8s.io")))
    assert proto == "v5.channel.k8s.io"
    assert ch[1] == b"out\n" and ch[2] == b"err\n"
    assert json.loads(ch[3]) == {
        "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
        "message": "command terminated with non-zero exit code: error executing command [sh -c echo out; echo err >&2; "
                   "exit 3], exit code 3",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}
    assert code == 1000
    assert server.runtime.execs[-1] == (NS, "web", "nginx", ["sh", "-c", "echo out; echo err >&2; exit 3"], False, False)


def test_exec_v5_stdin_half_close(server: Server) -> None:
    q = "web/exec?command=cat&stdin=true&stdout=true&stderr=true"
    sends = [b"\x00hello ", "\x00world", b"\xff\x00"]  # binary and text stdin, then v5 CLOSE(stdin)
    proto, ch, code, _ = asyncio.run(ws_exec(server.url, q, ("v5.channel.k8s.io",), sends))
    assert proto == "v5.channel.k8s.io"
    assert ch[1] == b"hello world"
    assert json.loads(ch[3]) == {"metadata": {}, "status": "Success"}
    assert code == 1000


def test_exec_picks_v4_and_large_output(server: Server) -> None:
    q = "web/exec?command=sh&command=-c&command=head%20-c%20300000%20/dev/zero&stdout=true"
    proto, ch, code, frames = asyncio.run(ws_exec(server.url, q, ("v4.channel.k8s.io", "channel.k8s.io")))
    assert proto == "v4.channel.k8s.io"
    assert ch[1] == b"\0" * 300000 and len(frames) > 2
    assert json.loads(ch[3])["status"] == "Success"


def test_exec_base64_and_old_protocol_error_text(server: Server) -> None:
    q = "web/exec?command=sh&command=-c&command=echo%20hi%3B%20exit%202&stdout=true"
    proto, ch, _, frames = asyncio.run(ws_exec(server.url, q, ("base64.channel.k8s.io",)))
    assert proto == "base64.channel.k8s.io" and frames[0].startswith(b"1")
    assert ch[1] == b"hi\n"
    assert ch[3].startswith(b"command terminated with non-zero exit code")


def test_exec_runtime_error_is_a_status_frame(server: Server) -> None:
    proto, ch, code, _ = asyncio.run(ws_exec(server.url, "web/exec?command=fail-to-start&stdout=true",
                                             ("v5.channel.k8s.io",)))
    status = json.loads(ch[3])
    assert status["status"] == "Failure" and status["message"] == 'container "nginx" is not running'
    assert status["code"] == 400 and code == 1000


def test_exec_client_leaving_kills_the_command(server: Server) -> None:
    q = "web/exec?command=sleep&command=31.4159&stdout=true&stdin=true"
    asyncio.run(ws_exec(server.url, q, ("v5.channel.k8s.io",), after_send_close=True))

    def still_running() -> bool:
        return bool(subprocess.run(["pgrep", "-f", "^sleep 31.4159$"], capture_output=True, text=True).stdout.strip())

    for _ in range(50):  # the server kills it once it sees the socket close
        if not still_running():
            break
        threading.Event().wait(0.1)
    assert not still_running()


def http_get(url: str, headers: dict | None = None) -> tuple[int, str]:
    async def go() -> tuple[int, str]:
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers=headers or {}) as r:
                return r.status, await r.text()
    return asyncio.run(go())


@pytest.mark.parametrize("path,message", [
    ("two/exec?command=ls&stdout=true", "a container name must be specified for pod two, choose one of: [a b]"),
    ("web/exec?command=ls&stdout=true&container=c", "container c is not valid for pod web"),
    ("web/exec?stdout=true", "you must specify at least one command for the container"),
    ("web/exec?command=ls&stdout=false&stderr=false", "you must specify at least 1 of stdin, stdout, stderr"),
    ("web/exec?command=ls&stdout=true", "Upgrade request required"),
    ("web/exec?command=ls&stdout=true&tty=maybe", 'strconv.ParseBool: parsing "maybe": invalid syntax'),
])
def test_exec_bad_requests(server: Server, path: str, message: str) -> None:
    status, body = http_get(f"{server.url}/api/v1/namespaces/{NS}/pods/{path}")
    assert status == 400
    assert json.loads(body) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": message, "reason": "BadRequest", "code": 400}


def test_spdy_upgrade_is_refused_clearly(server: Server) -> None:
    status, body = http_get(f"{server.url}/api/v1/namespaces/{NS}/pods/web/exec?command=ls&stdout=true",
                            {"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                             "X-Stream-Protocol-Version": "v4.channel.k8s.io"})
    assert status == 400 and "supports only WebSocket" in json.loads(body)["message"]


def test_default_container_annotation(server: Server) -> None:
    asyncio.run(ws_exec(server.url, "annotated/exec?command=true&stdout=true", ("v5.channel.k8s.io",)))
    assert server.runtime.execs[-1][2] == "b"


def test_attach_without_runtime_support_reports_why(server: Server) -> None:
    _, ch, _, _ = asyncio.run(ws_exec(server.url, "web/attach?stdout=true", ("v5.channel.k8s.io",)))
    assert "attach is not supported" in json.loads(ch[3])["message"]


# -- the official Python client -----------------------------------------------------------

def python_client(server: Server):
    from kubernetes import client
    cfg = client.Configuration()
    cfg.host = server.url
    return client.CoreV1Api(client.ApiClient(cfg))


def test_python_client_stream(server: Server) -> None:
    from kubernetes.stream import stream
    v1 = python_client(server)
    out = stream(v1.connect_get_namespaced_pod_exec, "web", NS,
                 command=["sh", "-c", "echo out; sleep 0.2; echo err >&2"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "out\nerr\n"

    ws = stream(v1.connect_get_namespaced_pod_exec, "web", NS, command=["sh", "-c", "echo o; echo e >&2; exit 7"],
                stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    ws.run_forever(timeout=10)
    assert ws.returncode == 7
    assert ws.read_stdout() == "o\n" and ws.read_stderr() == "e\n"

    ws = stream(v1.connect_get_namespaced_pod_exec, "web", NS, command=["cat"],
                stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    ws.write_stdin("ping\n")
    ws.close_channel(0)  # v5 stdin half-close
    ws.run_forever(timeout=10)
    assert ws.read_stdout() == "ping\n" and ws.returncode == 0


def test_python_client_exec_without_stream_gets_the_real_error(server: Server) -> None:
    from kubernetes.client.exceptions import ApiException
    v1 = python_client(server)
    with pytest.raises(ApiException) as err:
        v1.connect_get_namespaced_pod_exec("web", NS, command=["ls"], stdout=True)
    assert err.value.status == 400 and "Upgrade request required" in err.value.body


# -- kubectl --------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")
def test_kubectl_exec(server: Server) -> None:
    with tempfile.TemporaryDirectory() as home:
        kubeconfig = os.path.join(home, "config")
        with open(kubeconfig, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: t, cluster: {{server: "{server.url}"}}}}]
contexts: [{{name: t, context: {{cluster: t, user: t, namespace: default}}}}]
current-context: t
users: [{{name: t, user: {{}}}}]
""")
        env = {**os.environ, "KUBECONFIG": kubeconfig, "HOME": home}
        done = subprocess.run(["kubectl", "exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3"],
                              capture_output=True, text=True, env=env, timeout=60)
        assert done.stdout == "out\n", done.stderr
        assert "err\n" in done.stderr and "command terminated with exit code 3" in done.stderr
        assert done.returncode == 3
        fed = subprocess.run(["kubectl", "exec", "-i", "web", "--", "cat"], input="via stdin\n",
                             capture_output=True, text=True, env=env, timeout=60)
        assert (fed.returncode, fed.stdout) == (0, "via stdin\n"), fed.stderr
        # kubectl 1.37 checks a named container against the pod it just read and refuses
        # before any exec request (1.32 left that to the server, whose own refusal is
        # tested above with the parameter cases).
        bad = subprocess.run(["kubectl", "exec", "web", "-c", "bogus", "--", "true"], capture_output=True,
                             text=True, env=env, timeout=60)
        assert bad.returncode == 1
        assert "container bogus is not valid for pod web out of: nginx" in bad.stderr


# -- logs -------------------------------------------------------------------------------------

def stamp(seconds_ago: float) -> bytes:
    t = datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f000Z").encode()


def test_logs_plain_tail_limit_and_timestamps(server: Server) -> None:
    server.runtime.log_lines = [stamp(600) + b" one\n", stamp(5) + b" two\n", stamp(1) + b" three\n"]
    base = f"{server.url}/api/v1/namespaces/{NS}/pods/web/log"
    assert http_get(base) == (200, "one\ntwo\nthree\n")
    assert http_get(f"{base}?tailLines=2&container=nginx") == (200, "two\nthree\n")
    assert server.runtime.log_calls[-1]["tail_lines"] == 2
    assert http_get(f"{base}?limitBytes=6") == (200, "one\ntw")
    status, body = http_get(f"{base}?timestamps=true")
    assert status == 200 and body.splitlines()[0].endswith("Z one")
    assert http_get(f"{base}?sinceSeconds=60") == (200, "two\nthree\n")
    since = (datetime.now(timezone.utc) - timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, body = http_get(f"{base}?sinceTime={since}&timestamps=true")
    assert status == 200 and body.endswith(" three\n") and body.count("\n") == 1


def test_logs_errors(server: Server) -> None:
    base = f"{server.url}/api/v1/namespaces/{NS}/pods"
    status, body = http_get(f"{base}/waiting/log")
    assert status == 400
    assert json.loads(body)["message"] == 'container "nginx" in pod "waiting" is waiting to start: ContainerCreating'
    status, body = http_get(f"{base}/two/log")
    assert (status, json.loads(body)["message"]) == (
        400, "a container name must be specified for pod two, choose one of: [a b]")
    status, body = http_get(f"{base}/web/log?tailLines=-1")
    assert status == 422 and json.loads(body)["details"]["causes"][0]["field"] == "tailLines"
    status, body = http_get(f"{base}/web/log?previous=true")
    assert status == 400 and "previous terminated container" in json.loads(body)["message"]


def test_logs_follow_streams_until_the_container_ends(server: Server) -> None:
    server.runtime.log_lines = [stamp(1) + b" first\n"]
    received: list[str] = []

    async def follow() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/api/v1/namespaces/{NS}/pods/web/log?follow=true") as r:
                assert r.headers["Transfer-Encoding"] == "chunked"
                assert r.headers["Content-Type"].startswith("text/plain")
                received.append((await r.content.readline()).decode())
                server.loop.call_soon_threadsafe(server.runtime.follow_more.put_nowait, stamp(0) + b" second\n")
                received.append((await r.content.readline()).decode())
                server.loop.call_soon_threadsafe(server.runtime.follow_more.put_nowait, None)
                received.append((await r.content.read()).decode())

    asyncio.run(asyncio.wait_for(follow(), 10))
    assert received == ["first\n", "second\n", ""]


def test_python_client_logs(server: Server) -> None:
    server.runtime.log_lines = [stamp(2) + b" hello\n", stamp(1) + b" world\n"]
    v1 = python_client(server)
    assert v1.read_namespaced_pod_log("web", NS) == "hello\nworld\n"
    assert v1.read_namespaced_pod_log("web", NS, tail_lines=1) == "world\n"
