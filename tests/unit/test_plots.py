"""Every figure renders to PNG with the Agg canvas, at its fixed size, with labelled axes."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.style  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from k8snet import plots  # noqa: E402


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
    assert "share" in ax.get_ylabel() and "p =" in ax.get_title()
    assert tuple(fig.get_size_inches()) == (8, 4.5)


def test_latency_figure_with_baseline():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"form": ["short"] * 50 + ["external"] * 50,
                       "latency_us": np.concatenate([rng.gamma(2, 300, 50), rng.gamma(2, 1200, 50)])})
    fig = plots.latency(df, baseline_us=120.0)
    png(fig)
    assert len(fig.axes) == 2
    assert all("[µs]" in label for label in (fig.axes[0].get_xlabel(), fig.axes[1].get_ylabel()))



def test_latency_figure_names_what_was_timed():
    df = pd.DataFrame({"target": ["ClusterIP"] * 5 + ["pod IP"] * 5, "connect_us": [100.0, 110, 120, 130, 140] * 2})
    fig = plots.latency(df, value="connect_us", by="target", title="connect", what="connection")
    png(fig)
    assert fig.axes[0].get_ylabel() == "fraction of connections ≤ latency"
    assert fig.axes[1].get_xlabel() == "connection target"

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
