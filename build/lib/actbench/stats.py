"""Statistics for comparing groups of runs: mean, std, 95% CI, paired and Welch tests.

Pure Python (the tests check every number against scipy.stats): importing scipy.stats
alone takes longer than compare's whole 1-second budget."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace

CONFIDENCE = 0.95
WILCOXON_MIN_N = 5  # below 5 pairs the signed-rank test cannot reach p < 0.1
EXACT_MAX_N = 50  # scipy's limit for the exact signed-rank distribution


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


def t_quantile(df: float) -> float:
    """Two-sided 95% critical value of Student's t (bisection on the p-value)."""
    lo, hi = 0.0, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_pvalue(mid, df) > 1 - CONFIDENCE else (lo, mid)
    return (lo + hi) / 2


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
