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
