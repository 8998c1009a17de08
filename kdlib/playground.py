"""Notebook 03's distillation playground: pick T, alpha, the student's size and a seed, press Train. Each setting
is compared with the labels-only student of its seed by validation accuracy; test accuracy appears only in a report
column that cannot be sorted by. :func:`static_table` gives the table for viewers without widgets."""
from __future__ import annotations

import html
import math
import time

from . import argcheck, losses, recipes, train

HIDDEN = (16, 32, 64, 128)
COLUMNS = {"run": "run", "hidden": "hidden units", "T": "T", "alpha": "alpha", "seed": "seed",
           "epochs": "epochs", "val_acc": "validation accuracy (%)", "base_val_acc": "labels only, same seed (%)",
           "diff": "difference (points)", "agreement": "agrees with the teacher (validation, %)",
           "report": "report (test, %): this / labels only"}  # diff: val_acc - base_val_acc (labels only)
SORT_KEYS = {"run": "run", "hidden": "hidden units", "T": "T", "alpha": "alpha", "seed": "seed",
             "val_acc": "validation accuracy", "diff": "difference (validation)"}  # never the test set
NOTE = ("Compare settings by the <b>difference</b>: validation accuracy minus that of the labels-only "
        "student of the same seed (same initial weights, same batch order). The report column is "
        "test accuracy, for the write-up only: do not choose T or alpha by it. One seed's difference "
        "can be seed noise: repeat a setting with other seeds before believing it.")


def _check_settings(hidden, T, alpha, seed) -> None:
    """ValueError naming the first bad setting and its allowed values."""
    if hidden not in HIDDEN:
        raise ValueError(f"hidden must be one of {HIDDEN}, got {hidden!r}")
    for name, value, low, high in (("T", T, losses.T_MIN, losses.T_MAX), ("alpha", alpha, 0, 1)):
        argcheck.number(name, value, f"a number in [{low:g}, {high:g}]", lambda v: low <= v <= high)
    argcheck.integer("seed", seed, "an integer in [0, 2**64)", lambda v: 0 <= v < 2**64)


def _check_epochs(max_epochs) -> None:
    if max_epochs is not None:
        argcheck.integer("max_epochs", max_epochs, "None (the recipe's) or an integer >= 1", lambda v: v >= 1)


def _scores(model, hist: dict, data: dict) -> dict:
    """A trained student's ``val_acc``, ``agreement`` (top-1, with the teacher, validation), ``test_acc`` (for the
    report) and ``epochs`` run."""
    scores = {}  # split -> (accuracy, agreement with the teacher)
    for split in ("val", "test"):
        x, y, v = data[split]
        top = train.predict_logits(model, x).argmax(1)
        scores[split] = float((top == y).float().mean()), float((top == v.argmax(1)).float().mean())
    return {"val_acc": scores["val"][0], "agreement": scores["val"][1], "test_acc": scores["test"][0],
            "epochs": len(hist["train_loss"])}


def _train(data: dict, loss_fn, hidden: int, seed: int, max_epochs: int | None) -> dict:
    """One student of notebook 03's recipe: its :func:`_scores` and ``seconds``."""
    _check_epochs(max_epochs)
    start = time.perf_counter()
    model, hist = recipes.train_seed_student(loss_fn, data["train"], data["val"], seed, hidden, max_epochs)
    return {**_scores(model, hist, data), "seconds": time.perf_counter() - start}


def _row(run: int, r: dict, base: dict) -> dict:
    """A table row: run number, a setting's scores ``r`` and its labels-only baseline's ``base``."""
    return {"run": run, **r, "base_val_acc": base["val_acc"], "base_test_acc": base["test_acc"],
            "diff": r["val_acc"] - base["val_acc"]}


def train_and_score(data: dict, hidden: int = 16, T: float = 2.0, alpha: float = 0.8, seed: int = 0,
                    max_epochs: int | None = None) -> dict:
    """Train a 784-``hidden``-10 student on ``alpha * T^2 KL + (1 - alpha) CE`` (notebook 03's recipe: Adam 1e-3,
    batch 64, early stopping on validation) from ``data`` (``train``, ``val``, ``test``: ``(x, y, teacher_logits)``).
    Returns the settings, ``val_acc``, ``agreement`` (top-1, with the teacher, validation), ``test_acc`` (report
    only), ``epochs``, ``seconds``."""
    _check_settings(hidden, T, alpha, seed)
    loss_fn = recipes.three_way_loss("hard+soft", T=T, alpha=alpha)
    return {"hidden": hidden, "T": float(T), "alpha": float(alpha), "seed": seed,
            **_train(data, loss_fn, hidden, seed, max_epochs)}


def train_labels_only(data: dict, hidden: int = 16, seed: int = 0, max_epochs: int | None = None) -> dict:
    """The paired baseline: the labels-only (cross-entropy) student of the same recipe, size and seed."""
    _check_settings(hidden, 1.0, 0.0, seed)
    return {"hidden": hidden, "seed": seed, **_train(data, recipes.three_way_loss("hard"), hidden, seed, max_epochs)}


class PairedRuns:
    """A user's runs, each beside the labels-only student of its size and seed (``baselines``, trained once).
    ``rows``: :func:`train_and_score`'s dicts plus ``run``, ``base_val_acc``, ``base_test_acc`` and ``diff``."""

    def __init__(self, data: dict, max_epochs: int | None = None):
        _check_epochs(max_epochs)
        self.data, self.max_epochs, self.rows, self.baselines = data, max_epochs, [], {}

    def baseline(self, hidden: int, seed: int) -> dict:
        """The labels-only student of this size and seed (trained now if it is not cached)."""
        if (hidden, seed) not in self.baselines:
            self.baselines[hidden, seed] = train_labels_only(self.data, hidden, seed, self.max_epochs)
        return self.baselines[hidden, seed]

    def run(self, hidden: int, T: float, alpha: float, seed: int) -> dict:
        """Train one setting (and its baseline, if new); append and return its row."""
        _check_settings(hidden, T, alpha, seed)  # before any training
        base = self.baseline(hidden, seed)
        row = _row(len(self.rows) + 1, train_and_score(self.data, hidden, T, alpha, seed, self.max_epochs), base)
        self.rows.append(row)
        return row


def _cells(row: dict) -> list[str]:
    """A row's cells, in the order of :data:`COLUMNS` (accuracies in %, the difference in points)."""
    return [str(row["run"]), str(row["hidden"]), f"{row['T']:.2f}", f"{row['alpha']:.2f}", str(row["seed"]),
            str(row["epochs"]), f"{100 * row['val_acc']:.2f}", f"{100 * row['base_val_acc']:.2f}",
            f"{100 * row['diff']:+.2f}", f"{100 * row['agreement']:.2f}",
            f"{100 * row['test_acc']:.2f} / {100 * row['base_test_acc']:.2f}"]


def runs_table(rows: list[dict], sort_by: str = "run", descending: bool = False) -> str:
    """The :class:`PairedRuns` rows as HTML: the note, then the table sorted by ``sort_by`` (in SORT_KEYS)."""
    if sort_by not in SORT_KEYS:
        raise ValueError(f"sort_by must be one of {tuple(SORT_KEYS)}, got {sort_by!r}")
    rows = sorted(rows, key=lambda r: r[sort_by], reverse=descending)
    head = "".join(f"<th>{html.escape(label)}</th>" for label in COLUMNS.values())
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in _cells(r)) + "</tr>" for r in rows)
    return f'<p class="kd-note">{NOTE}</p><table class="kd-runs"><tr>{head}</tr>{body}</table>'


def static_table(data: dict, settings, seed: int = 0, hidden: int = 16) -> str:
    """The playground's table in Markdown for ``settings`` (``(T, alpha)`` pairs) at one size and seed, beside the
    labels-only student of that seed: what a viewer without widgets (GitHub, nbviewer) sees. Its students train
    together in one stacked run (:func:`kdlib.recipes.train_seed_students`): the widget's, up to float rounding."""
    if not isinstance(settings, (list, tuple)) or not settings or any(
            not isinstance(s, (list, tuple)) or len(s) != 2 for s in settings):
        raise ValueError(f"settings must be a non-empty list of (T, alpha) pairs, got {settings!r}")
    for T, alpha in settings:  # every setting checked before anything trains
        _check_settings(hidden, T, alpha, seed)
    loss_by_run = {"labels only": recipes.three_way_loss("hard")}
    for i, (T, alpha) in enumerate(settings, 1):
        loss_by_run[f"run {i} (T {T:g}, alpha {alpha:g})"] = recipes.three_way_loss("hard+soft", T=T, alpha=alpha)
    trained = recipes.train_seed_students(loss_by_run, data["train"], data["val"], [seed], hidden=hidden)
    (base, *students) = [_scores(*runs[0], data) for runs in trained.values()]  # one seed: runs[0]
    lines = ["| " + " | ".join(COLUMNS.values()) + " |", "|" + "---|" * len(COLUMNS)]
    for i, ((T, alpha), r) in enumerate(zip(settings, students), 1):
        row = _row(i, {"hidden": hidden, "T": float(T), "alpha": float(alpha), "seed": seed, **r}, base)
        lines.append("| " + " | ".join(_cells(row)) + " |")
    note = NOTE.replace("<b>", "**").replace("</b>", "**")  # Markdown bold
    return (f"*A static copy of the playground's table, made by this run: run the notebook to use the "
            f"playground.*\n\n" + "\n".join(lines) + f"\n\n{note}")


class Playground:
    """The widgets: T (log scale, 1-20), alpha (0-1), hidden units, seed, Train, a status line and the sortable
    table of runs. ``data`` as for :func:`train_and_score`. Display it as the last line of a cell."""

    def __init__(self, data: dict, max_epochs: int | None = None):
        import ipywidgets as w
        self.runs = PairedRuns(data, max_epochs)
        full = {"style": {"description_width": "initial"}}  # labels as wide as their text: never cut
        self.T = w.FloatLogSlider(value=2.0, base=10, min=0, max=math.log10(20), step=0.01,
                                  description="T", readout_format=".2f", **full)
        self.alpha = w.FloatSlider(value=0.8, min=0, max=1, step=0.05, description="alpha", **full)
        self.hidden = w.Dropdown(options=HIDDEN, value=16, description="hidden units", **full)
        self.seed = w.BoundedIntText(value=0, min=0, max=2**31 - 1, description="seed", **full,
                                     layout=w.Layout(width="12em"))
        self.button = w.Button(description="Train", button_style="primary", icon="play")
        self.status = w.HTML("Choose a setting and press Train.", layout=w.Layout(min_height="1.5em"))
        self.sort = w.Dropdown(options=[(v, k) for k, v in SORT_KEYS.items()], value="run",
                               description="sort by", **full, layout=w.Layout(width="20em"))
        self.descending = w.Checkbox(value=False, description="descending", indent=False)
        self.sort_controls = w.HBox([self.sort, self.descending], layout=w.Layout(display="none"))
        self.table = w.HTML(layout=w.Layout(overflow="auto"))  # a narrow window scrolls the table
        self._bars = w.Output()  # catches training's progress bars, never shown: the status line says what trains
        self.button.on_click(self._train)
        for control in (self.sort, self.descending):
            control.observe(lambda _: self._refresh(), names="value")
        self.widget = w.VBox([w.HBox([self.T, self.alpha]), w.HBox([self.hidden, self.seed, self.button]),
                              self.status, self.sort_controls, self.table])

    def _say(self, text: str) -> None:
        self.status.value = f'<span class="kd-result">{html.escape(text)}</span>'

    def _train(self, _=None) -> dict:
        hidden, T, alpha, seed = self.hidden.value, self.T.value, self.alpha.value, self.seed.value
        self.button.disabled = True
        try:
            self._bars.clear_output()
            with self._bars:
                if (hidden, seed) not in self.runs.baselines:
                    self._say(f"training the labels-only student (784-{hidden}-10, seed {seed})...")
                    self.runs.baseline(hidden, seed)
                self._say(f"training T = {T:.2f}, alpha = {alpha:.2f} (784-{hidden}-10, seed {seed})...")
                r = self.runs.run(hidden, T, alpha, seed)
            self._say(f"run {r['run']}: validation accuracy {100 * r['val_acc']:.2f}% vs "
                      f"{100 * r['base_val_acc']:.2f}% labels only (seed {seed}): difference "
                      f"{100 * r['diff']:+.2f} points (epochs: {r['epochs']}, {r['seconds']:.1f} s)")
            self._refresh()
            return r
        except Exception as e:
            self._say(f"failed: {e}")
            raise
        finally:
            self.button.disabled = False

    def _refresh(self) -> None:
        rows = self.runs.rows
        self.sort_controls.layout.display = None if rows else "none"
        self.table.value = runs_table(rows, self.sort.value, self.descending.value) if rows else ""

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)
