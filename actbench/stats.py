"""Statistics for comparing groups of runs: mean, std, 95% CI, paired and Welch tests."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

CONFIDENCE = 0.95
WILCOXON_MIN_N = 5  # below 5 pairs the signed-rank test cannot reach p < 0.1


def t_quantile(df: float) -> float:
    """Two-sided 95% critical value of Student's t."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))


@dataclass
class Description:
    n: int
    mean: float
    std: float | None  # sample std (n - 1); None for n = 1
    ci_low: float | None  # 95% CI of the mean (t interval)
    ci_high: float | None
    min: float
    max: float


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


def versus(group: dict[int, float], baseline: dict[int, float]) -> Difference:
    """group - baseline, keyed by seed: paired over matched seeds when both groups hold the
    same seeds, else Welch's unequal-variance t-test on the two samples."""
    from scipy import stats

    if set(group) == set(baseline) and len(group) >= 2:
        seeds = sorted(group)
        d = [group[s] - baseline[s] for s in seeds]
        n = len(d)
        mean = statistics.fmean(d)
        sd = statistics.stdev(d)
        half = t_quantile(n - 1) * sd / math.sqrt(n)
        p_t = float(stats.ttest_rel([group[s] for s in seeds], [baseline[s] for s in seeds]).pvalue)
        p_w = None
        if n >= WILCOXON_MIN_N and any(d):
            p_w = float(stats.wilcoxon(d).pvalue)
        return Difference(
            "paired t (matched seeds)" + (" + Wilcoxon" if p_w is not None else ""),
            n, mean, mean - half, mean + half, _nan_to_none(p_t), p_w,
        )  # fmt: skip
    x, b = list(group.values()), list(baseline.values())
    if len(x) < 2 or len(b) < 2:
        return Difference("none (n < 2)", min(len(x), len(b)), None, None, None, None, None)
    vx, vb = statistics.variance(x) / len(x), statistics.variance(b) / len(b)
    mean = statistics.fmean(x) - statistics.fmean(b)
    se = math.sqrt(vx + vb)
    if se == 0:
        return Difference("Welch t (unpaired)", min(len(x), len(b)), mean, mean, mean, None, None)
    df = (vx + vb) ** 2 / (vx**2 / (len(x) - 1) + vb**2 / (len(b) - 1))
    half = t_quantile(df) * se
    p_t = float(stats.ttest_ind(x, b, equal_var=False).pvalue)
    return Difference(
        "Welch t (unpaired)", min(len(x), len(b)), mean, mean - half, mean + half, p_t, None
    )


def _nan_to_none(p: float) -> float | None:
    return None if math.isnan(p) else p
