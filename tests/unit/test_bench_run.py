"""benchmarks/run.py without a lab: sizes, verdicts, summaries and the README table
(the measurements themselves run in tests/lab/test_benchmarks_smoke.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import common
from benchmarks import run as bench

ROOT = Path(__file__).resolve().parents[2]


def test_sizes_are_overridden_one_by_one_and_bad_names_are_refused() -> None:
    sizes = bench.parse_sizes(bench.SMOKE, ["scale_pods=200", "services=10,1000"])
    assert sizes.scale_pods == 200 and sizes.services == (10, 1000) and sizes.big == bench.SMOKE.big
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        bench.parse_sizes(bench.SMOKE, ["pods=3"])
    with pytest.raises(SystemExit, match="whole number"):
        bench.parse_sizes(bench.SMOKE, ["big=many"])


def test_a_goal_is_met_on_its_own_side() -> None:
    lower = bench.Metric("x_s", "x", "s", 1.0)
    higher = bench.Metric("qps_ratio", "q", "×", 0.5, higher_is_better=True)
    assert lower.met(1.0) and not lower.met(1.01)
    assert higher.met(0.5) and not higher.met(0.49)
    assert bench.Metric("y_s", "y", "s").met(3.0) is None
    assert higher.goal_text() == "≥ 0.5 ×"
    assert bench.Metric("y_s", "y", "s", note="SLO ≤ 5 s").goal_text() == "recorded (SLO ≤ 5 s)"


def test_the_summary_is_min_median_max_per_metric_with_the_verdict() -> None:
    row = bench.Row("r", "a row", lambda s, lab: {}, lambda s: "", (bench.Metric("t_s", "time", "s", 2.0),))
    measurements = [{"row": "r", "metric": "t_s", "value": v} for v in (3.0, 1.0, 2.5)] + \
                   [{"row": "r", "metric": "extra_kib", "value": 7.0}]
    summary = bench.summarise([row], measurements)
    assert summary["r.t_s"] | {} == {"row": "r", "metric": "t_s", "min": 1.0, "median": 2.5, "max": 3.0, "n": 3,
                                     "what": "time", "unit": "s", "goal": 2.0, "higher_is_better": False,
                                     "goal_text": "≤ 2 s", "met": False}
    assert summary["r.extra_kib"]["median"] == 7.0 and "met" not in summary["r.extra_kib"]
    assert bench.unit_of("extra_kib") == "KiB" and bench.unit_of("p50_us") == "µs" and bench.unit_of("ratio") == ""
    assert bench.unit_of("bomb_p99_ms") == "ms" and bench.unit_of("lab_svc_qps") == "QPS"


def test_every_row_declares_distinct_metrics_and_conditions_for_both_sizes() -> None:
    for row in bench.ROWS:
        keys = [m.key for m in row.metrics]
        assert keys and len(keys) == len(set(keys)), row.name
        assert row.conditions(bench.Sizes()) and row.conditions(bench.SMOKE)


META = {"date": "2026-12-04T20:00:00+00:00", "params": {"repetitions": 3}, "command": "benchmarks/run.py",
        "software": {"k8snet": {"commit": "0123456789abcdef", "dirty": True}},
        "machine": {"cores": 2, "cpu": "cpu", "memory_gib": 24, "os": "Debian", "kernel": "6.18"},
        "load_average": {"min_1m": 0.5, "max_1m": 1.5}, "conditions": {"r": "2 nodes"}, "errors": [],
        "summary": {"r.t_s": {"row": "r", "metric": "t_s", "min": 1.0, "median": 1.5, "max": 2.0, "what": "time",
                              "unit": "s", "goal_text": "≤ 2 s", "met": True},
                    "r.extra": {"row": "r", "metric": "extra", "min": 1.0, "median": 1.0, "max": 1.0}}}


def test_the_readme_table_is_written_between_the_markers_only(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{bench.BEGIN}\nold\n{bench.END}\nafter\n")
    bench.rewrite_readme(readme, META)
    text = readme.read_text()
    assert text.startswith(f"before\n{bench.BEGIN}\n") and text.endswith(f"{bench.END}\nafter\n")
    assert "| time | 1.5 (1–2) s | ≤ 2 s | met |" in text and "extra" not in text and "old" not in text
    assert "(3 repetitions; k8snet 0123456789 with local changes)" in text and "load average 0.5–1.5" in text
    assert "`sudo .venv/bin/python benchmarks/run.py`" in text
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        bench.rewrite_readme(readme, META)


def test_the_project_readme_has_one_generated_table() -> None:
    text = (ROOT / "README.md").read_text()
    assert text.count(bench.BEGIN) == 1 and text.count(bench.END) == 1
    assert text.index(bench.BEGIN) < text.index(bench.END)


def test_percentiles_interpolate_and_refuse_no_samples() -> None:
    assert common.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert common.percentile([0.0, 10.0], 99) == pytest.approx(9.9)
    with pytest.raises(ValueError):
        common.percentile([], 50)
    assert common.spread([3.0, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "max": 3.0, "n": 3}
