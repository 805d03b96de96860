"""What keeps a 100-pod start linear: the work queue's batched adds and the Node
authorizer's graph, which decodes only the pods that changed."""

from __future__ import annotations

import asyncio
import json

from k8snet.lab.api.nodeauthorizer import NodeGraph
from k8snet.lab.controllers.base import WorkQueue


def test_add_batched_runs_the_first_at_once_and_folds_the_rest() -> None:
    async def scenario() -> list[object]:
        q = WorkQueue()
        taken: list[object] = []
        q.add_batched("svc", 0.1)
        taken.append(await q.get())  # the first change: no delay
        for _ in range(50):  # a burst inside the period
            q.add_batched("svc", 0.1)
            await asyncio.sleep(0)
        assert len(q) == 0  # nothing queued yet: one reconcile is due at the period's end
        taken.append(await asyncio.wait_for(q.get(), 1.0))
        await asyncio.sleep(0.15)
        assert len(q) == 0  # the burst gave exactly one more
        q.add_batched("svc", 0.1)  # quiet for a period: at once again
        assert len(q) == 1
        return taken

    assert asyncio.run(scenario()) == ["svc", "svc"]


def test_add_batched_keeps_keys_apart() -> None:
    async def scenario() -> set[object]:
        q = WorkQueue()
        q.add_batched("a", 10)
        q.add_batched("b", 10)
        return {await q.get(), await q.get()}

    assert asyncio.run(scenario()) == {"a", "b"}


def _pod(name: str, node: str | None, secret: str) -> str:
    return json.dumps({"metadata": {"namespace": "ns", "name": name},
                       "spec": {"nodeName": node, "serviceAccountName": "default",
                                "volumes": [{"name": "s", "secret": {"secretName": secret}}], "containers": []}})


def test_node_graph_decodes_only_changed_pods(monkeypatch) -> None:
    texts = {("ns", "a"): _pod("a", "n1", "sa"), ("ns", "b"): _pod("b", None, "sb")}
    generation = [1]
    graph = NodeGraph(lambda: list(texts.items()), lambda: generation[0])
    assert graph.related("n1", "ns", "secrets", "sa")
    assert not graph.related("n1", "ns", "secrets", "sb")  # b is not bound yet

    decoded: list[str] = []
    real_loads = json.loads
    monkeypatch.setattr(json, "loads", lambda s: decoded.append(s) or real_loads(s))
    texts[("ns", "b")] = _pod("b", "n1", "sb")  # b is bound
    generation[0] += 1
    assert graph.related("n1", "ns", "secrets", "sb")
    assert graph.related("n1", "ns", "pods", "b")
    assert decoded == [texts[("ns", "b")]]  # a was not decoded again

    del texts[("ns", "a")]
    generation[0] += 1
    assert not graph.related("n1", "ns", "secrets", "sa")


def test_batch_period_grows_with_size_up_to_a_cap() -> None:
    from k8snet.lab.controllers.base import MAX_BATCH_PERIOD, batch_period
    assert batch_period(0) == 0  # unknown or empty: at once
    assert batch_period(10) < batch_period(50) < MAX_BATCH_PERIOD
    assert batch_period(100_000) == MAX_BATCH_PERIOD


def test_add_batched_with_no_period_is_add() -> None:
    async def scenario() -> int:
        q = WorkQueue()
        q.add_batched("k", 0)
        await q.get()
        q.add_batched("k", 0)
        return len(q)

    assert asyncio.run(scenario()) == 1
