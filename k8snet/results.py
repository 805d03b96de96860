"""Measurement results as tidy CSV plus a provenance JSON beside it.

``data/results/<name>.csv`` holds the rows; ``<name>.json`` says where and how they
were measured (cluster kind and version, proxy mode, nodes, kernel, date, parameters)
and with what software (:func:`software`: k8snet's version and git commit, Python, the
libraries that shape the numbers and plots, kubectl and the cluster's server version),
so a number can always be traced back to its run and reproduced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from .version import __version__

#: The distributions whose versions a result records: the client that talks to the
#: cluster and the libraries that compute and draw the numbers.
PACKAGES = ("kubernetes", "numpy", "pandas", "matplotlib")
#: A provenance record must never hang a notebook on a stuck git or kubectl.
COMMAND_TIMEOUT = 5.0
CHECKOUT = Path(__file__).resolve().parents[1]


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


def _run(argv: list[str]) -> str | None:
    """A command's stdout, or None when it is absent, fails or takes too long."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(checkout: Path = CHECKOUT) -> dict[str, Any]:
    """The commit ``checkout`` is at and whether tracked files (but ``data/results``) differ from it; both None
    when git is absent or ``checkout`` is not the top of a git work tree (an installed
    copy of the package is not a checkout, even inside some other repository)."""
    # safe.directory: under sudo a user may run a checkout another user owns
    git = ["git", "-c", f"safe.directory={checkout}", "-C", str(checkout)]
    top = _run([*git, "rev-parse", "--show-toplevel"])
    commit = _run([*git, "rev-parse", "--verify", "HEAD"]) if top else None
    if not top or not commit or Path(top.strip()).resolve() != checkout.resolve():
        return {"commit": None, "dirty": None}
    # Results written into the checkout are outputs, not changes to what measured them.
    status = _run([*git, "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)data/results"])
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def kubectl_client_version() -> str | None:
    """``kubectl version --client``'s gitVersion (the kubectl first on PATH), or None."""
    out = _run(["kubectl", "version", "--client", "-o", "json"])
    try:
        return json.loads(out)["clientVersion"]["gitVersion"] if out else None
    except (ValueError, KeyError, TypeError):
        return None


def package_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def software(server_version: str | None = None) -> dict[str, Any]:
    """What produced a result: k8snet (version, git commit, dirty), Python, the versions
    of :data:`PACKAGES`, and kubectl's client and the cluster's server version (None
    when there is no kubectl, or no cluster)."""
    return {
        "k8snet": {"version": __version__, **git_state()},
        "python": platform.python_version(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "kubectl": {"client": kubectl_client_version(), "server": server_version},
    }


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
        "software": software(info.get("version")),
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
