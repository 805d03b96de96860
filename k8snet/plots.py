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
from matplotlib.ticker import MaxNLocator

from . import analysis

STYLE = str(Path(__file__).with_name("k8snet.mplstyle"))
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


class StyledFigure(Figure):
    """A Figure that draws under the packaged style. Fonts are looked up when the
    figure is drawn, not when its texts are made: outside the style a text in the
    generic "sans-serif" family would fall back to DejaVu Sans, which has no Hangul."""

    def draw(self, renderer: Any) -> None:
        with mpl.style.context(STYLE):
            super().draw(renderer)


def _figure(**kwargs: Any) -> Figure:
    with mpl.style.context(STYLE):
        return StyledFigure(**kwargs)


def _counts(data: Any) -> dict[str, int]:
    if hasattr(data, "summary") and "counts" in data.summary:
        return dict(data.summary["counts"])
    if isinstance(data, Mapping):
        return dict(data)
    if isinstance(data, pd.DataFrame) and {"backend", "count"} <= set(data.columns):
        return dict(zip(data["backend"], data["count"]))
    raise TypeError("pass a Measurement from lb_distribution, a {backend: count} dict or a shares DataFrame")


def distribution(data: Any, title: str | None = None, confidence: float = 0.95) -> Figure:
    """Share of connections per backend with its Wilson interval as error bars; beside
    each bar, the range where a backend's share falls ``confidence`` of the time when
    the spread *is* uniform (binomial), also as an error bar, around the dashed line 1/k.
    The title says what was measured, n, k and the chi-square p-value."""
    counts = _counts(data)
    table = analysis.shares(counts, confidence)
    n, k = int(table["count"].sum()), len(table)
    with mpl.style.context(STYLE):
        fig = StyledFigure(figsize=(8, 4.5))
        ax = fig.add_subplot()
        x = np.arange(k)
        err = np.vstack([table["share"] - table["low"], table["high"] - table["share"]])
        ax.bar(x - 0.15, table["share"], 0.5, color=OKABE_ITO[0], label="관측 비율")
        ax.errorbar(x - 0.15, table["share"], yerr=err, fmt="none", ecolor="black", capsize=4,
                    label=f"관측 비율의 {confidence:.0%} 구간 (Wilson)")
        if k and n:
            p = 1 / k
            lo, hi = (np.array(analysis.uniform_range(n, k, confidence)) / n)
            ax.axhline(p, color=OKABE_ITO[1], linestyle="--", label=f"균등 비율 1/{k}")
            ax.errorbar(x + 0.25, np.full(k, p), yerr=[np.full(k, p - lo), np.full(k, hi - p)], fmt="none",
                        ecolor=OKABE_ITO[3], elinewidth=2, capsize=5, label=f"균등일 때 {confidence:.0%} 범위")
        ax.set_xticks(x, [str(b) for b in table["backend"]], rotation=20, ha="right")
        ax.set_xlabel("백엔드 Pod")
        ax.set_ylabel("연결 비율 (share) [0–1]")
        ax.set_ylim(0, max(1.05 * float(table["high"].max()) if k else 1, 2 / k if k else 1))
        if title is None:
            title = f"백엔드별 새 연결 비율 — n = {n:,} 연결, k = {k}"
            if k >= 2 and n:
                chi = analysis.chi_square_uniform(counts)
                title += f", $\\chi^2$ = {chi.statistic:.2f}, p = {chi.p_value:.3g}"
        ax.set_title(title)
        ax.legend(loc="upper right", fontsize=9)
    return fig


def connections_over_time(blocks: pd.DataFrame, block: int, title: str | None = None) -> Figure:
    """Connections per backend in consecutive blocks of ``block`` connections (rows:
    the first connection of each block, columns: backends, values: counts), drawn as
    markers at the blocks measured joined by steps — nothing between them is invented.
    Counts get integer ticks."""
    n = int(blocks.to_numpy().sum())
    with mpl.style.context(STYLE):
        fig = StyledFigure(figsize=(9, 4.5))
        ax = fig.add_subplot()
        markers = "osD^vP*X"
        for i, backend in enumerate(blocks.columns):
            ax.step(blocks.index, blocks[backend], where="post", marker=markers[i % len(markers)],
                    color=OKABE_ITO[i % 8], label=str(backend))
        ax.set_xlabel(f"연결 번호 (블록의 첫 연결, 블록 = {block:,} 연결)")
        ax.set_ylabel(f"블록당 연결 수 [개 / {block:,}]")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
        ax.set_title(title or f"블록별로 연결을 받은 백엔드 — n = {n:,} 연결")
        ax.legend(title="백엔드 Pod", loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return fig


#: Korean names for what one latency sample is, for the axis labels
_WHAT = {"lookup": "조회", "connection": "연결"}


def latency(df: pd.DataFrame, value: str = "latency_us", by: str = "form", baseline_us: float | None = None,
            title: str = "이름 형태별 DNS 조회 지연", what: str = "lookup") -> Figure:
    """Left: the empirical CDF per group on a log axis; right: the percentiles per group
    as markers on a log axis (p99 only from 1,000 samples, see
    :func:`k8snet.analysis.percentiles`), so the medians stay readable next to a tail
    ten times longer. ``baseline_us`` (e.g. the raw UDP round trip) is drawn as a
    reference line; ``what`` names one sample ("lookup", "connection"). The title gets
    the sample count per group appended."""
    groups = list(dict.fromkeys(df[by]))
    pct = analysis.percentiles(df, value, by=by)
    noun = _WHAT.get(what, what)
    sizes = sorted({int(pct.loc[g, "n"]) for g in groups})
    n_text = f"n = {sizes[0]:,}" if len(sizes) == 1 else f"n = {sizes[0]:,}–{sizes[-1]:,}"
    with mpl.style.context(STYLE):
        fig = StyledFigure(figsize=(10, 4.5))
        cdf_ax, pct_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        for i, group in enumerate(groups):
            e = analysis.ecdf(df.loc[df[by] == group, value])
            cdf_ax.step(e["x"], e["p"], where="post", color=OKABE_ITO[i % 8], label=str(group))
        cdf_ax.set_xscale("log")
        cdf_ax.set_xlabel("지연 [µs] (로그 축)")
        cdf_ax.set_ylabel(f"이 지연 안에 끝난 {noun}의 비율 [0–1]")
        cdf_ax.set_ylim(0, 1.02)
        cdf_ax.grid(True, axis="x", which="both", alpha=0.2)
        cdf_ax.set_title(f"누적 분포 (CDF), {by}별 {n_text}", fontsize=11)
        quantiles = [c for c in pct.columns if c.startswith("p")]
        x = np.arange(len(groups))
        markers = "o^sD"
        for j, q in enumerate(quantiles):
            offset = (j - (len(quantiles) - 1) / 2) * 0.15
            pct_ax.plot(x + offset, pct.loc[groups, q], linestyle="none", marker=markers[j % 4], markersize=7,
                        color=OKABE_ITO[j % 8], label=q)
        pct_ax.set_yscale("log")
        pct_ax.set_xticks(x, [str(g) for g in groups], rotation=20, ha="right")
        pct_ax.set_xlim(-0.5, len(groups) - 0.5)
        pct_ax.set_xlabel(f"{by}")
        pct_ax.set_ylabel("지연 [µs] (로그 축)")
        pct_ax.grid(True, axis="y", which="both", alpha=0.2)
        pct_ax.set_title("백분위수 (p99는 n ≥ 1,000일 때만)", fontsize=11)
        for ax in (cdf_ax, pct_ax) if baseline_us else ():
            kwargs = dict(color="black", linestyle=":", label=f"UDP 왕복 {baseline_us:.0f} µs")
            (ax.axvline if ax is cdf_ax else ax.axhline)(baseline_us, **kwargs)
        cdf_ax.legend(loc="lower right", fontsize=9)
        pct_ax.legend(loc="upper left", fontsize=9)
        fig.suptitle(f"{title} — {n_text}")
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
        fig = StyledFigure(figsize=(10, 6))
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
