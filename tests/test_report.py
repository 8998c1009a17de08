"""kdlib.report: notebook 05's tables and figures, on a made-up result (no training)."""
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kdlib import report, stats  # noqa: E402
from kdlib.noisy import Student  # noqa: E402

NAMES = {"alone": "alone", "clean teacher": "clean", "noisy teacher": "noisy", "dropout student": "dropout"}


def _record(student, acc):
    return {"student": student, "seed": 0, "split": "val", "acc": acc, "seconds": 1.0}


def _res():
    clean, alone = _record(Student("L2", 1e-3), 0.97), _record(Student("labels", 1e-3), 0.96)
    sig = {0.0: clean, 0.1: _record(Student("L2", 3e-3, sigma=0.1, fraction=0.15), 0.975),
           1.0: _record(Student("L2", 3e-3, sigma=1.0, fraction=0.15), 0.40)}  # one diverged: below the axis
    frac = {0.0: clean, 0.15: sig[0.1], 1.0: _record(Student("L2", 3e-3, sigma=0.1, fraction=1.0), 0.972)}
    drop = {0.0: clean, 0.3: _record(Student("L2", 1e-3, dropout=0.3), 0.968)}
    found = {"sigma": {"records": sig, "best": 0.1}, "fraction": {"records": frac, "best": 0.15},
             "dropout": {"records": drop, "best": 0.0}}
    key = {"alone": [0.960, 0.962, 0.958], "clean teacher": [0.970, 0.971, 0.969],
           "noisy teacher": [0.9705, 0.9700, 0.9702], "dropout student": [0.968, 0.969, 0.967]}
    return dict(dataset="mnist", n_val=12000, tune_seed=0, report_seeds=[1, 2, 3], paper_fraction=0.15,
                teacher=dict(name="LeNetMNIST", val=0.99, test=0.991), searches=found,
                lr_trials={"sigma": [sig[1.0], _record(Student("L2", 1e-3, sigma=1.0, fraction=0.15), 0.96)]},
                chosen={"alone": alone, "clean teacher": clean, "noisy teacher": sig[0.1], "dropout student": drop[0.3]},
                key=key)


@pytest.fixture
def shown(monkeypatch):
    """The markdown and figures a report function shows."""
    out = {"md": [], "figs": []}
    monkeypatch.setattr(report, "display", lambda m: out["md"].append(m.data))
    monkeypatch.setattr(plt, "show", lambda: out["figs"].append(plt.gcf()))
    yield out
    plt.close("all")


def test_binomial_se():
    assert report.binomial_se(0.9, 10000) == pytest.approx(100 * np.sqrt(0.9 * 0.1 / 10000))
    assert report.binomial_se(1.0, 50) == 0.0


def test_comparison_table_gives_the_paired_intervals(shown):
    res = _res()
    pairs = [("noisy teacher", "clean teacher"), ("clean teacher", "alone")]
    cis = report.comparison_table(res, pairs, NAMES, min_gain=0.2, confidence=1 - 0.05 / 4)
    for a, b in pairs:
        ci = stats.paired_ci(100 * np.array(res["key"][a]), 100 * np.array(res["key"][b]))
        assert cis[a, b]["low"] == pytest.approx(ci["low"]) and cis[a, b]["high"] == pytest.approx(ci["high"])
    wide = stats.paired_ci(100 * np.array(res["key"]["clean teacher"]), 100 * np.array(res["key"]["alone"]),
                           1 - 0.05 / 4)
    table = shown["md"][0]
    assert "98.8% interval" in table and f"[{wide['low']:+.2f}, {wide['high']:+.2f}]" in table
    assert "| clean - alone |" in table and "supported" in table
    assert len(table.splitlines()) == 2 + len(pairs)


def test_tables_list_every_run_and_student(shown):
    res = _res()
    report.tuning_table(res, [("sigma grid", r) for r in res["searches"]["sigma"]["records"].values()])
    report.key_table(res, NAMES)
    tuning, key = shown["md"]
    assert len(tuning.splitlines()) == 2 + 3 and "| L2, sigma 0.1 (var 0.01), fraction 0.15 | 0.003 | 0.9750 |" in tuning
    assert "| noisy | 97.02 ±" in key and "| teacher (LeNetMNIST) | 99.10 (one run) | |" in key


def test_figures_are_labelled(shown):
    res = _res()
    report.plot_grids(res)
    report.plot_report(res, NAMES)
    grids, rep = shown["figs"]
    assert grids.axes[0].get_ylabel().startswith("validation accuracy") and all(ax.get_xlabel() for ax in grids.axes[:3])
    labels = [t.get_text() for t in grids.legends[0].texts]
    assert any("below the axis: 40.0%" in t for t in labels)  # the diverged run, named once
    # one learning rate, one style in every panel (the fraction panel has only 3e-3, the dropout one only 1e-3)
    styles = {}
    for ax in grids.axes[:3]:
        for line in ax.get_lines():
            if line.get_label().startswith("lr "):
                styles.setdefault(line.get_label().split()[1], set()).add((line.get_marker(), line.get_color()))
    assert set(styles) == {"0.001", "0.003"} and all(len(v) == 1 for v in styles.values())
    assert styles["0.001"] != styles["0.003"]
    assert rep.axes[0].get_ylabel() == "test accuracy (%)" and "the paired table is the test" in \
        " ".join(t.get_text() for t in rep.axes[0].get_legend().texts)
