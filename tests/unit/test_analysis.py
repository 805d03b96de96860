"""k8snet.analysis against values computed by hand or from textbooks."""

import math

import numpy as np
import pandas as pd
import pytest

from k8snet import analysis


def test_chi_square_uniform_known_value():
    # (10-20)^2/20 + 0 + (30-20)^2/20 = 10 with 2 dof -> p = exp(-10/2)
    chi = analysis.chi_square_uniform({"a": 10, "b": 20, "c": 30})
    assert chi.statistic == pytest.approx(10.0)
    assert chi.dof == 2 and chi.connections == 60 and chi.backends == 3
    assert chi.p_value == pytest.approx(math.exp(-5))
    assert not chi.uniform(alpha=0.01)


def test_chi_square_perfectly_even_is_p_one():
    chi = analysis.chi_square_uniform([100, 100, 100, 100])
    assert chi.statistic == 0 and chi.p_value == pytest.approx(1.0) and chi.uniform()


def test_chi_square_needs_two_backends_and_data():
    with pytest.raises(ValueError):
        analysis.chi_square_uniform({"a": 5})
    with pytest.raises(ValueError):
        analysis.chi_square_uniform([0, 0])


def test_wilson_interval_textbook_value():
    # Wilson (1927) / Newcombe (1998) example: 81 of 263 -> [0.2553, 0.3662] at 95 %
    low, high = analysis.wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4)
    assert high == pytest.approx(0.3662, abs=1e-4)


def test_wilson_interval_stays_in_bounds():
    assert analysis.wilson_interval(0, 10)[0] == 0.0
    assert analysis.wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert analysis.wilson_interval(0, 0) == (0.0, 1.0)


def test_backend_counts_keeps_silent_backends_and_skips_failures():
    counts = analysis.backend_counts(["b", "a", None, "b", float("nan")], expected=["a", "b", "c"])
    assert counts == {"a": 1, "b": 2, "c": 0}


def test_shares_table():
    table = analysis.shares({"a": 30, "b": 70})
    assert list(table["share"]) == [0.3, 0.7]
    assert list(table["expected"]) == [0.5, 0.5]
    assert (table["low"] < table["share"]).all() and (table["share"] < table["high"]).all()


def test_percentiles_overall_and_grouped():
    overall = analysis.percentiles(list(range(1, 101)), q=(50, 90))
    assert overall.loc[0, "p50"] == pytest.approx(50.5) and overall.loc[0, "p90"] == pytest.approx(90.1)
    df = pd.DataFrame({"form": ["a"] * 3 + ["b"] * 2, "latency_us": [1, 2, 3, 10, 20]})
    grouped = analysis.percentiles(df, by="form", q=(50,))
    assert list(grouped.index) == ["a", "b"]
    assert grouped.loc["a", "p50"] == 2 and grouped.loc["b", "p50"] == 15 and grouped.loc["b", "n"] == 2


def test_tail_percentiles_need_enough_samples():
    assert [analysis.min_samples(q) for q in (50, 90, 95, 99, 1)] == [1, 100, 200, 1000, 1000]
    small = analysis.percentiles(list(range(999)))
    assert list(small.columns) == ["p50", "p90", "n"]  # no p99 from 999 samples
    large = analysis.percentiles(list(range(1000)))
    assert list(large.columns) == ["p50", "p90", "p99", "n"]
    assert large.loc[0, "p99"] == pytest.approx(989.01)
    df = pd.DataFrame({"form": ["a"] * 1000 + ["b"] * 99, "latency_us": list(range(1000)) + list(range(99))})
    mixed = analysis.percentiles(df, by="form")
    assert list(mixed.columns) == ["p50", "p90", "p99", "n"]
    assert mixed.loc["a", "p99"] == pytest.approx(989.01)
    assert math.isnan(mixed.loc["b", "p99"]) and math.isnan(mixed.loc["b", "p90"])  # 99 < 100 samples
    assert mixed.loc["b", "p50"] == 49


def test_ecdf():
    e = analysis.ecdf([3, 1, 2, float("nan"), 2])
    assert list(e["x"]) == [1, 2, 2, 3]
    assert list(e["p"]) == [0.25, 0.5, 0.75, 1.0]
    assert analysis.ecdf([]).empty


def test_ratio():
    assert list(analysis.ratio([100, 250], 50)) == [2.0, 5.0]
    with pytest.raises(ValueError):
        analysis.ratio([1], 0)


def test_uniform_range_and_outside_probability_by_hand():
    lo, hi = analysis.uniform_range(1000, 2)
    assert (lo, hi) == (469, 531)
    # P(X <= 468) + P(X >= 532) for X ~ Binomial(1000, 1/2), both tails equal by symmetry
    tail = sum(math.comb(1000, c) for c in range(469)) / 2 ** 1000
    assert analysis.outside_probability(1000, 2) == pytest.approx(2 * tail)
    # two backends: one is outside exactly when the other is
    assert analysis.any_outside_probability(1000, 2) == pytest.approx(2 * tail)


def test_any_outside_probability_matches_simulation():
    rng = np.random.default_rng(7)
    n, k, runs = 400, 6, 20_000
    lo, hi = analysis.uniform_range(n, k)
    counts = rng.multinomial(n, [1 / k] * k, size=runs)
    simulated = float(((counts < lo) | (counts > hi)).any(axis=1).mean())
    exact = analysis.any_outside_probability(n, k)
    assert abs(simulated - exact) < 4 * math.sqrt(exact * (1 - exact) / runs)
    # dependence between the counts makes it a little less than independent backends would
    a = analysis.outside_probability(n, k)
    assert exact < 1 - (1 - a) ** k
