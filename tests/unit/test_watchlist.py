"""Streaming lists (WatchList, the default way client-go 1.35+ lists): a watch with
``sendInitialEvents=true`` sends every matching object as ADDED, then a BOOKMARK
annotated ``k8s.io/initial-events-end`` with the list's resourceVersion, then the
changes; the ListOptions defaults and 422s of kube-apiserver 1.37; a version the
store has not reached yet. On the real ApiCore and store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from test_api_core import POD, make_core, run

from k8snet.lab.api import core as core_mod
from k8snet.lab.api.core import ApiCore
from k8snet.lab.api.listoptions import INITIAL_EVENTS_END, check_list_options, watch_options
from k8snet.lab.errors import ApiError

STREAM = {"send_initial_events": True, "resource_version_match": "NotOlderThan", "allow_bookmarks": True}


def pod(name: str, app: str) -> dict[str, Any]:
    return {**POD, "metadata": {"name": name, "labels": {"app": app}}}


async def _cluster(tmp_path: Path) -> ApiCore:
    core = make_core(tmp_path)
    await core.create("namespaces", None, {"metadata": {"name": "default"}})
    await core.create("pods", "default", pod("web-1", "web"))
    await core.create("pods", "default", pod("db", "db"))
    await core.create("pods", "default", pod("web-2", "web"))
    return core


async def _take(events: AsyncIterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return [await events.__anext__() for _ in range(n)]


def _names(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]


def _is_end_bookmark(event: dict[str, Any], rv: int) -> bool:
    meta = event["object"]["metadata"]
    return (event["type"] == "BOOKMARK" and meta["resourceVersion"] == str(rv)
            and meta.get("annotations") == {INITIAL_EVENTS_END: "true"}
            and event["object"]["kind"] == "Pod" and event["object"]["apiVersion"] == "v1")


def test_initial_events_then_end_bookmark_then_changes(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = await _cluster(tmp_path)
        rv = core.store.resource_version
        events = core.watch("pods", "default", label_selector="app=web", timeout_seconds=5, **STREAM)
        first = await _take(events, 3)
        assert _names(first[:2]) == [("ADDED", "web-1"), ("ADDED", "web-2")]  # the selector applies: no db
        assert _is_end_bookmark(first[2], rv)
        await core.create("pods", "default", pod("db-2", "db"))
        await core.create("pods", "default", pod("web-3", "web"))
        assert _names(await _take(events, 1)) == [("ADDED", "web-3")]
        await events.aclose()
    run(scenario())


def test_field_selector_and_an_empty_result_still_end_with_the_bookmark(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = await _cluster(tmp_path)
        rv = core.store.resource_version
        events = core.watch("pods", "default", field_selector="metadata.name=db", timeout_seconds=5, **STREAM)
        got = await _take(events, 2)
        assert _names(got[:1]) == [("ADDED", "db")] and _is_end_bookmark(got[1], rv)
        await events.aclose()
        none = core.watch("pods", "kube-system", timeout_seconds=5, **STREAM)
        assert _is_end_bookmark(await none.__anext__(), rv)
        await none.aclose()
    run(scenario())


def test_legacy_watches_from_empty_or_zero_are_defaulted_to_streaming_lists(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = await _cluster(tmp_path)
        rv = core.store.resource_version
        for version in (None, "", "0"):
            events = core.watch("pods", "default", resource_version=version, allow_bookmarks=True, timeout_seconds=5)
            got = await _take(events, 4)
            assert [t for t, _ in _names(got[:3])] == ["ADDED"] * 3 and _is_end_bookmark(got[3], rv)
            await events.aclose()
        # Without allowWatchBookmarks the initial events are not followed by a bookmark:
        # the next event is the next change.
        events = core.watch("pods", "default", timeout_seconds=5)
        assert len(await _take(events, 3)) == 3
        await core.delete("pods", "default", "db")
        assert _names(await _take(events, 1)) == [("DELETED", "db")]
        await events.aclose()
    run(scenario())


def test_send_initial_events_false_starts_from_now_or_from_the_version(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = await _cluster(tmp_path)
        opts = {"send_initial_events": False, "resource_version_match": "NotOlderThan", "allow_bookmarks": True}
        for version in ("", "0"):
            events = core.watch("pods", "default", resource_version=version, timeout_seconds=5, **opts)
            await core.patch("pods", "default", "db", {"metadata": {"labels": {"tier": version or "unset"}}})
            assert _names(await _take(events, 1)) == [("MODIFIED", "db")]
            await events.aclose()
        # From a given version: the changes after it, as a plain watch.
        listed = await core.list("pods", "default")
        await core.create("pods", "default", pod("late", "web"))
        events = core.watch("pods", "default", resource_version=listed["metadata"]["resourceVersion"],
                            timeout_seconds=5, **opts)
        assert _names(await _take(events, 1)) == [("ADDED", "late")]
        await events.aclose()
    run(scenario())


def test_a_given_version_streams_the_current_state_even_past_the_history(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = await _cluster(tmp_path)
        rv = core.store.resource_version
        core.store._compacted = rv - 1  # a plain watch from version 2 would be 410 Expired
        with pytest.raises(ApiError) as expired:
            await core.watch("pods", "default", resource_version="2").__anext__()
        assert expired.value.code == 410
        events = core.watch("pods", "default", resource_version="2", timeout_seconds=5, **STREAM)
        got = await _take(events, 4)
        assert sorted(n for _, n in _names(got[:3])) == ["db", "web-1", "web-2"] and _is_end_bookmark(got[3], rv)
        await events.aclose()
    run(scenario())


def test_a_version_not_reached_yet_waits_then_fails_as_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core_mod, "_FRESH_WAIT", 0.3)

    async def scenario() -> None:
        core = await _cluster(tmp_path)
        rv = core.store.resource_version
        with pytest.raises(ApiError) as err:
            await core.watch("pods", "default", resource_version=str(rv + 100), **STREAM).__anext__()
        status = err.value.status()
        assert status["code"] == 504 and status["reason"] == "Timeout"
        assert status["message"] == f"Timeout: Too large resource version: {rv + 100}, current: {rv}"
        assert status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
        # A write that reaches the version while the watch waits satisfies it.
        events = core.watch("pods", "default", resource_version=str(rv + 1), timeout_seconds=5, **STREAM)
        first = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0.05)
        assert not first.done()
        await core.create("pods", "default", pod("web-4", "web"))
        got = [await first, *await _take(events, 4)]
        assert sorted(n for _, n in _names(got[:4])) == ["db", "web-1", "web-2", "web-4"]
        assert _is_end_bookmark(got[4], rv + 1)
        await events.aclose()
    run(scenario())


@pytest.mark.parametrize(("rv", "match", "send", "bookmarks", "message"), [
    ("", "", False, True, 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                          "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"),
    ("5", "NotOlderThan", None, True, 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                                      "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"),
    ("", "Exact", True, True, 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                              "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan, "
                              'resourceVersionMatch: Unsupported value: "Exact": supported values: "NotOlderThan"'),
])
def test_invalid_watch_options_are_422(rv: str, match: str, send: bool | None, bookmarks: bool, message: str) -> None:
    with pytest.raises(ApiError) as err:
        watch_options(rv, match, send, bookmarks)
    assert err.value.code == 422 and err.value.reason == "Invalid" and err.value.message == message
    assert err.value.details is not None and err.value.details["group"] == "meta.k8s.io"
    assert err.value.details["kind"] == "ListOptions"


def test_valid_watch_options_and_defaults() -> None:
    assert watch_options("", "", None, True).ends_initial_events_with_bookmark  # defaulted
    assert watch_options("0", "", None, False).streams_initial_events
    assert not watch_options("0", "", None, False).ends_initial_events_with_bookmark  # no bookmarks allowed
    assert watch_options("7", "", None, True).send_initial_events is None  # a plain resume
    assert watch_options("7", "NotOlderThan", True, True).ends_initial_events_with_bookmark
    assert not watch_options("", "NotOlderThan", False, True).streams_initial_events


def test_list_options_validation() -> None:
    check_list_options("", "", None)
    check_list_options("5", "Exact", None)
    with pytest.raises(ApiError) as err:
        check_list_options("", "", True)
    assert err.value.code == 422 and "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list" in \
        err.value.message
    with pytest.raises(ApiError) as err:
        check_list_options("", "NotOlderThan", None)
    assert "resourceVersionMatch is forbidden unless resourceVersion is provided" in err.value.message
    with pytest.raises(ApiError) as err:
        check_list_options("0", "Exact", None)
    assert 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"' in err.value.message


def test_watch_checks_options_before_the_first_event(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = await _cluster(tmp_path)
        with pytest.raises(ApiError) as err:  # raised by the call itself, before any response starts
            core.watch("pods", send_initial_events=True)
        assert err.value.code == 422
    run(scenario())
