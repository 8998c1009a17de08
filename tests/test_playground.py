"""Notebook 03's playground: paired runs (each setting beside the labels-only student of its seed),
compared on validation; the table (test accuracy only as a report), the static table, the widgets."""
from __future__ import annotations

import re

import pytest
import torch

from kdlib import playground, recipes, train


@pytest.fixture(scope="module")
def data():
    """Real MNIST (2,000 per split) with a fake 'teacher' that knows the labels, except that it
    calls every 0 a 1: top-1 agreement then differs from accuracy."""
    from pathlib import Path
    import os
    d = Path(os.environ.get("KDLIB_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not (d / "mnist-train.npz").exists():
        pytest.skip("real MNIST not found")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KDLIB_DATA", str(d))
        split = recipes.mnist_split(2000)
    out = {}
    for k, (x, y) in split.items():
        target = y.clone()
        target[y == 0] = 1
        out[k] = (x, y, 6.0 * torch.nn.functional.one_hot(target, 10).float())
    return out


@pytest.fixture
def trainings(monkeypatch):
    """Counts the students trained (calls of recipes.train_seed_student), by loss kind."""
    calls = []
    real = recipes.train_seed_student

    def counting(loss_fn, *args):
        calls.append("hard" if loss_fn is recipes.three_way_loss("hard") else "hard+soft")
        return real(loss_fn, *args)
    monkeypatch.setattr(recipes, "train_seed_student", counting)
    return calls


def _accuracies(model, data):
    return train.evaluate(model, *data["val"][:2])[1], train.evaluate(model, *data["test"][:2])[1]


def test_baseline_is_the_labels_only_student_of_the_same_seed(data):
    row = playground.PairedRuns(data, max_epochs=2).run(hidden=16, T=2.0, alpha=0.8, seed=3)
    hard, _ = recipes.train_seed_student(recipes.three_way_loss("hard"), data["train"], data["val"], 3, 16, 2)
    assert (row["base_val_acc"], row["base_test_acc"]) == _accuracies(hard, data)
    kd, _ = recipes.train_seed_student(recipes.three_way_loss("hard+soft", T=2.0, alpha=0.8),
                                       data["train"], data["val"], 3, 16, 2)
    assert (row["val_acc"], row["test_acc"]) == _accuracies(kd, data)
    assert row["diff"] == row["val_acc"] - row["base_val_acc"]  # validation, not test
    assert (row["run"], row["hidden"], row["T"], row["alpha"], row["seed"]) == (1, 16, 2.0, 0.8, 3)
    assert 1 <= row["epochs"] <= 2 and 0.5 < row["val_acc"] < 1


def test_alpha_zero_is_its_own_baseline(data):
    """alpha = 0 is the labels-only loss: with the same seed (initial weights, batch order) the
    student is the baseline, so the difference is exactly 0; another seed's baseline would not be."""
    row = playground.PairedRuns(data, max_epochs=2).run(hidden=32, T=4.0, alpha=0.0, seed=1)
    assert row["diff"] == 0 and row["test_acc"] == row["base_test_acc"]
    other = playground.train_labels_only(data, hidden=32, seed=2, max_epochs=2)
    assert other["val_acc"] != row["val_acc"]


def test_the_baseline_trains_once_per_size_and_seed(data, trainings):
    runs = playground.PairedRuns(data, max_epochs=1)
    first = runs.run(16, 2.0, 0.8, 0)
    second = runs.run(16, 5.0, 0.5, 0)
    assert trainings == ["hard", "hard+soft", "hard+soft"]
    assert second["base_val_acc"] == first["base_val_acc"] and second["run"] == 2
    runs.run(16, 2.0, 0.8, 1)
    runs.run(32, 2.0, 0.8, 1)
    assert trainings.count("hard") == 3 and set(runs.baselines) == {(16, 0), (16, 1), (32, 1)}


def test_alpha_one_learns_only_from_the_teacher(data):
    """With alpha=1 the labels play no part: the student follows the fake teacher's mistakes."""
    r = playground.train_and_score(data, hidden=32, T=1.0, alpha=1.0, seed=0, max_epochs=4)
    assert r["agreement"] > r["val_acc"] + 0.05  # 0s are about 10% of the validation images
    labels = playground.train_and_score(data, hidden=32, T=1.0, alpha=0.0, seed=0, max_epochs=4)
    assert labels["val_acc"] > labels["agreement"] + 0.05  # alpha=0: the labels only


def test_bad_settings_are_refused_before_training(data, trainings):
    runs = playground.PairedRuns(data, max_epochs=1)
    for kwargs, name in [(dict(hidden=17), "hidden"), (dict(alpha=1.5), "alpha"), (dict(alpha=True), "alpha"),
                         (dict(T=0.0), "T"), (dict(T=float("nan")), "T"), (dict(seed=-1), "seed"),
                         (dict(seed=1.5), "seed")]:
        settings = {"hidden": 16, "T": 2.0, "alpha": 0.8, "seed": 0, **kwargs}
        with pytest.raises(ValueError, match=f"^{name} must"):
            runs.run(**settings)
        with pytest.raises(ValueError, match=f"^{name} must"):
            playground.train_and_score(data, **settings)
    with pytest.raises(ValueError, match="^max_epochs must"):
        playground.PairedRuns(data, max_epochs=0)
    with pytest.raises(ValueError, match="^settings must"):
        playground.static_table(data, [])
    with pytest.raises(ValueError, match="^settings must"):
        playground.static_table(data, [(2.0,)])
    with pytest.raises(ValueError, match="^alpha must"):
        playground.static_table(data, [(2.0, 0.8), (2.0, 2.0)])  # the bad one is found before any training
    assert trainings == [] and runs.rows == [] and runs.baselines == {}


def _row(run, val_acc, base, test_acc):
    return dict(run=run, hidden=16, T=2.0, alpha=0.5, seed=run, epochs=3, val_acc=val_acc, base_val_acc=base,
                diff=val_acc - base, agreement=0.9, test_acc=test_acc, base_test_acc=0.5, seconds=1.0)


def test_runs_table_sorts_by_validation_never_by_test():
    rows = [_row(1, 0.91, 0.90, 0.99), _row(2, 0.95, 0.96, 0.98), _row(3, 0.93, 0.91, 0.97)]
    by_val = playground.runs_table(rows, "val_acc", descending=True)
    assert by_val.index("95.00") < by_val.index("93.00") < by_val.index("91.00")
    by_diff = playground.runs_table(rows, "diff", descending=True)  # +2, +1, -1 points
    assert by_diff.index("+2.00") < by_diff.index("+1.00") < by_diff.index("-1.00")
    assert playground.runs_table(rows).index("91.00") < playground.runs_table(rows).index("95.00")
    assert "99.00 / 50.00" in by_val  # test accuracy: shown in the report column only
    for key in ("test_acc", "base_test_acc", "report", "soft_kl", "agreement", "colour"):
        with pytest.raises(ValueError, match="sort_by"):
            playground.runs_table(rows, key)
    assert "report (test" in by_val and "do not choose T or alpha by it" in by_val
    assert by_val.count("<tr>") == 4


def test_static_table(data, trainings, monkeypatch):
    stacked = []
    real = recipes.train_seed_students

    def recording(loss_by_kind, *args, **kwargs):
        stacked.append(list(loss_by_kind))
        return real(loss_by_kind, *args, **kwargs)
    monkeypatch.setattr(recipes, "train_seed_students", recording)
    md = playground.static_table(data, [(1.0, 0.8), (5.0, 0.8)], seed=0, hidden=16)
    assert trainings == [] and len(stacked) == 1 and len(stacked[0]) == 3  # one stacked run: baseline + 2
    assert "run the notebook to use the playground" in md and "do not choose T or alpha by it" in md
    lines = [line for line in md.splitlines() if line.startswith("|")]
    assert len(lines) == 4 and "report (test" in lines[0]
    # the same students trained again, one stacked run: the table holds their scores
    losses = {"hard": recipes.three_way_loss("hard")}
    losses.update({f"T {T:g}": recipes.three_way_loss("hard+soft", T=T, alpha=0.8) for T in (1.0, 5.0)})
    again = {k: runs[0][0] for k, runs in real(losses, data["train"], data["val"], [0]).items()}
    base_val, base_test = _accuracies(again["hard"], data)
    for line, T in zip(lines[2:], (1.0, 5.0)):
        val, test = _accuracies(again[f"T {T:g}"], data)
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2:5] == [f"{T:.2f}", "0.80", "0"]
        assert cells[6:9] == [f"{100 * val:.2f}", f"{100 * base_val:.2f}", f"{100 * (val - base_val):+.2f}"]
        assert cells[10] == f"{100 * test:.2f} / {100 * base_test:.2f}"


def test_the_train_button(data, trainings):
    pg = playground.Playground(data, max_epochs=1)
    assert pg.sort_controls.layout.display == "none" and pg.table.value == ""  # nothing to sort yet
    assert all(c.style.description_width == "initial" for c in (pg.T, pg.alpha, pg.hidden, pg.seed, pg.sort))
    assert "test_acc" not in [key for _, key in pg.sort.options]
    pg.T.value, pg.alpha.value, pg.hidden.value = 4.0, 0.5, 32
    pg.button.click()
    assert pg.sort_controls.layout.display is None and pg.table.value.count("<tr>") == 2
    m = re.search(r"run 1: validation accuracy ([\d.]+)% vs ([\d.]+)% labels only \(seed 0\): "
                  r"difference ([+-][\d.]+) points", pg.status.value)
    assert m, pg.status.value
    r = pg.runs.rows[0]
    assert [float(v) for v in m.groups()] == [round(100 * r[k], 2) for k in ("val_acc", "base_val_acc", "diff")]
    assert "test" not in pg.status.value and r["T"] == pytest.approx(4.0) and r["hidden"] == 32
    pg.alpha.value = 0.9
    pg.button.click()  # same size and seed: the baseline is not trained again
    assert trainings == ["hard", "hard+soft", "hard+soft"] and pg.table.value.count("<tr>") == 3
    pg.sort.value, pg.descending.value = "diff", True
    shown = [float(x) for x in re.findall(r"<td>([+-][\d.]+)</td>", pg.table.value)]
    assert shown == sorted(shown, reverse=True) and len(shown) == 2
    assert not pg.button.disabled
