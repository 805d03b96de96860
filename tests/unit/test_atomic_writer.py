"""The kubelet's atomic writer and the Secret/ConfigMap change notifications (no root needed)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from k8snet.lab.kubelet.atomicwriter import DATA, PayloadError, current_version, write_atomic
from k8snet.lab.kubelet.containers import read_only_volumes, volume_mounts
from k8snet.lab.kubelet.volumes import volume_refs
from k8snet.lab.kubelet.volumesync import VolumeWatch


def visible(target: Path) -> dict[str, bytes]:
    """The user-visible top-level files (through their links)."""
    return {p.name: p.read_bytes() for p in target.iterdir() if not p.name.startswith("..") and p.is_file()}


def test_layout_is_the_kubelets(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    assert write_atomic(vol, [("tls.crt", b"C", 0o644), ("tls.key", b"K", 0o600)])
    assert os.readlink(vol / DATA).startswith("..")
    assert os.readlink(vol / "tls.crt") == "..data/tls.crt"
    assert visible(vol) == {"tls.crt": b"C", "tls.key": b"K"}
    assert (vol / "tls.key").stat().st_mode & 0o777 == 0o600


def test_unchanged_payload_writes_nothing(tmp_path: Path) -> None:
    files = [("a", b"1", 0o644)]
    write_atomic(tmp_path / "v", files)
    version = current_version(tmp_path / "v")
    assert not write_atomic(tmp_path / "v", files)
    assert current_version(tmp_path / "v") == version
    assert write_atomic(tmp_path / "v", [("a", b"1", 0o600)])  # a mode change is a change


def test_update_swaps_in_place_and_drops_old_names(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    write_atomic(vol, [("index.html", b"old", 0o644), ("gone.txt", b"x", 0o644), ("d/n.txt", b"1", 0o644)])
    inode = vol.stat().st_ino
    old = current_version(vol)
    assert write_atomic(vol, [("index.html", b"new", 0o644), ("d/n.txt", b"2", 0o644)])
    assert vol.stat().st_ino == inode  # a bind mount of the directory sees the swap
    assert visible(vol) == {"index.html": b"new"}
    assert os.readlink(vol / "d") == "..data/d"
    assert (vol / "d" / "n.txt").read_bytes() == b"2"
    assert not (vol / "gone.txt").exists() and not old.exists()
    assert {p.name for p in vol.iterdir() if p.name.startswith("..")} == {DATA, current_version(vol).name}


def test_readers_never_see_a_mix(tmp_path: Path) -> None:
    """While versions alternate, two files read through one ``..data`` resolution always agree."""
    vol = tmp_path / "vol"
    write_atomic(vol, [("a", b"0", 0o644), ("b", b"0", 0o644)])
    stop, mixed = threading.Event(), []

    def reader() -> None:
        while not stop.is_set():
            try:
                version = vol / os.readlink(vol / DATA)
                a, b = (version / "a").read_bytes(), (version / "b").read_bytes()
            except FileNotFoundError:
                continue  # that version was removed after we resolved it: retry, as a reader would
            if a != b:
                mixed.append((a, b))

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(1, 200):
        write_atomic(vol, [("a", str(i).encode(), 0o644), ("b", str(i).encode(), 0o644)])
    stop.set()
    thread.join()
    assert not mixed


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "..data/x", ""])
def test_bad_paths(tmp_path: Path, bad: str) -> None:
    with pytest.raises(PayloadError):
        write_atomic(tmp_path / "v", [(bad, b"", 0o644)])


def test_volume_refs() -> None:
    assert volume_refs({"name": "s", "secret": {"secretName": "tls"}}) == {("secrets", "tls")}
    assert volume_refs({"name": "c", "configMap": {"name": "conf"}}) == {("configmaps", "conf")}
    projected = {"name": "p", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token"}}, {"configMap": {"name": "kube-root-ca.crt"}},
        {"secret": {"name": "x"}}]}}
    assert volume_refs(projected) == {("configmaps", "kube-root-ca.crt"), ("secrets", "x")}
    assert volume_refs({"name": "e", "emptyDir": {}}) == set()


def test_secret_and_configmap_mounts_are_read_only(tmp_path: Path) -> None:
    pod = {"spec": {"volumes": [{"name": "s", "secret": {"secretName": "x"}}, {"name": "e", "emptyDir": {}},
                                {"name": "c", "configMap": {"name": "y"}}]}}
    container = {"volumeMounts": [{"name": "s", "mountPath": "/etc/nginx/ssl"},
                                  {"name": "e", "mountPath": "/cache"},
                                  {"name": "c", "mountPath": "/etc/nginx/conf.d", "readOnly": False}]}
    paths = {n: str(tmp_path / n) for n in "sec"}
    mounts = volume_mounts(container, paths, read_only_volumes(pod))
    assert [(m.target, m.readonly) for m in mounts] == [
        ("/etc/nginx/ssl", True), ("/cache", False), ("/etc/nginx/conf.d", True)]


class _PerObjectApi:
    """Serves each list/watch from a queue of its own: what the watches asked for
    (namespace and field selector) and a way to send each one an event."""

    def __init__(self) -> None:
        self.queues: dict[tuple[str, str | None, str | None], asyncio.Queue[Any]] = {}

    def _queue(self, key: str, namespace: str | None, field_selector: str | None) -> asyncio.Queue[Any]:
        return self.queues.setdefault((key, namespace, field_selector), asyncio.Queue())

    async def list(self, key: str, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None) -> Any:
        self._queue(key, namespace, field_selector)
        return {"items": [], "metadata": {"resourceVersion": "1"}}

    async def watch(self, key: str, namespace: str | None = None, *, resource_version: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None) -> Any:
        queue = self._queue(key, namespace, field_selector)
        while True:
            yield await queue.get()


def test_watch_is_one_per_object_and_routes_changes_to_subscribers() -> None:
    async def scenario() -> None:
        api = _PerObjectApi()
        watch = VolumeWatch(api)  # type: ignore[arg-type]
        sub = watch.subscribe("web", {("configmaps", "nginxconfigmap"), ("secrets", "nginxsecret")})
        other = watch.subscribe("other", {("configmaps", "nginxconfigmap")})
        await asyncio.sleep(0.05)
        # a node may read only the objects its pods use: one watch per object, by name
        assert set(api.queues) == {("configmaps", "web", "metadata.name=nginxconfigmap"),
                                   ("secrets", "web", "metadata.name=nginxsecret"),
                                   ("configmaps", "other", "metadata.name=nginxconfigmap")}
        cm = {"metadata": {"namespace": "web", "name": "nginxconfigmap", "resourceVersion": "2"}}
        api.queues[("configmaps", "web", "metadata.name=nginxconfigmap")].put_nowait({"type": "MODIFIED", "object": cm})
        secret = {"metadata": {"namespace": "web", "name": "nginxsecret", "resourceVersion": "3"}}
        api.queues[("secrets", "web", "metadata.name=nginxsecret")].put_nowait({"type": "MODIFIED", "object": secret})
        assert await asyncio.wait_for(sub.next(), 1) == {("configmaps", "nginxconfigmap"), ("secrets", "nginxsecret")}
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(other.next(), 0.05)
        tasks = list(watch._watches.values())
        sub.close()
        other.close()
        await asyncio.sleep(0)
        assert not watch._subscribers and not watch._watches
        assert all(t.cancelled() or t.done() for t in tasks), "the last unsubscription stops the object's watch"

    asyncio.run(scenario())
