"""Paired comparisons over seeds: runs with the same seed share initial weights and batch order,
so the per-seed differences are what to average (a paired t interval, not Welch's)."""
from __future__ import annotations

import numpy as np
from scipy import stats

from . import argcheck


def _check_finite(name: str, values) -> None:
    """ValueError naming the first seed (index) of ``values`` that is NaN or infinite."""
    bad = np.flatnonzero(~np.isfinite(np.asarray(values, dtype=float)))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{name}[{i}] (seed index {i}) is {values[i]}: every value must be a finite "
                         f"number (a diverged or missing run? leave that seed out of both lists)")


def paired_ci(a, b, confidence: float = 0.95) -> dict:
    """Mean of the per-seed differences ``a - b`` and its ``confidence`` interval (Student t with
    n - 1 degrees of freedom): mean ± t_{n-1} * sd / sqrt(n). Needs at least two pairs, all finite."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"a and b must be 1-D with the same length >= 2 (one value per seed), "
                         f"got shapes {a.shape} and {b.shape}")
    _check_finite("a", a)
    _check_finite("b", b)
    argcheck.number("confidence", confidence, "a number in (0, 1)", lambda c: 0 < c < 1)
    d = a - b
    n, mean, sd = len(d), float(d.mean()), float(d.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / np.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n, "diffs": d.tolist()}


def verdict(ci: dict, what: str = "difference") -> str:
    """A sentence for an interval: above 0, below 0, or an interval that holds 0 (with its ends, two
    decimals, as the notebooks' tables print them)."""
    if ci["low"] > 0:
        return f"the {what} is positive (95% interval above 0)"
    if ci["high"] < 0:
        return f"the {what} is negative (95% interval below 0)"
    return (f"the 95% interval [{ci['low']:+.2f}, {ci['high']:+.2f}] holds 0: no {what} detected; "
            f"underpowered for any {what} inside it")


def claim_verdict(ci: dict, min_effect: float) -> str:
    """A claimed gain (``ci`` of a - b, the claim being a > b) judged by its interval:
    "supported" (interval above 0), "contradicted" (below 0), "not supported" (holds 0 and
    excludes every gain of ``min_effect`` or more: any gain is small) or "underpowered" (holds 0
    but also gains of ``min_effect`` or more: these seeds cannot tell)."""
    argcheck.number("min_effect", min_effect, "a finite number > 0", lambda m: 0 < m < np.inf)
    if "diffs" in ci:
        _check_finite("ci['diffs']", ci["diffs"])
    for end in ("low", "high"):
        if not np.isfinite(ci[end]):
            raise ValueError(f"ci['{end}'] is {ci[end]}: the interval must be finite")
    if ci["low"] > 0:
        return "supported"
    if ci["high"] < 0:
        return "contradicted"
    return "not supported" if ci["high"] < min_effect else "underpowered"


def errors_difference(wrong_a, wrong_b, z: float = 1.96) -> dict:
    """Two models scored on the same test images (``wrong_a``, ``wrong_b``: one bool per image, True
    where that model is wrong). Only the images exactly one gets wrong tell them apart (McNemar):
    the difference of errors a - b = only_a - only_b, with the interval ± z sqrt(only_a + only_b)
    (normal approximation; z = 1.96 for 95%)."""
    a, b = np.asarray(wrong_a, dtype=bool), np.asarray(wrong_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"wrong_a and wrong_b must be 1-D with one value per test image, got shapes "
                         f"{a.shape} and {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    half = z * np.sqrt(only_a + only_b)
    return {"mean": float(only_a - only_b), "low": only_a - only_b - half, "high": only_a - only_b + half,
            "only_a": only_a, "only_b": only_b}
