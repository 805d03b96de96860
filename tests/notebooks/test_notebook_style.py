"""The notebooks' conventions, checked without a cluster (notebooks/README.md says them):

Korean prose with English technical terms, bilingual headings, one numbered title, no
skipped heading levels, a closing "핵심 정리"; exercises with check and solution cells;
sample sizes in a ``parameters`` cell; no waiting by sleeping; no volatile metadata;
every tutorial step mapped to the cell that runs it.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]-*.ipynb"))
README = NOTEBOOKS[0].parent / "README.md" if NOTEBOOKS else Path("notebooks/README.md")
HANGUL = re.compile(r"[\uac00-\ud7a3]")
LATIN = re.compile(r"[A-Za-z]")
HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.M)
MEASUREMENTS = ("lb_distribution(", "dns_latency(", "connect_latency(", "rtt_baseline(", "pod_to_pod(")
#: how many tutorial steps there are (the table "Tutorial steps → cells" in notebooks/README.md)
TUTORIAL_STEPS = 36


def _prose(markdown: str) -> str:
    """Markdown without what is not prose: code blocks and spans, URLs, link targets, math."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"https?://\S+", " ", text)
    return re.sub(r"\$[^$]*\$", " ", text)


def hangul_share(markdown: str) -> float:
    """Hangul syllables among all letters (Hangul + Latin) of the prose."""
    prose = _prose(markdown)
    hangul, latin = len(HANGUL.findall(prose)), len(LATIN.findall(prose))
    return hangul / (hangul + latin) if hangul + latin else 0.0


def _cells(path: Path) -> list:
    return nbformat.read(path, as_version=4).cells


def _markdown(path: Path) -> str:
    return "\n\n".join(c.source for c in _cells(path) if c.cell_type == "markdown")


def _tagged(path: Path, tag: str) -> list:
    return [c for c in _cells(path) if tag in c.metadata.get("tags", [])]


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_prose_is_korean(path: Path) -> None:
    share = hangul_share(_markdown(path))
    assert share >= 0.6, f"{path.name}: {share:.0%} of the prose's letters are Hangul (at least 60 %)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_headings_are_bilingual_numbered_and_nested(path: Path) -> None:
    headings = [(len(m.group(1)), m.group(2)) for m in HEADING.finditer(_markdown(path))]
    titles = [text for level, text in headings if level == 1]
    assert len(titles) == 1 and titles[0].startswith(path.name[:2]), f"{path.name}: one '# {path.name[:2]} · …' title"
    for _level, text in headings:
        assert HANGUL.search(text) and LATIN.search(text), f"{path.name}: heading not bilingual: {text!r}"
    for (before, _), (level, text) in zip(headings, headings[1:]):
        assert level <= before + 1, f"{path.name}: heading level skipped at {text!r}"
    assert "핵심 정리" in headings[-1][1], f"{path.name}: the last section is 핵심 정리"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if not p.name.startswith("00")],
                         ids=_ids([p for p in NOTEBOOKS if not p.name.startswith("00")]))
def test_exercises_have_checks_and_solutions(path: Path) -> None:
    solutions, checks = _tagged(path, "solution"), _tagged(path, "exercise-check")
    assert len(solutions) >= 2 and len(checks) >= 2, f"{path.name}: {len(solutions)} solution / {len(checks)} check cells"
    assert all(c.cell_type == "code" for c in solutions + checks)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_sample_sizes_come_from_a_parameters_cell(path: Path) -> None:
    code = "\n".join(c.source for c in _cells(path) if c.cell_type == "code")
    if any(m in code for m in MEASUREMENTS):
        assert _tagged(path, "parameters"), f"{path.name} measures: its sample sizes belong in a 'parameters' cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_no_sleeping_and_no_volatile_metadata(path: Path) -> None:
    for cell in _cells(path):
        if cell.cell_type == "code":
            assert "time.sleep(" not in cell.source, f"{path.name}: wait on a condition, not time.sleep"
        assert not {"execution", "ExecuteTime"} & set(cell.metadata), f"{path.name}: execution timestamps"


def step_map() -> dict[int, tuple[str, str, int]]:
    """notebooks/README.md's table: step -> (command, notebook stem, 1-based cell number)."""
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`((?:[^`\\]|\\.)+)`[^|]*\|\s*`?(\d\d-[\w-]+)`?\s*\|\s*(\d+)\s*\|",
                      README.read_text(), re.M)
    # a pipe inside a table cell is written \| in Markdown
    return {int(step): (command.replace("\\|", "|"), nb, int(cell)) for step, command, nb, cell in rows}


def test_every_tutorial_step_runs_in_the_cell_the_table_names() -> None:
    steps = step_map()
    assert sorted(steps) == list(range(1, TUTORIAL_STEPS + 1)), f"steps missing from notebooks/README.md: " \
        f"{sorted(set(range(1, TUTORIAL_STEPS + 1)) - set(steps))}"
    for step, (command, stem, number) in steps.items():
        cells = _cells(NOTEBOOKS[0].parent / f"{stem}.ipynb")
        assert 1 <= number <= len(cells), f"step {step}: {stem} has no cell {number}"
        cell = cells[number - 1]
        assert cell.cell_type == "code" and command in cell.source, \
            f"step {step}: cell {number} of {stem} does not run {command!r}"
        assert cell.get("outputs"), f"step {step}: cell {number} of {stem} has no committed output"


def test_hangul_share_counts_letters_of_prose_only() -> None:
    assert hangul_share("파드는 `kubectl get pods` 로 본다") == 1.0
    assert hangul_share("Pod 파드") == pytest.approx(2 / 5)
    assert hangul_share("```\ncode\n```") == 0.0
