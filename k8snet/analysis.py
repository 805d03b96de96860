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


#: a tail percentile is quoted only with at least this many samples beyond it
#: (p90 needs 100 samples, p95 200, p99 1,000); the median is always quoted
TAIL_SAMPLES = 10


def min_samples(q: float) -> int:
    """How many samples the ``q``-th percentile needs before it is quoted."""
    tail = min(q, 100 - q) / 100
    return 1 if tail >= 0.5 else math.ceil(TAIL_SAMPLES / tail - 1e-9)


def percentiles(data: pd.DataFrame | Sequence[float], value: str = "latency_us", by: str | Sequence[str] | None = None,
                q: Sequence[float] = (50, 90, 99)) -> pd.DataFrame:
    """Percentiles (columns ``p50``, ``p90``…) and the count, overall or per group.

    A tail percentile from too few samples is not an estimate: it is NaN for a group
    with fewer than :func:`min_samples` values, and its column is left out when no
    group has enough (so p99 appears only from 1,000 samples on)."""
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame({value: list(data)})

    def summarise(values: pd.Series) -> pd.Series:
        arr = values.dropna().to_numpy(dtype=float)
        out = {f"p{q_:g}": float(np.percentile(arr, q_)) if arr.size >= min_samples(q_) else math.nan for q_ in q}
        out["n"] = int(arr.size)
        return pd.Series(out)

    table = summarise(frame[value]).to_frame().T if by is None else \
        frame.groupby(by if isinstance(by, str) else list(by), sort=False)[value].apply(summarise).unstack()
    quoted = [f"p{q_:g}" for q_ in q if (table["n"] >= min_samples(q_)).any()]
    return table[quoted + ["n"]]


def ecdf(values: Sequence[float] | pd.Series) -> pd.DataFrame:
    """Empirical CDF: sorted values ``x`` and the fraction ``p`` of samples ≤ x."""
    x = np.sort(np.asarray(pd.Series(values).dropna(), dtype=float))
    return pd.DataFrame({"x": x, "p": np.arange(1, x.size + 1) / x.size if x.size else np.array([])})


def ratio(values: Sequence[float] | pd.Series, baseline: float) -> pd.Series:
    """Latencies as multiples of a baseline (e.g. the median raw UDP round trip)."""
    if baseline <= 0:
        raise ValueError("the baseline must be positive")
    return pd.Series(values, dtype=float) / baseline


def uniform_range(n: int, k: int, confidence: float = 0.95) -> tuple[int, int]:
    """The central ``confidence`` range of one backend's count (lowest, highest count
    inside) out of ``n`` connections when all ``k`` backends are equally likely
    (binomial(n, 1/k) quantiles)."""
    lo, hi = np.asarray(stats.binom.ppf([(1 - confidence) / 2, (1 + confidence) / 2], n, 1 / k))
    return int(lo), int(hi)


def outside_probability(n: int, k: int, confidence: float = 0.95) -> float:
    """Exact chance that one given backend's count falls outside :func:`uniform_range`
    under a uniform spread: at most ``1 - confidence`` (the binomial is discrete)."""
    lo, hi = uniform_range(n, k, confidence)
    return float(stats.binom.cdf(lo - 1, n, 1 / k) + stats.binom.sf(hi, n, 1 / k))


def any_outside_probability(n: int, k: int, confidence: float = 0.95) -> float:
    """Exact chance that at least one of ``k`` backends falls outside its
    :func:`uniform_range` in one run of ``n`` uniform connections.

    The counts are multinomial, not independent, so this is not quite
    ``1 - (1 - a)**k`` (a = :func:`outside_probability`): it peels off one backend at a
    time, P(all inside | m connections over j backends) = sum over c inside of
    binomial(m, 1/j)(c) * P(all inside | m - c over j - 1)."""
    lo, hi = uniform_range(n, k, confidence)
    inside = np.zeros(n + 1)
    inside[lo:hi + 1] = 1.0  # one backend left: it takes all m, inside iff lo <= m <= hi
    for j in range(2, k + 1):
        nxt = np.zeros(n + 1)
        c = np.arange(lo, hi + 1)
        for m in range(j * lo, min(j * hi, n) + 1):
            rest = m - c
            ok = rest >= 0
            nxt[m] = float(np.dot(stats.binom.pmf(c[ok], m, 1 / j), inside[rest[ok]]))
        inside = nxt
    return float(1 - inside[n])
