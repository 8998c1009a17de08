"""Notebook 06's experiment code (kdlib.hinton): transfer sets, paired students, the bias chosen
on validation, the paired confidence interval and the cached teacher."""
import numpy as np
import pytest
import torch

import kdlib
from kdlib import hinton, losses, models, recipes, train


# ---- transfer sets ---------------------------------------------------------------------------

def test_transfer_set_without_the_3s_keeps_every_other_row_aligned(real_data):
    x, y = recipes.mnist_split(2000)["train"]
    idx = torch.arange(len(y))  # an extra tensor that must travel with its own row
    tx, ty, tidx = hinton.transfer_set(x, y, idx, omit=(3,))
    assert int((y == 3).sum()) > 100  # there were 3s to remove
    assert not bool((ty == 3).any())
    assert len(ty) == len(y) - int((y == 3).sum())
    assert set(ty.tolist()) == set(range(10)) - {3}
    assert torch.equal(ty, y[tidx]) and torch.equal(tx, x[tidx])
    assert torch.equal(tidx, (y != 3).nonzero().flatten())  # order kept


def test_transfer_set_with_only_7s_and_8s(real_data):
    x, y = recipes.mnist_split(2000)["train"]
    v = torch.randn(len(y), 10)
    tx, ty, tv = hinton.transfer_set(x, y, v, keep=(7, 8))
    assert set(ty.tolist()) == {7, 8}
    assert len(ty) == int(((y == 7) | (y == 8)).sum())
    rows = (y == 7) | (y == 8)
    assert torch.equal(tx, x[rows]) and torch.equal(tv, v[rows])


def test_transfer_set_several_omitted_and_bad_arguments():
    y = torch.arange(10).repeat(5)
    x = torch.randn(50, 1, 28, 28)
    _, ty = hinton.transfer_set(x, y, omit=(0, 9))
    assert set(ty.tolist()) == set(range(1, 9))
    _, ty = hinton.transfer_set(x, y)  # nothing omitted
    assert torch.equal(ty, y)
    with pytest.raises(ValueError, match="omit or keep"):
        hinton.transfer_set(x, y, omit=(3,), keep=(7, 8))


# ---- paired students -------------------------------------------------------------------------

class _Stop(Exception):
    pass


def _start_of_run(monkeypatch, **kwargs):
    """The initial weights, the first batch and the loss of a train_mlp_student run (stopped before
    its first step)."""
    seen = {}

    def spy(model, optimizer, batches, val=None, *, epochs, loss_fn, desc):
        seen["state"] = {k: v.clone() for k, v in model.state_dict().items()}
        seen["batch"] = next(iter(batches))
        seen["loss_fn"] = loss_fn
        raise _Stop

    monkeypatch.setattr(train, "fit", spy)
    with pytest.raises(_Stop):
        hinton.train_mlp_student(**kwargs)
    return seen


def _data(n=300):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g), torch.randn(n, 10, generator=g)


def test_alone_and_distilled_students_with_one_seed_start_alike(monkeypatch):
    data = _data()
    common = dict(hidden=(30, 30), train_data=data, epochs=3)
    alone = _start_of_run(monkeypatch, loss_fn=train.cross_entropy, seed=7, **common)
    distilled = _start_of_run(monkeypatch, loss_fn=hinton.kd_loss(20.0), seed=7, **common)
    other = _start_of_run(monkeypatch, loss_fn=hinton.kd_loss(20.0), seed=8, **common)
    assert alone["state"].keys() == distilled["state"].keys()
    assert all(torch.equal(alone["state"][k], distilled["state"][k]) for k in alone["state"])
    assert all(torch.equal(a, b) for a, b in zip(alone["batch"], distilled["batch"]))
    assert len(alone["batch"][0]) == hinton.BATCH
    # ... and another seed starts elsewhere (so the checks above can fail)
    assert not torch.equal(alone["state"]["1.weight"], other["state"]["1.weight"])
    assert not torch.equal(alone["batch"][1], other["batch"][1])
    # the losses differ as they should: labels only, or soft targets at T plus labels
    z, y, v = torch.randn(8, 10), torch.randint(0, 10, (8,)), torch.randn(8, 10)
    assert alone["loss_fn"](z, y, v) == pytest.approx(float(torch.nn.functional.cross_entropy(z, y)))
    assert distilled["loss_fn"](z, y, v) == pytest.approx(
        float(losses.distillation_loss(z, v, y, 20.0, hinton.ALPHA)))


def test_paired_students_train_identically_until_the_loss_differs():
    data = _data(512)
    a1, _ = hinton.train_mlp_student((30, 30), train.cross_entropy, data, 3, epochs=1)
    a2, _ = hinton.train_mlp_student((30, 30), train.cross_entropy, data, 3, epochs=1)
    d, _ = hinton.train_mlp_student((30, 30), hinton.kd_loss(20.0), data, 3, epochs=1)
    assert all(torch.equal(p, q) for p, q in zip(a1.parameters(), a2.parameters()))  # repeatable
    assert not torch.equal(a1[-1].weight, d[-1].weight)
    assert not a1.training and [m.out_features for m in a1 if isinstance(m, torch.nn.Linear)] == [30, 30, 10]


def test_a_distilled_student_needs_teacher_logits():
    x, y, _ = _data(64)
    with pytest.raises(ValueError, match=r"train_data.*\(x, y, teacher_logits\)"):
        hinton.train_mlp_student((30,), hinton.kd_loss(20.0), (x, y), 0, epochs=1)
    model, hist = hinton.train_mlp_student((30,), train.cross_entropy, (x, y), 0, epochs=1)  # labels only: fine
    assert not model.training and len(hist["train_loss"]) == 1


def test_kd_loss_is_the_distillation_loss_with_alpha_on_the_soft_term():
    g = torch.Generator().manual_seed(1)
    z, v = torch.randn(16, 10, generator=g, dtype=torch.float64), torch.randn(16, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (16,), generator=g)
    for T, alpha in [(4.0, 0.3), (20.0, hinton.ALPHA)]:
        want = losses.distillation_loss(z, v, y, T, alpha)
        assert torch.equal(hinton.kd_loss(T, alpha)(z, y, v), want)
    assert torch.equal(hinton.kd_loss(20.0)(z, y, v), losses.distillation_loss(z, v, y, 20.0, hinton.ALPHA))
    assert not torch.equal(hinton.kd_loss(4.0)(z, y, v), hinton.kd_loss(20.0)(z, y, v))  # T is used


# ---- errors and the bias chosen on validation ------------------------------------------------

def _linear_model(bias):
    """A linear model on 10 inputs whose logits are the input plus ``bias``."""
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 10))
    with torch.no_grad():
        m[1].weight.copy_(torch.eye(10))
        m[1].bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return m.eval()


def test_errors_counts_wrong_answers_overall_and_on_classes():
    x = torch.eye(10)[[0, 1, 2, 3, 3, 3]] * 5          # logits point at 0, 1, 2, 3, 3, 3
    y = torch.tensor([0, 1, 9, 3, 4, 5])                # wrong on rows 2, 4 and 5
    m = _linear_model(torch.zeros(10))
    assert hinton.errors(m, x, y) == 3
    assert hinton.errors(m, x, y, classes=4) == 1
    assert hinton.errors(m, x, y, classes=(4, 5, 0)) == 2
    assert hinton.errors(m, x, y, classes=[7]) == 0


def test_choose_bias_picks_the_minimum_of_the_validation_curve(monkeypatch):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (400,), generator=g)
    x = torch.nn.functional.one_hot(y, 10).float() * 2 + torch.randn(400, 10, generator=g)
    bias = torch.zeros(10)
    bias[3] = -4.0  # a class the model under-predicts, as a student that never saw a 3
    m = _linear_model(bias)
    deltas = np.arange(0, 8.01, 0.5)

    def no_test_set(*a, **k):
        raise AssertionError("choose_bias read a data set")
    monkeypatch.setattr(kdlib.data, "load", no_test_set)
    monkeypatch.setattr(recipes, "mnist_split", no_test_set)
    best, curve = hinton.choose_bias(m, x, y, 3, deltas)
    by_hand = [int((x + bias + d * torch.nn.functional.one_hot(torch.tensor(3), 10)).argmax(1).ne(y).sum())
               for d in deltas]
    assert curve == by_hand
    assert best == deltas[int(np.argmin(by_hand))]
    assert curve[int(np.argmin(curve))] < curve[0]  # the shift helped
    assert 2.0 <= best <= 6.0                        # near the -4 it undoes
    assert torch.equal(m[1].bias, bias)              # the model itself was not changed


def test_choose_bias_agrees_with_shifted_models():
    torch.manual_seed(0)
    m = models.MLP((16,)).eval()
    x, y = torch.randn(300, 1, 28, 28), torch.randint(0, 10, (300,))
    deltas = [-3.0, -1.0, 0.0, 0.5, 2.0, 4.0]
    for classes in (3, (7, 8)):
        _, curve = hinton.choose_bias(m, x, y, classes, deltas)
        assert curve == [hinton.errors(models.shift_bias(m, classes, d), x, y) for d in deltas]
        assert len(set(curve)) > 1


def test_choose_bias_lowers_two_classes_and_takes_the_first_of_equal_minima():
    y = torch.tensor([7, 8, 1, 2])
    x = torch.nn.functional.one_hot(y, 10).float()
    bias = torch.zeros(10)
    bias[[7, 8]] = 5.0  # 7 and 8 win everywhere
    best, curve = hinton.choose_bias(_linear_model(bias), x, y, (7, 8), [-8.0, -6.0, -4.5, 0.0])
    assert curve == [2, 2, 0, 2]
    assert best == -4.5
    best, curve = hinton.choose_bias(_linear_model(torch.zeros(10)), x, y, (7, 8), [-1.0, -0.5, 0.0])
    assert curve == [2, 0, 0] and best == -0.5


# ---- paired confidence interval --------------------------------------------------------------

# ---- the cached teacher ----------------------------------------------------------------------

def test_teacher_settings_name_a_checkpoint_that_a_second_call_loads(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("KDLIB_FAST", "1")
    assert hinton.teacher_settings().epochs == 1  # fast mode
    s = hinton.MLPTeacherSettings(epochs=1, subset=300)
    first, info1 = hinton.hinton_teacher(progress=False, settings=s)
    assert not info1["loaded"] and info1["path"].exists() and info1["path"].parent == tmp_path
    assert info1["path"].name.startswith("hinton-teacher-")
    x_te, y_te = recipes.mnist_split(300)["test"]
    assert info1["test_images"] == 300 and info1["test_errors"] == hinton.errors(first, x_te, y_te)
    assert 0 < info1["test_errors"] < 300 - 30  # trained a little: better than chance, not perfect
    assert [m.p for m in first if isinstance(m, torch.nn.Dropout)] == [0.2, 0.5, 0.5]
    assert models.count_parameters(models.MLP((1200, 1200))) == sum(p.numel() for p in first.parameters())
    second, info2 = hinton.hinton_teacher(progress=False, settings=s)
    assert info2["loaded"] and info2["path"] == info1["path"]
    assert info2["test_errors"] == info1["test_errors"] and info2["history"] == info1["history"]
    assert all(torch.equal(p, q) for p, q in zip(first.parameters(), second.parameters()))
    assert not second.training and not any(p.requires_grad for p in second.parameters())
    other = kdlib.checkpoint.path_for("hinton-teacher", hinton.MLPTeacherSettings(epochs=1, subset=300, jitter=1))
    assert other != info1["path"] and not other.exists()
