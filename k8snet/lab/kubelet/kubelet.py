"""The kubelet of one lab node: registers the Node, runs the pods bound to it and
serves ``pods/log`` and ``pods/exec`` to the API server (contracts.PodRuntime).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import platform
import shutil
import signal
from pathlib import Path
from typing import Any, AsyncIterator

from ..config import LabConfig
from ..contracts import ApiClient, Obj
from ..errors import ApiError, PortForwardError, bad_request
from ..events import EventRecorder
from ..informer import Informer
from ..net.cleanup import names_file_under
from ..net.podnet import NodeNetwork
from ..timefmt import rfc3339, rfc3339_micro
from .attach import Attachment
from .podworker import PodHost, PodWorker
from .portforward import connect_in_pod
from .runtime import ContainerStartError, exec_in, follow_log
from .slots import PrioritySlots
from .status import merge_patch, status_after_sandbox_loss
from .volumesync import VolumeWatch

log = logging.getLogger(__name__)

RUNTIME_VERSION = "k8snet://0.1.0"
HEARTBEAT_SECONDS = 10.0
MAX_PODS = 110
#: Pods in a start-up step (network, volumes, a container start) at once, per node.
#: Two CPUs are busy with about this many; more only makes every pod slower.
START_SLOTS = 4


def os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def memory_ki() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def node_info(config: LabConfig) -> Obj:
    """All ten NodeSystemInfo fields (the Python client requires every one)."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    machine_id = _read("/etc/machine-id")
    return {
        "machineID": machine_id,
        "systemUUID": _read("/sys/class/dmi/id/product_uuid") or machine_id,
        "bootID": _read("/proc/sys/kernel/random/boot_id"),
        "kernelVersion": platform.release(),
        "osImage": os_image(),
        "containerRuntimeVersion": RUNTIME_VERSION,
        "kubeletVersion": config.kubernetes_version,
        # Deprecated and no longer filled in since 1.33 (DisableNodeKubeProxyVersion);
        # the field stays, empty, and clients still require it.
        "kubeProxyVersion": "",
        "operatingSystem": "linux",
        "architecture": arch,
    }


def node_conditions(heartbeat: str, transition: str) -> list[Obj]:
    def cond(type_: str, status: str, reason: str, message: str) -> Obj:
        return {"type": type_, "status": status, "lastHeartbeatTime": heartbeat,
                "lastTransitionTime": transition, "reason": reason, "message": message}
    return [
        cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]


def node_object(config: LabConfig, index: int) -> Obj:
    name = config.node_name(index)
    info = node_info(config)
    labels = {
        "beta.kubernetes.io/arch": info["architecture"], "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": info["architecture"], "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
    }
    # The control plane's role label is kubeadm's to set once the node registered
    # (bootstrap.mark_control_plane): NodeRestriction forbids a kubelet to set it.
    cidr = config.node_pod_cidr(index)
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                     "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr], "providerID": f"k8snet://{config.name}/{name}"},
    }


LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 40  # the kubelet's nodeLeaseDurationSeconds; it renews every quarter of it


def node_lease(node: Obj, renew_time: str) -> Obj:
    """The node's heartbeat Lease in kube-node-lease, owned by its Node."""
    name = node["metadata"]["name"]
    return {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": LEASE_NAMESPACE,
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name,
                                          "uid": node["metadata"]["uid"]}]},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": renew_time},
    }


def node_status(config: LabConfig, index: int, transition: str) -> Obj:
    resources = {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_ki()}Ki", "pods": str(MAX_PODS),
                 "ephemeral-storage": f"{shutil.disk_usage('/').total // 1024}Ki", "hugepages-2Mi": "0"}
    ts = rfc3339()
    return {
        "capacity": resources, "allocatable": dict(resources),
        "conditions": node_conditions(ts, transition),
        # The node address is also reachable from the host (its veth to the wire
        # bridge), like a cloud VM's public address: NodePorts are used through it.
        "addresses": [{"type": "InternalIP", "address": config.node_ip(index)},
                      {"type": "ExternalIP", "address": config.node_ip(index)},
                      {"type": "Hostname", "address": config.node_name(index)}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": node_info(config),
    }


class Kubelet:
    """Runs the pods of node ``node_index``; implements contracts.PodRuntime."""

    def __init__(self, config: LabConfig, client: ApiClient, node_index: int, network: NodeNetwork):
        self.config = config
        self.client = client
        self.index = node_index
        self.network = network
        self.node_name = config.node_name(node_index)
        self.node_ip = config.node_ip(node_index)
        self.images_dir = config.state_dir / "images"
        self.workers: dict[str, PodWorker] = {}
        self.services: Informer | None = None
        self.volume_watch = VolumeWatch(client)  # Secrets/ConfigMaps behind the pods' volumes
        self.events = EventRecorder(client, "kubelet", self.node_name)
        self._background: set[asyncio.Task] = set()
        self._registered_at = rfc3339()
        self.start_slots = PrioritySlots(START_SLOTS)
        self.stopping = False  # lab going down: start no new pods
        self.arrivals = itertools.count()
        self.pod_host = PodHost(
            config=config, client=client, node_name=self.node_name, node_ip=self.node_ip,
            images_dir=self.images_dir, network=network, events=self.events, volume_watch=self.volume_watch,
            start_slots=self.start_slots, arrivals=self.arrivals, services=self._service_objects,
            spawn=self.spawn, forget=self._forget_worker)

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _service_objects(self) -> list[Obj]:
        return self.services.items() if self.services else []

    def _forget_worker(self, uid: str) -> None:
        self.workers.pop(uid, None)

    # -- main loop ----------------------------------------------------------------
    async def run(self) -> None:
        await self.reap()
        await self.register()
        self.services = Informer(self.client, "services")
        pods = Informer(self.client, "pods", field_selector=f"spec.nodeName={self.node_name}")
        tasks = [asyncio.create_task(self.services.run()), asyncio.create_task(self._heartbeat()),
                 asyncio.create_task(self.volume_watch.run())]
        try:
            await self.services.synced.wait()
            await pods.run(self._on_pod)
        finally:
            for t in tasks:
                t.cancel()

    async def _on_pod(self, etype: str, pod: Obj) -> None:
        uid = pod["metadata"].get("uid", "")
        worker = self.workers.get(uid)
        if etype == "DELETED":
            if worker is not None:
                worker.forget()
            return
        if worker is not None:
            worker.update(pod)
            return
        if self.stopping:
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):  # finished before this kubelet started
            if pod["metadata"].get("deletionTimestamp"):
                self.spawn(self._delete_finished(pod))
            return
        worker = PodWorker(self.pod_host, pod)
        self.workers[uid] = worker
        worker.update(pod)
        worker.task = asyncio.create_task(self._run_worker(worker))

    async def _run_worker(self, worker: PodWorker) -> None:
        try:
            await worker.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod %s/%s: worker failed", worker.namespace, worker.name)

    async def _delete_finished(self, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete("pods", meta["namespace"], meta["name"], grace_period_seconds=0,
                                     preconditions={"uid": meta["uid"]})
        except ApiError:
            pass

    async def register(self) -> None:
        """Creates or refreshes this node's Node object (status written through pods/status)."""
        try:
            await self.client.create("nodes", None, node_object(self.config, self.index))
        except ApiError as err:
            if err.code != 409:
                raise
        node = await self.client.patch("nodes", None, self.node_name,
                                       {"status": node_status(self.config, self.index, self._registered_at)},
                                       patch_type="merge", subresource="status")
        await self._renew_lease(node)

    async def _renew_lease(self, node: Obj | None = None) -> None:
        """Renews (or creates) the node's Lease, the heartbeat the node controller and
        `kubectl describe node` read."""
        try:
            try:
                await self.client.patch("coordination.k8s.io/leases", LEASE_NAMESPACE, self.node_name,
                                        {"spec": {"renewTime": rfc3339_micro()}}, patch_type="merge")
            except ApiError as err:
                if err.code != 404:
                    raise
                node = node or await self.client.get("nodes", None, self.node_name)
                await self.client.create("coordination.k8s.io/leases", LEASE_NAMESPACE,
                                         node_lease(node, rfc3339_micro()))
        except ApiError as err:
            log.warning("node %s: renewing its lease failed: %s", self.node_name, err.message)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                ts = rfc3339()
                await self.client.patch("nodes", None, self.node_name,
                                        {"status": {"conditions": node_conditions(ts, self._registered_at)}},
                                        patch_type="merge", subresource="status")
            except ApiError as err:
                log.warning("node %s heartbeat failed: %s", self.node_name, err.message)
                if err.code == 404:
                    await self.register()
                continue
            await self._renew_lease()

    async def mark_sandboxes_lost(self) -> None:
        """Before this node runs anything: every pod bound to it that the store keeps
        from an earlier run of the lab lost its sandbox with that run. Like a kubelet
        after a node reboot, mark them not ready and without an IP (so no endpoint
        points at a dead address), keep their names and UIDs, and let the pod workers
        make new sandboxes and restart the containers (restartCount + 1)."""
        pods = await self.client.list("pods", None, field_selector=f"spec.nodeName={self.node_name}")
        for pod in pods["items"]:
            new = status_after_sandbox_loss(pod)
            if new is None:
                continue
            meta = pod["metadata"]
            try:
                await self.client.patch("pods", meta["namespace"], meta["name"],
                                        {"status": merge_patch(pod.get("status") or {}, new)},
                                        patch_type="merge", subresource="status")
            except ApiError as err:
                log.warning("pod %s/%s: marking its sandbox lost failed: %s", meta["namespace"], meta["name"],
                            err.message)
                continue
            self.spawn(self.events.record(pod, "Normal", "SandboxChanged",
                                          "Pod sandbox changed, it will be killed and re-created.",
                                          kind="Pod", api_version="v1"))

    async def reap(self) -> None:
        """Removes what a crashed run of this node left behind: container processes
        recorded in state files, pod networks, pod folders."""
        root = self.config.pods_dir
        if not root.is_dir():
            return
        for pod_dir in root.iterdir():
            try:
                info = json.loads((pod_dir / "pod.json").read_text())
            except (OSError, ValueError):
                continue
            if info.get("node") != self.node_name:
                continue
            for state in pod_dir.glob("containers/*/state.json"):
                try:
                    pids = json.loads(state.read_text())
                except (OSError, ValueError):
                    continue
                for key in ("pid", "runtime_pid"):
                    # only if it is still this container's process: the recorded PID
                    # may have been reused by an unrelated one since the crash
                    if pids.get(key) and names_file_under(pids[key], state.parent):
                        try:
                            os.kill(pids[key], signal.SIGKILL)
                        except (ProcessLookupError, PermissionError):
                            pass
            try:
                await self.network.remove_pod(info["uid"])
            except Exception:  # noqa: BLE001 - the lab's prefix cleanup is the backstop
                log.exception("reaping the network of pod %s failed", info.get("uid"))
            shutil.rmtree(pod_dir, ignore_errors=True)

    async def shutdown(self) -> None:
        """Stops every pod of this node quickly (lab down)."""
        self.stopping = True
        workers = list(self.workers.values())
        for w in workers:
            w.gone = True
        await asyncio.gather(*(w.terminate(2) for w in workers), return_exceptions=True)
        for w in workers:
            if w.task is not None:
                w.task.cancel()

    # -- PodRuntime ------------------------------------------------------------------
    def _worker(self, namespace: str, pod: str) -> PodWorker:
        for w in self.workers.values():
            if w.namespace == namespace and w.name == pod:
                return w
        raise ApiError(404, "NotFound", f'pods "{pod}" not found')

    def _record(self, worker: PodWorker, container: str):
        for rec in worker.init_records + worker.records:
            if rec.name == container:
                return rec
        raise bad_request(f"container {container} is not valid for pod {worker.name}")

    async def logs(self, namespace: str, pod: str, container: str, *, follow: bool = False,
                   tail_lines: int | None = None, timestamps: bool = False, previous: bool = False,
                   limit_bytes: int | None = None) -> AsyncIterator[bytes]:
        worker = self._worker(namespace, pod)
        rec = self._record(worker, container)
        logs_dir = worker.dir / "logs" / container
        number = rec.restart_count
        while number > 0 and not (logs_dir / f"{number}.log").exists():
            number -= 1  # waiting out a back-off: the last run's log is the current one
        if previous:
            # while it runs, "previous" is the run before; once it ended, the one that ended
            number = rec.restart_count - 1 if rec.kind == "running" else number
            if number < 0 or not (logs_dir / f"{number}.log").exists():
                raise bad_request(f'previous terminated container "{container}" in pod "{pod}" not found')
        path = logs_dir / f"{number}.log"
        if not previous and rec.kind == "waiting" and not path.exists():
            reason = rec.state["waiting"].get("reason", "")
            raise bad_request(f'container "{container}" in pod "{pod}" is waiting to start: {reason}')

        def running() -> bool:
            ct = worker.running.get(container)
            return ct is not None and ct.running and not previous and rec.restart_count == number

        async for chunk in follow_log(path, running, timestamps=timestamps, tail_lines=tail_lines,
                                      limit_bytes=limit_bytes, follow=follow and not previous):
            yield chunk

    async def exec(self, namespace: str, pod: str, container: str, command: list[str], *,
                   stdin: bool, tty: bool) -> asyncio.subprocess.Process:
        worker = self._worker(namespace, pod)
        self._record(worker, container)
        ct = worker.running.get(container)
        if ct is None or not ct.running:
            raise bad_request(f'container {container} is not running')
        try:
            return await exec_in(ct, command, stdin=stdin, tty=tty)
        except ContainerStartError as err:
            raise bad_request(err.message) from None

    async def attach(self, namespace: str, pod: str, container: str, *, stdin: bool,
                     tty: bool) -> Attachment:
        """Attaches to the running container's own stdio (``pods/attach``): its output
        from now on, and its stdin when the spec keeps one open."""
        worker = self._worker(namespace, pod)
        self._record(worker, container)
        ct = worker.running.get(container)
        if ct is None or not ct.running or ct.io is None or ct.io.ended:
            raise bad_request(f'container {container} is not running')
        return ct.io.attach(stdin=stdin, tty=tty)

    async def port_forward(self, namespace: str, pod: str,
                           port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to ``localhost:port`` inside the pod (``pods/portforward``).

        Raises ApiError 400 when the pod has no sandbox here, PortForwardError when
        nothing accepts the connection."""
        worker = self._worker(namespace, pod)
        if worker.net is None or not worker.sandbox_ready:
            raise bad_request(f"pod {pod} has no running sandbox on node {self.node_name}")
        # The sandbox's id in the CRI's error texts: here, the pod's network namespace name.
        sandbox = worker.net.netns
        try:
            return await connect_in_pod(worker.net.netns, sandbox, port)
        except PortForwardError as err:
            # the kubelet's streaming server wraps the runtime's error (portforward/httpstream.go);
            # through the CRI it knows the sandbox, not the pod UID
            raise PortForwardError(f"error forwarding port {port} to pod {sandbox}, uid : {err}") from None
