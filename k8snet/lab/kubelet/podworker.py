"""One pod's life on a node: sandbox, volumes, containers, probes, restarts, teardown.

Like the kubelet's pod worker, one asyncio task per pod. Status changes are
coalesced and written as merge patches to ``pods/status``. Everything cleanup needs
is on disk (``<pods dir>/<uid>/pod.json`` and each container's ``state.json``), so
a crashed supervisor's leftovers can be found and removed (see ``Kubelet.reap``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Iterator

from ..config import LabConfig
from ..contracts import ApiClient
from ..errors import ApiError
from ..events import EventRecorder
from ..images import catalog
from ..timefmt import rfc3339
from . import containers as cbuild
from . import dnsfiles, probes
from .envvars import EnvError, container_env, service_env
from .runtime import Container, ContainerStartError, start_container
from .slots import PrioritySlots
from .status import ContainerRecord, merge_patch, pod_status, seed_records
from .volumes import VolumeBuilder, VolumeError, volume_refs
from .volumesync import PodVolumeChanges, VolumeWatch

if TYPE_CHECKING:
    from ..net.podnet import NodeNetwork, PodNetwork

log = logging.getLogger(__name__)
Obj = dict[str, Any]

BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET = 600.0  # a container that ran this long starts its back-off afresh
_TOKEN_RETRY = 10.0  # seconds before a failed token renewal is tried again


def restart_delay(restarts_in_a_row: int) -> float:
    """The kubelet's crash back-off: the first restart is immediate, then 10 s doubling to 5 min."""
    if restarts_in_a_row <= 0:
        return 0.0
    return min(BACKOFF_INITIAL * 2 ** (restarts_in_a_row - 1), BACKOFF_MAX)


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def _rv(obj: Obj) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class PodHost:
    """What a pod worker uses of its node, handed over explicitly by the kubelet (which
    creates the workers), so that this module does not depend on the Kubelet class."""

    config: LabConfig
    client: ApiClient
    node_name: str
    node_ip: str
    images_dir: Path
    network: NodeNetwork
    events: EventRecorder
    volume_watch: VolumeWatch
    start_slots: PrioritySlots  # shared by the node's workers: older pods start first
    arrivals: Iterator[int]  # the order pods reached the node, the start_slots priority
    services: Callable[[], list[Obj]]  # the node's current Services (for the service env vars)
    spawn: Callable[[Coroutine[Any, Any, Any]], None]  # a background task the kubelet keeps alive
    forget: Callable[[str], None]  # the worker of this pod UID is finished


class PodWorker:
    def __init__(self, host: PodHost, pod: Obj):
        self.k = host
        self.pod = pod
        meta = pod["metadata"]
        self.uid, self.namespace, self.name = meta["uid"], meta["namespace"], meta["name"]
        self.dir: Path = host.config.pods_dir / self.uid
        spec = pod["spec"]
        self.policy = spec.get("restartPolicy") or "Always"
        self.init_records = [self._record(c) for c in spec.get("initContainers") or []]
        self.records = [self._record(c) for c in spec.get("containers") or []]
        for rec in self.records if self.init_records else []:
            rec.set_waiting("PodInitializing")
        status = pod.get("status") or {}
        seed_records(self.init_records, status.get("initContainerStatuses") or [])
        seed_records(self.records, status.get("containerStatuses") or [])
        self.running: dict[str, Container] = {}
        self.net: PodNetwork | None = None
        self.start_time = rfc3339()
        self.sandbox_ready = False
        self.stopping = False
        self.gone = False  # the API object no longer exists
        self._dirty = asyncio.Event()
        self._deleted = asyncio.Event()
        # Termination: when it began (loop time) and with what grace; `_kill_now` ends
        # the grace early when a later delete shortens it (see `update`).
        self._terminating: tuple[float, float] | None = None
        self._kill_now = asyncio.Event()
        self._kill_timer: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task] = []
        self.task: asyncio.Task | None = None
        self.seq = next(host.arrivals)  # older pods go first through host.start_slots
        # When the pod's probe workers were made: their tickers run from here (see
        # probes.probe_loop), as the kubelet adds a pod's probes before its sandbox.
        self.probes_added = time.monotonic()

    @staticmethod
    def _record(container: Obj) -> ContainerRecord:
        image = container.get("image", "")
        try:
            shown = catalog.normalized(image)
        except ValueError:
            shown = image
        return ContainerRecord(container["name"], shown)

    # -- API side -----------------------------------------------------------------
    @property
    def sandbox(self) -> PodNetwork:
        """The pod's network namespace and address: containers and probes start only
        after the sandbox is made."""
        if self.net is None:
            raise RuntimeError(f"pod {self.namespace}/{self.name} has no sandbox yet")
        return self.net

    def update(self, pod: Obj) -> None:
        if _rv(pod) >= _rv(self.pod):
            self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self._deleted.set()
            self._shorten_grace()

    def _shorten_grace(self) -> None:
        """A delete with a shorter grace period while the pod terminates (``kubectl
        delete --now`` after a plain delete): like the kubelet's pod workers, stop
        waiting at the new, earlier deadline. A grace period never grows."""
        if self._terminating is None:
            return  # not terminating yet: terminate() reads the grace period when it starts
        began, grace = self._terminating
        shorter = self._grace()
        if shorter >= grace:
            return
        self._terminating = (began, shorter)
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        loop = asyncio.get_running_loop()
        self._kill_timer = loop.call_at(began + shorter, self._kill_now.set)

    def forget(self) -> None:
        """The pod object is gone: tear down without writing to the API."""
        self.gone = True
        self._deleted.set()

    def changed(self) -> None:
        self._dirty.set()

    async def _status_writer(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self.gone:
                return
            await self.write_status()

    async def write_status(self) -> None:
        base = self.pod.get("status") or {}
        new = pod_status(base, restart_policy=self.policy, sandbox_ready=self.sandbox_ready,
                         init=self.init_records, containers=self.records,
                         pod_ip=self.net.ip if self.net else None, host_ip=self.k.node_ip,
                         start_time=self.start_time)
        patch = merge_patch(base, new)
        if not patch:
            return
        try:
            result = await self.k.client.patch("pods", self.namespace, self.name, {"status": patch},
                                               patch_type="merge", subresource="status")
        except ApiError as err:
            if err.code == 404:
                self.forget()
                return
            log.warning("pod %s/%s: status update failed: %s", self.namespace, self.name, err.message)
            await asyncio.sleep(0.5)
            self.changed()
            return
        if result.get("metadata", {}).get("uid") == self.uid:
            self.update(result)

    def event(self, type_: str, reason: str, message: str, container: str | None = None) -> None:
        field_path = None
        if container is not None:
            kind = "initContainers" if any(r.name == container for r in self.init_records) else "containers"
            field_path = f"spec.{kind}{{{container}}}"
        self.k.spawn(self.k.events.record(self.pod, type_, reason, message, kind="Pod", api_version="v1",
                                          field_path=field_path))

    # -- life -----------------------------------------------------------------------
    async def run(self) -> None:
        writer = asyncio.create_task(self._status_writer())
        life = asyncio.create_task(self._lifecycle())
        deleted = asyncio.create_task(self._deleted.wait())
        try:
            self.changed()
            await asyncio.wait({life, deleted}, return_when=asyncio.FIRST_COMPLETED)
            if not deleted.done():  # the pod completed: free its sandbox, keep its status
                await self._release_sandbox(0)
                await deleted
            life.cancel()
            await asyncio.gather(life, return_exceptions=True)
            await self.terminate(self._grace())
            if not self.gone:
                writer.cancel()
                await self.write_status()
                try:
                    await self.k.client.delete("pods", self.namespace, self.name, grace_period_seconds=0,
                                               preconditions={"uid": self.uid})
                except ApiError as err:
                    if err.code not in (404, 409):
                        raise
        finally:
            for t in (writer, life, deleted, *self._tasks):
                t.cancel()
            self.k.forget(self.uid)
            shutil.rmtree(self.dir, ignore_errors=True)

    def _grace(self) -> float:
        meta, spec = self.pod["metadata"], self.pod["spec"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        return float(grace)

    async def terminate(self, grace: float) -> None:
        """Stops every container (SIGTERM, SIGKILL after ``grace`` or a shorter grace
        period a later delete gives) and removes the sandbox."""
        self.stopping = True
        self._terminating = (asyncio.get_running_loop().time(), grace)
        for t in self._tasks:
            t.cancel()
        try:
            await self._release_sandbox(grace)
        finally:
            if self._kill_timer is not None:
                self._kill_timer.cancel()

    async def _release_sandbox(self, grace: float) -> None:
        running = list(self.running.values())
        if running:
            for ct in running:
                self.event("Normal", "Killing", f"Stopping container {ct.config.name}", ct.config.name)
            await asyncio.gather(*(ct.stop(grace, sooner=self._kill_now) for ct in running))
        if self.net is not None and self.sandbox_ready:
            try:
                await self.k.network.remove_pod(self.uid)
            except Exception:  # noqa: BLE001 - cleanup by prefix finds it later
                log.exception("pod %s/%s: removing the network failed", self.namespace, self.name)
        self.sandbox_ready = False
        self.changed()

    async def _lifecycle(self) -> None:
        await self._create_sandbox()
        volume_paths = await self._volumes()
        spec = self.pod["spec"]
        for rec, container in zip(self.init_records, spec.get("initContainers") or []):
            if not await self._run_init(rec, container, volume_paths):
                return
        initialized = [rec for rec in self.records if rec.state.get("waiting", {}).get("reason") == "PodInitializing"]
        for rec in initialized:
            rec.set_waiting("ContainerCreating")
        if initialized:  # else nothing to tell: the pod IP goes out with the first container's state
            self.changed()
        sups = [asyncio.create_task(self._supervise(rec, c, volume_paths))
                for rec, c in zip(self.records, spec.get("containers") or [])]
        self._tasks += sups
        await asyncio.gather(*sups)

    async def _create_sandbox(self) -> None:
        async with self.k.start_slots.slot(self.seq):
            await asyncio.to_thread(self._write_files, {"pod.json": json.dumps({
                "namespace": self.namespace, "name": self.name, "uid": self.uid, "node": self.k.node_name})})
            self.net = await self.k.network.add_pod(self.uid)
            spec, cfg = self.pod["spec"], self.k.config
            hostname = dnsfiles.pod_hostname(self.pod)
            host_resolv = Path("/etc/resolv.conf").read_text() if Path("/etc/resolv.conf").exists() else ""
            await asyncio.to_thread(self._write_files, {
                "hosts": dnsfiles.hosts_file(self.pod, [self.net.ip], cfg.cluster_domain),
                "resolv.conf": dnsfiles.resolv_conf(spec, self.namespace, cluster_domain=cfg.cluster_domain,
                                                    dns_ip=cfg.dns_service_ip, host_resolv=host_resolv),
                "hostname": hostname + "\n",
            })
        # No status write of its own: the pod IP and PodReadyToStartContainers go out with
        # the first container's state, a few milliseconds later (every outcome of _start
        # writes). One write fewer per pod, and one round of watch events and endpoint
        # reconciles fewer; a pod whose volumes wait has no IP yet, as when the real
        # kubelet mounts volumes before it creates the sandbox.
        self.sandbox_ready = True

    def _write_files(self, files: dict[str, str]) -> None:
        """Writes files into the pod's folder. Run in a thread: file creation costs the
        kernel a fraction of a millisecond each, which the event loop need not wait for."""
        self.dir.mkdir(parents=True, exist_ok=True)
        container_files = {Path(path).name for path in self.pod_files.values()}
        for name, text in files.items():
            (self.dir / name).write_text(text)
            if name in container_files:  # /etc/hosts etc.: readable by any runAsUser, as the kubelet writes them
                (self.dir / name).chmod(0o644)

    @property
    def pod_files(self) -> dict[str, str]:
        return {"/etc/hosts": str(self.dir / "hosts"), "/etc/resolv.conf": str(self.dir / "resolv.conf"),
                "/etc/hostname": str(self.dir / "hostname")}

    async def _volumes(self) -> dict[str, str]:
        refs = set().union(*(volume_refs(v) for v in self.pod["spec"].get("volumes") or []))
        # subscribed before the first read, so no update can slip between the two
        changes = self.k.volume_watch.subscribe(self.namespace, refs) if refs else None
        delay = 1.0
        try:
            while True:
                try:
                    async with self.k.start_slots.slot(self.seq):
                        builder = VolumeBuilder(self.k.client, self.pod, self.dir,
                                                self.net.ip if self.net else None, self.k.node_ip)
                        paths = await builder.build_all()
                    break
                except VolumeError as err:
                    self.event("Warning", "FailedMount", f"MountVolume.SetUp failed: {err}")
                await asyncio.sleep(delay)  # the Secret or ConfigMap may be created later
                delay = min(delay * 2, 16)
        except BaseException:
            if changes is not None:
                changes.close()
            raise
        if changes is not None:
            self._tasks.append(asyncio.create_task(self._sync_volumes(builder, changes)))
        if builder.next_token_refresh() is not None:
            self._tasks.append(asyncio.create_task(self._refresh_tokens(builder)))
        return paths

    async def _refresh_tokens(self, builder: VolumeBuilder) -> None:
        """Renews the projected service-account tokens before they expire (the
        kubelet's token manager); a failure keeps the old files and retries."""
        while True:
            due = builder.next_token_refresh()
            if due is None:
                return
            await asyncio.sleep(max(due - time.time(), 0.0))
            try:
                updated = await builder.refresh_tokens()
            except (VolumeError, ApiError) as err:
                message = err.message if isinstance(err, ApiError) else str(err)
                self.event("Warning", "FailedMount", f"MountVolume.SetUp failed: {message}")
                await asyncio.sleep(_TOKEN_RETRY)
                continue
            if updated:
                log.info("pod %s/%s: service-account token renewed in %s", self.namespace, self.name,
                         ", ".join(updated))

    async def _sync_volumes(self, builder: VolumeBuilder, changes: PodVolumeChanges) -> None:
        """Brings the mounted files up to date whenever a Secret or ConfigMap they come
        from changes (the kubelet's volume re-sync; containers see the ``..data`` swap)."""
        try:
            while True:
                for ref in sorted(await changes.next()):
                    try:
                        updated = await builder.refresh(ref)
                    except (VolumeError, ApiError) as err:  # keeps the files it has
                        message = err.message if isinstance(err, ApiError) else str(err)
                        self.event("Warning", "FailedMount", f"MountVolume.SetUp failed: {message}")
                        continue
                    if updated:
                        log.info("pod %s/%s: volumes %s updated from %s %s", self.namespace, self.name,
                                 ", ".join(updated), *ref)
        finally:
            changes.close()

    async def _run_init(self, rec: ContainerRecord, container: Obj, volume_paths: dict[str, str]) -> bool:
        """Runs an init container to success, restarting it unless restartPolicy is Never."""
        crashes = 0
        while True:
            ct = await self._start(rec, container, volume_paths)
            if ct is None:
                await asyncio.Event().wait()  # image or config error: waits for deletion
                continue
            code = await self._wait(rec, ct)
            if code == 0:
                return True
            if self.policy == "Never":
                self.changed()
                return False
            await self._back_off(rec, crashes)
            crashes += 1

    async def _supervise(self, rec: ContainerRecord, container: Obj, volume_paths: dict[str, str]) -> None:
        crashes = 0
        while True:
            ct = await self._start(rec, container, volume_paths)
            if ct is None:
                await asyncio.Event().wait()  # image or config error: waits for deletion
                continue
            began = time.monotonic()
            code = await self._wait(rec, ct)
            if self.stopping or not should_restart(self.policy, code):
                return
            if time.monotonic() - began > BACKOFF_RESET:
                crashes = 0
            await self._back_off(rec, crashes)
            crashes += 1

    async def _back_off(self, rec: ContainerRecord, crashes: int) -> None:
        delay = restart_delay(crashes)
        if delay:
            rec.back_off(f"back-off {delay:.0f}s restarting failed container={rec.name} "
                         f"pod={self.name}_{self.namespace}({self.uid})")
            self.event("Warning", "BackOff", f"Back-off restarting failed container {rec.name} in pod "
                       f"{self.name}_{self.namespace}({self.uid})", rec.name)
            self.changed()
            await asyncio.sleep(delay)
        rec.restart_count += 1

    async def _wait(self, rec: ContainerRecord, ct: Container) -> int:
        if isinstance(ct, _Exited):  # its failure to start is already in the record
            return ct.exit_code
        code = await ct.wait()
        self.running.pop(rec.name, None)
        rec.set_terminated(code, ct.started_at, ct.finished_at or rfc3339())
        self.changed()
        return code

    async def _start(self, rec: ContainerRecord, container: Obj, volume_paths: dict[str, str]) -> Container | None:
        """Starts one container; None if it cannot start until the pod changes
        (unknown image, bad env). A start failure comes back as an exited container."""
        ref = container.get("image", "")
        try:
            image = catalog.resolve(ref)
        except catalog.ImagePullError as err:
            rec.set_waiting("ErrImagePull", str(err))
            self.event("Warning", "Failed", str(err), rec.name)
            self.changed()
            await asyncio.sleep(1)
            rec.set_waiting("ImagePullBackOff", f'Back-off pulling image "{ref}"')
            self.event("Normal", "BackOff", f'Back-off pulling image "{ref}"', rec.name)
            self.changed()
            return None
        rec.image_id = catalog.image_id(ref)
        async with self.k.start_slots.slot(self.seq):
            try:
                env = await self._env(container)
                # once per lab and not thread-safe, so here; the rest is file copies: a thread
                catalog.prepare_tools(image, self.k.images_dir)
                config = await asyncio.to_thread(
                    cbuild.build_config, self.pod, container, image, hostname=dnsfiles.pod_hostname(self.pod),
                    pod_env=env, images_dir=self.k.images_dir, container_dir=self.dir / "containers" / rec.name,
                    pod_files=self.pod_files, volume_paths=volume_paths)
            except (EnvError, ValueError) as err:
                rec.set_waiting("CreateContainerConfigError", str(err))
                self.event("Warning", "Failed", f"Error: {err}", rec.name)
                self.changed()
                return None
            log_path = self.dir / "logs" / rec.name / f"{rec.restart_count}.log"
            try:
                ct = await start_container(str(self.sandbox.netns_path), config, self.dir / "containers" / rec.name,
                                           log_path)
            except ContainerStartError as err:
                rec.set_terminated(err.exit_code, rfc3339(), rfc3339(), reason=err.reason, message=err.message)
                self.event("Warning", "Failed", f"Error: {err.message}", rec.name)
                self.changed()
                return _Exited(err.exit_code)  # type: ignore[return-value]
        self.running[rec.name] = ct
        rec.set_running(f"k8snet://{ct.id}", ct.started_at)
        rec.started = not container.get("startupProbe")
        rec.ready = rec.started and not container.get("readinessProbe")
        self.event("Normal", "Started", f"Started container {rec.name}", rec.name)
        self.changed()
        self._start_probes(rec, container, ct)
        return ct

    async def _env(self, container: Obj) -> list[str]:
        services = self.k.services()
        svc_vars = service_env(services, self.namespace, self.pod["spec"].get("enableServiceLinks", True) is not False)
        refs: dict[str, set[str]] = {"configmaps": set(), "secrets": set()}
        for ef in container.get("envFrom") or []:
            if ef.get("configMapRef"):
                refs["configmaps"].add(ef["configMapRef"].get("name", ""))
            if ef.get("secretRef"):
                refs["secrets"].add(ef["secretRef"].get("name", ""))
        for var in container.get("env") or []:
            vf = var.get("valueFrom") or {}
            if vf.get("configMapKeyRef"):
                refs["configmaps"].add(vf["configMapKeyRef"].get("name", ""))
            if vf.get("secretKeyRef"):
                refs["secrets"].add(vf["secretKeyRef"].get("name", ""))
        fetched: dict[tuple[str, str], Obj | None] = {}
        for key, names in refs.items():
            for name in names:
                try:
                    fetched[(key, name)] = await self.k.client.get(key, self.namespace, name)
                except ApiError as err:
                    if err.code != 404:
                        raise
                    fetched[(key, name)] = None
        return container_env(container, self.pod, svc_vars,
                             config_maps=lambda ns, n: fetched.get(("configmaps", n)),
                             secrets=lambda ns, n: fetched.get(("secrets", n)),
                             pod_ip=self.net.ip if self.net else None, host_ip=self.k.node_ip)

    # -- probes ------------------------------------------------------------------------
    def _start_probes(self, rec: ContainerRecord, container: Obj, ct: Container) -> None:
        if not any(container.get(p) for p in ("startupProbe", "livenessProbe", "readinessProbe")):
            return
        task = asyncio.create_task(self._probes(rec, container, ct))
        self._tasks.append(task)
        asyncio.create_task(self._cancel_when_exits(ct, task))

    @staticmethod
    async def _cancel_when_exits(ct: Container, task: asyncio.Task) -> None:
        await ct.wait()
        task.cancel()

    async def _probes(self, rec: ContainerRecord, container: Obj, ct: Container) -> None:
        netns, ip = self.sandbox.netns, self.sandbox.ip

        def runner(probe: Obj):
            return probes.probe_runner(probe, container, ct, netns, ip)

        def loop(probe: Obj, on_result: Callable[[bool], Any]) -> Coroutine[Any, Any, None]:
            return probes.probe_loop(probe, runner(probe), on_result, origin=self.probes_added)

        async def kill(kind: str) -> bool:
            self.event("Warning", "Unhealthy", f"{kind} probe failed", rec.name)
            self.event("Normal", "Killing", f"Container {rec.name} failed {kind.lower()} probe, will be restarted",
                       rec.name)
            await ct.stop(float(container.get("terminationGracePeriodSeconds")
                                or self.pod["spec"].get("terminationGracePeriodSeconds", 30)))
            return False

        startup = container.get("startupProbe")
        if startup:
            started = asyncio.Event()

            async def on_startup(ok: bool) -> bool:
                if ok:
                    rec.started = True
                    rec.ready = not container.get("readinessProbe")
                    self.changed()
                    started.set()
                    return False
                return await kill("Startup")
            await loop(startup, on_startup)
            if not started.is_set():
                return
        loops = []
        if container.get("livenessProbe"):
            live = container["livenessProbe"]
            loops.append(loop(live, lambda ok: True if ok else kill("Liveness")))
        if container.get("readinessProbe"):
            ready = container["readinessProbe"]

            def on_ready(ok: bool) -> bool:
                rec.ready = ok and ct.running
                self.changed()
                return True
            loops.append(loop(ready, on_ready))
        await asyncio.gather(*loops)


class _Exited:
    """Stands in for a container that failed to start (its exit is already recorded)."""

    def __init__(self, code: int):
        self.exit_code = code
        self.started_at = rfc3339()
        self.finished_at = rfc3339()
        self.config = None

    async def wait(self) -> int:
        return self.exit_code
