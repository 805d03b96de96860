#!/usr/bin/env python3
"""Executes the study notebooks in place and writes HTML handouts.

    python scripts/notebooks.py                 # every notebooks/*.ipynb, handouts/ too
    python scripts/notebooks.py 02 04           # only the notebooks whose name starts so
    python scripts/notebooks.py --no-html

Each notebook runs in a fresh ``python3`` kernel with cwd ``notebooks/`` and the
caller's environment, so ``K8SNET_LAB`` / ``K8SNET_STATE_ROOT`` / ``K8SNET_CONTEXT``
pick the cluster. The kernel imports ``k8snet`` from this checkout (PYTHONPATH), not
from whatever copy happens to be installed. Outputs and execution counts are written
back into the notebook (what nbval compares against); handouts are self-contained
HTML with the figures embedded. Exits non-zero if any notebook fails, after trying all.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
HANDOUTS = ROOT / "handouts"


def selected(prefixes: list[str]) -> list[Path]:
    books = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    if prefixes:
        books = [b for b in books if any(b.name.startswith(p) for p in prefixes)]
    if not books:
        raise SystemExit(f"no notebook in {NOTEBOOKS} matches {prefixes}")
    return books


def execute(path: Path, timeout: int) -> nbformat.NotebookNode:
    """Runs every cell; raises CellExecutionError at the first failing cell (the
    notebook still gets the outputs up to there)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            # widget state (tqdm bars) is UI noise in a committed notebook
                            store_widget_state=False)
    try:
        client.execute()
    finally:
        drop_widgets(nb)
        nbformat.write(nb, path)
    return nb


def drop_widgets(nb: nbformat.NotebookNode) -> None:
    """Removes widget outputs (tqdm's progress bars): live UI, which a stored notebook or
    a handout can only show as a stale "0%" line. nbval ignores them either way."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs
                            if "application/vnd.jupyter.widget-view+json" not in o.get("data", {})]


def handout(nb: nbformat.NotebookNode, path: Path) -> Path:
    HANDOUTS.mkdir(exist_ok=True)
    exporter = HTMLExporter(embed_images=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
    out = HANDOUTS / f"{path.stem}.html"
    out.write_text(body, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="*", help="run only notebooks whose file name starts with one of these")
    parser.add_argument("--no-html", action="store_true", help="do not write handouts/")
    parser.add_argument("--timeout", type=int, default=300, help="per-cell timeout in seconds (default 300)")
    args = parser.parse_args(argv)

    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    failed = []
    total = time.monotonic()
    for path in selected(args.prefixes):
        t0 = time.monotonic()
        try:
            nb = execute(path, args.timeout)
            status = "ok"
        except CellExecutionError as err:
            nb = nbformat.read(path, as_version=4)
            status = "FAILED: " + str(err).strip().splitlines()[-1]
            failed.append(path.name)
        extra = "" if args.no_html else f" -> {handout(nb, path).relative_to(ROOT)}"
        print(f"{path.name}: {status} in {time.monotonic() - t0:.1f} s{extra}", flush=True)
    print(f"{len(selected(args.prefixes)) - len(failed)} notebook(s) ok, {len(failed)} failed, "
          f"{time.monotonic() - total:.1f} s in all", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
