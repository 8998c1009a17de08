import numpy as np
import pytest
from scipy import stats as st

from kdlib import stats


def test_paired_ci_matches_the_t_interval_by_hand():
    a, b = [0.951, 0.948, 0.953, 0.949, 0.950], [0.947, 0.946, 0.950, 0.948, 0.945]
    ci = stats.paired_ci(a, b)
    d = np.subtract(a, b)
    half = st.t.ppf(0.975, 4) * d.std(ddof=1) / np.sqrt(5)
    assert ci["mean"] == pytest.approx(d.mean()) and ci["n"] == 5
    assert (ci["low"], ci["high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    # the same numbers unpaired give a much wider interval: pairing is what makes it tight
    assert ci["high"] - ci["low"] < 2 * half + 1e-12
    res = st.ttest_rel(a, b)
    assert (res.confidence_interval().low, res.confidence_interval().high) == pytest.approx((ci["low"], ci["high"]))


def test_verdicts():
    assert "positive" in stats.verdict({"low": 0.1, "high": 0.3})
    assert "negative" in stats.verdict({"low": -0.3, "high": -0.1})
    assert "holds 0" in stats.verdict({"low": -0.3, "high": 0.1})


def test_bad_input():
    with pytest.raises(ValueError, match="same length"):
        stats.paired_ci([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="same length"):
        stats.paired_ci([1], [2])
    with pytest.raises(ValueError, match="confidence"):
        stats.paired_ci([1, 2], [2, 3], confidence=1.5)


def test_claim_verdict_separates_no_effect_from_underpowered():
    from kdlib.stats import claim_verdict, paired_ci
    base = [0.0, 0.0, 0.0, 0.0, 0.0]
    assert claim_verdict(paired_ci([1.0, 1.2, 0.9, 1.1, 1.0], base), 0.5) == "supported"
    assert claim_verdict(paired_ci([-1.0, -1.2, -0.9, -1.1, -1.0], base), 0.5) == "contradicted"
    narrow = paired_ci([0.05, -0.05, 0.02, -0.03, 0.0], base)  # holds 0, excludes +0.5
    assert narrow["low"] < 0 < narrow["high"] < 0.5 and claim_verdict(narrow, 0.5) == "not supported"
    wide = paired_ci([3.0, -3.0, 2.0, -2.5, 0.5], base)  # holds 0 and +0.5: cannot tell
    assert wide["low"] < 0 < 0.5 < wide["high"] and claim_verdict(wide, 0.5) == "underpowered"
    with pytest.raises(ValueError, match="min_effect"):
        claim_verdict(wide, 0.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("arg", ["a", "b"])
def test_non_finite_values_are_refused_naming_the_seed(arg, bad):
    """Issue 26: a NaN made a NaN mean that claim_verdict called "underpowered"; inf gave [nan, nan]."""
    a, b = [0.9, 0.92, 0.91], [0.8, 0.85, 0.81]
    (a if arg == "a" else b)[1] = bad
    with pytest.raises(ValueError, match=rf"^{arg}\[1\] \(seed index 1\) is -?(nan|inf)"):
        stats.paired_ci(a, b)


def test_claim_verdict_refuses_a_non_finite_interval_or_effect():
    ci = stats.paired_ci([0.9, 0.92, 0.91], [0.8, 0.85, 0.81])
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="min_effect"):
            stats.claim_verdict(ci, bad)
    with pytest.raises(ValueError, match=r"seed index 2"):
        stats.claim_verdict(dict(ci, diffs=[0.1, 0.07, np.nan]), 0.01)
    with pytest.raises(ValueError, match=r"ci\['low'\] is nan"):
        stats.claim_verdict({"mean": np.nan, "low": np.nan, "high": np.nan}, 0.01)


def test_verdict_of_an_interval_holding_zero_prints_its_ends():
    text = stats.verdict({"low": -0.17, "high": 0.23})
    assert "[-0.17, +0.23]" in text and "underpowered" in text and "either way" not in text


def test_errors_difference_counts_only_the_images_one_model_gets_wrong():
    a = np.array([1, 1, 1, 0, 0, 1], dtype=bool)   # 4 errors
    b = np.array([1, 0, 0, 1, 0, 1], dtype=bool)   # 3 errors; both wrong on images 0 and 5
    d = stats.errors_difference(a, b)
    assert (d["only_a"], d["only_b"], d["mean"]) == (2, 1, 1.0)
    assert d["low"] == pytest.approx(1 - 1.96 * np.sqrt(3)) and d["high"] == pytest.approx(1 + 1.96 * np.sqrt(3))
    same = stats.errors_difference(a, a)
    assert (same["mean"], same["low"], same["high"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="wrong_a and wrong_b"):
        stats.errors_difference(a, b[:3])
