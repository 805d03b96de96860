"""Every document a comment or docstring points at is in the repo.

A reader who follows a document name or a numbered section must find it here; references
to upstream sources name them (a URL, or "kube-apiserver's pkg/registry/...").
Scanned: comments and docstrings of the Python and shell files in k8snet/, tests/,
scripts/ and benchmarks/. URLs are skipped: they point outside the repo by design.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("k8snet", "tests", "scripts", "benchmarks")
SKIPPED_DIRS = {".git", ".venv", "__pycache__", "node_modules", ".ipynb_checkpoints"}

URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+")
DOCUMENT = re.compile(r"(?<![\w.-])((?:[\w.-]+/)*[\w.-]+\.md)\b")
SECTION = re.compile("\u00a7\\s*(\\d+(?:\\.\\d+)*)")


def _files(suffix: str) -> list[Path]:
    found = []
    for top in SCANNED:
        for path in (ROOT / top).rglob(f"*{suffix}"):
            if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts):
                found.append(path)
    return sorted(found)


def _markdown_files() -> list[Path]:
    return [p for p in ROOT.rglob("*.md") if not SKIPPED_DIRS & set(p.relative_to(ROOT).parts)]


def python_prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of each comment and docstring in a Python source."""
    prose = [(tok.start[0], tok.string) for tok in tokenize.generate_tokens(io.StringIO(source).readline)
             if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                prose.append((body[0].lineno, body[0].value.value))
    return prose


def shell_prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of each comment in a shell script (from an unquoted # to the end)."""
    return [(n, line[line.index("#"):]) for n, line in enumerate(source.splitlines(), 1)
            if re.match(r"\s*#", line) or " #" in line]


def _document(name: str, near: Path, documents: list[Path]) -> Path | None:
    """The repo's document a reference names: relative to the file, to the root, or by
    its trailing path (``lab-architecture.md``, ``notebooks/README.md``)."""
    for candidate in (near.parent / name, ROOT / name):
        if candidate.resolve().is_relative_to(ROOT) and candidate.is_file():  # not a sibling checkout's
            return candidate.resolve()
    tail = "/" + name.lstrip("./")
    matches = [d for d in documents if ("/" + d.relative_to(ROOT).as_posix()).endswith(tail)]
    return matches[0] if len(matches) == 1 or (matches and "/" not in name) else None


def _numbered_sections(document: Path) -> set[str]:
    """Section numbers of a document's headings (``## 3.2 Title`` gives 3.2)."""
    return set(re.findall(r"^#+\s+(\d+(?:\.\d+)*)\.?\s", document.read_text(encoding="utf-8"), re.M))


def broken_references(path: Path, prose: list[tuple[int, str]], documents: list[Path]) -> list[str]:
    """Each reference in ``prose`` to a document or numbered section the repo lacks.

    A section mark must follow, on the same line, a document of the repo that has a
    heading with that number."""
    broken = []
    for first_line, text in prose:
        for offset, line in enumerate(URL.sub(" ", text).splitlines()):
            where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{first_line + offset}"
            last: Path | None = None
            for match in re.finditer(f"{DOCUMENT.pattern}|{SECTION.pattern}", line):
                name, section = match.group(1), match.group(2)
                if name:
                    last = _document(name, path, documents)
                    if last is None:
                        broken.append(f"{where}: {name} is not in the repo")
                elif last is None or section not in _numbered_sections(last):
                    broken.append(f"{where}: section {section} of no document in the repo")
    return broken


def test_comments_and_docstrings_name_only_documents_the_repo_has() -> None:
    documents = _markdown_files()
    broken = []
    for path in _files(".py"):
        broken += broken_references(path, python_prose(path.read_text(encoding="utf-8")), documents)
    for path in _files(".sh"):
        broken += broken_references(path, shell_prose(path.read_text(encoding="utf-8")), documents)
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(("source", "expected"), [
    ('"""See DESIGN.md."""\n', ["DESIGN.md is not in the repo"]),
    ("x = 1  # as in kube-api-compat.md\n", ["kube-api-compat.md is not in the repo"]),
    ('def f():\n    """Bumps the generation (\u00a79.1)."""\n', ["section 9.1 of no document"]),
    ('"""See docs/lab-architecture.md \u00a71.2."""\n', ["section 1.2 of no document"]),
    ('"""See docs/lab-architecture.md and notebooks/README.md."""\n', []),
    ("# https://github.com/kubernetes/dns/blob/master/docs/specification.md\n", []),
    ("# ../shared/docs/tutorial-reference.md\n", ["tutorial-reference.md is not in the repo"]),
    ('x = "DESIGN.md"  # a string, not prose\n', []),
])
def test_the_checker_finds_what_it_should(source: str, expected: list[str]) -> None:
    found = broken_references(ROOT / "k8snet" / "example.py", python_prose(source), _markdown_files())
    assert len(found) == len(expected), found
    for message, wanted in zip(found, expected):
        assert wanted in message
