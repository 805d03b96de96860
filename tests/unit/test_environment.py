"""The declared dependencies are the real ones, in every place they are declared.

- environment.yml (conda-forge) lists exactly pyproject.toml's dependencies and its
  test extra, under their conda-forge names, with the same major.minor bounds;
- every module that k8snet/, tests/, benchmarks/, scripts/ and the notebooks import is
  the standard library, this project, or comes from a declared distribution (found
  through importlib.metadata.packages_distributions(), so ``yaml`` is PyYAML's).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())

#: PyPI name -> conda-forge name, where they differ
CONDA_NAMES = {"kubernetes": "python-kubernetes", "matplotlib": "matplotlib-base"}
#: conda packages that are the environment's machinery, not a pyproject dependency
CONDA_ONLY = {"python", "pip"}
SOURCE_FOLDERS = ("k8snet", "tests", "benchmarks", "scripts")

REQUIREMENT = re.compile(r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?P<spec>[^;#]*)")
BOUND = re.compile(r"(?P<op>~=|===|==|!=|<=|>=|<|>|=)\s*(?P<version>[0-9][0-9A-Za-z.*+!-]*)")


# -- requirement strings ---------------------------------------------------------------------

def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(requirement: str) -> tuple[str, frozenset[tuple[str, tuple[int, int]]]]:
    """A requirement's normalized name and its bounds cut to major.minor:
    ``numpy>=2.1,<3`` -> ("numpy", {(">=", (2, 1)), ("<", (3, 0))})."""
    match = REQUIREMENT.match(requirement)
    assert match, f"cannot read the requirement {requirement!r}"
    bounds = set()
    for bound in BOUND.finditer(match["spec"]):
        numbers = [int(n) for n in re.findall(r"\d+", bound["version"])[:2]]
        bounds.add((bound["op"], tuple((numbers + [0, 0])[:2])))
    return normalize(match["name"]), frozenset(bounds)


def declared() -> dict[str, frozenset]:
    """pyproject's dependencies and test extra, by normalized PyPI name."""
    reqs = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"]["test"]]
    return dict(parse(r) for r in reqs)


def environment_packages(env: dict) -> dict[str, tuple[str, frozenset]]:
    """environment.yml's packages by normalized *PyPI* name: (where, bounds), where is
    "conda" or "pip"; pip options and the project itself (``-e .``) left out."""
    pypi_name = {conda: pypi for pypi, conda in CONDA_NAMES.items()}
    found: dict[str, tuple[str, frozenset]] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                if not line.lstrip().startswith("-"):
                    name, bounds = parse(line)
                    found[name] = ("pip", bounds)
        else:
            name, bounds = parse(dep)
            found[normalize(pypi_name.get(name, name))] = ("conda", bounds)
    return found


def drift(wanted: dict[str, frozenset], env: dict) -> list[str]:
    """What environment.yml lacks, adds or bounds differently from pyproject.toml."""
    have = environment_packages(env)
    problems = []
    for name, bounds in sorted(wanted.items()):
        conda_name = CONDA_NAMES.get(name, name)
        if name not in have:
            problems.append(f"{name} (conda-forge: {conda_name}) is in pyproject.toml but not in environment.yml")
        elif have[name][1] != bounds:
            problems.append(f"{name}: pyproject.toml says {sorted(bounds)}, environment.yml "
                            f"({have[name][0]}) says {sorted(have[name][1])} (major.minor)")
    extra = sorted(set(have) - set(wanted) - CONDA_ONLY)
    problems += [f"{name} is in environment.yml but not in pyproject.toml" for name in extra]
    return problems


def test_environment_yml_matches_pyproject():
    assert ENVIRONMENT["channels"] == ["conda-forge"]
    assert drift(declared(), ENVIRONMENT) == []


def test_python_bound_matches_requires_python():
    python = environment_packages(ENVIRONMENT)["python"][1]
    assert python == parse("python" + PYPROJECT["project"]["requires-python"])[1]


def test_drift_is_caught():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    env["dependencies"] = [d for d in env["dependencies"] if not str(d).startswith("pyyaml")]
    env["dependencies"] = [("numpy>=1.26" if str(d).startswith("numpy") else d) for d in env["dependencies"]]
    env["dependencies"].append("requests>=2")
    problems = drift(declared(), env)
    assert len(problems) == 3, problems
    assert "pyyaml (conda-forge: pyyaml) is in pyproject.toml but not in environment.yml" in problems
    assert any(p.startswith("numpy: ") for p in problems)
    assert "requests is in environment.yml but not in pyproject.toml" in problems


# -- imports -----------------------------------------------------------------------------------

IPYTHON_LINE = re.compile(r"^\s*(?:[!%]|\w+\s*=\s*[!%])")  # !kubectl ..., %matplotlib, out = !cmd


def imported(source: str, filename: str) -> set[str]:
    """Top-level names of the absolute imports in ``source`` (relative ones are the project's)."""
    names = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def project_imports() -> dict[str, set[str]]:
    """Imported top-level name -> the files importing it, for every file of the project
    (a name that is a module or package next to the importing file is local)."""
    uses: dict[str, set[str]] = {}
    files = [p for folder in SOURCE_FOLDERS for p in sorted((ROOT / folder).rglob("*.py"))]
    for path in files:
        for name in imported(path.read_text(), str(path)):
            if not ((path.parent / f"{name}.py").exists() or (path.parent / name / "__init__.py").exists()):
                uses.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                code = "\n".join("" if IPYTHON_LINE.match(line) else line for line in source.splitlines())
                for name in imported(code, f"{path.name}: {source[:60]!r}"):
                    uses.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return uses


def undeclared(uses: dict[str, set[str]], wanted: set[str]) -> list[str]:
    """Imports that are neither the standard library, the project, nor from a distribution in ``wanted``."""
    local = {"k8snet", *SOURCE_FOLDERS}
    providers = importlib.metadata.packages_distributions()
    problems = []
    for name, where in sorted(uses.items()):
        if name in sys.stdlib_module_names or name in local:
            continue
        dists = {normalize(d) for d in providers.get(name, [])}
        if not dists & wanted:
            source = f"from {', '.join(sorted(dists))}" if dists else "not installed"
            problems.append(f"{name} ({source}) is imported by {', '.join(sorted(where))} but not declared "
                            "in pyproject.toml")
    return problems


def test_every_import_is_declared():
    uses = project_imports()
    assert {"kubernetes", "yaml", "pandas", "nbformat", "pytest"} <= set(uses)  # the walk sees the project
    assert undeclared(uses, set(declared())) == []


def test_undeclared_imports_are_caught():
    source = "import os\nimport yaml\nfrom traitlets.config import Config\nimport k8snet.lab\nimport nosuchmodule_x\n"
    uses = {name: {"example.py"} for name in imported(source, "example.py")}
    problems = undeclared(uses, set(declared()))
    assert problems == [
        "nosuchmodule_x (not installed) is imported by example.py but not declared in pyproject.toml",
        "traitlets (from traitlets) is imported by example.py but not declared in pyproject.toml",
    ]
