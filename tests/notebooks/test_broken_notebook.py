"""A notebook broken on purpose fails nbval, and the failure says what is wrong.

The copy of 02-services exposes the Deployment with a selector that matches no pod; nbval
must fail the cell that waits for the Service, with the helper's explanation in the report.
Needs a cluster: the running lab ``$K8SNET_LAB`` (default ``k8snet``) or ``$K8SNET_CONTEXT``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "02-services.ipynb"
SANITIZE = Path(__file__).with_name("sanitize.cfg")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
WRONG = {"run": "my-nginx-typo"}


def _no_cluster() -> str | None:
    """Why no cluster is available, or None when one is."""
    if os.environ.get("K8SNET_CONTEXT"):
        return None
    from k8snet.lab import lifecycle

    lab = os.environ.get("K8SNET_LAB", "k8snet")
    status = lifecycle.status(lab)
    return None if status.phase == "Ready" else f"lab {lab!r} is {status.phase.lower()} and $K8SNET_CONTEXT is unset"


def break_selector(src: Path, dst: Path) -> None:
    """Copies the notebook with the Service made by ``kubectl expose`` selecting nothing
    (and a short wait, so the failure comes quickly)."""
    nb = nbformat.read(src, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.strip() == "!kubectl expose deployment/my-nginx"]
    assert len(cells) == 1, "02-services no longer runs kubectl expose in one cell; update this test"
    cells[0].source += " --selector=" + ",".join(f"{k}={v}" for k, v in WRONG.items())  # broken on purpose
    for cell in nb.cells:  # the cells after it wait for the Service: fail them fast
        cell.source = cell.source.replace("timeout=30", "timeout=5")
    nbformat.write(nb, dst)


def test_wrong_selector_fails_nbval_with_the_reason(tmp_path: Path) -> None:
    if why := _no_cluster():
        pytest.skip(f"no cluster: {why}")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "data").symlink_to(ROOT / "data")  # the notebook reads ../data/manifests
    broken = tmp_path / "notebooks" / "02-broken.ipynb"
    break_selector(NOTEBOOK, broken)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "K8SNET_RESULTS_DIR": str(tmp_path / "results")}
    run = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", str(broken), "--nbval-sanitize-with",
                          str(SANITIZE), "-p", "no:cacheprovider", "-q", "--nbval-cell-timeout=120"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    report = ANSI.sub("", run.stdout + run.stderr)
    assert run.returncode == 1, report[-3000:]
    assert "WaitTimeout: service my-nginx not ready after 5 s" in report, report[-3000:]
    assert "its selector run=my-nginx-typo matches no pod" in report, report[-3000:]
