"""``pods/exec``, ``pods/attach`` and ``pods/log``: the API server's streaming endpoints.

exec and attach speak the Kubernetes WebSocket channel protocols (kubelet's
``wsstream`` / ``remotecommand``): every message is ``[channel byte][payload]`` with
0 stdin, 1 stdout, 2 stderr, 3 error/status, 4 resize and, in ``v5.channel.k8s.io``
only, ``[255, channel]`` to half-close a stream. kubectl (1.29 and later) tries
WebSocket first and only falls back to SPDY when the upgrade *fails*, so serving
WebSocket is enough; SPDY is refused with a clear message.

The handlers parse their own query parameters. Errors found before the upgrade
(bad parameters, unknown container) are raised as :class:`ApiError` for the server to
answer with a ``Status``; errors after it go to the client on the status channel.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

from aiohttp import WSMessage, WSMsgType, web

from ..contracts import ExecProcess, Obj, PodRuntime
from ..errors import ApiError, bad_request, invalid

log = logging.getLogger(__name__)

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255

# In order of preference. The v4+ protocols report a structured Status on channel
# 3; the older ones send the error text only. The base64 variants use text frames.
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
             "channel.k8s.io", "base64.channel.k8s.io")

_READ_SIZE = 32 * 1024


# -- query parameters ------------------------------------------------------------

def optional_bool(request: web.Request, name: str) -> bool | None:
    """A boolean query parameter, read like Go's ``strconv.ParseBool``; None when absent."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if raw in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if raw in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise bad_request(f'strconv.ParseBool: parsing "{raw}": invalid syntax')


def parse_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter, read like Go's ``strconv.ParseBool``."""
    value = optional_bool(request, name)
    return default if value is None else value


def _parse_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f'strconv.ParseInt: parsing "{raw}": invalid syntax') from None


# -- containers --------------------------------------------------------------------

def resolve_container(pod: Obj, requested: str | None, *, with_init: bool = False) -> str:
    """The container a request means (``pkg/registry/core/pod/strategy.go``).

    Without a name: the ``kubectl.kubernetes.io/default-container`` annotation when it
    names a container, else the only container, else 400 listing the choices.
    """
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    name = meta.get("name", "")
    containers = [c.get("name", "") for c in spec.get("containers") or []]
    inits = [c.get("name", "") for c in spec.get("initContainers") or []]
    ephemeral = [c.get("name", "") for c in spec.get("ephemeralContainers") or []]
    if requested:
        if requested not in containers + inits + ephemeral:
            raise bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    annotated = (meta.get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    if annotated and annotated in containers:
        return annotated
    if len(containers) == 1:
        return containers[0]
    message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
    if with_init and inits:
        message += f" or one of the init containers: [{' '.join(inits)}]"
    raise bad_request(message)


# -- exec / attach -------------------------------------------------------------------

def choose_protocol(offered: str) -> str | None:
    """The best protocol the client offered (v5 over v4, binary over base64)."""
    names = {p.strip() for p in offered.split(",") if p.strip()}
    return next((p for p in PROTOCOLS if p in names), None)


def exit_status(command: list[str], code: int) -> Obj:
    """The kubelet's status for a finished command (``remotecommand`` ``exec.go``)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command "
                   f"[{' '.join(command)}], exit code {code}",
        "reason": "NonZeroExitCode",
        # Python's ws_client reads causes[0].message as the exit code: keep it first.
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def _error_status(err: Exception) -> Obj:
    if isinstance(err, ApiError):
        return err.status()
    return {"metadata": {}, "status": "Failure", "message": str(err), "reason": "InternalError", "code": 500}


class _Channels:
    """Writes channel frames in the negotiated protocol's encoding."""

    def __init__(self, ws: web.WebSocketResponse, protocol: str):
        self.ws = ws
        self.protocol = protocol
        self.base64 = "base64" in protocol
        self.structured = protocol.startswith(("v4.", "v5."))
        self.lock = asyncio.Lock()  # one frame at a time from the stdout and stderr pumps

    async def send(self, channel: int, data: bytes) -> None:
        async with self.lock:
            if self.base64:
                await self.ws.send_str(chr(ord("0") + channel) + base64.b64encode(data).decode())
            else:
                await self.ws.send_bytes(bytes([channel]) + data)

    async def send_status(self, status: Obj) -> None:
        if self.structured:
            await self.send(ERROR, json.dumps(status).encode())
        elif status.get("status") != "Success":  # v1-v3: the error text only
            await self.send(ERROR, status.get("message", "").encode())

    def decode(self, msg: WSMessage) -> tuple[int, bytes] | None:
        """A client frame as (channel, payload); None for an empty frame."""
        if msg.type == WSMsgType.TEXT:
            text: str = msg.data
            if not text:
                return None
            if self.base64:
                return ord(text[0]) - ord("0"), base64.b64decode(text[1:])
            # The Python client sends str stdin as text frames: same layout, UTF-8.
            raw = text.encode()
            return raw[0], raw[1:]
        data: bytes = msg.data
        if not data:
            return None
        if self.base64:
            return data[0] - ord("0"), base64.b64decode(data[1:])
        return data[0], data[1:]


def _exec_options(request: web.Request, attach: bool) -> tuple[list[str], bool, bool, bool, bool]:
    command = request.query.getall("command", [])
    stdin, stdout = parse_bool(request, "stdin"), parse_bool(request, "stdout", True)
    stderr, tty = parse_bool(request, "stderr", True), parse_bool(request, "tty")
    if not (stdin or stdout or stderr):
        raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
    if not attach and not command:
        raise bad_request("you must specify at least one command for the container")
    return command, stdin, stdout, stderr and not tty, tty  # a tty merges stderr into stdout


def refuse_non_websocket(request: web.Request, spdy_refusal: str) -> None:
    """Streams are served over WebSocket only: a raw SPDY upgrade gets ``spdy_refusal``
    (what to use instead), anything else the kubelet's "Upgrade request required"."""
    upgrade = request.headers.get("Upgrade", "").lower()
    if upgrade == "websocket":
        return
    if upgrade.startswith("spdy"):
        raise bad_request(spdy_refusal)
    raise bad_request("Upgrade request required")


SPDY_EXEC_REFUSAL = ("this lab's API server supports only WebSocket streaming for exec and attach "
                     f"({', '.join(PROTOCOLS[:2])}); SPDY is not supported. kubectl 1.29 or later and "
                     "the kubernetes Python client use WebSocket.")


async def _pump_output(stream: asyncio.StreamReader | None, channels: _Channels, channel: int, forward: bool) -> None:
    """Copies a process stream to the socket until EOF (dropping it when not requested)."""
    if stream is None:
        return
    while chunk := await stream.read(_READ_SIZE):
        if forward and not channels.ws.closed:
            try:
                await channels.send(channel, chunk)
            except (ConnectionError, RuntimeError):
                forward = False  # the client left; keep draining so the process is not blocked


async def _pump_input(proc: ExecProcess, channels: _Channels, stdin: bool) -> None:
    """Feeds client frames to the process until the client closes the socket."""
    writer = proc.stdin if stdin else None
    try:
        async for msg in channels.ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                continue
            frame = channels.decode(msg)
            if frame is None:
                continue
            channel, payload = frame
            if channel == STDIN and writer is not None and not writer.is_closing():
                writer.write(payload)
                try:
                    await writer.drain()
                except ConnectionError:
                    writer = None
            elif channel == RESIZE:
                _resize(proc, payload)
            elif channel == CLOSE and channels.protocol.startswith("v5.") and payload[:1] == bytes([STDIN]):
                if writer is not None:
                    writer.close()
                    writer = None
    finally:
        # v4 clients cannot half-close stdin: the socket closing is their EOF.
        if writer is not None and not writer.is_closing():
            writer.close()


def _resize(proc: ExecProcess, payload: bytes) -> None:
    """Terminal resize ({"Width":80,"Height":24}); only runtimes with a tty can apply it."""
    resize = getattr(proc, "resize", None)
    if resize is None:
        return
    try:
        size = json.loads(payload)
        resize(int(size.get("Width", 0)), int(size.get("Height", 0)))
    except (ValueError, TypeError, AttributeError):
        log.debug("ignoring bad resize frame %r", payload)


async def serve_exec(request: web.Request, runtime: PodRuntime, pod: Obj) -> web.StreamResponse:
    """``pods/exec`` and ``pods/attach`` over WebSocket (v5/v4 channel protocols).

    Raises ApiError (400) before the upgrade for bad parameters, an unknown
    container or a non-WebSocket request.
    """
    attach = request.path.rstrip("/").endswith("/attach")
    command, stdin, stdout, stderr, tty = _exec_options(request, attach)
    container = resolve_container(pod, request.query.get("container"))
    refuse_non_websocket(request, SPDY_EXEC_REFUSAL)
    protocol = choose_protocol(request.headers.get("Sec-WebSocket-Protocol", ""))
    if protocol is None:
        raise bad_request(f"requested protocol(s) are not supported: "
                          f"{request.headers.get('Sec-WebSocket-Protocol', '')!r}; supported: {', '.join(PROTOCOLS)}")

    ws = web.WebSocketResponse(protocols=[protocol], autoping=True, max_msg_size=0)
    await ws.prepare(request)
    channels = _Channels(ws, protocol)
    meta = pod.get("metadata") or {}
    try:
        proc = await _start(runtime, meta, container, command, stdin=stdin, tty=tty, attach=attach)
    except Exception as err:  # noqa: BLE001 - any failure is reported to the client as a Status
        log.info("exec in %s/%s failed to start: %s", meta.get("namespace"), meta.get("name"), err)
        await _finish(channels, _error_status(err))
        return ws

    if not stdin and proc.stdin is not None:
        proc.stdin.close()
    input_task = asyncio.create_task(_pump_input(proc, channels, stdin))
    command_task = asyncio.create_task(_run_command(proc, channels, command, stdout, stderr))
    try:
        done, _ = await asyncio.wait({command_task, input_task}, return_when=asyncio.FIRST_COMPLETED)
        if command_task not in done:
            # The client closed the socket mid-command (Ctrl-C, a dropped terminal):
            # end the command like a hangup instead of leaving it running unattended.
            _kill(proc)
            try:
                await asyncio.wait_for(asyncio.shield(command_task), _KILL_GRACE)
            except TimeoutError:
                command_task.cancel()
        else:
            await command_task
    finally:
        input_task.cancel()
        if not command_task.done():
            command_task.cancel()
    return ws


_KILL_GRACE = 5.0


async def _run_command(proc: ExecProcess, channels: _Channels, command: list[str], stdout: bool,
                       stderr: bool) -> None:
    """Copies the output until EOF, then reports the exit status (after all output)."""
    await asyncio.gather(_pump_output(proc.stdout, channels, STDOUT, stdout),
                         _pump_output(proc.stderr, channels, STDERR, stderr))
    code = await proc.wait()
    if code < 0:  # killed by a signal: report it the way a container shell does
        code = 128 - code
    await _finish(channels, exit_status(command, code))


def _kill(proc: ExecProcess) -> None:
    kill = getattr(proc, "kill", None)  # asyncio.subprocess.Process has it; the protocol does not require it
    if kill is None or getattr(proc, "returncode", None) is not None:
        return
    try:
        kill()
    except ProcessLookupError:
        pass


async def _start(runtime: PodRuntime, meta: Obj, container: str, command: list[str], *, stdin: bool,
                 tty: bool, attach: bool) -> ExecProcess:
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    if not attach:
        return await runtime.exec(namespace, name, container, command, stdin=stdin, tty=tty)
    # attach is not part of the PodRuntime contract yet; runtimes that can attach offer it.
    attach_fn = getattr(runtime, "attach", None)
    if attach_fn is None:
        raise bad_request(f"attach is not supported for pod {name}: this lab's container runtime "
                          "can only exec; use kubectl exec or kubectl logs -f instead")
    return await attach_fn(namespace, name, container, stdin=stdin, tty=tty)


async def _finish(channels: _Channels, status: Obj) -> None:
    """Sends the status frame and closes normally (clients read the status until close)."""
    if channels.ws.closed:
        return
    try:
        await channels.send_status(status)
        await channels.ws.close(code=1000)
    except (ConnectionError, RuntimeError):
        pass


# -- logs ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogOptions:
    """``pods/log`` query parameters (PodLogOptions), checked."""

    follow: bool
    previous: bool
    timestamps: bool
    tail_lines: int | None
    limit_bytes: int | None
    since: datetime | None  # from sinceTime or sinceSeconds


def _log_options(request: web.Request) -> LogOptions:
    follow, previous = parse_bool(request, "follow"), parse_bool(request, "previous")
    timestamps = parse_bool(request, "timestamps")
    tail_lines = _parse_int(request, "tailLines")
    limit_bytes = _parse_int(request, "limitBytes")
    since_seconds = _parse_int(request, "sinceSeconds")
    since_time = request.query.get("sinceTime") or None
    causes = []
    if tail_lines is not None and tail_lines < 0:
        causes.append(("FieldValueInvalid", "tailLines", f"Invalid value: {tail_lines}: must be greater than or equal to 0"))
    if limit_bytes is not None and limit_bytes < 1:
        causes.append(("FieldValueInvalid", "limitBytes", f"Invalid value: {limit_bytes}: must be greater than 0"))
    if since_seconds is not None and since_seconds < 1:
        causes.append(("FieldValueInvalid", "sinceSeconds", f"Invalid value: {since_seconds}: must be greater than 0"))
    if since_seconds is not None and since_time:
        causes.append(("FieldValueForbidden", "", "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"))
    if causes:
        raise invalid("", "PodLogOptions", "", causes)
    since: datetime | None = None
    if since_time:
        try:
            since = datetime.fromisoformat(since_time.replace("Z", "+00:00"))
        except ValueError:
            raise bad_request(f'parsing time "{since_time}" as RFC3339: cannot parse') from None
    elif since_seconds:
        since = datetime.now(timezone.utc) - timedelta(seconds=since_seconds)
    return LogOptions(follow=follow, previous=previous, timestamps=timestamps, tail_lines=tail_lines,
                      limit_bytes=limit_bytes, since=since)


def check_log_status(pod: Obj, container: str, previous: bool) -> None:
    """The kubelet's ``validateContainerLogStatus``: 400 when there is nothing to read yet."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    name = meta.get("name", "")
    statuses = [*(status.get("containerStatuses") or []), *(status.get("initContainerStatuses") or []),
                *(status.get("ephemeralContainerStatuses") or [])]
    cs = next((s for s in statuses if s.get("name") == container), None)
    if cs is None:
        raise bad_request(f'container "{container}" in pod "{name}" is not available')
    state, last = cs.get("state") or {}, (cs.get("lastState") or {}).get("terminated")
    if previous:
        if last is None:
            raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        return
    if state.get("running") is not None or state.get("terminated") is not None or last is not None:
        return
    waiting = state.get("waiting")
    if waiting is not None:
        reason = {"ErrImagePull": "image can't be pulled",
                  "ImagePullBackOff": "trying and failing to pull image"}.get(waiting.get("reason", ""),
                                                                             waiting.get("reason", ""))
        raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
    raise bad_request(f'container "{container}" in pod "{name}" is waiting to start - no logs yet')


async def _since_filter(chunks: AsyncIterator[bytes], since: datetime, keep_timestamps: bool) -> AsyncIterator[bytes]:
    """Drops lines older than ``since`` from a timestamped log (the kubelet filters by
    each line's RFC 3339 timestamp), then strips the timestamps unless asked for."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        out = [line for line in (_since_line(line + b"\n", since, keep_timestamps) for line in lines) if line]
        if out:
            yield b"".join(out)
    if pending:
        line = _since_line(pending, since, keep_timestamps)
        if line:
            yield line


def _since_line(line: bytes, since: datetime, keep_timestamps: bool) -> bytes | None:
    stamp, _, rest = line.partition(b" ")
    try:
        text = stamp.decode()
        # RFC3339Nano: Python's fromisoformat takes at most microseconds.
        if "." in text:
            head, frac = text.rstrip("Z").split(".", 1)
            text = f"{head}.{frac[:6]}+00:00"
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return line if keep_timestamps else rest  # not a timestamped line: keep it
    if when < since:
        return None
    return line if keep_timestamps else rest


async def _limit(chunks: AsyncIterator[bytes], limit: int | None) -> AsyncIterator[bytes]:
    remaining = limit
    async for chunk in chunks:
        if remaining is not None:
            chunk = chunk[:remaining]
            remaining -= len(chunk)
        if chunk:
            yield chunk
        if remaining == 0:
            return


async def serve_log(request: web.Request, runtime: PodRuntime, pod: Obj) -> web.StreamResponse:
    """``pods/log``: ``text/plain``, streamed (chunked) and kept open with ``follow``.

    Raises ApiError (400/422) for bad parameters, an unknown container or a
    container with no log yet, before any byte is sent.
    """
    opts = _log_options(request)
    container = resolve_container(pod, request.query.get("container"), with_init=True)
    check_log_status(pod, container, opts.previous)
    meta = pod.get("metadata") or {}
    since = opts.since
    source = runtime.logs(meta.get("namespace", ""), meta.get("name", ""), container, follow=opts.follow,
                          tail_lines=opts.tail_lines, timestamps=opts.timestamps or since is not None,
                          previous=opts.previous, limit_bytes=None if since else opts.limit_bytes)
    chunks = _since_filter(source, since, opts.timestamps) if since else source
    chunks = _limit(chunks, opts.limit_bytes)
    iterator = chunks.__aiter__()
    try:
        # Read ahead one chunk so a runtime error still becomes a proper HTTP Status.
        first: bytes | None = await iterator.__anext__()
    except StopAsyncIteration:
        first = None

    response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        if first:
            await response.write(first)
        async for chunk in iterator:
            await response.write(chunk)
        await response.write_eof()
    except ConnectionError:
        pass  # the client stopped following
    finally:
        await _aclose(iterator)
        await _aclose(source)
    return response


async def _aclose(iterator: object) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # noqa: BLE001 - cleanup of a finished stream
            log.debug("closing a log stream failed", exc_info=True)
