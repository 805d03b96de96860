"""The runtime half of ``pods/portforward``: a TCP connection to a port inside a pod.

Like containerd's ``portForward`` (``sandbox_portforward_linux.go``), the connection is
made from inside the pod's network namespace to *localhost* (127.0.0.1, then ::1), so
a server bound to loopback only is reachable too, and the error text names both
attempts the way Go's dialer words them.
"""

from __future__ import annotations

import asyncio
import errno
import os

from ..errors import PortForwardError
from ..net import nsutil

CONNECT_TIMEOUT = 10.0


async def connect_in_pod(netns: str, sandbox: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Opens ``localhost:port`` inside the pod whose network namespace is ``netns``.

    Raises PortForwardError with containerd's message when neither IPv4 nor IPv6
    loopback accepts.
    """
    try:
        return await nsutil.open_connection_in_netns(netns, "127.0.0.1", port, CONNECT_TIMEOUT)
    except (TimeoutError, OSError) as err:
        err4 = _go_dial_error("tcp4", f"127.0.0.1:{port}", err)
    try:
        return await nsutil.open_connection_in_netns(netns, "::1", port, CONNECT_TIMEOUT)
    except (TimeoutError, OSError) as err:
        err6 = _go_dial_error("tcp6", f"[::1]:{port}", err)
    raise PortForwardError(f'failed to connect to localhost:{port} inside namespace "{sandbox}", '
                           f"IPv4: {err4} IPv6 {err6} ")


def _go_dial_error(network: str, address: str, err: BaseException) -> str:
    """An error worded like Go's ``net.OpError``: ``dial tcp4 127.0.0.1:81: connect: connection refused``."""
    if isinstance(err, asyncio.TimeoutError):
        return f"dial {network} {address}: i/o timeout"
    code = getattr(err, "errno", None)
    reason = os.strerror(code).lower() if code else str(err)
    if code == errno.EADDRNOTAVAIL:
        reason = "cannot assign requested address"
    return f"dial {network} {address}: connect: {reason}"
