"""Statistics for comparing runs: a summary of repeated runs, and the paired comparison of two
models on the same images.

Everything comes from scipy: the t interval of a mean over runs (seeds, folds), the bootstrap
over images (``scipy.stats.bootstrap``, percentile interval) of the difference of split scores,
which are recomputed from the resampled images' confusion matrices (a split's Dice is not a mean
of per-image values), the paired permutation test of those differences
(``scipy.stats.permutation_test``, each image's two predictions swapped at random) and the
Wilcoxon signed-rank test of per-image Dice (``scipy.stats.wilcoxon``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from segkit.core.scores import scores

RESAMPLES = 10_000
CONFIDENCE = 0.95
# Split scores recomputed from confusion matrices, in the order they are reported.
SPLIT_SCORES = ("dice", "miou", "pixel_accuracy")
# Resamples scored at once (bounds the memory of a vectorised bootstrap).
BATCH = 500


def _scipy_stats():
    """``scipy.stats``, imported on first use."""
    # lazy: scipy.stats takes about a second to import, and sweep jobs import this module
    # (through the sweep summary) on every start, most of them never summarising anything.
    from scipy import stats

    return stats


@dataclass(frozen=True)
class Summary:
    """n, mean, sample sd, min, max and a t interval of the mean of repeated runs' scores."""

    n: int
    mean: float
    sd: float
    min: float
    max: float
    low: float
    high: float

    def describe(self, digits: int = 4) -> str:
        """``0.9264 ± 0.0031 [0.9187, 0.9341]``: mean ± sd and the interval (the mean alone
        for a single value)."""
        if self.n < 2:
            return f"{self.mean:.{digits}f}"
        f = f".{digits}f"
        return f"{self.mean:{f}} ± {self.sd:{f}} [{self.low:{f}}, {self.high:{f}}]"


def summarise(values, confidence: float = CONFIDENCE) -> Summary:
    """Summary of the finite ``values``; sd and interval are NaN for fewer than two values."""
    stats = _scipy_stats()
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if x.size == 0:
        return Summary(0, *([math.nan] * 6))
    mean = float(x.mean())
    if x.size < 2:
        return Summary(1, mean, math.nan, mean, mean, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    if sd == 0:
        low = high = mean
    else:
        low, high = stats.t.interval(confidence, x.size - 1, loc=mean, scale=stats.sem(x))
    return Summary(x.size, mean, sd, float(x.min()), float(x.max()), float(low), float(high))


@dataclass(frozen=True)
class Difference:
    """Candidate minus baseline for one score, with its interval and p-value."""

    score: str
    baseline: float
    candidate: float
    difference: float
    low: float
    high: float
    p_value: float
    test: str

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of 0."""
        return self.low > 0 or self.high < 0


def split_differences(
    baseline: np.ndarray, candidate: np.ndarray, seed: int = 0, resamples: int = RESAMPLES
) -> list[Difference]:
    """Paired differences of the split scores (``SPLIT_SCORES``) of two sets of per-image
    confusion matrices [N, K, K] of the same images in the same order: candidate minus
    baseline, a bootstrap interval over images and a paired permutation p-value."""
    stats = _scipy_stats()
    n = len(baseline)
    # Image i of the baseline is row i, of the candidate row n + i; a resample is a pair of
    # index arrays into these rows, scored as the split its images make up.
    rows = np.concatenate([baseline, candidate]).reshape(2 * n, -1).astype(np.float64)
    shape = baseline.shape[1:]
    first, second = np.arange(n), np.arange(n, 2 * n)

    def split_scores(images):
        # [..., n] row indices -> [len(SPLIT_SCORES), ...]; counts times rows, not a gather
        # of [..., n, K, K] (gigabytes for VOC's 21 classes).
        flat = images.reshape(-1, n)
        offsets = np.arange(len(flat))[:, None] * (2 * n)
        counts = np.bincount((flat + offsets).ravel(), minlength=flat.size * 2)
        counts = counts.reshape(len(flat), 2 * n).astype(np.float64)
        found = scores((counts @ rows).reshape(*images.shape[:-1], *shape))
        return np.stack([found[name] for name in SPLIT_SCORES])

    def difference(a_images, b_images, axis=-1):
        return split_scores(b_images) - split_scores(a_images)

    common = {"vectorized": True, "n_resamples": resamples, "batch": BATCH}
    observed = difference(first, second)
    interval = stats.bootstrap(
        (first, second),
        difference,
        paired=True,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
        **common,
    ).confidence_interval
    tests = stats.permutation_test(
        (first, second),
        # permutation_test stacks the resamples on the first axis, bootstrap on the last.
        lambda a_images, b_images, axis=-1: difference(a_images, b_images).T,
        permutation_type="samples",
        rng=np.random.default_rng(seed),
        **common,
    )
    a_scores, b_scores = split_scores(first), split_scores(second)
    return [
        Difference(
            name,
            float(a_scores[k]),
            float(b_scores[k]),
            float(observed[k]),
            float(interval.low[k]),
            float(interval.high[k]),
            float(tests.pvalue[k]),
            "paired permutation",
        )
        for k, name in enumerate(SPLIT_SCORES)
    ]


def mean_difference(
    name: str, baseline, candidate, seed: int = 0, resamples: int = RESAMPLES
) -> Difference:
    """Paired difference of the mean of a per-image score (e.g. per-image Dice): bootstrap
    interval of the mean difference, Wilcoxon signed-rank p-value (1 when no image differs)."""
    stats = _scipy_stats()
    a, b = np.asarray(baseline, np.float64), np.asarray(candidate, np.float64)
    diff = b - a
    if np.all(diff == diff[0]):
        # A constant difference: every resample has the same mean, and the signed-rank test
        # has no spread to rank (all zero: nothing differs).
        low = high = float(diff[0])
        p_value = 1.0 if diff[0] == 0 else float(stats.wilcoxon(diff).pvalue)
    else:
        interval = stats.bootstrap(
            (diff,),
            np.mean,
            n_resamples=resamples,
            confidence_level=CONFIDENCE,
            method="percentile",
            rng=np.random.default_rng(seed),
        ).confidence_interval
        low, high = float(interval.low), float(interval.high)
        p_value = float(stats.wilcoxon(b, a, zero_method="zsplit").pvalue)
    return Difference(
        name, float(a.mean()), float(b.mean()), float(diff.mean()), low, high, p_value, "Wilcoxon"
    )


def verdict(primary: Difference, baseline: str, candidate: str, images: int) -> str:
    """One line: which run is better on ``primary``, or that the images cannot tell."""
    found = (
        f"{primary.score} {primary.difference:+.4f} [{primary.low:+.4f}, {primary.high:+.4f}], "
        f"p={primary.p_value:.3g}, {images} images"
    )
    if primary.excludes_zero:
        better = candidate if primary.difference > 0 else baseline
        return f"{better} better ({found})"
    return f"no detectable difference at this sample size ({found})"
