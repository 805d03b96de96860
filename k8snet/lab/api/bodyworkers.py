"""Large request bodies decoded in worker processes, off the supervisor's event loop.

The API server, controllers, kubelets and kube-proxies share one asyncio loop (and
one GIL). Decoding is the one step of a request whose cost a client chooses: PyYAML
is pure Python (~0.25 ms per KiB), and a JSON body of many deeply nested lists costs
as much to depth-check. Measured on the 2-core dev machine
(``benchmarks/bench_isolation.py``), two clients writing ~1.4 MiB YAML ConfigMaps held
/healthz for 1.5 s (p99) while decoding ran in the loop, 82 ms with the workers
(figures in docs/lab-architecture.md).

Why worker processes and not the whole API server in its own process: the
controllers, kubelets and proxies talk to the core in-process (``AuthorizedClient``)
and its watches are in-memory queues; a separate API server process would need the
store and its watch fan-out shared across processes, a much larger change for the
same gain, since the rest of a request (admission, validation, the SQLite write)
costs a few milliseconds even for a 1.4 MiB object.

A small body is decoded in the loop: the hop to a worker (submit, pickle, wake-up)
costs ~0.4 ms. Measured (idle machine; 1 KiB … 64 KiB ConfigMaps): JSON decodes at
~0.01 ms per KiB (C), but a body of deeply nested lists costs ~0.27 ms per KiB to
depth-check; YAML costs ~0.8 ms per KiB (pure-Python PyYAML), already more than the
hop at 1 KiB. :data:`INLINE_MAX_BYTES` keeps the worst inline case near 4 ms. A
larger body goes to a worker, which parses and checks it (the very functions of
:mod:`.decoding`) and sends back canonical JSON: the loop then only runs
``json.loads`` (C, ~1 ms per MiB; unpickling a deep tree of lists would cost more
than decoding it). An :class:`ApiError` comes back as its code, reason, message and
details, so the client gets the same ``Status`` as from inline decoding. At most
:data:`QUEUE_LIMIT` bodies wait for a worker; beyond that 429 ``TooManyRequests``,
as kube-apiserver's max-in-flight filter answers.

The workers are started with ``spawn`` (a fork of the supervisor would copy its
sockets, threads and SQLite handle) and die with the supervisor even when it is
killed with SIGKILL (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import json
import logging
import multiprocessing
import os
import signal
import time
from typing import Any, Literal

from ..errors import ApiError
from . import decoding

log = logging.getLogger(__name__)

Kind = Literal["json", "yaml", "apply-yaml"]
INLINE_MAX_BYTES: dict[str, int] = {"json": 16 * 1024, "yaml": 4 * 1024, "apply-yaml": 4 * 1024}
QUEUE_LIMIT = 32
DEFAULT_WORKERS = 2
_PR_SET_PDEATHSIG = 1


def decode(kind: Kind, raw: bytes) -> Any:
    """The body as JSON-shaped data, with every check of :mod:`.decoding`."""
    if kind == "json":
        return decoding.parse_json(raw)
    if kind == "yaml":
        return decoding.parse_yaml(raw)
    return decoding.parse_yaml(raw, "error decoding YAML")


def _decode_to_json(kind: Kind, raw: bytes) -> tuple[bool, Any]:
    """In a worker: (True, canonical JSON bytes) or (False, the error's fields)."""
    try:
        return True, json.dumps(decode(kind, raw), separators=(",", ":")).encode()
    except ApiError as err:
        return False, (err.code, err.reason, err.message, err.details)


def _die_with_parent(parent: int) -> None:
    """Worker initializer: SIGKILL when the supervisor goes, however it goes."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it went before prctl took effect
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on a foreground supervisor: it stops us


def _ready() -> int:
    time.sleep(0.1)  # holds this worker, so the next call starts the next one
    return os.getpid()


def too_many_requests() -> ApiError:
    return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                    {"retryAfterSeconds": 1})


class BodyDecoder:
    """Decodes request bodies: small ones at once, large ones in a process pool.

    ``workers=0`` decodes everything in the event loop (the lab before isolation;
    ``K8SNET_API_BODY_WORKERS=0`` selects it, for measurements)."""

    def __init__(self, workers: int = DEFAULT_WORKERS, queue_limit: int = QUEUE_LIMIT,
                 inline_max_bytes: dict[str, int] | None = None):
        self.workers = workers
        self.inline_max_bytes = INLINE_MAX_BYTES if inline_max_bytes is None else inline_max_bytes
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._slots = asyncio.Semaphore(workers + queue_limit) if workers else None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        # Made on first use, from the loop's thread: PR_SET_PDEATHSIG fires when the
        # thread that started a worker ends, and the loop's thread lives as long as
        # the supervisor.
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_die_with_parent, initargs=(os.getpid(),))
        return self._pool

    async def start(self) -> list[int]:
        """Starts the workers now (each imports the lab's modules, ~0.5 s of CPU), so
        the first large body does not wait for that; returns the pids that answered."""
        if not self.workers:
            return []
        loop = asyncio.get_running_loop()
        pool = self._executor()
        return sorted(set(await asyncio.gather(*(loop.run_in_executor(pool, _ready) for _ in range(self.workers)))))

    async def parse(self, kind: Kind, raw: bytes) -> Any:
        if self._slots is None or len(raw) <= self.inline_max_bytes.get(kind, 0):
            return decode(kind, raw)
        if self._slots.locked():
            raise too_many_requests()
        async with self._slots:
            loop = asyncio.get_running_loop()
            try:
                ok, result = await loop.run_in_executor(self._executor(), _decode_to_json, kind, raw)
            except concurrent.futures.process.BrokenProcessPool:
                # A worker was killed (OOM killer, a stray signal): a new pool for the
                # next body; this one is answered as the real server answers a crash.
                log.error("a request-decoding worker died; starting new ones")
                broken, self._pool = self._pool, None
                if broken is not None:
                    broken.shutdown(wait=False)
                raise ApiError(500, "InternalError", "Internal error occurred: the request decoder died") from None
        if not ok:
            raise ApiError(*result)
        return json.loads(result)

    def close(self) -> None:
        """Stops the workers (waits for the ones decoding: at most a few seconds)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
