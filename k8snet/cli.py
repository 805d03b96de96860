"""The ``k8snet`` command line: ``k8snet lab up|down|status|kubeconfig``."""

from __future__ import annotations

import argparse
import sys
import time

from .lab import lifecycle
from .lab.config import LabConfig


def _lab_up(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    config = LabConfig(name=args.name, nodes=args.nodes, proxy_mode=args.proxy_mode)
    st = lifecycle.up(config)
    nodes = st.details.get("nodes", [])
    print(f"lab {st.name!r} is Ready in {time.monotonic() - t0:.1f} s: {len(nodes)} nodes "
          f"({', '.join(nodes)}), proxy mode {st.details.get('proxy_mode')}, API server {st.server}")
    print(f"kubeconfig: {st.kubeconfig}")
    print(f"  export KUBECONFIG={st.kubeconfig}")
    print("  kubectl get nodes -o wide")
    return 0


def _lab_down(args: argparse.Namespace) -> int:
    forced = lifecycle.down(args.name)
    print(f"lab {args.name!r} is down" + (f"; also removed: {', '.join(forced)}" if forced else ""))
    return 0


def _lab_status(args: argparse.Namespace) -> int:
    st = lifecycle.status(args.name)
    print(f"lab {st.name!r}: {st.phase}" + (f" — {st.message}" if st.message else ""))
    if st.phase == "Ready":
        print(f"  API server: {st.server}\n  kubeconfig: {st.kubeconfig}")
        print(f"  nodes: {', '.join(st.details.get('nodes', []))}; proxy mode {st.details.get('proxy_mode')}")
    return 0 if st.phase in ("Ready", "Stopped") else 1


def _lab_kubeconfig(args: argparse.Namespace) -> int:
    st = lifecycle.status(args.name)
    if st.phase != "Ready" or st.kubeconfig is None:
        raise lifecycle.LabError(f"lab {args.name!r} is {st.phase.lower()}; start it with 'k8snet lab up --name {args.name}'")
    print(st.kubeconfig if args.path else st.kubeconfig.read_text(), end="\n" if args.path else "")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="k8snet", description="Study the Kubernetes networking model.")
    sub = parser.add_subparsers(dest="command", required=True)
    lab = sub.add_parser("lab", help="the embedded lab cluster (needs root on Linux)")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)

    def named(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--name", default="k8snet", help="lab name (default: k8snet)")
        return p

    up = named(lab_sub.add_parser("up", help="start a lab and wait until it is Ready"))
    up.add_argument("--nodes", type=int, default=2, help="number of nodes (default: 2)")
    up.add_argument("--proxy-mode", choices=("iptables", "nftables"), default="iptables")
    up.set_defaults(func=_lab_up)
    named(lab_sub.add_parser("down", help="stop a lab and remove everything it made")).set_defaults(func=_lab_down)
    named(lab_sub.add_parser("status", help="show whether a lab runs")).set_defaults(func=_lab_status)
    kc = named(lab_sub.add_parser("kubeconfig", help="print the lab's kubeconfig"))
    kc.add_argument("--path", action="store_true", help="print the file's path instead of its content")
    kc.set_defaults(func=_lab_kubeconfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (lifecycle.LabError, ValueError) as err:
        print(f"k8snet: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
