"""The lab's object store: SQLite (WAL) with one global resourceVersion, like etcd.

Every write bumps a single persisted counter (the etcd revision), stores the object
with that counter as its ``metadata.resourceVersion`` and appends an event to a log.
The log keeps the last :data:`HISTORY` events so watchers can resume from any recent
version; an older one is 410 Expired, as the real watch cache reports it.

Watchers wake on writes through in-process asyncio events (no polling) and read
their events back from the log, so a slow watcher never loses one. A recent event
is decoded once and the same objects go to every watcher (a pod event has half a
dozen in-process watchers): watchers treat event objects as read-only, as
client-go's informers treat their cache, and copy before they change one.

Calls are synchronous and run in the event loop's thread: keeping every write free
of ``await`` makes each one atomic with respect to the other coroutines. Reads of
current objects come from an in-memory copy of the ``objects`` table (their JSON
text): SQLite releases the GIL in every call, and while a worker thread copies a
container's files the loop may wait milliseconds to get it back.
"""

from __future__ import annotations

import asyncio
import builtins  # Store has a list() method, which shadows list in its annotations
import json
import sqlite3
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import errors

Obj = dict[str, Any]

HISTORY = 50_000          # events kept for watch resume
_COMPACT_EVERY = 1_000    # compact the log once per this many writes
_BATCH = 500              # events read per query by a watcher
_DECODED = 4_096          # recent events kept decoded, shared by every watcher
_RECENT = 256             # per kind: the latest events' rows kept in memory for watchers (2x at most)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    key TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (key, namespace, name));
CREATE TABLE IF NOT EXISTS events (
    rv INTEGER PRIMARY KEY, type TEXT NOT NULL, key TEXT NOT NULL, namespace TEXT NOT NULL,
    name TEXT NOT NULL, body TEXT NOT NULL, prev TEXT);
CREATE INDEX IF NOT EXISTS events_by_key ON events (key, rv);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Event:
    """One change. ``prev`` is the object before a MODIFIED write: selectors need it
    to turn "stopped matching" into DELETED and "started matching" into ADDED."""

    type: str  # ADDED | MODIFIED | DELETED
    key: str
    namespace: str
    name: str
    object: Obj
    rv: int
    prev: Obj | None = None


def _split_key(key: str) -> tuple[str, str]:
    group, _, plural = key.rpartition("/")
    return group, plural


def _dumps(obj: Obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


class Store:
    def __init__(self, path: Path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per write.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._rv = self._meta("rv")
        # key -> (namespace, name) -> the stored JSON text: what reads and ``prev`` use
        self._bodies: dict[str, dict[tuple[str, str], str]] = {}
        for key, namespace, name, body in self._db.execute("SELECT key, namespace, name, body FROM objects"):
            self._bodies.setdefault(key, {})[(namespace, name)] = body
        self._compacted = self._meta("compacted")  # events with rv <= this are gone
        self._writes = 0
        self._generations: dict[str, int] = {}  # key -> writes since opened (caches of one kind check it)
        # key -> the sleeping watchers of that kind: a write wakes only its own kind's
        # (waking every watcher on every write had each of ~20 run a query that found
        # nothing: a share of the event loop that grew with every write in a burst)
        self._waiters: dict[str, set[asyncio.Event]] = {}
        # key -> revision of its last write since opened; keys not written since were
        # last written at or before the revision the store opened with
        self._last_write: dict[str, int] = {}
        # key -> its latest event rows (rv, type, namespace, name, body, prev), oldest
        # first, and the revision after which the list holds every event of the key:
        # a watcher near the head reads them here, not back from SQLite
        self._recent: dict[str, builtins.list[tuple[int, str, str, str, str, str | None]]] = {}
        self._recent_after: dict[str, int] = {}
        self._opened_rv = self._rv
        self._decoded: dict[int, tuple[Obj, Obj | None]] = {}  # rv -> (object, prev), oldest first

    def close(self) -> None:
        self._db.close()

    def _meta(self, k: str) -> int:
        row = self._db.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()
        return int(row[0]) if row else 0

    # -- reads -------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        """The revision of the last write (0 for an empty store)."""
        return self._rv

    def last_write(self, key: str) -> int:
        """A revision no older than the last write of ``key``."""
        return self._last_write.get(key, self._opened_rv)

    @property
    def oldest_resumable(self) -> int:
        """The oldest resourceVersion a watch may resume from."""
        return self._compacted

    def get(self, key: str, namespace: str, name: str) -> Obj | None:
        body = self._bodies.get(key, {}).get((namespace, name))
        return json.loads(body) if body is not None else None

    def list(self, key: str, namespace: str | None = None) -> tuple[list[Obj], int]:
        """All objects of ``key`` (in ``namespace`` when given), sorted by namespace and
        name like etcd's key order, and the revision they were read at."""
        stored = self._bodies.get(key, {})
        names = sorted(k for k in stored if namespace is None or k[0] == namespace)
        return [json.loads(stored[k]) for k in names], self._rv

    def generation(self, key: str) -> int:
        """How many writes ``key`` has had since the store was opened: a cache built
        from its objects is current while this stays the same."""
        return self._generations.get(key, 0)

    def texts(self, key: str) -> builtins.list[tuple[tuple[str, str], str]]:
        """((namespace, name), stored JSON text) of every object of ``key``, unsorted.
        A text is replaced, never changed, by a write: a cache keyed on it need only
        decode the objects that changed."""
        return builtins.list(self._bodies.get(key, {}).items())

    def objects(self, key: str) -> builtins.list[Obj]:
        """All objects of ``key``: the lister admission uses for allocation."""
        return self.list(key)[0]

    # -- writes ------------------------------------------------------------
    def create(self, key: str, namespace: str, name: str, obj: Obj) -> Obj:
        """Stores a new object; 409 AlreadyExists if the name is taken."""
        if (namespace, name) in self._bodies.get(key, {}):
            raise errors.already_exists(*_split_key(key), name)
        return self._write("ADDED", key, namespace, name, obj)

    def update(self, key: str, namespace: str, name: str, obj: Obj, *, expected_rv: str | None = None,
               current: Obj | None = None) -> Obj:
        """Replaces an object; 404 if it is gone, 409 Conflict if ``expected_rv`` is stale.

        ``current`` is the stored object as the caller just read it, with no ``await``
        since: passing it saves decoding it a second time."""
        self._current(key, namespace, name, expected_rv, current)
        return self._write("MODIFIED", key, namespace, name, obj)

    def delete(self, key: str, namespace: str, name: str, *, expected_rv: str | None = None,
               final: Obj | None = None, current: Obj | None = None) -> Obj:
        """Removes an object and returns its last state (``final`` when the removal is the
        end of an update, e.g. the last finalizer cleared), stamped with the deletion's
        revision as etcd watchers see it. ``current`` as for :meth:`update`."""
        current = self._current(key, namespace, name, expected_rv, current)
        return self._write("DELETED", key, namespace, name, final if final is not None else current)

    def _current(self, key: str, namespace: str, name: str, expected_rv: str | None,
                 current: Obj | None = None) -> Obj:
        if current is None:
            current = self.get(key, namespace, name)
        if current is None:
            raise errors.not_found(*_split_key(key), name)
        if expected_rv and current.get("metadata", {}).get("resourceVersion") != expected_rv:
            raise errors.conflict(*_split_key(key), name, "the object has been modified; please apply "
                                  "your changes to the latest version and try again")
        return current

    def _write(self, etype: str, key: str, namespace: str, name: str, obj: Obj) -> Obj:
        rv = self._rv + 1
        obj = {**obj, "metadata": {**obj.get("metadata", {}), "resourceVersion": str(rv)}}
        body = _dumps(obj)
        stored = self._bodies.setdefault(key, {})
        prev = stored.get((namespace, name)) if etype == "MODIFIED" else None  # the stored text, as is
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if etype == "DELETED":
                db.execute("DELETE FROM objects WHERE key = ? AND namespace = ? AND name = ?", (key, namespace, name))
            else:
                db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)", (key, namespace, name, body))
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (rv, etype, key, namespace, name, body, prev))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('rv', ?)", (rv,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if etype == "DELETED":
            stored.pop((namespace, name), None)
        else:
            stored[(namespace, name)] = body
        self._rv = rv
        self._last_write[key] = rv
        recent = self._recent.setdefault(key, [])
        if not recent:
            self._recent_after[key] = rv - 1
        recent.append((rv, etype, namespace, name, body, prev))
        if len(recent) >= 2 * _RECENT:  # trimmed in halves: amortized, not per write
            self._recent_after[key] = recent[-_RECENT - 1][0]
            del recent[:-_RECENT]
        self._writes += 1
        self._generations[key] = self._generations.get(key, 0) + 1
        if self._writes % _COMPACT_EVERY == 0:
            self._compact()
        for waiter in self._waiters.get(key, ()):
            waiter.set()
        return obj

    def _compact(self) -> None:
        horizon = self._rv - HISTORY
        if horizon <= self._compacted:
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute("DELETE FROM events WHERE rv <= ?", (horizon,))
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('compacted', ?)", (horizon,))
        self._db.execute("COMMIT")
        self._compacted = horizon

    # -- watch -------------------------------------------------------------
    def watch(self, key: str, namespace: str | None, since: int) -> StoreWatch:
        """Events of ``key`` with a revision above ``since``; 410 Expired if the log no
        longer reaches back that far."""
        return StoreWatch(self, key, namespace, since)

    def _check_resumable(self, since: int) -> None:
        if since < self._compacted:
            raise errors.gone(f"too old resource version: {since} ({self._compacted})")

    def _events_after(self, key: str, namespace: str | None, since: int) -> builtins.list[Event]:
        recent = self._recent.get(key)
        if recent and since >= self._recent_after[key]:
            events = []
            for rv, t, ns, n, b, p in recent[bisect_right(recent, since, key=lambda row: row[0]):]:
                if namespace is None or ns == namespace:
                    obj, prev = self._decode(rv, b, p)
                    events.append(Event(t, key, ns, n, obj, rv, prev))
                    if len(events) == _BATCH:
                        break
            return events
        sql = "SELECT rv, type, namespace, name, body, prev FROM events WHERE key = ? AND rv > ?"
        args: list[Any] = [key, since]
        if namespace is not None:
            sql += " AND namespace = ?"
            args.append(namespace)
        rows = self._db.execute(sql + f" ORDER BY rv LIMIT {_BATCH}", args).fetchall()
        events = []
        for rv, t, ns, n, b, p in rows:
            obj, prev = self._decode(rv, b, p)
            events.append(Event(t, key, ns, n, obj, rv, prev))
        return events

    def _decode(self, rv: int, body: str, prev: str | None) -> tuple[Obj, Obj | None]:
        """The event's objects, decoded on the first watcher's read and shared after."""
        decoded = self._decoded.get(rv)
        if decoded is None:
            decoded = self._decoded[rv] = (json.loads(body), json.loads(prev) if prev else None)
            if len(self._decoded) > _DECODED:
                del self._decoded[next(iter(self._decoded))]
        return decoded


class StoreWatch:
    """A cursor over the event log that sleeps until the next write.

    ``progress`` is the revision up to which this watcher has seen every event of its
    key: what a BOOKMARK may report.
    """

    def __init__(self, store: Store, key: str, namespace: str | None, since: int):
        store._check_resumable(since)
        self._store = store
        self._key = key
        self._namespace = namespace
        self.progress = since
        self._buffer: list[Event] = []
        self._wake = asyncio.Event()
        store._waiters.setdefault(key, set()).add(self._wake)

    def close(self) -> None:
        self._store._waiters.get(self._key, set()).discard(self._wake)

    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event, or None if ``timeout`` seconds pass without one."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._buffer:
            # Clear before reading: a write after the read sets it again, so no wake-up is lost.
            self._wake.clear()
            seen_upto = self._store.resource_version
            if self._store.last_write(self._key) > self.progress:  # else nothing to read: no query
                self._store._check_resumable(self.progress)
                self._buffer = self._store._events_after(self._key, self._namespace, self.progress)
                if self._buffer:
                    break
            self.progress = max(self.progress, seen_upto)
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                # once more with the time up: writes of other kinds woke nothing, so
                # this is where ``progress`` catches up with them (for a BOOKMARK)
                deadline = loop.time()
        event = self._buffer.pop(0)
        self.progress = event.rv
        return event

    def __enter__(self) -> StoreWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
