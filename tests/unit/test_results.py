"""k8snet.results writes CSV plus provenance JSON."""

import json

import pandas as pd
import pytest

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
    for key in ("date", "kernel", "python", "k8snet"):
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
