"""k8snet.results writes CSV plus provenance JSON."""

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

import k8snet
from k8snet import results
from k8snet.cluster import ClusterInfo


def test_save_writes_csv_and_provenance(tmp_path):
    df = pd.DataFrame({"backend": ["a", "b"], "count": [3, 4]})
    info = ClusterInfo("k8snet-lab", "v1.32.0", ["n0", "n1"], "iptables", "https://127.0.0.1:1", None, ["6.1.0"])
    path = results.save(df, "lb-test", {"connections": 7}, info, directory=tmp_path)
    assert path == tmp_path / "lb-test.csv"
    assert pd.read_csv(path).equals(df)
    meta = json.loads((tmp_path / "lb-test.json").read_text())
    assert meta["params"] == {"connections": 7}
    assert meta["cluster"]["kind"] == "k8snet-lab" and meta["cluster"]["proxy_mode"] == "iptables"
    assert meta["node_count"] == 2 and meta["node_kernels"] == ["6.1.0"] and meta["rows"] == 2
    for key in ("date", "kernel", "software"):
        assert meta[key]


def test_save_accepts_a_dict_and_env_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("K8SNET_RESULTS_DIR", str(tmp_path / "out"))
    path = results.save(pd.DataFrame({"x": [1]}), "r", {}, {"kind": "kind", "nodes": ["a"]})
    assert path.parent == tmp_path / "out"
    assert json.loads(path.with_suffix(".json").read_text())["cluster"]["kind"] == "kind"


@pytest.mark.parametrize("name", ["", "../x", ".hidden"])
def test_save_rejects_path_like_names(tmp_path, name):
    with pytest.raises(ValueError):
        results.save(pd.DataFrame(), name, {}, {}, directory=tmp_path)


# -- provenance: the software behind a result ------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def fake_program(folder: Path, name: str, script: str) -> None:
    """An executable ``name`` in ``folder`` that runs the shell ``script``."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


def test_provenance_names_the_software(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    fake_program(bin_dir, "kubectl", """[ "$*" = "version --client -o json" ] || exit 2
echo '{"clientVersion": {"major": "1", "minor": "37", "gitVersion": "v1.37.1"}, "kustomizeVersion": "v5"}'""")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    info = ClusterInfo("k8snet-lab", "v1.37.0", ["n0"], "iptables", "https://127.0.0.1:1", None, [])
    path = results.save(pd.DataFrame({"x": [1]}), "sw", {}, info, directory=tmp_path)
    sw = json.loads(path.with_suffix(".json").read_text())["software"]
    assert sw["python"] == platform.python_version()
    assert sw["packages"] == {name: importlib.metadata.version(name)
                              for name in ("kubernetes", "numpy", "pandas", "matplotlib")}
    assert sw["kubectl"] == {"client": "v1.37.1", "server": "v1.37.0"}
    assert sw["k8snet"]["version"] == k8snet.__version__
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a checkout (CI's fresh clone is one)
        assert sw["k8snet"]["commit"] == head.stdout.strip() and isinstance(sw["k8snet"]["dirty"], bool)
    else:  # e.g. a source tarball: null, not an exception
        assert sw["k8snet"]["commit"] is None and sw["k8snet"]["dirty"] is None


def test_no_git_no_kubectl_no_cluster_give_nulls(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    path = results.save(pd.DataFrame({"x": [1]}), "bare", {}, {}, directory=tmp_path)
    sw = json.loads(path.with_suffix(".json").read_text())["software"]
    assert sw["k8snet"] == {"version": k8snet.__version__, "commit": None, "dirty": None}
    assert sw["kubectl"] == {"client": None, "server": None}


@pytest.mark.parametrize("script", ["exit 1", "echo not json", "echo '{\"serverVersion\": {}}'", "exec sleep 30"])
def test_a_broken_or_stuck_kubectl_gives_null(tmp_path, monkeypatch, script):
    fake_program(tmp_path / "bin", "kubectl", script)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(results, "COMMAND_TIMEOUT", 0.5)
    t0 = time.monotonic()
    assert results.kubectl_client_version() is None
    assert time.monotonic() - t0 < 5


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=cwd, check=True, capture_output=True)


def test_git_state_of_a_checkout_a_subfolder_and_no_repository(tmp_path):
    if shutil.which("git") is None:  # no git: the null case, which the test above covers
        pytest.skip("git is not installed")
    assert results.git_state(tmp_path) == {"commit": None, "dirty": None}  # not a repository
    git(tmp_path, "init", "-q")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "data" / "results").mkdir(parents=True)
    (tmp_path / "data" / "results" / "r.csv").write_text("a\n1\n")
    git(tmp_path, "add", "pkg/a.py", "data/results/r.csv")
    git(tmp_path, "commit", "-q", "-m", "one")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert results.git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "untracked.txt").write_text("not part of the commit, not a change to it\n")
    assert results.git_state(tmp_path)["dirty"] is False
    (tmp_path / "data" / "results" / "r.csv").write_text("a\n2\n")  # a measurement's own output
    assert results.git_state(tmp_path)["dirty"] is False
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert results.git_state(tmp_path) == {"commit": head, "dirty": True}
    # a package installed inside some other repository is not that repository's checkout
    assert results.git_state(tmp_path / "pkg") == {"commit": None, "dirty": None}


def test_a_repository_without_commits_gives_null(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git(tmp_path, "init", "-q")
    assert results.git_state(tmp_path) == {"commit": None, "dirty": None}
