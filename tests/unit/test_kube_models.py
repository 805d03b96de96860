"""The shipped model table is the installed client's schema, and it is what the lab reads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from k8snet.lab.api import models


def test_the_shipped_table_is_the_installed_clients() -> None:
    table = json.loads(models.TABLE.read_text())
    assert table["kubernetes"] == models.client_version(), (
        "the kubernetes client changed: run `python -m k8snet.lab.api.models` to rewrite kube_models.json")
    assert table["models"] == models.from_client()


def test_the_lab_reads_the_table_without_importing_the_client() -> None:
    code = ("import sys; from k8snet.lab.api import models, schema, patch; "
            "assert 'containers' in models.fields('V1PodSpec'); "
            "print('kubernetes' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_another_client_version_reads_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    models.model_types.cache_clear()
    monkeypatch.setattr(models, "client_version", lambda: "0.0.0-other")
    try:
        assert models.model_types() == models.from_client()
    finally:
        models.model_types.cache_clear()


def test_field_types_from_the_table() -> None:
    spec = models.fields("V1PodSpec")
    assert spec["containers"] == models.FieldType("list", item=models.FieldType("model", name="V1Container"))
    assert spec["nodeSelector"] == models.FieldType("dict", item=models.FieldType("scalar", name="str"))
    assert models.model_for_kind("v1", "Event") == "CoreV1Event"
    assert models.model_for_kind("example.com/v1", "Widget") is None
