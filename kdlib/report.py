"""Notebook 05's figures and tables (tune on one seed, report on fresh seeds) of a result ``res`` for one dataset:
``dataset``, ``n_val``, ``tune_seed``, ``report_seeds``, ``teacher`` (``name``, ``val``, ``test``), ``paper_fraction``,
``searches`` (name -> :func:`kdlib.noisy.search` result), ``lr_trials`` (name -> the records that chose the grid's lr
at its largest value), ``chosen`` (key student -> its :func:`kdlib.noisy.score` record) and ``key`` (key student
-> test accuracy per seed)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from . import stats

PANELS = {"sigma": "sigma, standard deviation (fraction {f:g})",
          "fraction": "fraction of noisy samples (the paper's alpha)",
          "dropout": "dropout rate in the student (after each hidden layer)"}


def binomial_se(p: float, n: int) -> float:
    """Standard error, in points, of an accuracy ``p`` measured on ``n`` images: 100 sqrt(p(1-p)/n)."""
    return 100 * np.sqrt(p * (1 - p) / n)


def _lrs(res, name) -> set:
    """The learning rates the grid ``name`` ran at (its clean-teacher point, value 0, aside)."""
    recs, trials = res["searches"][name]["records"], res["lr_trials"].get(name, [])
    return {r["student"].lr for v, r in recs.items() if v > 0} | {r["student"].lr for r in trials}


def _panel(ax, res, name, lo, style):
    """One grid of :func:`plot_grids`: validation accuracy against the grid's values, per learning rate
    (``style``: learning rate -> (marker, colour), the same in every panel, so one legend serves all)."""
    recs = res["searches"][name]["records"]
    trials = res["lr_trials"].get(name, [])
    for lr in sorted(_lrs(res, name)):
        mk, colour = style[lr]
        pts = sorted({(v, 100 * r["acc"]) for v, r in recs.items() if v > 0 and r["student"].lr == lr} |
                     {(getattr(r["student"], name), 100 * r["acc"]) for r in trials if r["student"].lr == lr})
        below = [a for _, a in pts if a < lo]
        if len(below) == 1:
            gone = f" (1 below the axis: {below[0]:.1f}%)"
        elif below:
            gone = f" ({len(below)} below the axis: {min(below):.1f} to {max(below):.1f}%)"
        else:
            gone = ""
        ax.plot([x for x, _ in pts], [max(a, lo) for _, a in pts], mk + "-", color=colour, alpha=0.7,
                label=f"lr {lr:g}{gone}")
        ax.plot([x for x, a in pts if a < lo], [lo] * len(below), "v", color="C3", ms=9, clip_on=False)
    best = res["searches"][name]["best"]
    ax.plot([best], [100 * recs[best]["acc"]], "k*", ms=12, label="best on validation")
    ax.set_xlabel(PANELS[name].format(f=res["paper_fraction"]))
    ax.grid(alpha=0.3)


def plot_grids(res: dict):
    """The tuning seed's sigma, fraction and dropout grids on validation, per learning rate, beside the clean teacher
    (± one binomial standard error) and the student alone; runs below the axis are triangles."""
    clean, alone = res["chosen"]["clean teacher"], res["chosen"]["alone"]
    noise = binomial_se(clean["acc"], res["n_val"])
    shown = [alone["acc"], clean["acc"]] + [r["acc"] for k in PANELS for r in res["searches"][k]["records"].values()]
    lo, hi = 100 * np.median(shown) - 6 * noise, 100 * max(shown) + 2 * noise  # a diverged run: a triangle
    lo = min(lo, 100 * min(alone["acc"], clean["acc"]) - noise)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), sharey=True)
    lrs = sorted(set().union(*(_lrs(res, name) for name in PANELS)))
    colours = ("C0", "C1", "C4", "C5", "C6", "C8", "C9")  # C2, C3: the clean teacher and the student alone
    style = {lr: ("os^Dvp<"[i % 7], colours[i % 7]) for i, lr in enumerate(lrs)}  # the same in every panel
    for ax, name in zip(axes, PANELS):
        ax.axhspan(100 * clean["acc"] - noise, 100 * clean["acc"] + noise, color="C2", alpha=0.12)
        ax.axhline(100 * clean["acc"], color="C2", ls=":",
                   label=f"clean teacher (= 0 on each axis), its own lr {clean['student'].lr:g}")
        ax.axhline(100 * alone["acc"], color="C3", ls="-.", label="student alone")
        _panel(ax, res, name, lo, style)
    axes[0].set_ylim(lo, hi)
    axes[0].set_ylabel(f"validation accuracy, seed {res['tune_seed']} (%)")
    handles = {lab: h for ax in axes for h, lab in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"{res['dataset']}: seed-{res['tune_seed']} grids on validation (the teacher: "
                 f"{100 * res['teacher']['val']:.2f}% on validation)\nshaded: the clean teacher ± one "
                 f"binomial standard error ({noise:.2f} points)", fontsize=10)
    fig.subplots_adjust(left=0.06, right=0.99, top=0.84, bottom=0.24, wspace=0.08)
    plt.show()


def plot_report(res: dict, names: dict):
    """Each key student's test accuracy per report seed (grey lines join a seed's students), mean and 95% t
    interval. Unpaired bars: the paired table is the test."""
    keys = list(res["key"])
    acc = 100 * np.array([res["key"][k] for k in keys])  # students x seeds
    fig, ax = plt.subplots(figsize=(10, 4.4))
    for j in range(acc.shape[1]):  # one grey line per seed
        ax.plot(range(len(keys)), acc[:, j], "-", color="0.75", lw=0.8, zorder=1)
    ax.scatter(np.repeat(np.arange(len(keys)), acc.shape[1]), acc.flatten(), s=12, color="0.5", zorder=2,
               label="one seed (grey lines join a seed's students)")
    half = [stats.paired_ci(a, np.zeros_like(a))["high"] - a.mean() for a in acc]
    ax.errorbar(range(len(keys)), acc.mean(1), yerr=half, fmt="o", color="C0", capsize=4, zorder=3,
                label="mean, 95% interval of one student (unpaired: the paired table is the test)")
    ax.set_xticks(range(len(keys)), [names[k] for k in keys], fontsize=8, rotation=12)
    ax.set_ylabel("test accuracy (%)")
    teacher = 100 * res["teacher"]["test"]
    where = "off this scale" if teacher > ax.get_ylim()[1] else "dashed"
    if where == "dashed":
        ax.axhline(teacher, color="k", ls="--", lw=0.8)
    ax.set_title(f"{res['dataset']}: key students on {len(res['report_seeds'])} fresh seeds "
                 f"(the teacher's test accuracy, {teacher:.2f}%: {where})")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    plt.show()


def tuning_table(res: dict, records: list) -> None:
    """Every tuning run of the tuning seed: stage, student, learning rate, validation accuracy."""
    rows = [f"| {res['dataset']}, seed {res['tune_seed']} (tuning) | student | lr | validation |", "|---|---|---|---|"]
    rows += [f"| {stage} | {r['student']} | {r['student'].lr:g} | {r['acc']:.4f} |" for stage, r in records]
    display(Markdown("\n".join(rows)))


def key_table(res: dict, names: dict) -> None:
    """The key students' test accuracies on the report seeds: mean ± sd and per seed."""
    rows = [f"| {res['dataset']}, test accuracy on seeds {res['report_seeds']} | mean ± sd | per seed |",
            "|---|---|---|"]
    for k, accs in res["key"].items():
        a = 100 * np.array(accs)
        rows.append(f"| {names[k]} | {a.mean():.2f} ± {a.std(ddof=1):.2f} | {' '.join(f'{x:.2f}' for x in a)} |")
    rows.append(f"| teacher ({res['teacher']['name']}) | {100 * res['teacher']['test']:.2f} (one run) | |")
    display(Markdown("\n".join(rows)))


def comparison_table(res: dict, pairs, names: dict, min_gain: float, confidence: float) -> dict:
    """Paired differences a - b (points) of each pair of ``pairs``: per seed, mean, 95% and ``confidence`` t intervals
    and the verdict on a gain of ``min_gain`` points (:func:`kdlib.stats.claim_verdict`). Returns the 95% intervals."""
    cis = {}
    rows = [f"| {res['dataset']}: a - b (points) | per seed | mean | 95% interval | {100 * confidence:.1f}% interval "
            f"| verdict on a gain |", "|---|---|---|---|---|---|"]
    for a, b in pairs:
        xa, xb = 100 * np.array(res["key"][a]), 100 * np.array(res["key"][b])
        ci, wide = stats.paired_ci(xa, xb), stats.paired_ci(xa, xb, confidence)
        cis[a, b] = ci
        rows.append(f"| {names[a]} - {names[b]} | {' '.join(f'{x:+.2f}' for x in ci['diffs'])} | {ci['mean']:+.2f} "
                    f"| [{ci['low']:+.2f}, {ci['high']:+.2f}] | [{wide['low']:+.2f}, {wide['high']:+.2f}] "
                    f"| {stats.claim_verdict(ci, min_gain)} |")
    display(Markdown("\n".join(rows)))
    return cis
