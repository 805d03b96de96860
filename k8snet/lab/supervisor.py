"""The lab's supervisor: one process that owns a running lab.

``python -m k8snet.lab.supervisor <state>/config.json [--ready-fd N]`` builds the network, starts
the API server, the controllers, one kubelet and one kube-proxy per node, creates
the bootstrap objects, waits until every node is Ready and cluster DNS answers
through its Service IP, then reports Ready in ``status.json`` (and writes a line to
fd N, a pipe ``lab up`` waits on, so that it need not poll the file). SIGTERM stops
everything and removes what the lab made on the host; the state folder stays.

A state folder that already holds a store (``lab start``, or ``up`` after a stop, a
crash or a reboot) brings that cluster back: the same objects, the same CA, admin
certificate and token key (so kubeconfigs and service-account tokens stay valid),
the API server on its previous port when that is free. Every file the supervisor
writes is readable by root only (umask 077); containers get the usual 022.
"""

from __future__ import annotations

import gc
import os

if __name__ == "__main__":
    # Start-up only allocates (modules, the bootstrap objects, the informers' caches):
    # the cyclic collector would scan that growing heap again and again and find little
    # garbage. It is back once the lab is Ready (`_main`).
    gc.disable()
    # aiohttp.connector makes its client TLS contexts when it is imported, and one of
    # them loads the system's CA store: ~45 ms of every `lab up`. The supervisor runs no
    # aiohttp client and trusts only the lab's own CA (`pki`), so its imports get an
    # empty store (8 rounds in turns: Ready 1.413 → 1.360 s); the variable is put back
    # after them (below), for the processes the supervisor starts.
    _SYSTEM_CA_FILE = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = os.devnull

import asyncio
import contextlib
import datetime as dt
import json
import logging
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import bootstrap, kubeconfig
from .api import identity
from .api.admission import Admission
from .api.authorizedclient import AuthorizedClient
from .api.authorizer import Authorizer, RbacSource
from .api.bodyworkers import DEFAULT_WORKERS, BodyDecoder
from .api.core import ApiCore
from .api.identity import UserInfo
from .api.server import ApiServer
from .config import LabConfig, read_config
from .controllers import ControllerManager
from .kubelet.kubelet import Kubelet
from .net import nsutil
from .net.cleanup import cleanup_lab
from .net.lbannounce import Announcer
from .net.podnet import NodeNetwork
from .net.topology import create_lab_network
from .pki import Pki
from .proxy.proxy import KubeProxy
from .store import Store

log = logging.getLogger("k8snet.lab")

if __name__ == "__main__":
    if _SYSTEM_CA_FILE is None:
        del os.environ["SSL_CERT_FILE"]
    else:
        os.environ["SSL_CERT_FILE"] = _SYSTEM_CA_FILE


class Supervisor:
    def __init__(self, config: LabConfig, ready_fd: int | None = None):
        self.config = config
        self.ready_fd = ready_fd  # told once, when the start is over (Ready or Failed)
        self.pki = Pki(config.pki_dir)
        self.tasks: list[asyncio.Task[Any]] = []
        self.kubelets: dict[str, Kubelet] = {}
        self.proxies: list[KubeProxy] = []
        self.server: ApiServer | None = None
        self.store: Store | None = None
        self.server_url: str | None = None
        self.started = time.monotonic()

    # -- status file -------------------------------------------------------
    def report(self, phase: str, message: str = "", **extra: Any) -> None:
        path = self.config.state_dir / "status.json"
        data = {"phase": phase, "message": message, "pid": os.getpid(), **extra}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, path)
        if phase in ("Ready", "Failed") and self.ready_fd is not None:
            fd, self.ready_fd = self.ready_fd, None
            with contextlib.suppress(OSError):  # whoever waited may be gone: the file says it all
                os.write(fd, phase.encode() + b"\n")
            os.close(fd)

    # -- start ----------------------------------------------------------------
    def _listen(self) -> tuple[socket.socket, socket.socket]:
        """One socket on host loopback (kubectl, notebooks), one on the wire bridge's
        address in the wire namespace (pods, via the ``kubernetes`` Service). A lab
        that comes back takes its previous port, so every kubeconfig that names it
        keeps working; if something else took it meanwhile, a new one (``lab start``
        then rewrites the merged contexts)."""
        port = previous_port(self.config.kubeconfig_path)
        try:
            host = socket.create_server(("127.0.0.1", port), backlog=256)
        except OSError as err:
            if not port:
                raise
            log.warning("the API server's previous port %d is taken (%s): using a new one", port, err.strerror)
            host = socket.create_server(("127.0.0.1", 0), backlog=256)
        with nsutil.in_netns(self.config.wire_netns):
            wire = socket.create_server((self.config.wire_gateway_ip, bootstrap.API_SERVER_PORT), backlog=256)
        return host, wire

    async def start(self) -> str:
        config = self.config
        t0 = time.monotonic()
        if not pki_complete(self.pki):  # a lab that comes back keeps its CA and keys
            self.pki.create(
                server_ips=["127.0.0.1", config.wire_gateway_ip, config.kubernetes_service_ip],
                server_names=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                              f"kubernetes.default.svc.{config.cluster_domain}", f"{config.name}-control-plane"],
            )
        self.pki.ensure_token_key()
        await create_lab_network(config)
        timings = {"network": time.monotonic() - t0}

        store = self.store = Store(config.db_path)
        admission = Admission(config, lambda key: store.list(key)[0])
        core = ApiCore(config, store, admission, self.pki)
        authorizer = Authorizer(RbacSource(store.objects, store.generation, store.texts))
        self.server = ApiServer(core, self.pki, lambda node: self.kubelets.get(node), authorizer=authorizer,
                                decoder=BodyDecoder(body_workers()))

        def client(user: UserInfo) -> AuthorizedClient:
            """The in-process components call the core directly, as their own identity."""
            return AuthorizedClient(core, authorizer, user)
        host_sock, wire_sock = self._listen()
        await self.server.start([host_sock, wire_sock])
        server_url = self.server_url = f"https://127.0.0.1:{host_sock.getsockname()[1]}"
        kubeconfig.write(config.kubeconfig_path, kubeconfig.render(config.name, server_url, self.pki))
        timings["api"] = time.monotonic() - t0

        await bootstrap.bootstrap(client(identity.APISERVER), config)
        for i, node in enumerate(config.node_names):
            self.kubelets[node] = Kubelet(config, client(identity.node_user(node)), i, NodeNetwork(config, i))
        # Pods kept from the last run lost their sandboxes with it: mark them so
        # before the controllers and kube-proxies read them (a node reboot).
        for kubelet in self.kubelets.values():
            await kubelet.mark_sandboxes_lost()
        self.spawn(ControllerManager(client(identity.CONTROLLER_MANAGER), config).run(), "controllers")
        self.spawn(Announcer(config, client(identity.LB_ANNOUNCER)).run(), "lb-announcer")
        for i, (node, kubelet) in enumerate(self.kubelets.items()):
            self.spawn(kubelet.run(), f"kubelet/{node}")
            self.proxies.append(KubeProxy(config, client(identity.KUBE_PROXY), i))
            self.spawn(self.proxies[-1].run(), f"kube-proxy/{node}")

        await self._wait_ready(core)
        await bootstrap.mark_control_plane(client(identity.APISERVER), config)
        timings["ready"] = time.monotonic() - t0
        log.info("lab %s ready in %.2f s (%s)", config.name, timings["ready"],
                 ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
        self.report("Ready", server=server_url, kubeconfig=str(config.kubeconfig_path),
                    nodes=config.node_names, proxy_mode=config.proxy_mode,
                    started=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    timings=timings)
        # After Ready: the workers' start-up (imports) would otherwise slow `lab up`.
        self.spawn(self.server.decoder.start(), "body-workers")
        return server_url

    def spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self.tasks.append(task)

    @staticmethod
    def _task_done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped: %r", task.get_name(), task.exception(), exc_info=task.exception())

    async def _wait_ready(self, core: ApiCore, timeout: float = 60.0) -> None:
        """Checks again every 50 ms and as soon as the first node's kube-proxy has synced:
        the DNS endpoint turning ready reaches the rules with a sync, and the check goes
        through those rules (without the wake-up, 25 ms later on average)."""
        deadline = time.monotonic() + timeout
        while True:
            synced = self.proxies[0].applied
            problem = await self._readiness_problem(core)
            if problem is None:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout:.0f} s: {problem}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proxies[0].applied_after(synced), 0.05)

    async def _readiness_problem(self, core: ApiCore) -> str | None:
        nodes = (await core.list("nodes"))["items"]
        ready = {n["metadata"]["name"] for n in nodes
                 if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))}
        missing = [n for n in self.config.node_names if n not in ready]
        if missing:
            return f"nodes not Ready: {', '.join(missing)}"
        if not await asyncio.to_thread(self._dns_answers):
            return f"cluster DNS does not answer at {self.config.dns_service_ip}"
        return None

    def _dns_answers(self) -> bool:
        """Asks kube-dns for the kubernetes Service from inside a node, through the
        Service IP: proves proxy rules, the DNS pod and its API watch all work."""
        import dns.exception
        import dns.message
        import dns.query
        import dns.rcode

        name = f"kubernetes.default.svc.{self.config.cluster_domain}."
        query = dns.message.make_query(name, "A")
        try:
            with nsutil.in_netns(self.config.node_netns(0)):
                answer = dns.query.udp(query, self.config.dns_service_ip, timeout=0.3)
        except (dns.exception.DNSException, OSError):
            return False
        return answer.rcode() == dns.rcode.NOERROR and bool(answer.answer)

    # -- stop -----------------------------------------------------------------
    async def stop(self) -> None:
        self.report("Stopping")
        for kubelet in self.kubelets.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(kubelet.shutdown(), timeout=10)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.server is not None:
            await self.server.stop()
        if self.store is not None:
            self.store.close()  # checkpoints the WAL: the store is one file while stopped
            self.store = None


def body_workers() -> int:
    """Processes that decode large request bodies (``K8SNET_API_BODY_WORKERS``; 0
    decodes every body in the event loop, as the lab did before: for measurements)."""
    value = os.environ.get("K8SNET_API_BODY_WORKERS", "")
    try:
        return max(0, int(value)) if value else DEFAULT_WORKERS
    except ValueError:
        log.warning("K8SNET_API_BODY_WORKERS=%r is not a number: %d workers", value, DEFAULT_WORKERS)
        return DEFAULT_WORKERS


def pki_complete(pki: Pki) -> bool:
    """Whether every file of the lab's PKI is there (a half-written one is made anew)."""
    return all(p.exists() for p in (pki.ca_cert, pki.server_cert, pki.server_key, pki.admin_cert,
                                     pki.admin_key))


def previous_port(kubeconfig_path: Path) -> int:
    """The API server's port in the lab's own kubeconfig from its last run, else 0."""
    import yaml

    try:
        doc = yaml.safe_load(kubeconfig_path.read_text())
        return int(urlsplit(doc["clusters"][0]["cluster"]["server"]).port or 0)
    except (OSError, ValueError, TypeError, KeyError, IndexError, yaml.YAMLError):
        return 0


def _use_pidfd_child_watcher() -> None:
    """Python 3.11's default child watcher starts a thread per subprocess just to wait
    for it; every container and ``ip`` batch pays for that thread under the GIL. A
    pidfd watcher waits in the event loop itself (3.12 does this by default)."""
    if sys.version_info < (3, 12) and hasattr(os, "pidfd_open"):
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(asyncio.get_running_loop())
        asyncio.get_event_loop_policy().set_child_watcher(watcher)


# The GIL hand-over interval (Python's default is 5 ms). The event loop gives up the
# GIL in every SQLite call and socket write; while a worker thread copies files or
# builds a container's config, the loop then waits up to the whole interval to get it
# back: a 10 µs store read took ~1 ms on average during a 100-pod start-up.
_SWITCH_INTERVAL_S = 0.0005


async def _main(config: LabConfig, ready_fd: int | None = None) -> int:
    _use_pidfd_child_watcher()
    sys.setswitchinterval(_SWITCH_INTERVAL_S)
    supervisor = Supervisor(config, ready_fd)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        starting = asyncio.create_task(supervisor.start())
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting in done:
            starting.result()  # raises if start failed
            gc.enable()  # off since the imports (top of this module)
            await stop.wait()
        else:
            starting.cancel()
    except Exception as err:  # report why, then clean up everything
        log.exception("lab failed")
        supervisor.report("Failed", f"{type(err).__name__}: {err}")
        await supervisor.stop()
        cleanup_lab(config)
        return 1
    server = supervisor.server_url
    await supervisor.stop()
    cleanup_lab(config)
    supervisor.report("Stopped", server=server, nodes=config.node_names, proxy_mode=config.proxy_mode)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.umask(0o077)  # store, logs, pod files: root's only (containers set their own)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = read_config(Path(argv[0]))
    ready_fd = int(argv[argv.index("--ready-fd") + 1]) if "--ready-fd" in argv else None
    if ready_fd is not None:
        os.set_inheritable(ready_fd, False)  # no container may hold it open
    return asyncio.run(_main(config, ready_fd))


if __name__ == "__main__":
    sys.exit(main())
