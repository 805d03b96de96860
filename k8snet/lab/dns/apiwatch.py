"""A stdlib-only in-cluster Kubernetes client that keeps a :class:`ClusterRecords` current.

It does what CoreDNS's informers do, with only what a pod has: the
``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT`` environment and the
service-account token and CA at ``/var/run/secrets/kubernetes.io/serviceaccount/``.
For each kind (Services, discovery.k8s.io/v1 EndpointSlices, all namespaces):

1. list (``GET /api/v1/services``), hand the items to ``sink.replace``;
2. watch from the list's resourceVersion (``?watch=true&resourceVersion=...``),
   newline-delimited JSON events, each to ``sink.update``; BOOKMARKs only move the
   resourceVersion on;
3. when the server ends the watch cleanly (its ``timeoutSeconds``), watch again from
   the last resourceVersion seen; on 410 Gone (as an HTTP status or as an ERROR
   event) relist at once; on any other failure (refused, reset, TLS, bad JSON)
   back off and relist, so a missed event can never stick.

``sink.mark_synced()`` is called once every kind has been listed, which is what
the ``/ready`` probe waits for. Each kind runs in its own daemon thread: blocking
``http.client`` reads are simplest to get right (chunked decoding included), and the
records object is thread-safe.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol

from ..errors import ApiError
from .records import ENDPOINTSLICES, SERVICES

log = logging.getLogger(__name__)

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
PATHS = {
    SERVICES: "/api/v1/services",
    ENDPOINTSLICES: "/apis/discovery.k8s.io/v1/endpointslices",
}
USER_AGENT = "k8snet-dns/0.1 (coredns-compatible)"
LIST_TIMEOUT = 30.0
WATCH_TIMEOUT = 300  # server-side timeoutSeconds; the socket gets a little more
MAX_BACKOFF = 10.0

Obj = dict[str, Any]


class Sink(Protocol):
    """What the watcher feeds; :class:`ClusterRecords` is one."""

    def replace(self, kind: str, items: Iterable[Obj]) -> None: ...

    def update(self, kind: str, event_type: str, obj: Obj) -> None: ...

    def mark_synced(self) -> None: ...


class _Gone(Exception):
    """The resourceVersion is too old: only a relist can continue."""


@dataclass(frozen=True)
class InClusterConfig:
    host: str
    port: int
    token_path: Path = SA_DIR / "token"
    ca_path: Path = SA_DIR / "ca.crt"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None,
                         sa_dir: Path = SA_DIR) -> InClusterConfig:
        """Like client-go's ``rest.InClusterConfig``: fails with the same explanation
        when the pod has no Service environment or no mounted token."""
        env = os.environ if environ is None else environ
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
        if not host or not port:
            raise RuntimeError("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                               "KUBERNETES_SERVICE_PORT must be defined")
        config = cls(host, int(port), sa_dir / "token", sa_dir / "ca.crt")
        for path in (config.token_path, config.ca_path):
            if not path.is_file():
                raise RuntimeError(f"unable to load in-cluster configuration: open {path}: no such file or directory")
        return config

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))

    def token(self) -> str:
        # Re-read on every connection: projected tokens are rotated by the kubelet.
        return self.token_path.read_text().strip()


def _status_error(status: int, body: bytes) -> ApiError:
    """An ApiError from a ``Status`` body (or a bare HTTP status when it is not one)."""
    try:
        obj = json.loads(body)
        return ApiError(int(obj.get("code", status)), obj.get("reason", ""), obj.get("message", ""),
                        obj.get("details"))
    except (ValueError, AttributeError):
        return ApiError(status, http.client.responses.get(status, "Unknown"), body[:200].decode("utf-8", "replace"))


class ApiWatcher:
    """List+watch of Services and EndpointSlices into a sink, one thread per kind."""

    def __init__(self, config: InClusterConfig, sink: Sink, *, kinds: Iterable[str] = (SERVICES, ENDPOINTSLICES),
                 watch_timeout: int = WATCH_TIMEOUT, backoff: float = 0.5):
        self.config = config
        self.sink = sink
        self.kinds = tuple(kinds)
        self.watch_timeout = watch_timeout
        self.backoff = backoff
        self.lists: dict[str, int] = {k: 0 for k in self.kinds}  # how many times each kind was listed
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._listed: set[str] = set()
        self._conns: dict[str, http.client.HTTPSConnection] = {}
        self._threads: list[threading.Thread] = []
        self._ctx = config.ssl_context()

    def start(self) -> None:
        for kind in self.kinds:
            t = threading.Thread(target=self._run, args=(kind,), name=f"watch-{kind}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            conns = list(self._conns.values())
        for conn in conns:  # unblocks a thread waiting on a quiet watch
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(2)
                except OSError:
                    pass
        for t in self._threads:
            t.join(timeout)

    # -- one kind ----------------------------------------------------------
    def _run(self, kind: str) -> None:
        delay = self.backoff
        while not self._stop.is_set():
            try:
                rv = self._list(kind)
                delay = self.backoff
                while not self._stop.is_set():
                    rv = self._watch(kind, rv)
            except _Gone:
                log.info("watch of %s expired (410 Gone); relisting", kind)
            except Exception as err:  # whatever went wrong, only a relist can be trusted
                if self._stop.is_set():
                    return
                expected = isinstance(err, (OSError, http.client.HTTPException, ValueError, ApiError))
                log.warning("watch of %s failed (%r); relisting in %.1fs", kind, err, delay,
                            exc_info=not expected)
                self._stop.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF)

    def _request(self, kind: str, query: dict[str, str], timeout: float) -> http.client.HTTPResponse:
        conn = http.client.HTTPSConnection(self.config.host, self.config.port, context=self._ctx, timeout=timeout)
        with self._lock:
            old = self._conns.pop(kind, None)
            self._conns[kind] = conn
        if old is not None:
            old.close()
        url = PATHS[kind] + ("?" + urllib.parse.urlencode(query) if query else "")
        conn.request("GET", url, headers={"Authorization": f"Bearer {self.config.token()}",
                                          "Accept": "application/json", "User-Agent": USER_AGENT})
        return conn.getresponse()

    def _list(self, kind: str) -> str:
        resp = self._request(kind, {}, LIST_TIMEOUT)
        body = resp.read()
        if resp.status != 200:
            raise _status_error(resp.status, body)
        listed = json.loads(body)
        items = listed.get("items") or []
        rv = listed["metadata"]["resourceVersion"]
        self.sink.replace(kind, items)
        self.lists[kind] += 1
        log.info("listed %d %s at resourceVersion %s", len(items), kind, rv)
        with self._lock:
            first_sync = kind not in self._listed and len(self._listed) == len(self.kinds) - 1
            self._listed.add(kind)
        if first_sync:
            self.sink.mark_synced()
            log.info("synced with the API: serving ready")
        return rv

    def _watch(self, kind: str, rv: str) -> str:
        """Streams events until the server ends the watch; returns the last resourceVersion."""
        query = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true",
                 "timeoutSeconds": str(self.watch_timeout)}
        resp = self._request(kind, query, self.watch_timeout + 30)
        if resp.status == 410:
            resp.read()
            raise _Gone()
        if resp.status != 200:
            raise _status_error(resp.status, resp.read())
        for line in self._lines(resp):
            event = json.loads(line)
            etype, obj = event.get("type"), event.get("object") or {}
            if etype == "ERROR":
                if obj.get("code") == 410:
                    raise _Gone()
                raise _status_error(int(obj.get("code") or 500), json.dumps(obj).encode())
            new_rv = (obj.get("metadata") or {}).get("resourceVersion")
            if etype != "BOOKMARK":
                self.sink.update(kind, etype, obj)
            if new_rv:
                rv = new_rv
        return rv

    def _lines(self, resp: http.client.HTTPResponse) -> Iterable[bytes]:
        """The stream's non-empty lines. ``read1`` raises IncompleteRead when the stream
        is cut mid-chunk (iterating the response would see a quiet EOF instead), so
        only a stream that reached its terminating chunk ends the loop cleanly."""
        pending = b""
        while not self._stop.is_set():
            data = resp.read1(65536)
            if not data:
                return
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                if line.strip():
                    yield line
