#!/usr/bin/env python3
"""Executes the study notebooks into an output folder and writes HTML handouts.

    python scripts/notebooks.py                 # every notebooks/*.ipynb, into build/
    python scripts/notebooks.py 02 04           # only the notebooks whose name starts so
    python scripts/notebooks.py --out /tmp/run  # another output folder (or $K8SNET_OUT)
    python scripts/notebooks.py --refresh       # rewrite the committed notebooks and data/results
    python scripts/notebooks.py --no-html

By default nothing in the checkout changes: ``<out>/notebooks/`` gets the executed
notebooks, ``<out>/handouts/`` the HTML handouts (figures embedded) in two sets, ``instructor/``
(solutions shown) and ``learner/`` (cells tagged ``solution`` removed, the outputs of
cells tagged ``exercise-check`` cleared), and
``<out>/results/`` the measurements (``$K8SNET_RESULTS_DIR``). ``--refresh`` instead
writes the executed notebooks back into ``notebooks/`` (what nbval compares against)
and the measurements into ``data/results/``; a notebook that fails is then left as it
was and its failed run goes to ``<out>/notebooks/``.

Each notebook runs in a fresh kernel of this interpreter (its ``bin`` first on PATH, so
``!kubectl`` is the kit's kubectl) with cwd ``notebooks/`` and the caller's
environment, so ``K8SNET_LAB`` / ``K8SNET_STATE_ROOT`` / ``K8SNET_CONTEXT`` /
``KUBECONFIG`` pick the cluster. Kernels talk to us over private IPC sockets, not TCP.
One line per notebook; a failure also shows the failing cell and its error, and the
exit status is 1 once every notebook has run.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
COMMITTED_RESULTS = ROOT / "data" / "results"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ARROW = re.compile(r"^-+>\s*(?P<line>\d+)\s(?P<code>.*)$", re.MULTILINE)
# A notebook cell that stays busy this long is stuck, not slow (the largest
# measurements take about a minute on a 2-core machine).
DEFAULT_CELL_TIMEOUT = 300


def default_out() -> Path:
    return Path(os.environ.get("K8SNET_OUT") or ROOT / "build")


def selected(prefixes: list[str]) -> list[Path]:
    books = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    if prefixes:
        books = [b for b in books if any(b.name.startswith(p) for p in prefixes)]
    if not books:
        raise SystemExit(f"no notebook in {NOTEBOOKS} matches {' '.join(prefixes)}")
    return books


def kernel_environment(private_dir: Path) -> None:
    """Sets up what every kernel inherits from this process.

    Jupyter's data folder is a private, empty one, so no kernelspec of the user's own
    can replace ``python3`` with another interpreter. PYTHONPATH makes the kernel
    import ``k8snet`` from this checkout."""
    os.environ["JUPYTER_DATA_DIR"] = str(private_dir / "data")
    here = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join([here, *[p for p in os.environ.get("PATH", "").split(os.pathsep)
                                                   if p and p != here]])
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    # ipykernel imports debugpy, which on Python >= 3.11 warns on stderr that frozen
    # modules may hide breakpoints; nobody debugs a batch run, and the check is what warns.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


class IpcNotebookClient(NotebookClient):
    """nbclient's client whose kernel talks over IPC sockets in a private folder, not
    TCP ports on localhost that any local user could connect to (ipykernel warns about
    unencrypted TCP, rightly). The paths are absolute because the kernel runs in
    notebooks/ and we do not; the connection file (it holds the HMAC key) goes there too."""

    def __init__(self, nb: nbformat.NotebookNode, *, private_dir: Path, name: str, **kw: Any) -> None:
        super().__init__(nb, **kw)
        self.private_dir = private_dir
        self.kernel_file_name = name

    def create_kernel_manager(self) -> Any:
        km = super().create_kernel_manager()
        km.transport = "ipc"
        km.ip = str(self.private_dir / f"{self.kernel_file_name}-ipc")
        km.connection_file = str(self.private_dir / f"{self.kernel_file_name}.json")
        return km


def client_for(nb: nbformat.NotebookNode, timeout: int, private_dir: Path, name: str) -> NotebookClient:
    return IpcNotebookClient(nb, private_dir=private_dir, name=name, timeout=timeout, kernel_name="python3",
                             resources={"metadata": {"path": str(NOTEBOOKS)}},
                             # widget state (tqdm bars) is UI noise in a stored notebook
                             store_widget_state=False,
                             # execution timestamps would change every committed notebook on every run
                             record_timing=False)


def drop_widgets(nb: nbformat.NotebookNode) -> None:
    """Removes widget outputs (tqdm's progress bars): live UI, which a stored notebook or
    a handout can only show as a stale "0%" line. nbval ignores them either way."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs
                            if "application/vnd.jupyter.widget-view+json" not in o.get("data", {})]


def failure_report(nb: nbformat.NotebookNode, err: Exception) -> list[str]:
    """A few lines: the failing cell, its failing line, the error."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "error":
                frames = [ANSI.sub("", line) for line in output.get("traceback", [])]
                # IPython marks the line that raised in each frame: "----> 8 code"; the first is the cell's
                arrows = [m for frame in frames for m in ARROW.finditer(frame)]
                where = f"cell {index}" + (f", line {arrows[0]['line']}: {arrows[0]['code'].strip()}" if arrows else "")
                lines = [where]
                message = f"{output.get('ename')}: {ANSI.sub('', output.get('evalue', ''))}".splitlines()
                return lines + message[:3]
    # no error output: the kernel died, a cell timed out, or the kernel did not start
    message = ANSI.sub("", str(err)).strip().splitlines() or [type(err).__name__]
    return [f"{type(err).__name__}: {message[-1]}"]


#: Cells with this tag hold an exercise's answer: kept for instructors, removed for learners.
SOLUTION_TAG = "solution"


#: An exercise's check cell: kept for learners, but without the output the solution produced.
CHECK_TAG = "exercise-check"


def without_solutions(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The learners' version: the exercises' solution cells removed, their check cells
    kept with no output (what they printed came from the solution)."""
    copy = nbformat.from_dict(nb)
    copy.cells = [c for c in copy.cells if SOLUTION_TAG not in c.metadata.get("tags", [])]
    for cell in copy.cells:
        if CHECK_TAG in cell.metadata.get("tags", []):
            cell.outputs, cell.execution_count = [], None
    return copy


def handout(nb: nbformat.NotebookNode, name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body, _ = HTMLExporter(embed_images=True).from_notebook_node(nb, resources={"metadata": {"name": name}})
    out = folder / f"{name}.html"
    out.write_text(body, encoding="utf-8")
    return out


def handouts(nb: nbformat.NotebookNode, name: str, folder: Path) -> list[Path]:
    """Two sets: ``instructor/`` (every cell, solutions shown) and ``learner/`` (solutions removed)."""
    return [handout(nb, name, folder / "instructor"), handout(without_solutions(nb), name, folder / "learner")]


def run_one(path: Path, out: Path, private_dir: Path, *, refresh: bool, html: bool, timeout: int) -> list[str]:
    """Executes one notebook and writes what it made; returns the failure report, or []
    when every cell ran."""
    nb = nbformat.read(path, as_version=4)
    try:
        client_for(nb, timeout, private_dir, path.stem).execute()
        failure: list[str] = []
    except Exception as err:  # any failure of one notebook is reported; the rest still run
        failure = failure_report(nb, err) or [str(err)]
    drop_widgets(nb)
    target = path if refresh and not failure else out / "notebooks" / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    if html:
        handouts(nb, path.stem, out / "handouts")
    return failure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="*", help="run only notebooks whose file name starts with one of these")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default $K8SNET_OUT, else build/ of the checkout)")
    parser.add_argument("--refresh", action="store_true",
                        help="write the executed notebooks into notebooks/ and the measurements into data/results/")
    parser.add_argument("--no-html", action="store_true", help="do not write handouts")
    parser.add_argument("--timeout", type=int, default=DEFAULT_CELL_TIMEOUT,
                        help=f"per-cell timeout in seconds (default {DEFAULT_CELL_TIMEOUT})")
    args = parser.parse_args(argv)

    books = selected(args.prefixes)
    out = (args.out or default_out()).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["K8SNET_RESULTS_DIR"] = str(COMMITTED_RESULTS if args.refresh else out / "results")
    failed = []
    started = time.monotonic()
    width = max(len(b.stem) for b in books)
    with tempfile.TemporaryDirectory(prefix="k8snet-kernels-") as private:
        kernel_environment(Path(private))
        for path in books:
            t0 = time.monotonic()
            failure = run_one(path, out, Path(private), refresh=args.refresh, html=not args.no_html, timeout=args.timeout)
            print(f"{path.stem:<{width}}  {time.monotonic() - t0:6.1f} s  {'FAILED' if failure else 'ok'}", flush=True)
            for line in failure:
                print(f"    {line}", flush=True)
            if failure:
                failed.append(path.stem)
    where = [f"handouts in {out / 'handouts'}"] if not args.no_html else []
    where.append(f"results in {os.environ['K8SNET_RESULTS_DIR']}")
    print(f"{len(books) - len(failed)} of {len(books)} notebooks ok in {time.monotonic() - started:.0f} s; "
          + ", ".join(where), flush=True)
    if failed:
        print(f"failed: {', '.join(failed)} (executed copies in {out / 'notebooks'})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
