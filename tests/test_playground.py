"""Notebook 03's playground: the training function and the widgets' table of runs."""
from __future__ import annotations

import pytest
import torch

from kdlib import playground, recipes


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


def test_train_and_score(data):
    r = playground.train_and_score(data, hidden=16, T=2.0, alpha=0.8, seed=3, max_epochs=3)
    assert r["hidden"] == 16 and r["T"] == 2.0 and r["alpha"] == 0.8 and 1 <= r["epochs"] <= 3
    assert 0.5 < r["test_acc"] < 1 and 0.5 < r["agreement"] < 1 and r["soft_kl"] > 0
    assert r["agreement"] != r["test_acc"]
    again = playground.train_and_score(data, hidden=16, T=2.0, alpha=0.8, seed=3, max_epochs=3)
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in r.items() if k != "seconds"}
    wide = playground.train_and_score(data, hidden=64, T=2.0, alpha=0.8, seed=3, max_epochs=3)
    assert wide["test_acc"] != r["test_acc"]


def test_alpha_one_learns_only_from_the_teacher(data):
    """With alpha=1 the labels play no part: the student follows the fake teacher's mistakes."""
    r = playground.train_and_score(data, hidden=32, T=1.0, alpha=1.0, seed=0, max_epochs=4)
    assert r["agreement"] > r["test_acc"] + 0.05  # 0s are about 10% of the test images
    mixed = playground.train_and_score(data, hidden=32, T=1.0, alpha=0.0, seed=0, max_epochs=4)
    assert mixed["test_acc"] > mixed["agreement"] + 0.05  # alpha=0: the labels only


def test_bad_settings_are_refused(data):
    with pytest.raises(ValueError, match="hidden"):
        playground.train_and_score(data, hidden=17)
    with pytest.raises(ValueError, match="alpha"):
        playground.train_and_score(data, alpha=1.5, max_epochs=1)


def test_runs_table_sorts():
    runs = [dict(run=i + 1, hidden=16, T=2.0, alpha=0.5, seed=i, epochs=3, test_acc=a, agreement=0.9,
                 soft_kl=0.1, seconds=1.0) for i, a in enumerate([0.91, 0.95, 0.93])]
    html = playground.runs_table(runs, "test_acc", descending=True)
    assert html.index("0.9500") < html.index("0.9300") < html.index("0.9100")
    assert playground.runs_table(runs).index("0.9100") < playground.runs_table(runs).index("0.9500")
    with pytest.raises(ValueError, match="sort_by"):
        playground.runs_table(runs, "colour")


def test_the_train_button_adds_a_row(data):
    pg = playground.Playground(data, max_epochs=1)
    pg.T.value, pg.alpha.value, pg.hidden.value = 4.0, 0.5, 32
    pg.button.click()
    pg.seed.value = 1
    pg.button.click()
    assert [r["run"] for r in pg.runs] == [1, 2] and pg.runs[0]["T"] == pytest.approx(4.0)
    assert pg.runs[1]["hidden"] == 32 and "test accuracy" in pg.result.value
    assert pg.table.value.count("<tr>") == 3  # header and two runs
