"""Container probes (httpGet, tcpSocket, exec), run from inside the pod's network namespace.

Network probes use a socket created in the pod's namespace (a thread switched there
with setns), so they behave like the kubelet's: they reach the pod IP, not loopback.
Success rules follow pkg/probe: HTTP 200-399, a TCP connect, exit status 0.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from typing import Any, Awaitable, Callable

from ..config import LabConfig
from ..net import nsutil
from .runtime import Container, exec_in

Obj = dict[str, Any]
# The kubelet's probe agent names its major.minor version (pkg/probe/http/request.go).
USER_AGENT = "kube-probe/" + ".".join(LabConfig.kubernetes_version.lstrip("v").split(".")[:2])


def resolve_port(port: Any, container: Obj) -> int:
    """A probe's port: a number or the name of one of the container's ports."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"port {port!r} not found in the container's ports")


async def tcp_probe(netns: str, host: str, port: int, timeout: float) -> bool:
    try:
        _, writer = await nsutil.open_connection_in_netns(netns, host, port, timeout)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True


async def http_probe(netns: str, host: str, port: int, path: str, timeout: float, *,
                     scheme: str = "HTTP", headers: list[Obj] | None = None) -> bool:
    async def attempt() -> bool:
        reader, writer = await nsutil.open_connection_in_netns(netns, host, port, timeout)
        try:
            if scheme.upper() == "HTTPS":
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE  # the kubelet does not verify probe certificates
                await writer.start_tls(ctx)
            lines = [f"GET {path or '/'} HTTP/1.1", f"Host: {host}:{port}", f"User-Agent: {USER_AGENT}",
                     "Accept: */*", "Connection: close"]
            lines += [f"{h['name']}: {h['value']}" for h in headers or []]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
        parts = status_line.split()
        return len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) < 400

    try:
        return await asyncio.wait_for(attempt(), timeout)
    except (TimeoutError, OSError, ssl.SSLError):
        return False


async def exec_probe(container: Container, command: list[str], timeout: float) -> bool:
    try:
        proc = await exec_in(container, command, stdin=False, tty=False)
    except Exception:  # noqa: BLE001 - a container that cannot be entered fails the probe
        return False
    try:
        await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False
    return proc.returncode == 0


def probe_runner(probe: Obj, container_spec: Obj, container: Container, netns: str,
                 pod_ip: str) -> Callable[[], Awaitable[bool]]:
    """One attempt of ``probe`` (defaults as the API server sets them)."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    if "exec" in probe:
        command = probe["exec"].get("command") or []
        return lambda: exec_probe(container, command, timeout)
    if "httpGet" in probe:
        h = probe["httpGet"]
        port = resolve_port(h.get("port"), container_spec)
        return lambda: http_probe(netns, h.get("host") or pod_ip, port, h.get("path", "/"), timeout,
                                  scheme=h.get("scheme", "HTTP"), headers=h.get("httpHeaders"))
    if "tcpSocket" in probe:
        t = probe["tcpSocket"]
        port = resolve_port(t.get("port"), container_spec)
        return lambda: tcp_probe(netns, t.get("host") or pod_ip, port, timeout)
    raise ValueError("probe has no handler (exec, httpGet, tcpSocket); grpc is not supported by the lab")


def until_next_tick(origin: float, period: float, now: float) -> float:
    """Seconds from ``now`` to the next tick of a ticker started at ``origin`` with
    ``period`` (the ticks are origin + k·period, k ≥ 1): the kubelet's probe worker
    keeps one ticker from the moment it is created, whatever the container does."""
    if now < origin:
        return origin - now + period
    elapsed = now - origin
    return (math.floor(elapsed / period) + 1) * period - elapsed


async def probe_loop(probe: Obj, attempt: Callable[[], Awaitable[bool]],
                     on_result: Callable[[bool], Awaitable[bool] | bool], *,
                     origin: float | None = None) -> None:
    """Runs ``attempt`` once at once (after initialDelaySeconds), then on every tick of
    a ``periodSeconds`` ticker started at ``origin`` (``time.monotonic()``; default:
    now); calls ``on_result(state)`` whenever the thresholded result changes (and on
    the first result). ``on_result`` returns False to stop the loop.

    ``origin`` is when the pod's probe workers were made: the kubelet creates them
    (``probeManager.AddPod``) before the runtime makes the sandbox and starts the
    containers, and each worker's ticker runs from then on. The attempt at container
    start is the run the kubelet's status sync triggers for a container that is not
    ready yet (``UpdatePodStatus``); the next one is the ticker's next tick, which
    comes less than a period after the start — not a full period after it."""
    period = float(probe.get("periodSeconds") or 10)
    success_threshold = int(probe.get("successThreshold") or 1)
    failure_threshold = int(probe.get("failureThreshold") or 3)
    origin = time.monotonic() if origin is None else origin
    delay = float(probe.get("initialDelaySeconds") or 0)
    if delay:  # probes are off until then; the first is the first tick after it
        await asyncio.sleep(delay)
        await asyncio.sleep(until_next_tick(origin, period, time.monotonic()))
    successes = failures = 0
    state: bool | None = None
    while True:
        ok = await attempt()
        successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
        new = state
        if ok and successes >= success_threshold:
            new = True
        elif not ok and failures >= failure_threshold:
            new = False
        if new is not None and new != state:
            state = new
            result = on_result(new)
            if asyncio.iscoroutine(result):
                result = await result
            if result is False:
                return
        await asyncio.sleep(until_next_tick(origin, period, time.monotonic()))
