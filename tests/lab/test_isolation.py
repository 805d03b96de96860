"""Large request bodies are decoded off the supervisor's event loop
(:mod:`k8snet.lab.api.bodyworkers`): /healthz keeps answering while they are
processed, and a refusal from a worker is the same Status as an inline one.

Speed figures belong in benchmarks/bench_isolation.py; the bounds here are generous
so a loaded CI machine does not make the tests flaky."""

from __future__ import annotations

import http.client
import threading
import time

import yaml

from tests.lab.test_bad_input import Raw, _assert_status, raw  # noqa: F401  (fixture)
from tests.unit.test_bad_input_corpus import ALIAS_BOMB

PAD = "#" + "x" * 20_000 + "\n"  # a YAML comment: the body is over every inline-decoding limit


def _healthz(client: Raw) -> int:
    conn = http.client.HTTPSConnection(client.host, int(client.port), context=client.ctx, timeout=30)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _large_yaml_configmap(name: str) -> str:
    """~0.9 MiB of YAML: 0.6 MiB of data (a ConfigMap holds up to 1 MiB) and an unknown
    field. PyYAML takes about a second of CPU over it."""
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                           "data": {f"key-{i:04d}": f"{name}-{i}" * 60 for i in range(1000)},
                           "padding": "p" * 300_000})


def test_healthz_answers_while_large_yaml_bodies_are_decoded(raw, namespace):  # noqa: F811
    bodies = {f"big-{i}": _large_yaml_configmap(f"big-{i}") for i in range(4)}
    codes: dict[str, int] = {}

    def create(name: str) -> None:
        code, _ = raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", bodies[name],
                              content_type="application/yaml")
        codes[name] = code

    writers = [threading.Thread(target=create, args=(name,)) for name in bodies]
    started = time.monotonic()
    for w in writers:
        w.start()
    answers: list[tuple[int, float]] = []
    while any(w.is_alive() for w in writers):
        t0 = time.monotonic()
        answers.append((_healthz(raw), time.monotonic() - t0))
        time.sleep(0.02)
    for w in writers:
        w.join()
    busy = time.monotonic() - started
    assert codes == {name: 201 for name in bodies}, codes
    assert answers, "the large bodies were done before /healthz was asked once"
    assert all(code == 200 for code, _ in answers)
    # Decoded in the loop, four such bodies held /healthz for seconds; in the workers
    # it answers in milliseconds (bench_isolation.py). 1 s: room for a loaded machine.
    slowest = max(seconds for _, seconds in answers)
    assert slowest < 1.0, (slowest, busy, len(answers))
    for name in bodies:
        code, obj = raw.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        assert code == 200 and obj["data"]["key-0999"] == f"{name}-999" * 60


def test_a_large_alias_bomb_is_refused_by_the_worker_as_inline(raw, namespace):  # noqa: F811
    for body in (ALIAS_BOMB, PAD + ALIAS_BOMB):  # inline, then in a worker
        code, status = raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body,
                                   content_type="application/yaml")
        _assert_status(code, status, 400, "BadRequest")
        assert "excessive aliasing" in status["message"]
    code, _ = raw.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/lol")
    assert code == 404


def test_a_large_malformed_json_body_is_the_same_400(raw, namespace):  # noqa: F811
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    small = raw.request("POST", path, '{"metadata": ')
    large = raw.request("POST", path, " " * 20_000 + '{"metadata": ')
    _assert_status(*small, 400, "BadRequest")
    assert large[0] == small[0] and large[1]["message"].split(": ")[:2] == small[1]["message"].split(": ")[:2]
