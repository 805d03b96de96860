"""scripts/notebooks.py, the study's notebook runner, on small notebooks of its own
(no cluster needed): outputs go to the output folder and the notebook stays as it was,
the kernel is this interpreter over IPC (no TCP warning on stderr), and a failing cell
is reported in a few lines."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location("study_notebooks", ROOT / "scripts" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def kernels(runner, tmp_path, monkeypatch):
    """The environment the runner gives its kernels, undone after the test."""
    for name in ("PATH", "PYTHONPATH", "JUPYTER_DATA_DIR", "PYDEVD_DISABLE_FILE_VALIDATION"):
        monkeypatch.setenv(name, __import__("os").environ.get(name, ""))
    private = tmp_path / "private"
    private.mkdir()
    runner.kernel_environment(private)
    return private


def notebook(path: Path, *sources: str) -> Path:
    nbformat.write(new_notebook(cells=[new_code_cell(s) for s in sources]), path)
    return path


def test_a_good_notebook_runs_into_the_output_folder(runner, kernels, tmp_path, capfd):
    src = notebook(tmp_path / "good.ipynb",
                   "import os, sys\nprint(sys.executable)\nprint(os.environ['PATH'].split(os.pathsep)[0])",
                   "from ipykernel.kernelapp import IPKernelApp\nprint(IPKernelApp.instance().transport)",
                   "import k8snet\nprint(k8snet.__file__)")
    before = src.read_bytes()
    out = tmp_path / "out"
    assert runner.run_one(src, out, kernels, refresh=False, html=True, timeout=60) == []
    assert src.read_bytes() == before  # the notebook itself is untouched
    done = nbformat.read(out / "notebooks" / "good.ipynb", as_version=4)
    texts = ["".join(o.get("text", "") for o in c.outputs).split() for c in done.cells]
    assert texts[0] == [sys.executable, str(Path(sys.executable).parent)]
    assert texts[1] == ["ipc"]
    assert texts[2] == [str(ROOT / "k8snet" / "__init__.py")]  # this checkout's package
    for audience in ("instructor", "learner"):
        assert (out / "handouts" / audience / "good.html").read_text().count("<html") == 1
    err = capfd.readouterr().err
    assert "without encryption" not in err and "frozen modules" not in err, err
    assert not list(kernels.glob("good*")), "the kernel's connection file and sockets are left behind"
    assert not any("execution" in c.metadata for c in done.cells), "execution timestamps in the notebook"


def test_a_failing_cell_is_reported_in_a_few_lines(runner, kernels, tmp_path):
    src = notebook(tmp_path / "bad.ipynb", "x = 1", "def f():\n    return {}['missing']\n\ny = 2\nf()", "never = 1")
    out = tmp_path / "out"
    report = runner.run_one(src, out, kernels, refresh=True, html=False, timeout=60)
    assert report == ["cell 1, line 5: f()", "KeyError: 'missing'"]
    assert nbformat.read(src, as_version=4).cells[0].outputs == []  # refresh keeps a failed notebook as it was
    failed = nbformat.read(out / "notebooks" / "bad.ipynb", as_version=4)
    assert failed.cells[1].outputs[-1]["output_type"] == "error" and failed.cells[2].outputs == []
    assert not (out / "handouts").exists()


def test_refresh_writes_the_notebook_in_place(runner, kernels, tmp_path):
    src = notebook(tmp_path / "fresh.ipynb", "print(6 * 7)")
    runner.run_one(src, tmp_path / "out", kernels, refresh=True, html=False, timeout=60)
    assert nbformat.read(src, as_version=4).cells[0].outputs[0]["text"] == "42\n"
    assert not (tmp_path / "out" / "notebooks").exists()


def test_learners_handouts_drop_the_solution_cells_and_keep_the_checks(runner, kernels, tmp_path):
    nb = new_notebook(cells=[new_code_cell("answer = None  # 예상"), new_code_cell("answer = 'SOLVED-42'"),
                             new_code_cell("print('check:', answer)")])
    nb.cells[1].metadata["tags"] = ["solution"]
    nb.cells[2].metadata["tags"] = ["exercise-check", "nbval-check-output"]
    src = tmp_path / "ex.ipynb"
    nbformat.write(nb, src)
    out = tmp_path / "out"
    assert runner.run_one(src, out, kernels, refresh=False, html=True, timeout=60) == []
    instructor = (out / "handouts" / "instructor" / "ex.html").read_text()
    learner = (out / "handouts" / "learner" / "ex.html").read_text()
    assert "'SOLVED-42'" in instructor and "check: SOLVED-42" in instructor
    # neither the answer nor the output it produced; the check's code is there to run
    assert "SOLVED-42" not in learner and "check:" in learner
    # the executed notebook itself keeps every cell (nbval runs the instructor version)
    assert len(nbformat.read(out / "notebooks" / "ex.ipynb", as_version=4).cells) == 3
