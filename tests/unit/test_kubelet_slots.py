"""PrioritySlots: the kubelet's start-up concurrency limit, oldest pod first."""

from __future__ import annotations

import asyncio

import pytest

from k8snet.lab.kubelet.slots import PrioritySlots


def test_limit_and_oldest_first():
    async def scenario() -> tuple[list[int], int]:
        slots = PrioritySlots(2)
        order: list[int] = []
        peak = 0
        gate = asyncio.Event()

        async def job(priority: int) -> None:
            nonlocal peak
            async with slots.slot(priority):
                peak = max(peak, slots.busy)
                order.append(priority)
                await gate.wait()

        # 5 and 6 take the two slots; the rest queue in reverse arrival order
        tasks = [asyncio.create_task(job(p)) for p in (5, 6, 9, 3, 7, 1)]
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(*tasks)
        return order, peak

    order, peak = asyncio.run(scenario())
    assert order == [5, 6, 1, 3, 7, 9] and peak == 2


def test_cancelled_waiter_gives_its_turn_away():
    async def scenario() -> list[str]:
        slots = PrioritySlots(1)
        got: list[str] = []
        release = asyncio.Event()

        async def job(name: str, priority: int) -> None:
            async with slots.slot(priority):
                got.append(name)
                await release.wait()

        holder = asyncio.create_task(job("holder", 0))
        await asyncio.sleep(0)
        cancelled = asyncio.create_task(job("cancelled", 1))
        waiting = asyncio.create_task(job("waiting", 2))
        await asyncio.sleep(0)
        cancelled.cancel()
        release.set()
        await asyncio.gather(holder, waiting)
        assert slots.busy == 0
        return got

    assert asyncio.run(scenario()) == ["holder", "waiting"]


def test_limit_must_be_positive():
    with pytest.raises(ValueError):
        PrioritySlots(0)
