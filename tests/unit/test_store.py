"""The SQLite store: one global resourceVersion, conflicts, watch resume and 410."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from k8snet.lab import store as store_mod
from k8snet.lab.errors import ApiError
from k8snet.lab.store import Store


def _obj(name: str, **extra: object) -> dict:
    return {"metadata": {"name": name, "namespace": "default"}, **extra}


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store.sqlite")
    yield s
    s.close()


def test_resource_version_is_global_monotonic_and_persisted(tmp_path: Path) -> None:
    s = Store(tmp_path / "db")
    a = s.create("pods", "default", "a", _obj("a"))
    b = s.create("services", "default", "b", _obj("b"))
    a2 = s.update("pods", "default", "a", a)
    versions = [o["metadata"]["resourceVersion"] for o in (a, b, a2)]
    assert versions == ["1", "2", "3"]
    s.close()
    reopened = Store(tmp_path / "db")
    assert reopened.resource_version == 3
    assert reopened.get("pods", "default", "a")["metadata"]["resourceVersion"] == "3"
    assert reopened.create("pods", "default", "c", _obj("c"))["metadata"]["resourceVersion"] == "4"
    reopened.close()


def test_create_existing_is_409_and_stale_update_is_conflict(store: Store) -> None:
    store.create("pods", "default", "a", _obj("a"))
    with pytest.raises(ApiError) as err:
        store.create("pods", "default", "a", _obj("a"))
    assert (err.value.code, err.value.reason, err.value.message) == (409, "AlreadyExists", 'pods "a" already exists')
    store.update("pods", "default", "a", _obj("a"), expected_rv="1")
    with pytest.raises(ApiError) as err:
        store.update("pods", "default", "a", _obj("a"), expected_rv="1")
    assert err.value.reason == "Conflict"
    with pytest.raises(ApiError) as err:
        store.delete("apps/deployments", "default", "nope")
    assert err.value.message == 'deployments.apps "nope" not found'


def test_list_is_filtered_by_namespace_and_sorted(store: Store) -> None:
    store.create("pods", "b", "x", _obj("x"))
    store.create("pods", "a", "y", _obj("y"))
    store.create("pods", "a", "b", _obj("b"))
    items, rv = store.list("pods")
    assert [i["metadata"]["name"] for i in items] == ["b", "y", "x"] and rv == 3
    assert [i["metadata"]["name"] for i in store.list("pods", "a")[0]] == ["b", "y"]


def test_watch_resumes_from_a_version_and_wakes_on_writes(store: Store) -> None:
    async def scenario() -> list[tuple[str, str, int]]:
        store.create("pods", "default", "a", _obj("a"))            # rv 1
        store.create("services", "default", "s", _obj("s"))        # rv 2: other key, not seen
        store.update("pods", "default", "a", _obj("a", x=1))       # rv 3
        seen = []
        with store.watch("pods", None, 1) as cursor:
            ev = await cursor.next(1)
            seen.append((ev.type, ev.name, ev.rv))
            assert ev.prev is not None and "x" not in ev.prev
            asyncio.get_running_loop().call_later(0.05, store.delete, "pods", "default", "a")
            ev = await cursor.next(2)
            seen.append((ev.type, ev.name, ev.rv))
            assert await cursor.next(0.05) is None
            assert cursor.progress == 4
        return seen
    assert asyncio.run(scenario()) == [("MODIFIED", "a", 3), ("DELETED", "a", 4)]


def test_too_old_resource_version_is_410(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_mod, "HISTORY", 5)
    monkeypatch.setattr(store_mod, "_COMPACT_EVERY", 5)
    s = Store(tmp_path / "db")
    for i in range(12):
        s.create("configmaps", "default", f"c{i}", _obj(f"c{i}"))
    assert s.oldest_resumable == 5
    with pytest.raises(ApiError) as err:
        s.watch("configmaps", None, 2)
    assert (err.value.code, err.value.reason) == (410, "Expired")
    assert err.value.message == "too old resource version: 2 (5)"

    async def resume() -> list[int]:
        with s.watch("configmaps", None, 5) as cursor:
            return [(await cursor.next(1)).rv for _ in range(5)]
    assert asyncio.run(resume()) == [6, 7, 8, 9, 10]
    s.close()


def test_watchers_share_one_decoded_event(store: Store) -> None:
    """Each event is decoded once; every watcher gets the same (read-only) objects."""
    async def scenario() -> None:
        store.create("pods", "default", "a", _obj("a"))
        store.update("pods", "default", "a", _obj("a", x=1))
        with store.watch("pods", None, 0) as one, store.watch("pods", None, 0) as two:
            for _ in range(2):
                a, b = await one.next(1), await two.next(1)
                assert a.object is b.object and a.prev is b.prev
            assert a.object["x"] == 1 and "x" not in a.prev
    asyncio.run(scenario())


def test_decoded_events_are_bounded(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_mod, "_DECODED", 3)

    async def read_all() -> list[int]:
        with store.watch("configmaps", None, 0) as cursor:
            return [(await cursor.next(1)).rv for _ in range(6)]
    for i in range(6):
        store.create("configmaps", "default", f"c{i}", _obj(f"c{i}"))
    assert asyncio.run(read_all()) == [1, 2, 3, 4, 5, 6]
    assert len(store._decoded) == 3


def test_update_with_the_callers_current_object(store: Store) -> None:
    """``current`` spares the second read; the resourceVersion check still applies."""
    a = store.create("pods", "default", "a", _obj("a"))
    store.update("pods", "default", "a", _obj("a", x=1), expected_rv="1", current=a)
    with pytest.raises(ApiError) as err:
        store.update("pods", "default", "a", _obj("a", x=2), expected_rv="2", current=a)
    assert err.value.code == 409
    gone = store.delete("pods", "default", "a", current=store.get("pods", "default", "a"))
    assert gone["x"] == 1 and store.get("pods", "default", "a") is None


def test_a_write_wakes_only_watchers_of_its_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes of other kinds neither wake a watcher nor, after compaction, expire it;
    its progress (what a BOOKMARK reports) still catches up with them."""
    monkeypatch.setattr(store_mod, "HISTORY", 5)
    monkeypatch.setattr(store_mod, "_COMPACT_EVERY", 5)
    s = Store(tmp_path / "db")
    s.create("configmaps", "default", "c", _obj("c"))  # rv 1

    async def scenario() -> None:
        with s.watch("configmaps", None, 1) as cursor:
            for i in range(12):  # rv 2..13, compacted past the watcher's progress
                asyncio.get_running_loop().call_later(0.005 * i, s.create, "pods", "default", f"p{i}", _obj(f"p{i}"))
            reads = 0
            real = s._events_after

            def counted(*args: object) -> list:
                nonlocal reads
                reads += 1
                return real(*args)  # type: ignore[arg-type]
            s._events_after = counted  # type: ignore[method-assign]
            assert await cursor.next(0.2) is None
            assert cursor.progress == 13 and reads == 0 and s.oldest_resumable > 1
            asyncio.get_running_loop().call_later(0.01, s.create, "configmaps", "default", "d", _obj("d"))
            ev = await cursor.next(1)  # not 410: no configmap event was compacted away
            assert (ev.name, ev.rv) == ("d", 14)
    asyncio.run(scenario())
    s.close()


def test_watchers_read_recent_events_from_memory_and_older_ones_from_the_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths give the same events, namespace filter and batch size included."""
    monkeypatch.setattr(store_mod, "_RECENT", 4)
    monkeypatch.setattr(store_mod, "_BATCH", 3)
    s = Store(tmp_path / "db")
    for i in range(12):  # pods in a and b, interleaved with services
        s.create("pods", "ab"[i % 2], f"p{i}", _obj(f"p{i}"))
        s.create("services", "default", f"s{i}", _obj(f"s{i}"))
    memory_from = s._recent_after["pods"]
    assert 0 < memory_from < s.resource_version  # older pod events are in the log only

    def read(since: int, namespace: str | None) -> list[tuple[str, str, int]]:
        return [(e.type, e.name, e.rv) for e in s._events_after("pods", namespace, since)]
    for namespace in (None, "a", "b"):
        for since in range(0, s.resource_version + 1):
            sql = "SELECT type, name, rv FROM events WHERE key = 'pods' AND rv > ?" + (
                " AND namespace = ?" if namespace else "") + " ORDER BY rv LIMIT 3"
            expected = [tuple(r) for r in s._db.execute(sql, (since, namespace) if namespace else (since,))]
            assert read(since, namespace) == expected, (since, namespace)
    s.close()
