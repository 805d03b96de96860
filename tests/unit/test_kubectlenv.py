"""A notebook's kubectl: one context of the connecting kubeconfig, the namespace set."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from k8snet.kubectlenv import kubeconfig_paths, kubectl_namespace, merged, single_context


def _write(path: Path, name: str, *, current: str = "", ca: str = "ca.crt") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": name, "cluster": {"server": f"https://{name}:6443", "certificate-authority": ca}}],
        "users": [{"name": f"{name}-admin", "user": {"token": f"t-{name}"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin", "namespace": "default"}}],
    }))
    return path


def test_first_file_wins_and_relative_paths_become_absolute(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", "one", current="one")
    (tmp_path / "b").mkdir()
    b = _write(tmp_path / "b" / "config", "one", current="two", ca="/abs/ca.crt")
    doc = merged([a, b, tmp_path / "missing"])
    assert doc["current-context"] == "one"
    assert doc["clusters"]["one"]["certificate-authority"] == str(tmp_path / "ca.crt")


def test_single_context_sets_the_namespace_and_keeps_only_that_context(tmp_path: Path) -> None:
    doc = merged([_write(tmp_path / "a", "one", current="one"), _write(tmp_path / "b", "two")])
    out = single_context(doc, "two", "study-abc")
    assert out["current-context"] == "two"
    assert [c["name"] for c in out["contexts"]] == ["two"] and [c["name"] for c in out["clusters"]] == ["two"]
    assert out["contexts"][0]["context"]["namespace"] == "study-abc"
    assert single_context(doc, None, "x")["current-context"] == "one"
    with pytest.raises(ValueError, match="no context 'three'"):
        single_context(doc, "three", "x")


def test_kubectl_namespace_points_kubeconfig_there_and_restores_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(_write(tmp_path / "a", "one", current="one")))
    with kubectl_namespace("study-1") as path:
        assert os.environ["KUBECONFIG"] == str(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert yaml.safe_load(path.read_text())["contexts"][0]["context"]["namespace"] == "study-1"
    assert os.environ["KUBECONFIG"] == str(tmp_path / "a")
    assert not path.exists() and not path.parent.exists()


def test_default_paths_follow_kubectl(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path}/a{os.pathsep}{tmp_path}/b")
    assert kubeconfig_paths() == [tmp_path / "a", tmp_path / "b"]
    assert kubeconfig_paths(tmp_path / "c") == [tmp_path / "c"]
    monkeypatch.delenv("KUBECONFIG")
    assert kubeconfig_paths() == [Path.home() / ".kube" / "config"]
