"""Notebook 03's distillation playground: pick T, alpha, the student's size and a seed, press Train.

Students learn from cached teacher logits (the teacher ran once), so a 784-16-10 student trains in
seconds. Each run adds a row to a table of the user's runs, which can be sorted by any column.
"""
from __future__ import annotations

import html
import math
import time

from . import losses, recipes, train

HIDDEN = (16, 32, 64, 128)
COLUMNS = {"run": "run", "hidden": "hidden units", "T": "T", "alpha": "alpha", "seed": "seed",
           "epochs": "epochs", "test_acc": "test accuracy", "agreement": "agreement with the teacher",
           "soft_kl": "soft-target KL (test)", "seconds": "seconds"}


def train_and_score(data: dict, hidden: int = 16, T: float = 2.0, alpha: float = 0.8, seed: int = 0,
                    max_epochs: int | None = None) -> dict:
    """Train a 784-``hidden``-10 student on ``alpha * T^2 KL + (1 - alpha) CE`` (notebook 03's
    recipe: Adam 1e-3, batch 64, early stopping on validation) and score it on the test set.

    ``data``: ``train``, ``val`` and ``test`` tuples ``(x, y, teacher_logits)``. Returns the
    settings and: test accuracy, top-1 agreement with the teacher, and the soft-target
    KL(p_teacher || q_student) at T (batchmean, without the T^2 factor) on the test set.
    """
    if hidden not in HIDDEN:
        raise ValueError(f"hidden must be one of {HIDDEN}, got {hidden!r}")
    start = time.perf_counter()
    loss_fn = recipes.three_way_loss("hard+soft", T=T, alpha=alpha)
    model, hist = recipes.train_seed_student(loss_fn, data["train"], data["val"], seed, hidden, max_epochs)
    x, y, v = data["test"]
    z = train.predict_logits(model, x)
    return dict(hidden=hidden, T=float(T), alpha=float(alpha), seed=seed, epochs=len(hist["train_loss"]),
                test_acc=float((z.argmax(1) == y).float().mean()),
                agreement=float((z.argmax(1) == v.argmax(1)).float().mean()),
                soft_kl=float(losses.soft_target_loss(z, v, T)) / (T * T),
                seconds=time.perf_counter() - start)


def runs_table(runs: list[dict], sort_by: str = "run", descending: bool = False) -> str:
    """The runs as an HTML table, sorted by the column ``sort_by`` (a key of :data:`COLUMNS`)."""
    if sort_by not in COLUMNS:
        raise ValueError(f"sort_by must be one of {tuple(COLUMNS)}, got {sort_by!r}")
    rows = sorted(runs, key=lambda r: r[sort_by], reverse=descending)
    fmt = {"T": "{:.2f}", "alpha": "{:.2f}", "test_acc": "{:.4f}", "agreement": "{:.4f}",
           "soft_kl": "{:.4f}", "seconds": "{:.1f}"}
    head = "".join(f"<th>{html.escape(label)}</th>" for label in COLUMNS.values())
    body = "".join("<tr>" + "".join(f"<td>{fmt.get(k, '{}').format(r[k])}</td>" for k in COLUMNS) + "</tr>"
                   for r in rows)
    return f'<table class="kd-runs"><tr>{head}</tr>{body}</table>'


class Playground:
    """The widgets: T (log scale, 1-20), alpha (0-1), hidden units, seed, Train, and the runs.

    ``data`` as for :func:`train_and_score`. Display it as the last line of a cell.
    """

    def __init__(self, data: dict, max_epochs: int | None = None):
        import ipywidgets as w

        self.data, self.max_epochs, self.runs = data, max_epochs, []
        self.T = w.FloatLogSlider(value=2.0, base=10, min=0, max=math.log10(20), step=0.01,
                                  description="T", readout_format=".2f")
        self.alpha = w.FloatSlider(value=0.8, min=0, max=1, step=0.05, description="alpha")
        self.hidden = w.Dropdown(options=HIDDEN, value=16, description="hidden units")
        self.seed = w.BoundedIntText(value=0, min=0, max=2**31 - 1, description="seed")
        self.button = w.Button(description="Train", button_style="primary", icon="play")
        self.sort = w.Dropdown(options=[(v, k) for k, v in COLUMNS.items()], value="run",
                               description="sort by")
        self.descending = w.Checkbox(value=False, description="descending")
        self.progress = w.Output()
        self.result = w.HTML(layout=w.Layout(min_height="1.5em"))
        self.table = w.HTML()
        self.button.on_click(self._train)
        for control in (self.sort, self.descending):
            control.observe(lambda _: self._refresh(), names="value")
        self.widget = w.VBox([w.HBox([self.T, self.alpha]), w.HBox([self.hidden, self.seed, self.button]),
                              self.progress, self.result, w.HBox([self.sort, self.descending]), self.table])

    def _train(self, _=None) -> dict:
        self.button.disabled = True
        self.result.value = "training..."
        try:
            self.progress.clear_output()
            with self.progress:
                r = train_and_score(self.data, self.hidden.value, self.T.value, self.alpha.value,
                                    self.seed.value, self.max_epochs)
            r["run"] = len(self.runs) + 1
            self.runs.append(r)
            self.result.value = (f'<span class="kd-result">run {r["run"]}: test accuracy {r["test_acc"]:.4f}, '
                                 f'agreement with the teacher {r["agreement"]:.4f}, soft-target KL '
                                 f'{r["soft_kl"]:.4f} ({r["epochs"]} epochs, {r["seconds"]:.1f} s)</span>')
            self._refresh()
            return r
        finally:
            self.button.disabled = False

    def _refresh(self) -> None:
        self.table.value = runs_table(self.runs, self.sort.value, self.descending.value) if self.runs else ""

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)
