"""Benchmark: the per-connection cost of the load-balancing measurement's two ends,
on loopback (no lab), old and new side by side in one run.

    python3 benchmarks/bench_probe.py --baseline REF [--connections 10000] [--runs 3]

- client: the probe's ``lb`` mode (``k8snet/probe/probe.py`` of this checkout, and of
  git revision ``--baseline``) -- a new connection per request;
- server: agnhost ``serve-hostname`` (``k8snet/lab/images/agnhost.py`` of this checkout,
  and of ``--baseline``), run as the lab runs it: its own process, on a free port.
Each of the four pairings runs ``--runs`` times, taking turns. Prints wall seconds
and the CPU seconds of client and server (from /proc: user + system), which the
load of other processes on the machine changes much less than wall time.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from k8snet.lab.polling import wait_until

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """user + system time of a process (with its threads) from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def baseline_file(ref: str, path: str) -> Path:
    """``path`` as git revision ``ref`` has it, in a temporary folder."""
    script = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{path}"], capture_output=True, check=True).stdout
    copy = Path(tempfile.mkdtemp(prefix="k8snet-bench-")) / Path(path).name
    copy.write_bytes(script)
    return copy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(probe: Path, agnhost: Path, connections: int) -> dict[str, float]:
    port = str(free_port())
    server = subprocess.Popen([sys.executable, str(agnhost), "serve-hostname", "--port", port],
                              stdout=subprocess.DEVNULL)
    try:
        wait_until(f"agnhost on port {port}", lambda: listening(int(port)), 10, interval=0.05)
        server_cpu0, client_cpu0 = cpu_seconds(server.pid), children_cpu()
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, str(probe), "lb", "--host", "127.0.0.1", "--port", port, "--path", "/",
                              "--count", str(connections)], capture_output=True, check=True).stdout
        wall = time.monotonic() - t0
        # the client has been waited for, the server not yet: the children's total is the client's
        client_cpu = children_cpu() - client_cpu0
        if b'"done"' not in out:
            raise RuntimeError(f"probe printed no final line: {out[-500:]!r}")
        return {"wall_s": wall, "client_cpu_s": client_cpu, "server_cpu_s": cpu_seconds(server.pid) - server_cpu0}
    finally:
        server.kill()  # SIGTERM only makes serve-hostname wait out a grace period, as the real one does
        server.wait()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", required=True, metavar="REF", help="git revision of the old probe and agnhost")
    args = parser.parse_args()
    probes = {"probe new": ROOT / "k8snet" / "probe" / "probe.py",
              f"probe {args.baseline}": baseline_file(args.baseline, "k8snet/probe/probe.py")}
    listeners = {"agnhost new": ROOT / "k8snet" / "lab" / "images" / "agnhost.py",
                 f"agnhost {args.baseline}": baseline_file(args.baseline, "k8snet/lab/images/agnhost.py")}
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    for _ in range(args.runs):
        for (probe_name, probe), (listener_name, listener) in itertools.product(probes.items(), listeners.items()):
            results.setdefault((probe_name, listener_name), []).append(one_run(probe, listener, args.connections))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(f"{args.connections} new connections, median (min-max) of {args.runs} runs")
    for (probe_name, listener_name), runs in results.items():
        cells = []
        for key in ("wall_s", "client_cpu_s", "server_cpu_s"):
            values = [r[key] for r in runs]
            cells.append(f"{key} {statistics.median(values):5.2f} ({min(values):.2f}-{max(values):.2f})")
        print(f"{probe_name:>16} | {listener_name:<18} | " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
