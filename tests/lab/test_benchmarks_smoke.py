"""The benchmark command at smoke sizes (issue 12): every row but the notebooks (nbval
runs them already) measured once on labs of its own, the CSV and provenance JSON it
writes, and the README table generated from them. Values are checked for sense, never
against a time: a shared CI machine makes timings noise."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import run as bench

ROOT = Path(__file__).resolve().parents[2]
ROWS = ("lab", "proxy", "study", "scale", "dns", "isolation")
# include the kernel's part, read machine-wide from /proc/meminfo: other work on a shared
# machine freeing memory meanwhile can make them negative at smoke sizes
MACHINE_WIDE = {"memory_per_pod_kib", "memory_pss_per_pod_kib"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory, state_root: Path) -> tuple[Path, str, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("bench")
    lab = os.environ.get("K8SNET_BENCH_LAB") or f"bs{os.getpid() % 100000}"  # brought up and down row by row
    env = {**os.environ, "PYTHONPATH": str(ROOT), "K8SNET_STATE_ROOT": str(state_root), "K8SNET_MERGE_KUBECONFIG": "0"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--rows", ",".join(ROWS),
                           "--lab", lab, "--out", str(out)], env=env, capture_output=True, text=True, timeout=900)
    return out, lab, done


def test_the_smoke_run_measures_every_row_and_leaves_no_lab(smoke) -> None:
    out, lab, done = smoke
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for row in ROWS:
        assert f"] {row} (" in done.stdout  # one progress line per row and repetition
    assert "load average (1 min): start" in done.stdout
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert f"k8snet-{lab}-" not in netns


def test_the_csv_has_every_declared_metric_once_with_sane_values(smoke) -> None:
    out, _, _ = smoke
    with open(out / "bench.csv", newline="") as f:
        lines = list(csv.DictReader(f))
    assert lines and set(lines[0]) == {"repetition", "row", "metric", "value", "unit", "load_1m"}
    got = {(line["row"], line["metric"]): float(line["value"]) for line in lines}
    for row in ROWS:
        for metric in bench.BY_NAME[row].metrics:
            value = got[(row, metric.key)]
            assert math.isfinite(value) and (value > 0 or metric.key in MACHINE_WIDE), (row, metric.key, value)
    assert all(float(line["load_1m"]) >= 0 and line["repetition"] == "0" for line in lines)
    # the scale row spread its pods over every node and counted memory that is plausible for a pod
    assert got[("scale", "pods")] == bench.SMOKE.scale_pods
    assert got[("scale", "nodes_used")] == bench.SMOKE.scale_nodes
    assert 100 < got[("scale", "rss_per_pod_kib")] < 512 * 1024  # the lab's own processes: not machine-wide
    assert 0 < got[("scale", "pss_per_pod_kib")] <= got[("scale", "rss_per_pod_kib")]
    assert got[("scale", "memory_per_pod_kib")] == pytest.approx(
        got[("scale", "rss_per_pod_kib")] + got[("scale", "kernel_per_pod_kib")])
    assert got[("scale", "processes_per_pod")] >= 1  # at least the container's own process
    # both proxy modes side by side, the ratio from the same run's two sizes
    for mode in ("iptables", "nftables"):
        assert got[("proxy", f"{mode}_p50_ratio")] == pytest.approx(
            got[("proxy", f"{mode}_p50_us")] / got[("proxy", f"{mode}_p50_us_fewest")])
        assert got[("proxy", f"{mode}_direct_p50_us")] > 0
    assert got[("lab", "up_to_ready_s")] < got[("lab", "up_to_reachable_s")]
    # DNS: the ratio of the same run's two throughputs; no server answered more than the fixed rate offered
    assert got[("dns", "qps_ratio")] == pytest.approx(got[("dns", "lab_pod_qps")] / got[("dns", "dnsmasq_qps")])
    for target in ("lab_svc", "lab_pod", "dnsmasq"):
        assert 0 < got[("dns", f"{target}_p50_ms")] <= got[("dns", f"{target}_p99_ms")]
        assert 0 < got[("dns", f"{target}_fixed_qps")] <= bench.SMOKE.dns_rate * 1.05
    # isolation: /healthz sampled in both phases, the bomb answered (the row fails unless refused with 400)
    for name in ("healthz_idle", "healthz_load", "bomb"):
        assert got[("isolation", f"{name}_n")] >= 1
        assert 0 < got[("isolation", f"{name}_p50_ms")] <= got[("isolation", f"{name}_p99_ms")]


def test_the_json_records_provenance_and_a_verdict_per_goal(smoke) -> None:
    out, _, _ = smoke
    meta = json.loads((out / "bench.json").read_text())
    assert meta["errors"] == []
    assert meta["params"]["repetitions"] == 1 and meta["params"]["sizes"]["scale_pods"] == bench.SMOKE.scale_pods
    assert meta["machine"]["cores"] == os.cpu_count() and meta["machine"]["kernel"]
    assert meta["software"]["python"] and "kubernetes" in meta["software"]["packages"]
    assert set(meta["load_average"]["start"]) == {"1m", "5m", "15m"}
    assert set(meta["conditions"]) == set(ROWS)
    for row in ROWS:
        for metric in bench.BY_NAME[row].metrics:
            s = meta["summary"][f"{row}.{metric.key}"]
            assert s["min"] <= s["median"] <= s["max"] and s["n"] == 1
            assert s["met"] is (None if metric.goal is None else metric.met(s["median"]))


def test_the_readme_table_is_generated_from_the_run(smoke, tmp_path: Path) -> None:
    out, _, _ = smoke
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{bench.BEGIN}\nold table\n{bench.END}\n\nafter\n")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--out", str(out), "--readme",
                           str(readme)], env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = readme.read_text()
    assert "old table" not in text and text.endswith("after\n")
    for row in ROWS:
        for metric in bench.BY_NAME[row].metrics:
            assert f"| {metric.what} |" in text
    assert "--smoke" in text  # the command that re-measures these numbers
