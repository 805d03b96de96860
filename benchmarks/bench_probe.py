"""Benchmark: the per-connection cost of the load-balancing measurement's two ends,
on loopback (no lab), old and new side by side in one run.

    python3 benchmarks/bench_probe.py --baseline REF [--connections 10000] [--runs 3]

- client: the probe's ``lb`` mode (``k8snet/probe/probe.py`` of this checkout, and of
  git revision ``--baseline``) — a new connection per request;
- server: agnhost ``serve-hostname``'s listener of this checkout, and the same handler on
  socketserver's thread-per-connection ``ThreadingHTTPServer`` (the listener before
  threads were reused).
Each of the four pairings runs ``--runs`` times, taking turns. Prints wall seconds
and the CPU seconds of client and server (from /proc: user + system), which the
load of other processes on the machine changes much less than wall time.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")

SERVER = """
import os, sys
from http.server import ThreadingHTTPServer
from k8snet.lab.images import agnhost
if sys.argv[1] == "reused":
    server = agnhost.HttpListener(0, agnhost.HostnameHandler)
else:
    server = ThreadingHTTPServer(("127.0.0.1", 0), agnhost.HostnameHandler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def cpu_seconds(pid: int) -> float:
    """user + system time of a process (with its threads) from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def baseline_probe(ref: str) -> Path:
    script = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:k8snet/probe/probe.py"], capture_output=True,
                            check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="k8snet-probe-")) / "probe.py"
    path.write_bytes(script)
    return path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(probe: Path, listener: str, connections: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-c", SERVER, listener], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
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
        server.terminate()
        server.wait()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", required=True, metavar="REF", help="git revision of the old probe")
    args = parser.parse_args()
    probes = {"probe new": ROOT / "k8snet" / "probe" / "probe.py", f"probe {args.baseline}": baseline_probe(args.baseline)}
    listeners = {"reused threads": "reused", "thread per connection": "per-connection"}
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
        print(f"{probe_name:>16} | {listener_name:<21} | " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
