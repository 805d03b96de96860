"""clone: the API server's deep copy of JSON-like objects."""

from __future__ import annotations

from k8snet.lab.api.clone import clone


def test_clone_copies_every_container_and_keeps_values() -> None:
    obj = {"metadata": {"labels": {"a": "b"}}, "spec": {"ports": [{"port": 80}], "x": None, "ok": True, "n": 1.5}}
    out = clone(obj)
    assert out == obj
    out["metadata"]["labels"]["a"] = "changed"
    out["spec"]["ports"][0]["port"] = 81
    out["spec"]["ports"].append({})
    assert obj == {"metadata": {"labels": {"a": "b"}}, "spec": {"ports": [{"port": 80}], "x": None, "ok": True, "n": 1.5}}


def test_clone_of_scalars_is_the_value() -> None:
    assert [clone(v) for v in ("s", 1, None, False)] == ["s", 1, None, False]
