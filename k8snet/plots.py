"""Figures for the notebooks: fixed size, labelled axes with units, Okabe-Ito colours.

Every function builds a :class:`matplotlib.figure.Figure` directly (not through
pyplot), so a notebook cell that returns it shows it exactly once and tests can
render it with the Agg canvas. The packaged style is ``k8snet/k8snet.mplstyle``;
``plt.style.use(k8snet.plots.STYLE)`` applies it to a learner's own plots too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from scipy import stats

from . import analysis

STYLE = str(Path(__file__).with_name("k8snet.mplstyle"))
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def _figure(**kwargs: Any) -> Figure:
    with mpl.style.context(STYLE):
        return Figure(**kwargs)


def _counts(data: Any) -> dict[str, int]:
    if hasattr(data, "summary") and "counts" in data.summary:
        return dict(data.summary["counts"])
    if isinstance(data, Mapping):
        return dict(data)
    if isinstance(data, pd.DataFrame) and {"backend", "count"} <= set(data.columns):
        return dict(zip(data["backend"], data["count"]))
    raise TypeError("pass a Measurement from lb_distribution, a {backend: count} dict or a shares DataFrame")


def distribution(data: Any, title: str | None = None, confidence: float = 0.95) -> Figure:
    """Share of connections per backend with its Wilson interval; the line is the
    uniform share 1/k and the band where a backend's share falls ``confidence`` of the
    time when the spread *is* uniform (binomial)."""
    counts = _counts(data)
    table = analysis.shares(counts, confidence)
    n, k = int(table["count"].sum()), len(table)
    with mpl.style.context(STYLE):
        fig = Figure(figsize=(8, 4.5))
        ax = fig.add_subplot()
        x = np.arange(k)
        err = np.vstack([table["share"] - table["low"], table["high"] - table["share"]])
        ax.bar(x, table["share"], color=OKABE_ITO[0], yerr=err, capsize=4, label=f"observed ({confidence:.0%} interval)")
        if k and n:
            p = 1 / k
            lo, hi = (stats.binom.ppf([(1 - confidence) / 2, (1 + confidence) / 2], n, p) / n)
            ax.axhspan(lo, hi, color=OKABE_ITO[1], alpha=0.2, label=f"uniform, {confidence:.0%} range")
            ax.axhline(p, color=OKABE_ITO[1], linestyle="--", label=f"uniform share 1/{k}")
        ax.set_xticks(x, [str(b) for b in table["backend"]], rotation=20, ha="right")
        ax.set_xlabel("backend pod")
        ax.set_ylabel("share of connections [fraction]")
        ax.set_ylim(0, max(1.05 * float(table["high"].max()) if k else 1, 2 / k if k else 1))
        if title is None and k >= 2 and n:
            chi = analysis.chi_square_uniform(counts)
            title = f"{n} connections over {k} backends — χ² = {chi.statistic:.2f}, p = {chi.p_value:.3g}"
        ax.set_title(title or "")
        ax.legend(loc="upper right")
    return fig


def latency(df: pd.DataFrame, value: str = "latency_us", by: str = "form", baseline_us: float | None = None,
            title: str = "DNS lookup latency by name form", what: str = "lookup") -> Figure:
    """Left: the empirical CDF per group on a log axis; right: p50/p90/p99 per group.
    ``baseline_us`` (e.g. the raw UDP round trip) is drawn as a reference line;
    ``what`` names one sample in the axis labels ("lookup", "connection")."""
    groups = list(dict.fromkeys(df[by]))
    pct = analysis.percentiles(df, value, by=by)
    with mpl.style.context(STYLE):
        fig = Figure(figsize=(10, 4.5))
        cdf_ax, bar_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        for i, group in enumerate(groups):
            e = analysis.ecdf(df.loc[df[by] == group, value])
            cdf_ax.step(e["x"], e["p"], where="post", color=OKABE_ITO[i % 8], label=str(group))
        cdf_ax.set_xscale("log")
        cdf_ax.set_xlabel("latency [µs] (log scale)")
        cdf_ax.set_ylabel(f"fraction of {what}s ≤ latency")
        cdf_ax.set_ylim(0, 1.02)
        cdf_ax.grid(True, axis="x", which="both", alpha=0.2)
        quantiles = [c for c in pct.columns if c.startswith("p")]
        width = 0.8 / max(len(quantiles), 1)
        x = np.arange(len(groups))
        for j, q in enumerate(quantiles):
            bar_ax.bar(x + (j - (len(quantiles) - 1) / 2) * width, pct.loc[groups, q], width,
                       color=OKABE_ITO[j % 8], label=q)
        bar_ax.set_xticks(x, [str(g) for g in groups], rotation=20, ha="right")
        bar_ax.set_xlabel(f"{what} {by}")
        bar_ax.set_ylabel("latency [µs]")
        for ax in (cdf_ax, bar_ax) if baseline_us else ():
            kwargs = dict(color="black", linestyle=":", label=f"raw UDP RTT {baseline_us:.0f} µs")
            (ax.axvline if ax is cdf_ax else ax.axhline)(baseline_us, **kwargs)
        cdf_ax.legend(loc="upper left")
        bar_ax.legend(loc="upper left")
        fig.suptitle(title)
    return fig


def cluster_picture(nodes: pd.DataFrame, pods: pd.DataFrame, services: pd.DataFrame | None = None,
                    endpoints: pd.DataFrame | None = None, title: str = "Nodes, pods and Services") -> Figure:
    """Nodes as boxes with their pods (name, IP) inside; Services above with an
    arrow to each ready endpoint (dashed when not ready)."""
    services = services if services is not None else pd.DataFrame(columns=["name", "cluster_ip", "ports"])
    endpoints = endpoints if endpoints is not None else pd.DataFrame(columns=["service", "ip", "pod", "ready"])
    node_names = list(nodes["name"])
    per_node = {n: pods[pods["node"] == n].sort_values("name") for n in node_names}
    rows = max([len(p) for p in per_node.values()] + [1])
    with mpl.style.context(STYLE):
        fig = Figure(figsize=(10, 6))
        ax = fig.add_subplot()
        ax.set_axis_off()
        width, gap = 1.0, 0.15
        pod_h = min(0.12, 0.6 / rows)
        where: dict[str, tuple[float, float]] = {}
        for i, node in enumerate(node_names):
            x0 = i * (width + gap)
            row = nodes[nodes["name"] == node].iloc[0]
            ax.add_patch(FancyBboxPatch((x0, 0), width, 0.75, boxstyle="round,pad=0.01", fc="#f2f2f2", ec="#555555"))
            label = f"{node}\n{row.get('internal_ip') or ''}  pods {row.get('pod_cidr') or ''}"
            ax.text(x0 + width / 2, 0.72, label, ha="center", va="top", fontsize=9)
            for j, (_, pod) in enumerate(per_node[node].iterrows()):
                y = 0.6 - (j + 1) * (pod_h + 0.02)
                colour = OKABE_ITO[2] if pod.get("ready") else OKABE_ITO[3]
                ax.add_patch(FancyBboxPatch((x0 + 0.05, y), width - 0.1, pod_h, boxstyle="round,pad=0.005",
                                            fc="white", ec=colour, lw=1.5))
                ax.text(x0 + width / 2, y + pod_h / 2, f"{pod['name']}\n{pod.get('ip') or 'no IP'}",
                        ha="center", va="center", fontsize=7)
                where[str(pod["name"])] = (x0 + width / 2, y + pod_h)
                if pod.get("ip"):
                    where.setdefault(str(pod["ip"]), (x0 + width / 2, y + pod_h))
        total = max(len(node_names), 1) * (width + gap) - gap
        svc_list = list(services.itertuples(index=False))
        for k, svc in enumerate(svc_list):
            sx = (k + 0.5) * total / len(svc_list)
            ax.text(sx, 1.0, f"Service {svc.name}\n{svc.cluster_ip}  {svc.ports}", ha="center", va="center",
                    fontsize=9, bbox={"boxstyle": "round", "fc": "white", "ec": OKABE_ITO[0], "lw": 1.5})
            for ep in endpoints[endpoints["service"] == svc.name].itertuples(index=False):
                target = where.get(str(ep.pod)) or where.get(str(ep.ip))
                if target is None:
                    continue
                ax.annotate("", xy=target, xytext=(sx, 0.94),
                            arrowprops={"arrowstyle": "->", "color": OKABE_ITO[0], "lw": 1,
                                        "linestyle": "-" if ep.ready else "--"})
        ax.set_xlim(-0.05, total + 0.05)
        ax.set_ylim(-0.05, 1.1)
        ax.set_title(title)
    return fig


def cluster_picture_of(cluster: Any, namespace: str = "default") -> Figure:
    """:func:`cluster_picture` for a namespace of a connected :class:`~k8snet.Cluster`."""
    return cluster_picture(cluster.nodes(), cluster.pods(namespace), cluster.services(namespace),
                           cluster.endpoints(namespace), title=f"Nodes, pods and Services in {namespace}")
