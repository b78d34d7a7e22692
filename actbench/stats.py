"""Statistics for comparing groups of runs: mean, std, 95% CI, paired and Welch tests, and
what it takes to say only what the evidence allows: Holm-adjusted p values over a family of
comparisons, Fisher's exact test for stalled-run counts, effect sizes, seeds won, the
minimum detectable effect, a bounded bootstrap interval and a still-improving check.

Pure Python (the tests check every number against scipy.stats): importing scipy.stats
alone takes longer than compare's whole 1-second budget."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace

CONFIDENCE = 0.95
WILCOXON_MIN_N = 5  # below 5 pairs the signed-rank test cannot reach p < 0.1
EXACT_MAX_N = 50  # scipy's limit for the exact signed-rank distribution
# Fisher: probabilities within this relative distance of the observed one count as ties.
# R's fisher.test value: wide enough to catch tables whose probabilities are equal but whose
# lgamma-computed values differ by rounding (~1e-13 on large tables; scipy's 1e-14 is not).
FISHER_RTOL = 1e-7
# Monte Carlo error of a 2.5% bootstrap percentile with 10,000 resamples is about 3% of the
# bootstrap standard deviation: small beside the interval, and it takes tens of ms.
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # fixed: the same runs must give the same interval in every report
# Stop the noncentral-t series once the rest is below this: under the rounding of a
# probability near 1 (2^-52), so summing further cannot change the result.
_SERIES_TAIL = 1e-17


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for aa in (
            m * (b - m) * x / ((a - 1.0 + 2 * m) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1.0 + 2 * m)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_pvalue(t: float, df: float) -> float:
    """Two-sided p-value of Student's t statistic."""
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def _threshold(above: Callable[[float], bool], hi: float = 1.0) -> float:
    """The x > 0 where a monotone predicate turns from False to True: hi doubles until
    above(hi), then bisection runs until the bracket stops shrinking (float precision)."""
    lo = 0.0
    while not above(hi):
        lo, hi = hi, 2 * hi
    while True:
        mid = (lo + hi) / 2
        if not lo < mid < hi:
            return mid
        lo, hi = (lo, mid) if above(mid) else (mid, hi)


def _t_critical(p: float, df: float) -> float:
    """The t > 0 whose two-sided p-value is p."""
    return _threshold(lambda t: t_pvalue(t, df) <= p)


def t_quantile(df: float) -> float:
    """Two-sided 95% critical value of Student's t."""
    return _t_critical(1 - CONFIDENCE, df)


def t_ppf(q: float, df: float) -> float:
    """Quantile of Student's t: the t with P(T <= t) = q, for any 0 < q < 1 and df > 0
    (bisection on the p-value, so it is as accurate as betainc)."""
    if not 0 < q < 1:
        raise ValueError(f"q must lie strictly between 0 and 1, got {q}")
    if q == 0.5:
        return 0.0
    t = _t_critical(2 * min(q, 1 - q), df)
    return t if q > 0.5 else -t


def normal_pvalue(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return math.erfc(abs(z) / math.sqrt(2))


def wilcoxon_pvalue(d: list[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value, zeros dropped: exact (tied ranks averaged)
    up to EXACT_MAX_N pairs, else the normal approximation with tie correction."""
    d = [x for x in d if x != 0]
    n = len(d)
    order = sorted(range(n), key=lambda i: abs(d[i]))
    twice = [0] * n  # ranks doubled, so averaged tied ranks stay integers
    i, ties = 0, []
    while i < n:
        j = i
        while j + 1 < n and abs(d[order[j + 1]]) == abs(d[order[i]]):
            j += 1
        for k in range(i, j + 1):
            twice[order[k]] = i + j + 2
        ties.append(j - i + 1)
        i = j + 1
    w2 = sum(r for r, x in zip(twice, d, strict=True) if x > 0)
    if n <= EXACT_MAX_N:
        counts = [1] + [0] * sum(twice)  # counts[s]: sign patterns whose doubled W+ is s
        for r in twice:
            for s in range(len(counts) - 1, r - 1, -1):
                counts[s] += counts[s - r]
        low, high = sum(counts[: w2 + 1]), sum(counts[w2:])
        return min(1.0, 2 * min(low, high) / 2**n)
    mean = n * (n + 1) / 4
    var = n * (n + 1) * (2 * n + 1) / 24 - sum(t**3 - t for t in ties) / 48
    return normal_pvalue((w2 / 2 - mean) / math.sqrt(var))


@dataclass
class Description:
    n: int
    mean: float
    std: float | None  # sample std (n - 1); None for n = 1
    ci_low: float | None  # 95% CI of the mean (t interval)
    ci_high: float | None
    min: float
    max: float

    def scaled(self, k: float) -> Description:
        """The same description in units k times larger (e.g. image counts -> %)."""
        return replace(
            self,
            **{f: _times(getattr(self, f), k) for f in ("mean", "std", "ci_low", "ci_high")},
            min=self.min * k,
            max=self.max * k,
        )


def _times(x: float | None, k: float) -> float | None:
    return None if x is None else x * k


def describe(values: list[float]) -> Description:
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return Description(n, mean, None, None, None, min(values), max(values))
    std = statistics.stdev(values)
    half = t_quantile(n - 1) * std / math.sqrt(n)
    return Description(n, mean, std, mean - half, mean + half, min(values), max(values))


@dataclass
class Difference:
    test: str  # which test produced p (stated in every output)
    n: int  # pairs (paired) or smaller group size (Welch)
    diff_mean: float | None  # group minus baseline
    ci_low: float | None
    ci_high: float | None
    p_t: float | None
    p_wilcoxon: float | None

    @property
    def distinguishable(self) -> bool:
        """The 95% CI of the difference excludes zero."""
        if self.ci_low is None or self.ci_high is None:
            return False
        return self.ci_low > 0 or self.ci_high < 0

    def scaled(self, k: float) -> Difference:
        """The same difference in units k times larger (p-values unchanged)."""
        return replace(
            self, **{f: _times(getattr(self, f), k) for f in ("diff_mean", "ci_low", "ci_high")}
        )


def versus(group: dict[int, float], baseline: dict[int, float]) -> Difference:
    """group - baseline from one value per seed: paired over matched seeds when both groups
    hold the same seeds, else Welch's unequal-variance t-test. Pass integer-valued data
    (e.g. counts of correct images) so that equal differences are exactly equal."""
    if set(group) == set(baseline) and len(group) >= 2:
        return _paired(group, baseline)
    return _welch(list(group.values()), list(baseline.values()))


def _paired(group: dict[int, float], baseline: dict[int, float]) -> Difference:
    seeds = sorted(group)
    d = [group[s] - baseline[s] for s in seeds]
    n = len(d)
    mean = statistics.fmean(d)
    sd = statistics.stdev(d)
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    p_t = t_pvalue(mean / (sd / math.sqrt(n)), n - 1) if sd > 0 else None
    p_w = wilcoxon_pvalue(d) if n >= WILCOXON_MIN_N and any(d) else None
    test = "paired t" + (" + Wilcoxon" if p_w is not None else "")
    return Difference(test, n, mean, mean - half, mean + half, p_t, p_w)


def _welch(x: list[float], b: list[float]) -> Difference:
    if len(x) < 2 or len(b) < 2:
        return Difference("none (n < 2)", min(len(x), len(b)), None, None, None, None, None)
    vx, vb = statistics.variance(x) / len(x), statistics.variance(b) / len(b)
    mean = statistics.fmean(x) - statistics.fmean(b)
    se = math.sqrt(vx + vb)
    if se == 0:
        return Difference("Welch t (unpaired)", min(len(x), len(b)), mean, mean, mean, None, None)
    df = (vx + vb) ** 2 / (vx**2 / (len(x) - 1) + vb**2 / (len(b) - 1))
    half = t_quantile(df) * se
    p_t = t_pvalue(mean / se, df)
    return Difference(
        "Welch t (unpaired)", min(len(x), len(b)), mean, mean - half, mean + half, p_t, None
    )


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm-Bonferroni step-down adjusted p values, in the input's order.

    Each activation compared with one baseline is one test of a family: with k tests at 5%
    the chance of at least one false "better" grows towards k * 5%. Holm keeps that
    family-wise error at alpha under any dependence between the tests (they share the
    baseline's runs), and rejects everything Bonferroni rejects: adjusted p <= alpha exactly
    where Holm's procedure at level alpha rejects. None (no test possible) stays None and does
    not count in the family size."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0  # the running maximum keeps the adjusted values in the raw values' order
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[i] = running
    return adjusted


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p value of Fisher's exact test of the 2x2 table [[a, b], [c, d]] of counts,
    e.g. (stalled, trained) runs of a group and of the baseline: a t test on such 0/1
    outcomes has no valid distribution at a handful of seeds, this test is exact.

    Sums, over the tables with the same margins, the hypergeometric probabilities no larger
    than the observed table's (times 1 + FISHER_RTOL, so that equal probabilities tie)."""
    row, col, n = a + b, a + c, a + b + c + d

    def log_pmf(x: int) -> float:  # probability of x in the top-left cell, given the margins
        return _log_comb(col, x) + _log_comb(n - col, row - x) - _log_comb(n, row)

    limit = log_pmf(a) + math.log1p(FISHER_RTOL)
    cells = range(max(0, row + col - n), min(row, col) + 1)
    return min(1.0, sum(math.exp(lp) for x in cells if (lp := log_pmf(x)) <= limit))


def _poisson_beta_sum(mu: float, shift: float, b: float, log_x: float, log_1mx: float) -> float:
    """Sum over j >= 0 of w(k) * I_x(k + 1/2, b), k = j + shift, w(k) = e^-mu mu^k / k!.

    Starts at the largest weight and walks both ways with the incomplete beta recurrence
    I_x(a + 1, b) = I_x(a, b) - x^a (1 - x)^b / (a B(a, b)), as Boost does: starting at
    j = 0 (AS 243) underflows once mu > ~700 (noncentrality > ~37)."""
    x = math.exp(log_x)
    top = int(mu)
    a0 = top + shift + 0.5
    w0 = math.exp(-mu + (top + shift) * math.log(mu) - math.lgamma(top + shift + 1))
    i0 = betainc(a0, b, x)
    g0 = math.exp(  # I_x(a0, b) - I_x(a0 + 1, b)
        math.lgamma(a0 + b) - math.lgamma(a0 + 1) - math.lgamma(b) + a0 * log_x + b * log_1mx
    )
    total = w0 * i0
    w, i, g, a = w0, i0, g0, a0
    while True:  # upward: weights and I_x both fall, geometrically once past the mode
        i -= g
        g *= x * (a + b) / (a + 1)
        a += 1
        w *= mu / (a - 0.5)
        if i <= 0:  # I_x has fallen under the rounding of the recurrence: the rest is nil
            break
        total += w * i
        ratio = mu / (a + 0.5)  # next weight over this one; falls as a rises
        if w * i / (1 - ratio) <= _SERIES_TAIL:
            break
    w, i, g, a = w0, i0, g0, a0
    for j in range(top, 0, -1):  # downward: I_x rises towards 1, weights fall
        a -= 1
        g *= (a + 1) / (x * (a + b))
        i += g
        w *= (j + shift) / mu
        total += w * i
        ratio = (j - 1 + shift) / mu
        if ratio < 1 and w / (1 - ratio) <= _SERIES_TAIL:  # I_x <= 1 bounds the rest
            break
    return total


def nct_cdf(t: float, df: float, nc: float) -> float:
    """P(T <= t) for the noncentral t distribution with df degrees of freedom and
    noncentrality nc: the distribution of a t statistic when the true mean difference is
    nc standard errors, which is what power and detectable-effect calculations need.

    Lenth's series (AS 243): Phi(-nc) plus Poisson(nc^2 / 2)-weighted incomplete beta
    functions, accurate to ~1e-15 absolute."""
    if t < 0:
        return 1.0 - nct_cdf(-t, df, -nc)
    if nc == 0:
        return 1.0 - t_pvalue(t, df) / 2
    phi = 0.5 * math.erfc(nc / math.sqrt(2))  # Phi(-nc)
    if t == 0:
        return phi
    log_x = 2 * math.log(t) - math.log(t * t + df)  # x = t^2 / (t^2 + df), in logs so
    log_1mx = math.log(df) - math.log(t * t + df)  # that 1 - x keeps its precision
    mu = nc * nc / 2
    even = _poisson_beta_sum(mu, 0.0, df / 2, log_x, log_1mx)
    odd = _poisson_beta_sum(mu, 0.5, df / 2, log_x, log_1mx)  # carries nc's sign
    # rounding in the series can step a hair outside [0, 1]; a probability cannot
    return min(1.0, max(0.0, phi + (even + math.copysign(odd, nc)) / 2))


def _power(nc: float, df: float, critical: float) -> float:
    return 1.0 - nct_cdf(critical, df, nc) + nct_cdf(-critical, df, nc)


def t_power(nc: float, df: float, alpha: float = 0.05) -> float:
    """Probability that a two-sided t test at level alpha rejects when the true mean
    difference is nc standard errors (noncentrality nc = effect / sd * sqrt(n) paired)."""
    return _power(nc, df, t_ppf(1 - alpha / 2, df))


def mde(
    sd: float | None, n: int, alpha: float = 0.05, power: float = 0.8, paired: bool = True
) -> float | None:
    """Minimum detectable effect, in sd's units: the smallest true mean difference that a
    two-sided t test at level alpha detects with probability `power`. Report it beside
    "not distinguishable": with 3 seeds only a large difference could have shown.

    paired: n pairs and sd the standard deviation of the paired differences (df = n - 1).
    Unpaired: two groups of n runs each, sd the common within-group standard deviation
    (pooled t test, df = 2n - 2). Exact, by the noncentral t; None when n < 2 or no sd."""
    if sd is None or n < 2:
        return None
    if not alpha < power < 1:
        raise ValueError(f"power must lie between alpha ({alpha}) and 1, got {power}")
    df, se_per_sd = (n - 1, math.sqrt(1 / n)) if paired else (2 * n - 2, math.sqrt(2 / n))
    critical = t_ppf(1 - alpha / 2, df)
    nc = _threshold(lambda nc: _power(nc, df, critical) >= power)
    return nc * se_per_sd * sd


def effect_size(d: list[float]) -> float | None:
    """Cohen's d_z of paired differences: mean / sample sd, unitless. Unlike a p value it
    does not grow with the number of seeds, so it says how large a difference is relative
    to the seed-to-seed noise. None when n < 2 or the differences are all equal."""
    if len(d) < 2:
        return None
    sd = statistics.stdev(d)
    return statistics.fmean(d) / sd if sd > 0 else None


def wins(group: dict[int, float], baseline: dict[int, float]) -> tuple[int, int, int]:
    """(seeds where group > baseline, ties, seeds matched), over the seeds both hold: "won 3
    of 3 seeds" reads plainly where a p value at n = 3 says little. Higher is better; pass
    integer counts so that equal results tie exactly, and swap the arguments for a loss."""
    seeds = set(group) & set(baseline)
    won = sum(group[s] > baseline[s] for s in seeds)
    tied = sum(group[s] == baseline[s] for s in seeds)
    return won, tied, len(seeds)


def _percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default, as scipy uses)."""
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (pos - low) * (ordered[high] - ordered[low])


def bounded_diff_interval(
    group_counts: dict[int, float],
    baseline_counts: dict[int, float],
    total: float,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> tuple[float, float] | None:
    """Paired percentile-bootstrap interval of mean(group - baseline) over matched seeds,
    as (low, high) in the input's units, never outside the feasible [-total, total]
    (total = test images for counts, 100 for percentages).

    Use it where the t interval breaks: one group constant (a stalled run at chance, zero
    variance), or a t interval that runs past 100%. With few seeds it is too narrow (at
    n = 3 it cannot leave the range of the differences): say so beside it. Deterministic
    (RNG seeded with BOOTSTRAP_SEED). None under 2 matched seeds."""
    seeds = sorted(set(group_counts) & set(baseline_counts))
    if len(seeds) < 2:
        return None
    d = [group_counts[s] - baseline_counts[s] for s in seeds]
    rng = random.Random(BOOTSTRAP_SEED)
    means = sorted(statistics.fmean(rng.choices(d, k=len(d))) for _ in range(resamples))
    tail = (1 - confidence) / 2
    low, high = _percentile(means, tail), _percentile(means, 1 - tail)
    return max(low, -total), min(high, total)


def top_group(
    means: dict[str, float],
    pvals: dict[tuple[str, str], float | None],
    alpha: float = 0.05,
    higher_is_better: bool = True,
) -> list[str]:
    """The best group by mean and every group not distinguishable from it, best first.

    pvals: Holm-adjusted p values of pairs, keyed (a, b) in either order; a pair that is
    missing or None counts as not distinguishable, so the list shrinks only on evidence."""
    order = sorted(means, key=means.__getitem__, reverse=higher_is_better)
    if not order:
        return []
    best = order[0]

    def p(g: str) -> float | None:
        return pvals[(best, g)] if (best, g) in pvals else pvals.get((g, best))

    return [g for g in order if g == best or (pg := p(g)) is None or pg >= alpha]


def still_improving(values_by_epoch: list[float], fraction: float = 0.2) -> float | None:
    """Rise of a curve over its last `fraction` of epochs (at least one), in the values'
    units: the last value minus the value just before that window. A clear rise means the
    run was cut short, so its final value understates it; the caller picks the threshold.
    None under 2 epochs."""
    n = len(values_by_epoch)
    if n < 2:
        return None
    window = min(n - 1, max(1, round(fraction * n)))
    return values_by_epoch[-1] - values_by_epoch[-1 - window]
