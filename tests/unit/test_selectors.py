"""Label and field selectors with the real grammar and error messages."""

from __future__ import annotations

import pytest

from k8snet.lab.api.selectors import match_labels, parse_field_selector, parse_label_selector, selector_string
from k8snet.lab.errors import ApiError

LABELS = {"app": "web", "tier": "front", "n": "7", "example.com/role": "x"}


@pytest.mark.parametrize("text, expected", [
    ("", True),
    ("app=web", True), ("app==web", True), ("app!=web", False), ("app!=db", True),
    ("missing!=x", True),
    ("tier in (front, back)", True), ("tier notin (front)", False), ("missing notin (a)", True),
    ("app", True), ("!app", False), ("!missing", True),
    ("app=web,tier=front", True), ("app=web,tier=back", False),
    ("example.com/role=x", True), ("n>5", True), ("n<5", False),
    ("empty=", False),
])
def test_label_selector_semantics(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is expected


@pytest.mark.parametrize("text", ["a in b", "a=b,", "a b", "a in ()", "a=b c", "n>x", "bad key=1", "a=(x"])
def test_bad_label_selectors_are_400(text: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector(text)
    assert (err.value.code, err.value.reason) == (400, "BadRequest")


def test_label_selector_objects() -> None:
    sel = {"matchLabels": {"run": "x"}, "matchExpressions": [{"key": "a", "operator": "In", "values": ["2", "1"]}]}
    assert selector_string(sel) == "a in (1,2),run=x"
    assert match_labels(sel, {"run": "x", "a": "1"}) and not match_labels(sel, {"run": "x"})
    assert match_labels({}, {"anything": "1"})
    assert not match_labels(None, {"anything": "1"})


POD = {"metadata": {"name": "web", "namespace": "default"},
       "spec": {"nodeName": "n1", "hostNetwork": False}, "status": {"phase": "Running"}}


@pytest.mark.parametrize("text, expected", [
    ("metadata.name=web", True), ("metadata.name==web", True), ("metadata.name!=web", False),
    ("spec.nodeName=n1,status.phase=Running", True), ("spec.nodeName=", False),
    ("spec.hostNetwork=false", True), ("status.podIP=", True),
])
def test_field_selector_semantics(text: str, expected: bool) -> None:
    assert parse_field_selector(text, "pods").matches(POD) is expected


def test_event_field_selectors_and_unknown_labels() -> None:
    event = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "web", "uid": "u1"},
             "source": {"component": "kubelet"}}
    sel = parse_field_selector("involvedObject.uid=u1,involvedObject.name=web,source=kubelet", "events")
    assert sel.matches(event)
    with pytest.raises(ApiError) as err:
        parse_field_selector("spec.nodeName=x", "services")
    assert err.value.message == "field label not supported: spec.nodeName"
    with pytest.raises(ApiError):
        parse_field_selector("metadata.name", "pods")


def test_field_selector_escapes() -> None:
    obj = {"metadata": {"name": "a,b=c"}}
    assert parse_field_selector(r"metadata.name=a\,b\=c", "configmaps").matches(obj)
