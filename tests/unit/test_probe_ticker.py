"""The kubelet probe worker's timing: one ticker per worker from when the pod's probes
were added, plus the run at container start; and ServiceWatch's minimum interval."""

from __future__ import annotations

import asyncio
import time

import pytest

from k8snet.lab.kubelet.probes import probe_loop, until_next_tick


@pytest.mark.parametrize(("origin", "now", "expected"), [
    (0.0, 0.0, 1.0),    # at a tick: the next one, never the same
    (0.0, 0.3, 0.7),
    (0.0, 1.0, 1.0),
    (0.0, 2.25, 0.75),
    (5.0, 4.5, 1.5),    # before the ticker started: its first tick
])
def test_until_next_tick(origin: float, now: float, expected: float) -> None:
    assert until_next_tick(origin, 1.0, now) == pytest.approx(expected)


def test_second_attempt_on_the_tickers_phase_not_a_period_after_the_first() -> None:
    """Probes added 0.3 periods before the container started: the attempt at the start
    fails, the next runs at the ticker's tick, 0.7 periods later (not 1)."""
    period = 0.2

    async def scenario() -> list[float]:
        origin = time.monotonic()
        await asyncio.sleep(0.3 * period)
        started = time.monotonic()
        times: list[float] = []
        results: list[bool] = []

        async def attempt() -> bool:
            times.append(time.monotonic() - started)
            return len(times) >= 2

        def on_result(ok: bool) -> bool:
            results.append(ok)
            return not ok  # stop once ready

        await asyncio.wait_for(probe_loop({"periodSeconds": period, "failureThreshold": 1}, attempt, on_result,
                                          origin=origin), 5)
        assert results == [False, True]
        return times

    times = asyncio.run(scenario())
    assert times[0] < 0.05
    assert times[1] == pytest.approx(0.7 * period, abs=0.05)


class _QuietApi:
    """Lists nothing, then watches forever without events."""

    async def list(self, key: str, namespace: str | None = None, **_: object) -> dict:
        return {"items": [], "metadata": {"resourceVersion": "1"}}

    async def watch(self, key: str, namespace: str | None = None, **_: object):  # noqa: ANN201
        await asyncio.Event().wait()
        yield {}


def test_service_watch_syncs_at_once_after_quiet_and_coalesces_a_burst() -> None:
    """kube-proxy's minSyncPeriod: a change after a quiet spell is synced at once; the
    changes of a burst within the interval make one more sync, at its end."""
    from k8snet.lab.servicewatch import ServiceWatch

    interval = 0.2

    async def scenario() -> list[float]:
        watch = ServiceWatch(_QuietApi(), "test")  # type: ignore[arg-type]
        syncs: list[float] = []

        async def sync() -> None:
            syncs.append(time.monotonic())

        task = asyncio.create_task(watch.run(sync, min_interval=interval, retry_on=(OSError,)))
        while not syncs:  # the first sync, once the caches are full
            await asyncio.sleep(0.005)
        await asyncio.sleep(interval * 1.5)  # quiet
        changed = time.monotonic()
        watch.changed()
        await asyncio.sleep(0.02)
        for _ in range(5):  # a burst right after that sync
            watch.changed()
            await asyncio.sleep(0.01)
        await asyncio.sleep(interval * 2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return [s - changed for s in syncs[1:]]

    after_change = asyncio.run(scenario())
    assert len(after_change) == 2
    assert after_change[0] < 0.05  # at once, not after a debounce
    assert after_change[1] == pytest.approx(interval, abs=0.06)  # the burst: one sync, at the interval's end
