"""rtnl.py against pyroute2: import cost and per-pod cost of podnet's requests.

Why this exists: ``k8snet/lab/net/rtnl.py`` speaks rtnetlink by hand instead of using
pyroute2, and says why with these figures. pyroute2 is not a project dependency: run
this with a throw-away venv that has it and the worktree on the path (root):

    python3 -m venv /tmp/pr2 && /tmp/pr2/bin/pip install pyroute2
    sudo PYTHONPATH=$PWD /tmp/pr2/bin/python benchmarks/bench_rtnl.py --reps 60

Per repetition a fresh pair of scratch namespaces (``ip``, not timed) holds a veth pair
``va`` (node side) / ``eth0`` (pod side); then, timed, both sides are configured as
podnet does, concurrently from two threads: with ``rtnl.apply``, with pyroute2's
``IPRoute()`` opened in the same netns-switched threads, and with
``IPRoute(netns=...)`` (pyroute2 forks a child to open the socket there). Reported:
wall and CPU (this process's threads plus reaped children) per pod; the results are
checked to be the same addresses and routes. Import cost is measured in fresh
interpreters, after the supervisor's own import (``.venv``'s python with pyroute2's
site-packages appended) when ``--venv-python`` is given.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from k8snet.lab.net import nsutil, rtnl


def _iproute() -> Any:
    """pyroute2's IPRoute, from the interpreter running this. By name at run time on
    purpose: pyroute2 is the alternative rtnl.py was measured against and rejected,
    not a dependency of the project (tests/unit/test_environment.py checks those)."""
    return importlib.import_module("pyroute2").IPRoute

GW, IP = "10.244.2.1", "10.244.2.7"
NODE_SIDE = [f"addr add {GW}/32 dev va", "link set va up", f"route replace {IP}/32 dev va scope link"]
POD_SIDE = ["link set lo up", f"addr add {IP}/32 dev eth0", "link set eth0 up",
            f"route add {GW} dev eth0 scope link", f"route add default via {GW} dev eth0"]


def scratch_pair() -> tuple[str, str]:
    node, pod = (f"kb{uuid.uuid4().hex[:8]}" for _ in (1, 2))
    nsutil.ip_batch_sync([f"netns add {node}", f"netns add {pod}",
                          f"link add va netns {node} type veth peer name eth0 netns {pod}"])
    return node, pod


def both(node_side: Callable[[], None], pod_side: Callable[[], None]) -> None:
    threads = [threading.Thread(target=node_side), threading.Thread(target=pod_side)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def with_rtnl(node: str, pod: str) -> None:
    both(lambda: nsutil.run_in_netns_sync(node, rtnl.apply, NODE_SIDE),
         lambda: nsutil.run_in_netns_sync(pod, rtnl.apply, POD_SIDE))


def pyroute2_node(ipr: Any) -> None:
    i = ipr.link_lookup(ifname="va")[0]
    ipr.addr("add", index=i, address=GW, prefixlen=32)
    ipr.link("set", index=i, state="up")
    ipr.route("replace", dst=f"{IP}/32", oif=i, scope="link", proto="boot")


def pyroute2_pod(ipr: Any) -> None:
    lo, eth0 = ipr.link_lookup(ifname="lo")[0], ipr.link_lookup(ifname="eth0")[0]
    ipr.link("set", index=lo, state="up")
    ipr.addr("add", index=eth0, address=IP, prefixlen=32)
    ipr.link("set", index=eth0, state="up")
    ipr.route("add", dst=f"{GW}/32", oif=eth0, scope="link", proto="boot")
    ipr.route("add", dst="default", gateway=GW, oif=eth0, proto="boot")


def with_pyroute2_thread(node: str, pod: str) -> None:
    IPRoute = _iproute()  # noqa: N806 - the library's class

    def opened(fn: Callable[[Any], None]) -> Callable[[], None]:
        def run() -> None:
            with IPRoute() as ipr:  # the socket is made in the calling thread's namespace
                fn(ipr)
        return run
    both(lambda: nsutil.run_in_netns_sync(node, opened(pyroute2_node)),
         lambda: nsutil.run_in_netns_sync(pod, opened(pyroute2_pod)))


def with_pyroute2_netns(node: str, pod: str) -> None:
    IPRoute = _iproute()  # noqa: N806 - the library's class

    def run(ns: str, fn: Callable[[Any], None]) -> Callable[[], None]:
        def go() -> None:
            with IPRoute(netns=ns) as ipr:
                fn(ipr)
        return go
    both(run(node, pyroute2_node), run(pod, pyroute2_pod))


def state(ns: str) -> tuple[list[list[str]], str]:
    def ip(*args: str) -> str:
        return subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[1:4] for line in ip("-4", "-o", "addr").splitlines()), ip("route", "show", "table", "main")


VARIANTS: dict[str, Callable[[str, str], None]] = {
    "rtnl.apply": with_rtnl,
    "pyroute2 IPRoute() in the netns threads": with_pyroute2_thread,
    "pyroute2 IPRoute(netns=...)": with_pyroute2_netns,
}


def per_pod(reps: int) -> None:
    expected = None
    for name, fn in VARIANTS.items():  # warm-up, and the same result from each
        node, pod = scratch_pair()
        try:
            fn(node, pod)
            got = (state(node), state(pod))
            expected = expected or got
            if got != expected:
                raise SystemExit(f"{name} configured something else: {got} != {expected}")
        finally:
            nsutil.delete_netns(node), nsutil.delete_netns(pod)
    wall: dict[str, list[float]] = {k: [] for k in VARIANTS}
    cpu: dict[str, list[float]] = {k: [] for k in VARIANTS}
    load = os.getloadavg()[0]
    for _ in range(reps):
        for name, fn in VARIANTS.items():  # in turns
            node, pod = scratch_pair()
            try:
                t0, c0 = os.times(), time.process_time()
                w0 = time.perf_counter()
                fn(node, pod)
                wall[name].append((time.perf_counter() - w0) * 1e3)
                t1 = os.times()
                children = (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
                cpu[name].append((time.process_time() - c0 + children) * 1e3)
            finally:
                nsutil.delete_netns(node), nsutil.delete_netns(pod)
    print(f"per pod, {reps} repetitions, 1-min load {load:.2f} -> {os.getloadavg()[0]:.2f}")
    for name in VARIANTS:
        print(f"  {name:42s} CPU {summary(cpu[name])}  wall {summary(wall[name])}")


def imports(reps: int, python: str) -> None:
    extra = next(p for p in sys.path if p.endswith("site-packages"))
    pre = f"import sys, time; import k8snet.lab.supervisor; sys.path.append({extra!r}); t = time.perf_counter(); "
    code = {"import pyroute2.IPRoute after the supervisor's": pre + "from pyroute2 import IPRoute",
            "import rtnl after nsutil": "import sys, time; import k8snet.lab.net.nsutil; t = time.perf_counter(); "
                                        "import k8snet.lab.net.rtnl"}
    times: dict[str, list[float]] = {k: [] for k in code}
    load = os.getloadavg()[0]
    for _ in range(reps):
        for name, src in code.items():
            out = subprocess.run([python, "-c", src + "; print(time.perf_counter() - t)"],
                                 capture_output=True, text=True, check=True).stdout
            times[name].append(float(out) * 1e3)
    print(f"imports, {reps} fresh interpreters each, 1-min load {load:.2f} -> {os.getloadavg()[0]:.2f}")
    for name, values in times.items():
        print(f"  {name:48s} {summary(values)}")


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):6.2f} ms ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=60)
    ap.add_argument("--venv-python", default=".venv/bin/python",
                    help="the project's interpreter, for the import timings (it has the supervisor's dependencies)")
    args = ap.parse_args()
    imports(max(args.reps // 3, 5), args.venv_python)
    per_pod(args.reps)


if __name__ == "__main__":
    main()
