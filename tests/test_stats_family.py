"""stats: multiple comparisons, exact tests, effect sizes and power, checked against scipy,
statsmodels where installed, hand enumeration and published values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize
from scipy import stats as sps

from actbench import stats

P_OR_NONE = st.one_of(st.none(), st.floats(0.0, 1.0))


# --- holm ---------------------------------------------------------------------------------


def test_holm_hand_enumeration() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> 0.06 (monotone)
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # None does not count: a family of two
    assert stats.holm([None, 0.01, None, 0.04]) == [None, pytest.approx(0.02), None, 0.04]
    assert stats.holm([0.5, 0.6]) == [1.0, 1.0]  # capped
    assert stats.holm([0.02, 0.02]) == [0.04, 0.04]  # ties get one value
    assert stats.holm([]) == [] and stats.holm([None]) == [None]


def test_holm_matches_statsmodels() -> None:
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(0)
    for m in range(1, 12):
        p = list(rng.random(m) ** 3)  # skewed towards small p, where adjusting matters
        expected = multitest.multipletests(p, method="holm")[1]
        assert stats.holm(p) == pytest.approx(list(expected), rel=1e-12)


@given(st.lists(P_OR_NONE, max_size=12), st.floats(0.001, 0.2))
def test_holm_properties_and_step_down_definition(p: list[float | None], alpha: float) -> None:
    adjusted = stats.holm(p)
    pairs = [(r, a) for r, a in zip(p, adjusted, strict=True) if r is not None]
    assert [a is None for a in adjusted] == [r is None for r in p]
    for r, a in pairs:
        assert r <= a <= 1.0  # type: ignore[operator]
    for (r1, a1), (r2, a2) in itertools.product(pairs, repeat=2):
        if r1 <= r2:
            assert a1 <= a2  # type: ignore[operator]
    # Holm's definition: reject the k smallest while p_(i) <= alpha / (m - i), then stop
    raw = sorted(r for r, _ in pairs)
    rejected = 0
    while rejected < len(raw) and raw[rejected] <= alpha / (len(raw) - rejected):
        rejected += 1
    assert sum(a <= alpha for _, a in pairs) == rejected  # type: ignore[operator]


# --- fisher_exact -------------------------------------------------------------------------


def test_fisher_exact_matches_scipy_on_all_small_tables() -> None:
    for a, b, c, d in itertools.product(range(7), repeat=4):
        expected = sps.fisher_exact([[a, b], [c, d]]).pvalue
        assert stats.fisher_exact(a, b, c, d) == pytest.approx(expected, rel=1e-9), (a, b, c, d)


def test_fisher_exact_matches_scipy_on_larger_tables() -> None:
    rng = np.random.default_rng(1)
    for a, b, c, d in rng.integers(0, 300, size=(300, 4)):
        expected = sps.fisher_exact([[a, b], [c, d]]).pvalue
        assert stats.fisher_exact(a, b, c, d) == pytest.approx(expected, rel=1e-8, abs=1e-300)


def test_fisher_exact_known_case() -> None:
    # 0 of 3 stalled vs 3 of 3: 2 of the 20 tables with these margins are as extreme
    assert stats.fisher_exact(0, 3, 3, 0) == pytest.approx(0.1)
    assert stats.fisher_exact(3, 0, 3, 0) == pytest.approx(1.0)  # both stalled every time


# --- t_ppf --------------------------------------------------------------------------------


@pytest.mark.parametrize("df", [0.5, 1, 2, 3, 7.3, 30, 1000])
def test_t_ppf_matches_scipy(df: float) -> None:
    for q in (1e-9, 0.001, 0.025, 0.1, 0.4, 0.5, 0.6, 0.9, 0.975, 0.999, 1 - 1e-9):
        assert stats.t_ppf(q, df) == pytest.approx(sps.t.ppf(q, df), rel=1e-9, abs=1e-12)
    assert stats.t_quantile(df) == pytest.approx(stats.t_ppf(0.975, df), rel=1e-12)


def test_t_ppf_rejects_q_outside_the_open_interval() -> None:
    for q in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError):
            stats.t_ppf(q, 3)


# --- effect_size, wins --------------------------------------------------------------------


def test_effect_size_is_the_paired_t_over_sqrt_n() -> None:
    d = [40.0, 40.0, 40.0, -20.0, 60.0, 40.0]
    t = sps.ttest_1samp(d, 0.0).statistic
    assert stats.effect_size(d) == pytest.approx(t / math.sqrt(len(d)), rel=1e-12)
    assert stats.effect_size([0.4, 0.6, 0.6]) == pytest.approx(0.5333333 / 0.1154701, rel=1e-6)
    assert stats.effect_size([1.0]) is None
    assert stats.effect_size([2.0, 2.0, 2.0]) is None  # no spread: d_z undefined


def test_wins_counts_matched_seeds_only() -> None:
    group = {0: 9850, 1: 9800, 2: 9790, 3: 9900, 7: 9999}
    base = {0: 9821, 1: 9800, 2: 9802, 3: 9850, 5: 9000}
    assert stats.wins(group, base) == (2, 1, 4)  # seeds 0, 3 won; 1 tied; 2 lost
    assert stats.wins({}, base) == (0, 0, 0)


# --- noncentral t, power, mde -------------------------------------------------------------


def _scipy_nct_cdf(t: float, df: float, nc: float) -> float:
    """scipy's cdf, or 1 - sf where its cdf is NaN (far tails, e.g. df=2, nc=40, t=0.7)."""
    cdf = sps.nct.cdf(t, df, nc)
    return 1 - sps.nct.sf(t, df, nc) if math.isnan(cdf) else cdf


def _scipy_power(nc: float, df: float, alpha: float) -> float:
    crit = sps.t.ppf(1 - alpha / 2, df)
    return 1 - _scipy_nct_cdf(crit, df, nc) + _scipy_nct_cdf(-crit, df, nc)


@pytest.mark.parametrize("df", [1, 2, 4, 9, 30, 500])
def test_nct_cdf_matches_scipy(df: float) -> None:
    for nc, t in itertools.product(
        (-60, -8, -1.5, 0, 0.3, 2, 5, 12, 40, 100), (-30, -2.5, 0, 0.7, 2.1, 4.3, 12.7, 80)
    ):
        assert stats.nct_cdf(t, df, nc) == pytest.approx(_scipy_nct_cdf(t, df, nc), abs=1e-10)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_t_power_matches_scipy(alpha: float) -> None:
    for df, nc in itertools.product((1, 2, 5, 20), (0, 0.5, 2, 4, 10)):
        expected = _scipy_power(nc, df, alpha)
        assert stats.t_power(nc, df, alpha) == pytest.approx(expected, abs=1e-10)
    assert stats.t_power(0, 4, alpha) == pytest.approx(alpha, rel=1e-9)  # no effect: alpha


def _scipy_mde(sd: float, n: int, alpha: float, power: float, paired: bool) -> float:
    df, se = (n - 1, math.sqrt(1 / n)) if paired else (2 * n - 2, math.sqrt(2 / n))
    nc = optimize.brentq(lambda nc: _scipy_power(nc, df, alpha) - power, 0, 1e3, xtol=1e-12)
    return nc * se * sd


@pytest.mark.parametrize("paired", [True, False])
def test_mde_matches_a_scipy_solve(paired: bool) -> None:
    for n, alpha, power in itertools.product((2, 3, 5, 10, 40), (0.01, 0.05), (0.5, 0.8, 0.95)):
        expected = _scipy_mde(0.3, n, alpha, power, paired)
        assert stats.mde(0.3, n, alpha, power, paired) == pytest.approx(expected, rel=1e-7)


def test_mde_matches_statsmodels() -> None:
    power_mod = pytest.importorskip("statsmodels.stats.power")
    for n, power in itertools.product((3, 5, 10, 25), (0.8, 0.9)):
        d = power_mod.TTestPower().solve_power(nobs=n, alpha=0.05, power=power)
        assert stats.mde(1.0, n, power=power) == pytest.approx(d, rel=1e-5)
        d = power_mod.TTestIndPower().solve_power(nobs1=n, alpha=0.05, power=power, ratio=1.0)
        assert stats.mde(1.0, n, power=power, paired=False) == pytest.approx(d, rel=1e-5)


def test_mde_scales_with_sd_and_has_edges() -> None:
    assert stats.mde(0.2, 10) == pytest.approx(0.2 * stats.mde(1.0, 10), rel=1e-12)  # type: ignore[operator]
    assert stats.mde(None, 10) is None and stats.mde(1.0, 1) is None
    with pytest.raises(ValueError):
        stats.mde(1.0, 5, alpha=0.05, power=0.04)


# --- bounded_diff_interval ----------------------------------------------------------------

DIFFS = [40, 40, 40, -20, 60, 40, 10, 30, -5, 25]  # correct images, group - baseline


def test_bootstrap_percentile_matches_scipy() -> None:
    base = {s: 9800 + 3 * s for s in range(len(DIFFS))}
    group = {s: base[s] + d for s, d in enumerate(DIFFS)}
    low, high = stats.bounded_diff_interval(group, base, 10_000)  # type: ignore[misc]
    ref = sps.bootstrap((DIFFS,), np.mean, method="percentile", n_resamples=10_000, rng=0)
    tol = 0.15 * ref.standard_error  # ~4 sd of the gap between two 10,000-resample runs
    assert low == pytest.approx(ref.confidence_interval.low, abs=tol)
    assert high == pytest.approx(ref.confidence_interval.high, abs=tol)
    assert stats.bounded_diff_interval(group, base, 10_000) == (low, high)  # deterministic


def test_bootstrap_stays_feasible_where_the_t_interval_does_not() -> None:
    stalled = {0: 11.35, 1: 11.35, 2: 11.35}  # baseline at chance on every seed, in %
    group = {0: 99.0, 1: 99.1, 2: 30.0}
    t_interval = stats.versus(group, stalled)
    assert t_interval.ci_high > 100  # type: ignore[operator]
    low, high = stats.bounded_diff_interval(group, stalled, 100)  # type: ignore[misc]
    assert -100 <= low <= high <= 100
    assert low == pytest.approx(30.0 - 11.35) and high == pytest.approx(99.1 - 11.35)
    assert stats.bounded_diff_interval({0: 99.0}, stalled, 100) is None  # one matched seed


@settings(deadline=None, max_examples=50)
@given(
    st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), min_size=2, max_size=8),
    st.floats(0.5, 0.99),
)
def test_bootstrap_interval_within_bounds(counts: list[tuple[int, int]], level: float) -> None:
    group = {s: g for s, (g, _) in enumerate(counts)}
    base = {s: b for s, (_, b) in enumerate(counts)}
    low, high = stats.bounded_diff_interval(group, base, 100, level, resamples=200)  # type: ignore[misc]
    diffs = [g - b for g, b in counts]
    assert -100 <= min(diffs) <= low <= high <= max(diffs) <= 100


# --- top_group, still_improving -----------------------------------------------------------


def test_top_group_keeps_the_indistinguishable() -> None:
    means = {"relu": 97.0, "prelu": 99.0, "elu": 98.9, "selu": 98.95}
    pvals = {("prelu", "elu"): 0.3, ("relu", "prelu"): 0.001, ("selu", "prelu"): None}
    assert stats.top_group(means, pvals) == ["prelu", "selu", "elu"]  # relu: distinguishable
    assert stats.top_group(means, {("prelu", "elu"): 0.01}, alpha=0.05) == [
        "prelu",
        "selu",
        "relu",
    ]  # pairs with no p value are kept: no evidence against them
    losses = {"relu": 0.30, "prelu": 0.05, "elu": 0.06}
    lower = {("elu", "prelu"): 0.04, ("relu", "prelu"): 0.5}
    assert stats.top_group(losses, lower, higher_is_better=False) == ["prelu", "relu"]
    assert stats.top_group({}, {}) == []


def test_still_improving_is_the_rise_over_the_last_window() -> None:
    curve = [90.0, 95.0, 97.0, 98.0, 98.5, 98.6, 98.7, 98.8, 98.9, 99.2]
    assert stats.still_improving(curve) == pytest.approx(99.2 - 98.8)  # last 2 of 10 epochs
    assert stats.still_improving(curve, fraction=0.5) == pytest.approx(99.2 - 98.5)
    assert stats.still_improving(curve, fraction=0.0) == pytest.approx(99.2 - 98.9)  # >= 1
    assert stats.still_improving(curve, fraction=1.0) == pytest.approx(99.2 - 90.0)  # <= all
    assert stats.still_improving([11.35, 11.35]) == 0.0  # stalled: flat
    assert stats.still_improving([50.0]) is None
