"""Every benchmark row of issue 12 in one run: repetitions, min / median / max, goals.

    sudo .venv/bin/python benchmarks/run.py                  # every row, full sizes, 3 repetitions
    sudo .venv/bin/python benchmarks/run.py --smoke          # tiny sizes, 1 repetition (the tests' smoke run)
    sudo .venv/bin/python benchmarks/run.py --rows lab,scale --set scale_pods=200
    python benchmarks/run.py --readme                        # README's table from the last run's results

Each repetition runs every selected row once, rows in turn (so drift in the machine's
load falls on all of them alike); each ratio is measured inside one row, side by side
(ClusterIP vs pod IP in ``study``, iptables vs nftables in ``proxy``). A row that
needs a lab brings up a fresh one named ``--lab`` and takes it down before the next
row. The run prints one line per measurement and then, per metric, min / median / max
against its goal with the load average, and writes to ``--out`` (default
``data/results/bench/``):

- ``bench.csv``: one line per (repetition, row, metric): value, unit, 1-minute load;
- ``bench.json``: k8snet.results' provenance (k8snet commit, Python, libraries,
  kubectl), the machine (CPU, cores, memory, kernel, iptables/nft versions), the
  sizes, the command, the load average at start and end, per metric its summary and
  goal and whether it was met, and each failed row's error.

``--readme`` rewrites the README's table between ``<!-- bench:begin -->`` and
``<!-- bench:end -->`` from ``bench.json``: measured median (min–max), goal, met or not,
with the conditions and the command that re-measures them.

Adding a row (as ``dns`` and ``isolation`` were): give the script
a function that measures once and returns ``{metric: value}`` (it brings up and takes
down its own lab, or needs none), then register it at the end of :data:`ROWS`'
definition below::

    def _dns(sizes: Sizes, lab: str) -> dict[str, float]:
        import bench_dns
        return bench_dns.one_run(lab, queries=sizes.dns_queries)

    Row("dns", "cluster DNS vs dnsmasq, dnsperf from a pod, same run", _dns, lambda s: f"{s.dns_queries} queries",
        (Metric("qps_ratio", "lab DNS QPS ÷ dnsmasq QPS", "×", 0.5, higher_is_better=True), ...))

and add its sizes (full and smoke) to :class:`Sizes` and :data:`SMOKE`. Values the
function returns beyond its declared metrics are recorded too (CSV and JSON), but only
declared metrics have a goal and appear in the README.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import math
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, load_average, save, spread  # noqa: E402

from k8snet import results  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Every size a row takes; the defaults are the full benchmark."""

    small: int = 10  # replicas of the small Deployment (lab row)
    big: int = 100  # replicas of the big Deployment (lab row)
    services: tuple[int, ...] = (100, 10000)  # Services programmed (proxy row): first-packet ratio last ÷ first
    proxy_connections: int = 1000  # connections per size and mode (proxy row)
    lb_connections: int = 10000  # lb_distribution's connections (study row)
    latency_connections: int = 300  # connections per target and round, ClusterIP vs pod IP (study row)
    scale_pods: int = 1000  # busybox sleep pods (scale row)
    scale_nodes: int = 4
    dns_services: int = 10  # Services, one query-file line each (dns row)
    dns_seconds: int = 10  # each dnsperf run (dns row)
    dns_rate: int = 10000  # QPS of the fixed-rate runs the p99 comes from (dns row)
    dns_rounds: int = 2  # rounds of the three servers per repetition, the order alternating (dns row)
    isolation_idle_s: int = 10  # sampling without load (isolation row)
    isolation_load_s: int = 30  # sampling under the hostile load (isolation row)
    # processes writing ~1.4 MiB JSON, ~1.4 MiB YAML, 95-deep JSON beside the bomb's (isolation row); the defaults
    # are the load of the figure recorded before the row existed (a nested writer stalls the loop for seconds)
    isolation_json: int = 0
    isolation_yaml: int = 2
    isolation_nested: int = 0


#: Small enough for the tests: seconds per row (the notebooks row has no smaller size: nbval runs at CI sizes).
SMOKE = Sizes(small=3, big=10, services=(10, 100), proxy_connections=50, lb_connections=100,
              latency_connections=50, scale_pods=10, scale_nodes=4, dns_services=10, dns_seconds=2, dns_rate=1000,
              dns_rounds=1, isolation_idle_s=2, isolation_load_s=5, isolation_json=1, isolation_yaml=1,
              isolation_nested=1)  # the smoke run sends every kind of body once


@dataclasses.dataclass(frozen=True)
class Metric:
    key: str  # as the row's function returns it
    what: str  # the README's wording
    unit: str
    goal: float | None = None  # None: recorded, no goal (``note`` says what anchors it)
    higher_is_better: bool = False
    note: str = ""

    def met(self, median: float) -> bool | None:
        if self.goal is None or math.isnan(median):
            return None
        return median >= self.goal if self.higher_is_better else median <= self.goal

    def goal_text(self) -> str:
        if self.goal is None:
            return f"recorded ({self.note})" if self.note else "recorded"
        text = f"{'≥' if self.higher_is_better else '≤'} {self.goal:g} {self.unit}".rstrip()
        return f"{text} ({self.note})" if self.note else text


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    title: str
    measure: Callable[[Sizes, str], dict[str, float]]  # one repetition: (sizes, lab name) -> values
    conditions: Callable[[Sizes], str]
    metrics: tuple[Metric, ...]


# The rows' functions import their scripts when called: --readme needs none of them.

def _lab(sizes: Sizes, lab: str) -> dict[str, float]:
    import bench_lab
    return bench_lab.one_run(lab, sizes.small, sizes.big)


def _proxy(sizes: Sizes, lab: str) -> dict[str, float]:
    import bench_proxy
    rows = bench_proxy.measure(list(sizes.services), sizes.proxy_connections)
    first, last = min(sizes.services), max(sizes.services)
    at = {(r["mode"], r["services"]): r for r in rows}
    out: dict[str, float] = {}
    for mode in ("iptables", "nftables"):
        big = at[(mode, last)]
        out |= {f"{mode}_program_s": big["program_s"], f"{mode}_add_one_s": big["add_one_s"],
                f"{mode}_p50_us": big["p50_us"], f"{mode}_p50_us_fewest": at[(mode, first)]["p50_us"],
                f"{mode}_direct_p50_us": big["direct_p50_us"],
                f"{mode}_p50_ratio": big["p50_us"] / at[(mode, first)]["p50_us"]}
    return out


def _study(sizes: Sizes, lab: str) -> dict[str, float]:
    import bench_study
    return bench_study.one_run(lab, sizes.lb_connections, sizes.latency_connections)


def _nbval_workers() -> int:
    import bench_study
    return bench_study.NBVAL_WORKERS


_NOTEBOOK_RUNS = itertools.count()  # which repetition of the notebooks row this is


def _notebooks(sizes: Sizes, lab: str) -> dict[str, float]:
    import bench_study

    from k8snet.lab import lifecycle
    from k8snet.lab.config import LabConfig
    lifecycle.up(LabConfig(name=lab))  # the default 3 nodes, as CI: the committed outputs count them
    try:
        # in turns: one repetition two at a time first, the next one at a time first
        order = ("notebooks_s", "notebooks_serial_s")
        if next(_NOTEBOOK_RUNS) % 2:
            order = order[::-1]
        workers = {"notebooks_s": bench_study.NBVAL_WORKERS, "notebooks_serial_s": 1}
        return {key: bench_study.notebooks_run(lab, workers=workers[key]) for key in order}
    finally:
        lifecycle.down(lab)


def _scale(sizes: Sizes, lab: str) -> dict[str, float]:
    import bench_scale
    return bench_scale.one_run(lab, sizes.scale_pods, sizes.scale_nodes)


def _dns(sizes: Sizes, lab: str) -> dict[str, float]:
    import bench_dns
    return bench_dns.one_run(lab, sizes.dns_services, sizes.dns_seconds, sizes.dns_rate, sizes.dns_rounds)


def _isolation(sizes: Sizes, lab: str) -> dict[str, float]:
    import bench_isolation
    return bench_isolation.one_run(lab, sizes.isolation_idle_s, sizes.isolation_load_s, sizes.isolation_json,
                                   sizes.isolation_yaml, sizes.isolation_nested)


ROWS: tuple[Row, ...] = (
    Row("lab", "lab up and pod start-up (bench_lab.py)", _lab,
        lambda s: f"fresh lab of 2 nodes, iptables; nginx Deployments of {s.small} and {s.big} replicas",
        (Metric("up_to_ready_s", "`k8snet lab up` → nodes Ready and DNS answering", "s", 1.5,
                note="kind ~33 s, k3d ~20 s, minikube ~51 s"),
         Metric("up_to_reachable_s", "`lab up` → a client pod gets nginx through its Service by name", "s", 2.0),
         Metric("deploy_small_pod_startup_p99_s", "pod start-up p99 (watch: first seen → Ready), small Deployment",
                "s", 0.3),
         Metric("deploy_big_pod_startup_p99_s", "pod start-up p99, big Deployment", "s", 1.0,
                note="Kubernetes SLO ≤ 5 s"),
         Metric("deploy_big_all_ready_s", "big Deployment: apply → every pod in the endpoints", "s"),
         Metric("deploy_big_cpu_per_pod_ms", "big Deployment: CPU per pod (the lab's supervisor, the processes it "
                "ran, the containers)", "ms", note="× pods ÷ 2 cores: the start-up floor"),
         Metric("deploy_big_api_writes", "big Deployment: API writes (SQLite commits and watch events)", ""))),
    Row("proxy", "kube-proxy programming and first packet, iptables vs nftables (bench_proxy.py)", _proxy,
        lambda s: f"renderers + iptables-restore / nft -f in throwaway namespaces, {max(s.services)} Services "
                  f"(ratio against {min(s.services)}), {s.proxy_connections} connections",
        (Metric("iptables_program_s", "iptables: program every Service (render + load)", "s", 1.0),
         Metric("iptables_add_one_s", "iptables: one more Service", "s", 0.2),
         Metric("nftables_program_s", "nftables: program every Service", "s", 1.0),
         Metric("nftables_add_one_s", "nftables: one more Service", "s", 0.05),
         Metric("nftables_p50_ratio", "nftables first packet p50, most ÷ fewest Services", "×", 1.2),
         Metric("iptables_p50_ratio", "iptables first packet p50, most ÷ fewest Services", "×",
                note="anchor: 47 → 272 µs from 5k to 30k Services"))),
    Row("study", "the study's measurements (bench_study.py)", _study,
        lambda s: f"fresh lab of 2 nodes, 3 agnhost backends; {s.lb_connections} connections; "
                  f"{s.latency_connections} × 2 rounds per target",
        (Metric("lb_s", "`lb_distribution` end to end", "s", 3.0),
         Metric("clusterip_over_pod_ip_p50", "connect p50 through the ClusterIP ÷ to the pod IP", "×", 1.05))),
    Row("notebooks", "nbval over all notebooks (bench_study.py)", _notebooks,
        lambda s: f"fresh lab of 3 nodes (the default), CI sample sizes; {_nbval_workers()} notebooks at a "
                  "time as the test command runs them and one at a time, on the same lab, the order alternating "
                  "by repetition",
        (Metric("notebooks_s", "nbval over all notebooks, as the test command runs it", "s", 60.0),
         Metric("notebooks_serial_s", "nbval over all notebooks, one at a time", "s",
                note="the same lab, in turns"))),
    Row("scale", "how many pods a lab holds (bench_scale.py)", _scale,
        lambda s: f"fresh lab of {s.scale_nodes} nodes, one Deployment of {s.scale_pods} busybox `sleep` pods",
        (Metric("ready_p99_s", "pod start-up p99 (watch: first seen → Ready)", "s",
                note="Kubernetes SLO ≤ 5 s"),
         Metric("all_ready_s", "Deployment created → every pod Ready", "s"),
         Metric("memory_per_pod_kib", "memory per pod: Δ(RSS of the lab's processes + kernel) ÷ pods", "KiB",
                note="kernel: SUnreclaim + PageTables + KernelStack + Shmem"),
         Metric("memory_pss_per_pod_kib", "memory per pod, shared pages divided: Δ(PSS + kernel) ÷ pods", "KiB"),
         Metric("down_s", "`lab down` with every pod running", "s"))),
    Row("dns", "cluster DNS vs dnsmasq, dnsperf from a pod, same run (bench_dns.py)", _dns,
        lambda s: f"fresh lab of 2 nodes; `dnsperf` from a busybox pod, A queries for {s.dns_services} Service "
                  f"FQDNs; dnsmasq in the coredns pod's network namespace serving the same names; {s.dns_rounds} "
                  f"round(s) of {s.dns_seconds} s runs per server: `-q 100` throughput, then `-Q {s.dns_rate}`",
        (Metric("qps_ratio", "cluster DNS ÷ dnsmasq throughput (`dnsperf -q 100`, at the coredns pod, same run)", "×",
                0.5, higher_is_better=True),
         Metric("lab_pod_p99_ms", "cluster DNS latency p99 at a fixed rate (10,000 QPS at full size)", "ms", 1.0),
         Metric("lab_pod_fixed_qps", "cluster DNS QPS answered at that fixed rate", "QPS",
                note="the rate offered is in the conditions"),
         Metric("dnsmasq_p99_ms", "dnsmasq latency p99 at the same fixed rate, same run", "ms",
                note="the tail the machine allows"))),
    Row("isolation", "/healthz and the alias bomb under hostile-but-allowed bodies (bench_isolation.py)", _isolation,
        lambda s: f"fresh lab of 2 nodes, default body workers; {s.isolation_idle_s} s idle, then {s.isolation_load_s} s "
                  f"of /healthz every 20 ms while processes send in a loop: 1 the alias bomb, {s.isolation_json} "
                  f"~1.4 MiB JSON and {s.isolation_yaml} ~1.4 MiB YAML ConfigMaps, {s.isolation_nested} 95-deep JSON",
        (Metric("bomb_p99_ms", "the YAML alias bomb refused (400), p99, under that load", "ms", 100.0),
         Metric("healthz_load_p99_ms", "`/healthz` p99 meanwhile", "ms", 50.0),
         Metric("healthz_idle_p99_ms", "`/healthz` p99 with the lab idle", "ms"))),
)
BY_NAME = {row.name: row for row in ROWS}
OUT = results.results_dir() / "bench"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def parse_sizes(base: Sizes, assignments: list[str]) -> Sizes:
    """``--set name=value`` over ``base`` (``services=100,1000,10000`` for the tuple)."""
    fields = {f.name: f for f in dataclasses.fields(Sizes)}
    changes: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"run.py: --set {item!r}: expected NAME=VALUE with NAME one of {', '.join(fields)}")
        try:
            changes[key] = tuple(int(v) for v in value.split(",")) if key == "services" else int(value)
        except ValueError:
            raise SystemExit(f"run.py: --set {item!r}: not a whole number") from None
    return dataclasses.replace(base, **changes)


def unit_of(key: str) -> str:
    """The unit an undeclared value's name ends with (``_s``, ``_ms``, ``_us``, ``_kib``, ``_qps``)."""
    return next((unit for suffix, unit in (("_s", "s"), ("_ms", "ms"), ("_us", "µs"), ("_kib", "KiB"), ("_qps", "QPS"))
                 if key.endswith(suffix)), "")


def run(rows: list[Row], sizes: Sizes, repetitions: int, lab: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Measurements (long format) and errors."""
    measurements: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for rep in range(repetitions):
        for row in rows:
            t0 = time.monotonic()
            try:
                values = row.measure(sizes, lab)
            except Exception as exc:  # one failed row must not lose the others' numbers
                errors.append({"repetition": rep, "row": row.name, "error": f"{type(exc).__name__}: {exc}",
                               "traceback": traceback.format_exc()})
                print(f"[{rep + 1}/{repetitions}] {row.name}: FAILED {type(exc).__name__}: {exc}", flush=True)
                continue
            missing = [m.key for m in row.metrics if m.key not in values]
            if missing:
                errors.append({"repetition": rep, "row": row.name, "error": f"no value for {missing}"})
            load = os.getloadavg()[0]
            units = {m.key: m.unit for m in row.metrics}
            for key, value in values.items():
                measurements.append({"repetition": rep, "row": row.name, "metric": key, "value": float(value),
                                     "unit": units.get(key) or unit_of(key), "load_1m": round(load, 2)})
            shown = ", ".join(f"{m.key}={values[m.key]:.3g}" for m in row.metrics if m.key in values)
            print(f"[{rep + 1}/{repetitions}] {row.name} ({time.monotonic() - t0:.0f} s, load {load:.2f}): {shown}",
                  flush=True)
    return measurements, errors


def summarise(rows: list[Row], measurements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per ``row.metric``: min / median / max / n, and for declared metrics their goal and verdict."""
    declared = {(row.name, m.key): (row, m) for row in rows for m in row.metrics}
    values: dict[tuple[str, str], list[float]] = {key: [] for key in declared}  # declared order first
    for m in measurements:
        values.setdefault((m["row"], m["metric"]), []).append(m["value"])
    out: dict[str, dict[str, Any]] = {}
    for (row_name, key), vals in values.items():
        if not vals:
            continue  # the row failed in every repetition: its error says why
        entry: dict[str, Any] = {"row": row_name, "metric": key, **spread(vals)}
        if (row_name, key) in declared:
            _, metric = declared[(row_name, key)]
            entry |= {"what": metric.what, "unit": metric.unit, "goal": metric.goal,
                      "higher_is_better": metric.higher_is_better, "goal_text": metric.goal_text(),
                      "met": metric.met(entry["median"])}
        out[f"{row_name}.{key}"] = entry
    return out


def print_summary(summary: dict[str, dict[str, Any]], load: dict[str, Any]) -> None:
    print(f"\n{'metric':<44} {'min':>10} {'median':>10} {'max':>10}  goal")
    for name, s in summary.items():
        if "goal_text" not in s:
            continue
        verdict = {True: "met", False: "NOT MET", None: ""}[s["met"]]
        print(f"{name:<44} {s['min']:>10.4g} {s['median']:>10.4g} {s['max']:>10.4g}  {s['goal_text']} {verdict}")
    print(f"load average (1 min): start {load['start']['1m']}, end {load['end']['1m']}; "
          f"per measurement {load['min_1m']}–{load['max_1m']}")


def write(out: Path, rows: list[Row], sizes: Sizes, repetitions: int, measurements: list[dict[str, Any]],
          errors: list[dict[str, Any]], load: dict[str, Any], argv: list[str]) -> Path:
    summary = summarise(rows, measurements)
    conditions = {row.name: row.conditions(sizes) for row in rows}
    params = {"rows": [r.name for r in rows], "repetitions": repetitions, "sizes": dataclasses.asdict(sizes)}
    path = save(measurements, "bench", params, directory=out,
                cluster={"proxy_mode": "iptables (the proxy row: both modes)"},
                extra={"benchmark": "benchmarks/run.py", "command": " ".join(["benchmarks/run.py", *argv]),
                       "load_average": load, "conditions": conditions, "summary": summary, "errors": errors})
    print_summary(summary, load)
    return path


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _one_line(error: str, limit: int = 240) -> str:
    """An error as one table-friendly line (bench.json keeps it whole)."""
    line = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", error).split())  # pytest colours its summary
    return line if len(line) <= limit else line[:limit - 1] + "…"


def readme_table(meta: dict[str, Any]) -> str:
    """The README's performance section from ``bench.json``."""
    machine, load = meta["machine"], meta["load_average"]
    reps, k8snet = meta["params"]["repetitions"], meta["software"]["k8snet"]
    commit = str(k8snet.get("commit") or "?")[:10] + (" with local changes" if k8snet.get("dirty") else "")
    lines = [f"Measured {meta['date'][:10]} by `benchmarks/run.py` ({reps} repetition{'s' * (reps != 1)}; "
             f"k8snet {commit}) on {machine['cores']} cores "
             f"({machine['cpu']}), {machine['memory_gib']} GiB, {machine.get('os') or 'Linux'}, kernel "
             f"{machine['kernel']}; 1-minute load average {load['min_1m']}–{load['max_1m']} during the run.",
             "", "| what | measured: median (min–max) | goal | |", "|---|---|---|---|"]
    for row_name in meta["conditions"]:
        for s in meta["summary"].values():
            if s["row"] != row_name or "goal_text" not in s:
                continue
            verdict = {True: "met", False: "**not met**", None: ""}[s["met"]]
            lines.append(f"| {s['what']} | {_number(s['median'])} ({_number(s['min'])}–{_number(s['max'])}) "
                         f"{s['unit']}".rstrip() + f" | {s['goal_text']} | {verdict} |")
    lines += ["", "Conditions per row: " + "; ".join(f"**{k}**: {v}" for k, v in meta["conditions"].items()) + "."]
    if meta.get("errors"):
        lines += ["", "Failed in this run: " + "; ".join(f"{e['row']} (repetition {e['repetition'] + 1}): {_one_line(e['error'])}"
                                                         for e in meta["errors"]) + "."]
    lines += ["", f"Re-measure (after `sudo bash scripts/setup.sh`, on a quiet machine): "
                  f"`sudo .venv/bin/python {meta['command']}`, then `.venv/bin/python benchmarks/run.py --readme`. "
                  "Every measurement with its load average is in `data/results/bench/bench.csv`, the machine and "
                  "software in `bench.json`. For each goal not met, `docs/performance.md` shows by profile where "
                  "the time goes and the floor that remains."]
    return "\n".join(lines)


def rewrite_readme(readme: Path, meta: dict[str, Any]) -> None:
    text = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"run.py: {readme} has no {BEGIN} … {END} markers to write the table between")
    readme.write_text(pattern.sub(lambda _: f"{BEGIN}\n{readme_table(meta)}\n{END}", text, count=1))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(BY_NAME), help=f"comma-separated, of {', '.join(BY_NAME)}")
    ap.add_argument("--repetitions", type=int)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes and 1 repetition (what the tests run)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override one size")
    ap.add_argument("--lab", default="bench", help="the lab name rows bring up and down, one at a time")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--readme", nargs="?", const=ROOT / "README.md", type=Path, metavar="README",
                    help="only rewrite the README's table from OUT/bench.json")
    args = ap.parse_args(argv)
    if args.readme:
        meta_path = args.out / "bench.json"
        if not meta_path.exists():
            raise SystemExit(f"run.py: no {meta_path}; run the benchmark first")
        rewrite_readme(args.readme, json.loads(meta_path.read_text()))
        print(f"rewrote the table in {args.readme} from {meta_path}")
        return 0
    unknown = [n for n in args.rows.split(",") if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"run.py: unknown rows {unknown}; rows are {', '.join(BY_NAME)}")
    rows = [BY_NAME[n] for n in args.rows.split(",")]
    sizes = parse_sizes(SMOKE if args.smoke else Sizes(), args.set)
    repetitions = args.repetitions or (1 if args.smoke else 3)
    if os.geteuid() != 0:
        raise SystemExit("run.py: the benchmark brings up labs and network namespaces: run it as root (sudo)")
    os.environ.setdefault("K8SNET_MERGE_KUBECONFIG", "0")  # a benchmark lab is nobody's kubectl context
    os.environ.setdefault("K8SNET_STATE_ROOT", "/tmp/k8snet-bench")  # as the scripts: never the user's labs
    start = load_average()
    began = dt.datetime.now(dt.timezone.utc)
    print(f"benchmark: rows {', '.join(r.name for r in rows)}; {repetitions} repetitions; {sizes}; load {start}",
          flush=True)
    measurements, errors = run(rows, sizes, repetitions, args.lab)
    loads = [m["load_1m"] for m in measurements] or [start["1m"]]
    load = {"start": start, "end": load_average(), "min_1m": min(loads), "max_1m": max(loads),
            "began": began.isoformat(timespec="seconds")}
    path = write(args.out, rows, sizes, repetitions, measurements, errors, load, argv)
    print(f"wrote {path} and {path.with_suffix('.json').name}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
