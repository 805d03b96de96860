"""The ``k8snet`` command line: ``k8snet doctor`` and ``k8snet lab up|start|stop|down|status|list|kubeconfig``.

Every expected failure ends as one line on stderr, ``k8snet: <what happened and what
to run>``, and exit code 1 (130 after Ctrl-C); argparse's own usage errors stay as
argparse prints them (exit code 2). The lab name defaults to ``$K8SNET_LAB``, else
"k8snet".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from . import doctor, hosttools
from .doctor import first_line
from .lab import kubeconfig, lifecycle
from .lab.config import DEFAULT_PROXY_MODE, PROXY_MODES, LabConfig, state_root

DEFAULT_LAB = "k8snet"
ROOT_COMMANDS = ("up", "start", "stop", "down")


def _default_lab() -> str:
    return os.environ.get("K8SNET_LAB") or DEFAULT_LAB


def _checked_name(name: str) -> str:
    LabConfig(name=name)  # raises the one ValueError every command gives for a bad name
    return name


def _status_dict(st: lifecycle.LabStatus) -> dict[str, Any]:
    data = dataclasses.asdict(st)
    data["kubeconfig"] = str(st.kubeconfig) if st.kubeconfig else None
    return data


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


# -- doctor --------------------------------------------------------------------------

def _doctor(args: argparse.Namespace) -> int:
    checks = doctor.run_checks()
    width = max(len(c.name) for c in checks)
    for c in checks:
        fix = f" — fix: {c.fix}" if c.fix and not c.ok else ""
        print(f"{c.verdict:<4}  {c.name:<{width}}  {c.detail}{fix}")
    return 0 if doctor.passed(checks) else 1


# -- lab -----------------------------------------------------------------------------

def _require_root() -> None:
    """``up`` and ``down`` make and remove network namespaces: say so before anything
    (main turns the PermissionError into the sudo command line to run)."""
    if sys.platform == "linux" and os.geteuid() != 0:
        raise PermissionError()


def _checked_timeout(timeout: float) -> float:
    if timeout <= 0:
        raise ValueError(f"--timeout must be a positive number of seconds, not {timeout:g}")
    return timeout


def _lab_up(args: argparse.Namespace) -> int:
    _checked_timeout(args.timeout)
    # only what was given: a kept lab comes back in its own shape (check_shape)
    shape = {k: v for k, v in (("nodes", args.nodes), ("proxy_mode", args.proxy_mode)) if v is not None}
    config = LabConfig(name=args.name, **shape)
    _require_root()
    lifecycle.check_shape(config.name, args.nodes, args.proxy_mode)
    kept = lifecycle.has_state(lifecycle.load_config(config.name))
    t0 = time.monotonic()
    st = lifecycle.up(config, timeout=args.timeout)
    return _print_ready(st, time.monotonic() - t0, kept)


def _lab_start(args: argparse.Namespace) -> int:
    name = _checked_name(args.name)
    _checked_timeout(args.timeout)
    _require_root()
    t0 = time.monotonic()
    st = lifecycle.start(name, timeout=args.timeout)
    return _print_ready(st, time.monotonic() - t0, kept=True)


def _print_ready(st: lifecycle.LabStatus, seconds: float, kept: bool) -> int:
    nodes = st.details.get("nodes", [])
    back = " with the objects it had" if kept else ""
    print(f"lab {st.name!r} is Ready{back} in {seconds:.1f} s: {len(nodes)} nodes "
          f"({', '.join(nodes)}), proxy mode {st.details.get('proxy_mode')}, API server {st.server}")
    print(f"kubeconfig: {st.kubeconfig}")
    print(f"  export KUBECONFIG={st.kubeconfig}")
    print("  kubectl get nodes -o wide")
    merged = merged_kubeconfigs(st.name)
    if merged:
        print(f"context {st.context} added to {', '.join(map(str, merged))} (no root needed):")
        print(f"  kubectl --context {st.context} get nodes -o wide")
    return 0


def merged_kubeconfigs(name: str) -> list[Path]:
    """The users' kubeconfig files ``lab up`` merged the lab's context into (none with
    K8SNET_MERGE_KUBECONFIG=0), as recorded in its state folder."""
    records = kubeconfig.read_records(lifecycle.load_config(name).state_dir / lifecycle.MERGED_KUBECONFIGS)
    return [r.target.path for r in records]


def _lab_stop(args: argparse.Namespace) -> int:
    name = _checked_name(args.name)
    _require_root()
    lifecycle.stop(name)
    config = lifecycle.load_config(name)
    print(f"lab {name!r} is stopped; its objects, PKI and kubeconfig are kept in {config.state_dir}: "
          f"'sudo k8snet lab start --name {name}' brings it back, 'sudo k8snet lab down --name {name}' deletes it")
    return 0


def _lab_down(args: argparse.Namespace) -> int:
    name = _checked_name(args.name)
    _require_root()
    forced = lifecycle.down(name)
    print(f"lab {name!r} is down" + (f"; also removed: {', '.join(forced)}" if forced else ""))
    return 0


def _lab_status(args: argparse.Namespace) -> int:
    st = lifecycle.readable_status(_checked_name(args.name))
    code = 0 if st.phase in ("Ready", lifecycle.STOPPED, lifecycle.ABSENT) else 1
    if args.json:
        _print_json(_status_dict(st))
        return code
    if st.phase == lifecycle.UNREADABLE:
        raise lifecycle.LabError(f"lab {st.name!r} exists, but {st.message}")
    print(f"lab {st.name!r}: {st.phase}" + (f" — {st.message}" if st.message else ""))
    if st.phase == "Ready":
        print(f"  API server: {st.server}\n  kubeconfig: {st.kubeconfig}")
        for path in merged_kubeconfigs(st.name):
            print(f"  context {st.context} in {path}")
        print(f"  nodes: {', '.join(st.details.get('nodes', []))}; proxy mode {st.details.get('proxy_mode')}")
    return code


def lab_list_rows(labs: list[lifecycle.LabStatus]) -> list[list[str]]:
    """The table ``k8snet lab list`` prints: a header, then one row per lab."""
    rows = [["NAME", "PHASE", "NODES", "PROXY-MODE", "API-SERVER"]]
    for st in labs:
        nodes = st.details.get("nodes")
        rows.append([st.name, st.phase, str(len(nodes)) if nodes else "-",
                     st.details.get("proxy_mode") or "-", st.server or "-"])
    return rows


def _lab_list(args: argparse.Namespace) -> int:
    labs = lifecycle.list_labs()
    if args.json:
        _print_json([_status_dict(st) for st in labs])
        return 0
    if not labs:
        print(f"no labs under {state_root()}", file=sys.stderr)
        return 0
    rows = lab_list_rows(labs)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if any(st.phase == lifecycle.UNREADABLE for st in labs):
        print("k8snet: labs marked Unreadable belong to root: run 'sudo k8snet lab list' for their details",
              file=sys.stderr)
    return 0


def _lab_kubeconfig(args: argparse.Namespace) -> int:
    name = _checked_name(args.name)
    st = lifecycle.readable_status(name)
    if st.phase == lifecycle.UNREADABLE:
        raise lifecycle.LabError(f"lab {name!r} exists, but {st.message}")
    if st.phase == lifecycle.ABSENT:
        raise lifecycle.LabError(f"there is no lab {name!r}: create it with 'sudo k8snet lab up --name {name}'")
    if st.phase != "Ready" or st.kubeconfig is None:
        command = "start" if st.phase == lifecycle.STOPPED else "up"
        raise lifecycle.LabError(f"lab {name!r} is {st.phase.lower()}; start it with 'sudo k8snet lab {command} --name {name}'")
    print(st.kubeconfig if args.path else st.kubeconfig.read_text(), end="\n" if args.path else "")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="k8snet", description="Study the Kubernetes networking model.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check this machine for the kit: kernel features, host tools, "
                   "kubectl, Python environment, running labs").set_defaults(func=_doctor)
    lab = sub.add_parser("lab", help="the embedded lab cluster (up and down need root on Linux)")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    default = _default_lab()

    def named(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--name", default=default, help=f"lab name (default: $K8SNET_LAB, else k8snet; now {default})")
        return p

    def json_flag(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--json", action="store_true", help="print JSON")
        return p

    def timeout_flag(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--timeout", type=float, default=lifecycle.READY_TIMEOUT_S, metavar="SECONDS",
                       help=f"give up (and clean up) when not Ready after this long (default: {lifecycle.READY_TIMEOUT_S:g})")
        return p

    up = timeout_flag(named(lab_sub.add_parser(
        "up", help="start a lab and wait until it is Ready (a stopped or crashed one comes back with its objects)")))
    up.add_argument("--nodes", type=int, default=None, help=f"number of nodes (default: {LabConfig.nodes})")
    up.add_argument("--proxy-mode", choices=PROXY_MODES, default=None, help=f"default: {DEFAULT_PROXY_MODE}")
    up.set_defaults(func=_lab_up)
    timeout_flag(named(lab_sub.add_parser(
        "start", help="bring a stopped (or crashed) lab back with every object it had"))).set_defaults(func=_lab_start)
    named(lab_sub.add_parser("stop", help="stop a lab, keep its objects, PKI and kubeconfig (start brings it back)")
          ).set_defaults(func=_lab_stop)
    named(lab_sub.add_parser("down", help="stop a lab and remove everything it made, its objects too")
          ).set_defaults(func=_lab_down)
    json_flag(named(lab_sub.add_parser("status", help="show whether a lab runs"))).set_defaults(func=_lab_status)
    json_flag(lab_sub.add_parser("list", help="every lab under the state root")).set_defaults(func=_lab_list)
    kc = named(lab_sub.add_parser("kubeconfig", help="print the lab's kubeconfig"))
    kc.add_argument("--path", action="store_true", help="print the file's path instead of its content")
    kc.set_defaults(func=_lab_kubeconfig)
    return parser


# -- failures as one line --------------------------------------------------------------

def sudo_command(argv: list[str], name: str | None) -> str:
    """The command line to run as root: this one, with the lab name and state root
    spelled out, because sudo drops K8SNET_LAB and K8SNET_STATE_ROOT."""
    words = ["sudo"]
    if os.environ.get("K8SNET_STATE_ROOT"):
        words.append(f"K8SNET_STATE_ROOT={os.environ['K8SNET_STATE_ROOT']}")
    words += ["k8snet", *argv]
    if name is not None and not any(a == "--name" or a.startswith("--name=") for a in argv):
        words += ["--name", name]
    return shlex.join(words)


def failure_message(err: BaseException, argv: list[str], args: argparse.Namespace) -> str:
    """The one line (without the "k8snet: " prefix) for an expected failure."""
    name = getattr(args, "name", None)
    if isinstance(err, PermissionError):
        what = f"{err.filename}: permission denied; " if err.filename else ""
        return f"{what}needs root: run '{sudo_command(argv, name)}'"
    if isinstance(err, FileNotFoundError):
        missing = err.filename or first_line(err)
        if isinstance(missing, str) and missing in hosttools.programs():
            return f"{missing}: program not found: install the host tools with 'sudo bash scripts/setup.sh'"
        return f"{missing}: no such file or directory"
    return first_line(err)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except lifecycle.LabInterrupted as err:  # up/start undid the start already
        print(f"k8snet: {err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        command = getattr(args, "lab_command", None)
        if command in ROOT_COMMANDS:
            half = "started" if command in ("up", "start") else "stopped"
            print(f"k8snet: interrupted; lab {args.name!r} may be half {half}: run "
                  f"'{sudo_command(['lab', 'stop'], args.name)}' (keeps its objects) or "
                  f"'{sudo_command(['lab', 'down'], args.name)}' (removes it)", file=sys.stderr)
        else:
            print("k8snet: interrupted", file=sys.stderr)
        return 130
    except (lifecycle.LabError, ValueError, PermissionError, FileNotFoundError) as err:
        print(f"k8snet: {failure_message(err, argv, args)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
