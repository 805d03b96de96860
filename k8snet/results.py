"""Measurement results as tidy CSV plus a provenance JSON beside it.

``data/results/<name>.csv`` holds the rows; ``<name>.json`` says where and how they
were measured (cluster kind and version, proxy mode, nodes, kernel, Python, date,
parameters), so a number can always be traced back to its run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__


def results_dir() -> Path:
    """``$K8SNET_RESULTS_DIR``, else ``data/results`` of the source checkout this package
    lives in (notebooks run with cwd ``notebooks/``), else ``./data/results``."""
    if env := os.environ.get("K8SNET_RESULTS_DIR"):
        return Path(env)
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").exists():
        return checkout / "data" / "results"
    return Path.cwd() / "data" / "results"


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def provenance(name: str, params: dict[str, Any], cluster_info: Any, rows: int) -> dict[str, Any]:
    info = _plain(cluster_info) or {}
    return {
        "name": name,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "rows": rows,
        "params": params,
        "cluster": {key: info.get(key) for key in ("kind", "version", "proxy_mode", "nodes", "server", "context")},
        "node_count": len(info.get("nodes") or []),
        "node_kernels": info.get("kernels"),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "k8snet": __version__,
    }


def save(df: pd.DataFrame, name: str, params: dict[str, Any], cluster_info: Any, *, directory: Path | None = None) -> Path:
    """Writes ``<name>.csv`` and ``<name>.json``; returns the CSV's path.

    ``cluster_info`` is :meth:`k8snet.Cluster.info`'s result (or an equivalent dict).
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"result name {name!r} must be a plain file name")
    folder = directory or results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / f"{name}.csv"
    df.to_csv(csv, index=False)
    meta = provenance(name, params, cluster_info, len(df))
    (folder / f"{name}.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return csv
