"""k8snet: a study kit for the Kubernetes networking model.

The notebooks call only this small API::

    import k8snet
    cluster = k8snet.connect()             # the embedded lab (root: directly; a normal user:
                                           # its context k8snet-<lab>), or connect("kind-kind")
    with cluster.namespace() as ns:
        cluster.apply("data/manifests/....yaml", ns)
        df, summary = k8snet.lb_distribution(cluster, "backends", ns, connections=1000)

The embedded lab cluster itself lives in :mod:`k8snet.lab`.

Names are imported on first use (PEP 562): the lab's own processes (supervisor, DNS,
pods) import ``k8snet.lab`` and must not pay for pandas, matplotlib and scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

_EXPORTS = {
    "connect": "cluster", "Cluster": "cluster", "ClusterInfo": "cluster", "ExecResult": "cluster",
    "WaitTimeout": "cluster", "LabFacts": "cluster",
    "Measurement": "measure", "ProbeError": "measure", "lb_distribution": "measure", "dns_latency": "measure",
    "pod_to_pod": "measure", "env": "measure", "rtt_baseline": "measure",
    "large_samples": "params",
}
_MODULES = ("analysis", "cluster", "measure", "plots", "results", "probe", "tls")

__all__ = ["__version__", *_EXPORTS, *_MODULES]

if TYPE_CHECKING:
    from . import analysis, plots, results, tls  # noqa: F401
    from .cluster import Cluster, ClusterInfo, ExecResult, LabFacts, WaitTimeout, connect  # noqa: F401
    from .measure import Measurement, ProbeError, dns_latency, env, lb_distribution, pod_to_pod, rtt_baseline  # noqa: F401
    from .params import large_samples  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'k8snet' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
