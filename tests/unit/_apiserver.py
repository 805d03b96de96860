"""A real ApiServer on a loopback socket in a thread of its own, for tests that drive
it with real clients (kubectl, the `kubernetes` Python client, raw HTTPS)."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from k8snet.lab.api.admission import Admission
from k8snet.lab.api.core import ApiCore
from k8snet.lab.api.server import ApiServer
from k8snet.lab.config import LabConfig
from k8snet.lab.pki import Pki
from k8snet.lab.store import Store


class Lab:
    """An ApiServer running in its own event-loop thread, plus a kubeconfig for it."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.pki = Pki(tmp / "pki")
        self.pki.create(["127.0.0.1"], ["localhost"])
        config = LabConfig(name="t", state_dir=tmp)
        store = Store(tmp / "store.sqlite")
        self.core = ApiCore(config, store, Admission(config, store.objects), self.pki)
        self.server = ApiServer(self.core, self.pki, lambda node: None)
        sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{sock.getsockname()[1]}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.core.create("namespaces", None, {"metadata": {"name": "default"}}))
        self.call(self.server.start([sock]))
        b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
        self.kubeconfig = tmp / "kubeconfig"
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: lab, cluster: {{server: '{self.url}', certificate-authority-data: {b64(self.pki.ca_cert)}}}}}]\n"
            f"users: [{{name: admin, user: {{client-certificate-data: {b64(self.pki.admin_cert)}, "
            f"client-key-data: {b64(self.pki.admin_key)}}}}}]\n"
            "contexts: [{name: lab, context: {cluster: lab, user: admin, namespace: default}}]\n"
            "current-context: lab\n")

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def kubectl(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.tmp / "cache"), *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{cmd} failed: {result.stderr}")
        return result

    def request(self, method: str, path: str, body: bytes | None = None, *, headers: dict[str, str] | None = None,
                cert: bool = True) -> tuple[int, dict[str, str], bytes]:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        if cert:
            ctx.load_cert_chain(self.pki.admin_cert, self.pki.admin_key)
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()
