"""Every figure renders to PNG with the Agg canvas, at its fixed size, with labelled axes."""

import io
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.style  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from k8snet import analysis, plots  # noqa: E402


def png(fig) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    data = buf.getvalue()
    assert data.startswith(b"\x89PNG")
    return data


def test_distribution_from_counts():
    fig = plots.distribution({"web-a": 98, "web-b": 105, "web-c": 97})
    png(fig)
    ax = fig.axes[0]
    assert "비율" in ax.get_ylabel() and "p =" in ax.get_title() and "n = 300" in ax.get_title()
    assert tuple(fig.get_size_inches()) == (8, 4.5)
    # intervals are error bars, not a band laid over the bars
    assert not [p for p in ax.patches if type(p).__name__ == "Polygon"]
    assert not [c for c in ax.collections if type(c).__name__ == "PolyCollection"]
    assert len(ax.containers) == 3  # the bars, their Wilson error bars, the uniform range's error bars
    # the uniform range is the binomial one: 300 connections over 3 backends
    lo, hi = analysis.uniform_range(300, 3)
    uniform_bars = ax.containers[2].lines[2][0].get_segments()
    assert all(seg[0][1] * 300 == pytest.approx(lo) and seg[1][1] * 300 == pytest.approx(hi) for seg in uniform_bars)


def test_connections_over_time_marks_measured_blocks_with_integer_ticks():
    blocks = pd.DataFrame({"web-a": [201, 130, 81], "web-b": [199, 140, 80], "web-c": [0, 130, 79],
                           "web-d": [0, 0, 160]}, index=pd.Index([0, 400, 800], name="first connection"))
    fig = plots.connections_over_time(blocks, block=400)
    png(fig)
    ax = fig.axes[0]
    assert not ax.collections  # no filled area between the measured blocks
    for line, backend in zip(ax.lines, blocks.columns):
        assert line.get_marker() not in (None, "None", "") and line.get_drawstyle() == "steps-post"
        assert list(line.get_xdata()) == [0, 400, 800] and list(line.get_ydata()) == list(blocks[backend])
    assert all(float(t).is_integer() for t in ax.get_yticks())
    assert "n = 1,200" in ax.get_title() and "[개 / 400]" in ax.get_ylabel()


def latency_frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"form": ["short"] * n + ["external"] * n,
                         "latency_us": np.concatenate([rng.gamma(2, 300, n), rng.gamma(2, 1200, n)])})


def test_latency_figure_with_baseline_log_axes_and_no_p99_below_1000():
    fig = plots.latency(latency_frame(200), baseline_us=120.0)
    png(fig)
    assert len(fig.axes) == 2
    assert all("[µs]" in label for label in (fig.axes[0].get_xlabel(), fig.axes[1].get_ylabel()))
    assert fig.axes[0].get_xscale() == "log" and fig.axes[1].get_yscale() == "log"
    labels = [line.get_label() for line in fig.axes[1].lines]
    assert "p50" in labels and "p90" in labels and "p99" not in labels
    assert "n = 200" in fig._suptitle.get_text()


def test_latency_figure_shows_p99_from_1000_samples():
    fig = plots.latency(latency_frame(1000))
    png(fig)
    assert "p99" in [line.get_label() for line in fig.axes[1].lines]


def test_latency_figure_names_what_was_timed():
    df = pd.DataFrame({"target": ["ClusterIP"] * 5 + ["pod IP"] * 5, "connect_us": [100.0, 110, 120, 130, 140] * 2})
    fig = plots.latency(df, value="connect_us", by="target", title="connect", what="connection")
    png(fig)
    assert fig.axes[0].get_ylabel() == "이 지연 안에 끝난 연결의 비율 [0–1]"
    assert fig.axes[1].get_xlabel() == "target"


def test_korean_labels_render_without_missing_glyphs():
    blocks = pd.DataFrame({"web-a": [3, 2]}, index=[0, 5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" is a UserWarning
        for fig in (plots.distribution({"웹-a": 3, "web-b": 4}), plots.latency(latency_frame(20), baseline_us=100.0),
                    plots.connections_over_time(blocks, block=5)):
            png(fig)


def test_cluster_picture():
    nodes = pd.DataFrame({"name": ["n0", "n1"], "internal_ip": ["172.31.0.2", "172.31.0.3"],
                          "pod_cidr": ["10.244.0.0/24", "10.244.1.0/24"]})
    pods = pd.DataFrame({"name": ["web-a", "web-b", "web-c"], "node": ["n0", "n1", "n1"],
                         "ip": ["10.244.0.5", "10.244.1.5", None], "ready": [True, True, False]})
    services = pd.DataFrame({"name": ["web"], "cluster_ip": ["10.96.0.20"], "ports": ["80/TCP"]})
    endpoints = pd.DataFrame({"service": ["web", "web"], "ip": ["10.244.0.5", "10.244.1.5"],
                              "pod": ["web-a", "web-b"], "ready": [True, False]})
    fig = plots.cluster_picture(nodes, pods, services, endpoints)
    png(fig)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("10.244.0.5" in t for t in texts) and any("Service web" in t for t in texts)
    assert len([c for c in fig.axes[0].get_children() if type(c).__name__ == "Annotation"]) >= 2


def test_style_file_loads():
    with matplotlib.style.context(plots.STYLE):
        assert matplotlib.rcParams["figure.figsize"] == [8.0, 4.5]
