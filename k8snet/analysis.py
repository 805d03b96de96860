"""Statistics for the measurements: pure functions over counts and samples.

Load balancing is judged per connection against a uniform spread over the backends
(chi-square goodness of fit, per-backend share with a Wilson interval); latencies are
summarised by percentiles and an empirical CDF. Nothing here talks to a cluster.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class ChiSquare:
    """Chi-square goodness of fit against a uniform spread over ``backends``."""

    statistic: float
    p_value: float
    dof: int
    connections: int
    backends: int

    def uniform(self, alpha: float = 0.01) -> bool:
        """True when uniformity is not rejected at significance ``alpha``."""
        return self.p_value >= alpha


def chi_square_uniform(counts: Mapping[str, int] | Sequence[int]) -> ChiSquare:
    """Tests per-backend connection counts against "every backend equally likely".

    Backends that got no connection must be present with a count of 0, or the test
    cannot see them. Needs at least two backends.
    """
    values = np.asarray(list(counts.values()) if isinstance(counts, Mapping) else list(counts), dtype=float)
    if values.size < 2:
        raise ValueError("a uniformity test needs at least two backends")
    n = int(values.sum())
    if n == 0:
        raise ValueError("no connections to test")
    result = stats.chisquare(values)
    return ChiSquare(float(result.statistic), float(result.pvalue), int(values.size - 1), n, int(values.size))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion; unlike the normal approximation it
    stays inside [0, 1] and behaves for small counts and shares near 0 or 1."""
    if n <= 0:
        return (0.0, 1.0)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def shares(counts: Mapping[str, int], confidence: float = 0.95) -> pd.DataFrame:
    """Per backend: count, share, its interval (``low``, ``high``) and the uniform share."""
    n = sum(counts.values())
    rows = []
    for backend, count in counts.items():
        low, high = wilson_interval(count, n, confidence)
        rows.append({"backend": backend, "count": int(count), "share": count / n if n else 0.0,
                     "low": low, "high": high, "expected": 1 / len(counts)})
    return pd.DataFrame(rows, columns=["backend", "count", "share", "low", "high", "expected"])


def backend_counts(backends: Iterable[str | None], expected: Iterable[str] = ()) -> dict[str, int]:
    """Counts answers per backend, with 0 for every ``expected`` backend that never answered.
    Failed connections (None) are not counted."""
    counts: dict[str, int] = {name: 0 for name in sorted(expected)}
    for backend in backends:
        if backend is not None and not (isinstance(backend, float) and math.isnan(backend)):
            counts[backend] = counts.get(backend, 0) + 1
    return counts


def percentiles(data: pd.DataFrame | Sequence[float], value: str = "latency_us", by: str | Sequence[str] | None = None,
                q: Sequence[float] = (50, 90, 99)) -> pd.DataFrame:
    """Percentiles (columns ``p50``, ``p90``…) and the count, overall or per group."""
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame({value: list(data)})

    def summarise(values: pd.Series) -> pd.Series:
        arr = values.dropna().to_numpy(dtype=float)
        out = {f"p{q_:g}": float(np.percentile(arr, q_)) if arr.size else math.nan for q_ in q}
        out["n"] = int(arr.size)
        return pd.Series(out)

    if by is None:
        return summarise(frame[value]).to_frame().T
    return frame.groupby(by, sort=False)[value].apply(summarise).unstack()


def ecdf(values: Sequence[float] | pd.Series) -> pd.DataFrame:
    """Empirical CDF: sorted values ``x`` and the fraction ``p`` of samples ≤ x."""
    x = np.sort(np.asarray(pd.Series(values).dropna(), dtype=float))
    return pd.DataFrame({"x": x, "p": np.arange(1, x.size + 1) / x.size if x.size else np.array([])})


def ratio(values: Sequence[float] | pd.Series, baseline: float) -> pd.Series:
    """Latencies as multiples of a baseline (e.g. the median raw UDP round trip)."""
    if baseline <= 0:
        raise ValueError("the baseline must be positive")
    return pd.Series(values, dtype=float) / baseline
