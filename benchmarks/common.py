"""What every benchmark script shares: percentiles, waiting, a client-side pod clock,
the machine and its load, and writing results with provenance.

One place, so the scripts and ``run.py`` compute a p99 the same way and record the
same machine facts (the software — k8snet's git commit, Python, libraries, kubectl —
comes from :func:`k8snet.results.software`, as for the notebooks' results).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from k8snet import results  # noqa: E402


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation (numpy's and pandas' default), so
    every script's p99 means the same thing."""
    if not values:
        raise ValueError("no samples")
    return float(np.percentile(np.asarray(values, dtype=float), q))


def spread(values: Sequence[float]) -> dict[str, float]:
    """min / median / max of one metric over the repetitions."""
    return {"min": float(min(values)), "median": float(np.median(values)), "max": float(max(values)), "n": len(values)}


def wait(predicate: Callable[[], bool], timeout: float = 300.0, every: float = 0.02, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise TimeoutError(f"{what} not reached within {timeout:.0f} s")


class PodClock:
    """Watches pods from the client side and records, per pod, when it was first seen
    and when it was first Ready (the API's timestamps have whole-second resolution, so
    a benchmark's sub-second start-up is timed here, on the client's monotonic clock)."""

    def __init__(self, core: Any, namespace: str, selector: str = "") -> None:
        from kubernetes import watch

        self.seen: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(core, namespace, selector), daemon=True)
        self._thread.start()

    def _run(self, core: Any, namespace: str, selector: str) -> None:
        try:
            for event in self._watch.stream(core.list_namespaced_pod, namespace, label_selector=selector,
                                            timeout_seconds=3600):
                now, pod = time.monotonic(), event["object"]
                self.seen.setdefault(pod.metadata.name, now)
                if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []):
                    self.ready.setdefault(pod.metadata.name, now)
        except Exception:  # the lab going down ends the watch; nothing to report
            pass

    def startups(self) -> list[float]:
        """Seconds from first seen to first Ready, one per pod that became Ready."""
        self._watch.stop()
        return [self.ready[n] - self.seen[n] for n in self.ready]


def load_average() -> dict[str, float]:
    one, five, fifteen = os.getloadavg()
    return {"1m": round(one, 2), "5m": round(five, 2), "15m": round(fifteen, 2)}


def _version(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def machine() -> dict[str, Any]:
    """The machine the numbers come from: CPU, cores, memory, kernel, distribution and
    the host tools that shape them (iptables, nft, dnsperf when present)."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    os_release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line) \
        if Path("/etc/os-release").exists() else {}
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "os": os_release.get("PRETTY_NAME", "").strip('"') or None,
            "iptables": _version(["iptables", "--version"]), "nft": _version(["nft", "--version"]),
            "python": platform.python_version()}


LAB_INFO = {"kind": "k8snet lab", "version": "v1.37.1"}


def save(rows: list[dict[str, Any]], name: str, params: dict[str, Any], *, cluster: dict[str, Any] | None = None,
         directory: Path | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Writes ``<name>.csv`` and ``<name>.json`` (k8snet.results' provenance plus the
    machine and ``extra``); returns the CSV's path."""
    import json

    path = results.save(pd.DataFrame(rows), name, params, {**LAB_INFO, **(cluster or {})}, directory=directory)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta.update({"machine": machine(), **(extra or {})})
    meta_path.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return path
