"""ApiWatcher against a small HTTPS API server that plays a scripted list/watch story:
events, bookmarks, a 410 ERROR event, a 410 HTTP status, a clean end of a watch and
a connection reset. The records must end up exactly as the last list says."""

from __future__ import annotations

import json
import queue
import socket
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import dns.rcode
import dns.rdatatype as T
import pytest

from k8snet.lab.dns import ENDPOINTSLICES, SERVICES, ClusterRecords
from k8snet.lab.dns.apiwatch import PATHS, ApiWatcher, InClusterConfig
from k8snet.lab.pki import Pki
from tests.unit._dns_fixtures import HTTP, endpoint, endpoint_slice, service

TOKEN = "test-token"
KIND_BY_PATH = {path: kind for kind, path in PATHS.items()}


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def a_list(kind: str, rv: str, items: list[dict]) -> tuple:
    list_kind = "ServiceList" if kind == SERVICES else "EndpointSliceList"
    return ("json", 200, {"kind": list_kind, "apiVersion": "v1", "metadata": {"resourceVersion": rv}, "items": items})


def with_rv(obj: dict, rv: str) -> dict:
    return {**obj, "metadata": {**obj["metadata"], "resourceVersion": rv}}


class ScriptedApi:
    """Answers each kind's requests from its queue of responses, in order, and logs them."""

    def __init__(self, pki: Pki, script: dict[str, list[tuple]]):
        self.script = {kind: queue.Queue() for kind in script}
        for kind, steps in script.items():
            for step in steps:
                self.script[kind].put(step)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                api.requests.append((KIND_BY_PATH[url.path], query))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._json(401, status(401, "Unauthorized", "Unauthorized"))
                step = api.script[KIND_BY_PATH[url.path]].get(timeout=10)
                if step[0] == "json":
                    return self._json(step[1], step[2])
                _, events, end = step
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in events:
                    line = json.dumps(event).encode() + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                if end == "reset":  # mid-stream, no terminating chunk: a dropped connection
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                    return
                if end == "hold":
                    api.release.wait(30)
                self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True

            def _json(self, code: int, obj: dict) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = pki.server_ssl_context()
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    pki = Pki(tmp_path_factory.mktemp("pki"))
    pki.create(["127.0.0.1"], ["localhost"])
    return pki


@pytest.fixture()
def config(pki: Pki, tmp_path: Path) -> Iterator[InClusterConfig]:
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text(TOKEN + "\n")
    (sa / "ca.crt").write_bytes(pki.ca_cert.read_bytes())
    yield InClusterConfig.from_environment({"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                                            "KUBERNETES_SERVICE_PORT": "0"}, sa)


def wait_for(what, predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.02)


def exists(records: ClusterRecords, name: str) -> bool:
    return records.resolve(name, T.A).rcode == dns.rcode.NOERROR


def test_list_watch_and_relist_after_410_and_reset(pki, config):
    a = service("a", "default", "10.96.0.11", HTTP)
    b = service("b", "default", "10.96.0.12", HTTP)
    c = service("c", "default", "None", HTTP)
    c_slice = endpoint_slice("c", "default", "x", [{"name": "http", "port": 80}], [endpoint("10.244.1.7")])
    api = ScriptedApi(pki, {
        SERVICES: [
            a_list(SERVICES, "10", [a]),
            ("stream", [{"type": "ADDED", "object": with_rv(b, "11")},
                        {"type": "BOOKMARK", "object": {"kind": "Service", "metadata": {"resourceVersion": "12"}}},
                        {"type": "ERROR", "object": status(410, "Expired", "too old resource version: 12 (15)")}],
             "close"),
            a_list(SERVICES, "20", [b, c]),          # relist after the 410: "a" was deleted meanwhile
            ("stream", [{"type": "DELETED", "object": with_rv(b, "21")}], "reset"),
            a_list(SERVICES, "30", [b, c]),          # relist after the reset: "b" is back
            ("stream", [], "hold"),
        ],
        ENDPOINTSLICES: [
            a_list(ENDPOINTSLICES, "10", []),
            ("json", 410, status(410, "Expired", "too old resource version: 10 (15)")),
            a_list(ENDPOINTSLICES, "15", [c_slice]),
            ("stream", [], "close"),                 # a clean end: watch again, no relist
            ("stream", [], "hold"),
        ],
    })
    config = InClusterConfig("127.0.0.1", api.port, config.token_path, config.ca_path)
    records = ClusterRecords(synced=False)
    watcher = ApiWatcher(config, records, backoff=0.05)
    watcher.start()
    try:
        wait_for(lambda: f"three lists of services and two of slices; saw {api.requests}",
                 lambda: watcher.lists == {SERVICES: 3, ENDPOINTSLICES: 2} and exists(records, "c.default.svc.cluster.local."))
        wait_for("the final watches", lambda: sum(1 for k, q in api.requests if q.get("watch")) == 6)
        assert records.synced
        assert exists(records, "b.default.svc.cluster.local.")
        assert not exists(records, "a.default.svc.cluster.local.")
        assert records.resolve("c.default.svc.cluster.local.", T.A).answer[0][0].to_text() == "10.244.1.7"
        def watched(kind: str) -> list[str]:
            return [q["resourceVersion"] for k, q in api.requests if k == kind and q.get("watch") == "true"]
        assert watched(SERVICES) == ["10", "20", "30"]        # each after a fresh list
        assert watched(ENDPOINTSLICES) == ["10", "15", "15"]  # a clean end re-watches from the same version
        assert all(q.get("allowWatchBookmarks") == "true" for k, q in api.requests if q.get("watch"))
    finally:
        watcher.stop()
        api.close()


def test_not_ready_until_every_kind_is_listed(pki, config):
    api = ScriptedApi(pki, {
        SERVICES: [a_list(SERVICES, "1", [service("a", "default", "10.96.0.11", HTTP)]), ("stream", [], "hold")],
        ENDPOINTSLICES: [("json", 403, status(403, "Forbidden", "endpointslices.discovery.k8s.io is forbidden")),
                         a_list(ENDPOINTSLICES, "1", []), ("stream", [], "hold")],
    })
    config = InClusterConfig("127.0.0.1", api.port, config.token_path, config.ca_path)
    records = ClusterRecords(synced=False)
    watcher = ApiWatcher(config, records, backoff=0.3)
    watcher.start()
    try:
        wait_for("services listed", lambda: watcher.lists[SERVICES] == 1)
        assert not records.synced  # slices failed with 403: not ready yet
        wait_for("slices listed after the backoff", lambda: watcher.lists[ENDPOINTSLICES] == 1)
        assert records.synced
    finally:
        watcher.stop()
        api.close()


def test_in_cluster_config_requires_the_pod_environment(tmp_path):
    with pytest.raises(RuntimeError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"):
        InClusterConfig.from_environment({}, tmp_path)
    with pytest.raises(RuntimeError, match="no such file"):
        InClusterConfig.from_environment({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
                                         tmp_path)


def test_the_server_certificate_must_be_signed_by_the_cluster_ca(pki, config, tmp_path):
    other = Pki(tmp_path / "other")
    other.create(["127.0.0.1"], [])
    api = ScriptedApi(other, {SERVICES: [], ENDPOINTSLICES: []})
    try:
        config = InClusterConfig("127.0.0.1", api.port, config.token_path, config.ca_path)
        records = ClusterRecords(synced=False)
        watcher = ApiWatcher(config, records, kinds=[SERVICES], backoff=0.05)
        with pytest.raises(ssl.SSLCertVerificationError):
            watcher._list(SERVICES)
        assert api.requests == []
    finally:
        api.close()
