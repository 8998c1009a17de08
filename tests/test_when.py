"""Notebook 07's experiment code (kdlib.when): data fractions, matched epochs, the quick teacher with
and without label smoothing, the temperature chosen on validation, fidelity and ranked soft targets."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kdlib
from kdlib import hinton, losses, models, recipes, train, when


# ---- data fractions --------------------------------------------------------------------------

def _labels(counts=(50, 7, 120, 33, 1, 64, 80, 9, 41, 22), seed=0):
    y = torch.arange(len(counts)).repeat_interleave(torch.tensor(counts))
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))]


def test_fraction_keeps_each_class_share_and_is_sorted_and_unique():
    y = _labels()
    for f in (0.01, 0.03, 0.1, 0.5, 0.99):
        idx = when.fraction_indices(y, f, seed=3)
        assert torch.equal(idx, idx.sort().values) and len(idx.unique()) == len(idx)
        for c in range(10):
            n_c = int((y == c).sum())
            assert int((y[idx] == c).sum()) == max(1, math.floor(f * n_c + 0.5)), (f, c)
    assert torch.equal(when.fraction_indices(y, 1, seed=3), torch.arange(len(y)))


def test_fractions_are_nested_for_one_seed_and_differ_between_seeds():
    y = _labels()
    small, large = when.fraction_indices(y, 0.1, seed=5), when.fraction_indices(y, 0.3, seed=5)
    assert set(small.tolist()) < set(large.tolist())
    assert torch.equal(small, when.fraction_indices(y, 0.1, seed=5))  # repeatable
    other = when.fraction_indices(y, 0.1, seed=6)
    assert len(other) == len(small) and not torch.equal(other, small)


def test_fraction_changes_no_global_random_state():
    before = torch.random.get_rng_state().clone()
    when.fraction_indices(_labels(), 0.2, seed=1)
    assert torch.equal(before, torch.random.get_rng_state())


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, float("nan"), True, "0.1"])
def test_fraction_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="fraction must be a number in"):
        when.fraction_indices(_labels(), bad, seed=0)


def test_fraction_needs_integer_labels_and_a_seed():
    with pytest.raises(ValueError, match="labels"):
        when.fraction_indices(torch.rand(10), 0.5, seed=0)
    with pytest.raises(ValueError, match="seed"):
        when.fraction_indices(_labels(), 0.5, seed=-1)


# ---- matched epochs --------------------------------------------------------------------------

def test_matched_epochs_give_the_same_number_of_updates():
    assert when.matched_epochs(48000, 48000, 5) == 5
    assert when.matched_epochs(48000, 480, 5) == 470      # 5 * 188 batches = 940 = 470 * 2
    assert when.matched_epochs(48000, 1440, 5) == 157     # 940 / 6 batches = 156.7
    for n_sub in (10, 300, 480, 1440, 4800, 20000):
        e = when.matched_epochs(48000, n_sub, 5)
        per_epoch = -(-n_sub // hinton.BATCH)
        assert abs(e * per_epoch - 5 * 188) <= per_epoch / 2  # within half an epoch of the subset
    assert when.matched_epochs(100, 100, 1, batch_size=10) == 1


@pytest.mark.parametrize("kwargs", [dict(n_full=0, n_subset=5, epochs=1), dict(n_full=5, n_subset=5, epochs=0),
                                    dict(n_full=5, n_subset=2.5, epochs=1), dict(n_full=5, n_subset=5, epochs=True)])
def test_matched_epochs_refuses_non_positive_integers(kwargs):
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        when.matched_epochs(**kwargs)


# ---- the quick teacher and its label smoothing -----------------------------------------------

def test_smoothed_cross_entropy_is_the_formula_and_a_hand_case():
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(20, 10, generator=g, dtype=torch.float64), torch.randint(0, 10, (20,), generator=g)
    for eps in (0.0, 0.1, 0.5):
        log_q = F.log_softmax(z, dim=1)
        formula = (1 - eps) * F.nll_loss(log_q, y) + eps * (-log_q.mean(1)).mean()
        assert float(when.smoothed_cross_entropy(eps)(z, y)) == pytest.approx(float(formula), rel=1e-12)
    # two classes, q = (3/4, 1/4), eps = 0.2: the target is (0.9, 0.1)
    z = torch.tensor([[math.log(3.0), 0.0]], dtype=torch.float64)
    expected = -(0.9 * math.log(0.75) + 0.1 * math.log(0.25))
    assert float(when.smoothed_cross_entropy(0.2)(z, torch.tensor([0]))) == pytest.approx(expected, rel=1e-12)
    assert float(when.smoothed_cross_entropy(0.0)(z, torch.tensor([0]))) == pytest.approx(-math.log(0.75), rel=1e-12)


def test_quick_teacher_settings_differ_in_smoothing_only(monkeypatch):
    monkeypatch.setenv("KDLIB_FAST", "0")
    plain, smooth = when.quick_teacher_settings(), when.quick_teacher_settings(when.LABEL_SMOOTHING)
    assert plain.label_smoothing == 0.0 and smooth.label_smoothing == when.LABEL_SMOOTHING
    differ = {k for k, v in vars(plain).items() if vars(smooth)[k] != v}
    assert differ == {"label_smoothing"}
    assert plain.subset is None and plain.epochs == 6
    teacher = hinton.teacher_settings()  # notebook 06's recipe, for its epochs
    assert (plain.hidden, plain.dropout, plain.input_dropout, plain.jitter, plain.lr) == \
        (teacher.hidden, teacher.dropout, teacher.input_dropout, teacher.jitter, teacher.lr)
    monkeypatch.setenv("KDLIB_FAST", "1")
    assert when.quick_teacher_settings().epochs == 1 and when.quick_teacher_settings().subset == 2000
    for bad in (-0.1, 1.0, True, "0.1"):
        with pytest.raises(ValueError, match="label_smoothing"):
            when.quick_teacher_settings(bad)


def test_quick_teachers_train_with_their_smoothing_and_are_cached(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(tmp_path))
    used = []
    real_fit = train.fit

    def spy(model, optimizer, batches, val=None, *, epochs, loss_fn, desc):
        used.append(loss_fn)
        return real_fit(model, optimizer, batches, val, epochs=epochs, loss_fn=loss_fn, desc=desc)

    monkeypatch.setattr(train, "fit", spy)
    settings = {eps: when.QuickTeacherSettings(hidden=(32,), label_smoothing=eps, epochs=1, subset=300)
                for eps in (0.0, 0.3)}
    first = {eps: when.quick_teacher(s, progress=False) for eps, s in settings.items()}
    z = torch.randn(6, 10, dtype=torch.float64)
    y = torch.arange(6)
    for loss_fn, eps in zip(used, settings):  # each teacher trained with its own smoothing
        assert float(loss_fn(z, y)) == pytest.approx(float(F.cross_entropy(z, y, label_smoothing=eps)))
    (m0, i0), (m1, i1) = first[0.0], first[0.3]
    assert i0["path"] != i1["path"] and i0["path"].name.startswith("quick-teacher-") and not i0["loaded"]
    assert not all(torch.equal(p, q) for p, q in zip(m0.parameters(), m1.parameters()))
    x_te, y_te = recipes.mnist_split(300)["test"]
    assert i0["test_errors"] == hinton.errors(m0, x_te, y_te) and i0["test_images"] == 300
    assert [m.p for m in m0 if isinstance(m, torch.nn.Dropout)] == [0.2, 0.5]
    again, info = when.quick_teacher(settings[0.3], progress=False)
    assert info["loaded"] and info["path"] == i1["path"] and len(used) == 2  # loaded, not trained
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), again.parameters()))
    assert not again.training and not any(p.requires_grad for p in again.parameters())


# ---- the temperature chosen on validation ----------------------------------------------------

def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g),
            torch.randn(n, 10, generator=g) * 3)


def test_choose_temperature_scores_students_on_validation_only(monkeypatch):
    train_data, (x_va, y_va, _) = _data(300, 0), _data(200, 1)

    def no_data(*a, **k):
        raise AssertionError("choose_temperature read a data set")
    monkeypatch.setattr(kdlib.data, "load", no_data)
    monkeypatch.setattr(recipes, "mnist_split", no_data)
    grid = [1.0, 4.0, 30.0]
    best, curve = when.choose_temperature((16,), train_data, (x_va, y_va), grid, seed=7, epochs=1)
    by_hand = [hinton.errors(hinton.train_mlp_student((16,), hinton.kd_loss(T), train_data, 7, epochs=1)[0], x_va, y_va)
               for T in grid]
    assert curve == by_hand
    assert best == grid[int(np.argmin(by_hand))]


def test_choose_temperature_takes_the_first_of_equal_minima(monkeypatch):
    seen = []
    monkeypatch.setattr(hinton, "train_mlp_student",
                        lambda h, loss_fn, data, seed, *, epochs: (seen.append(seed), None))
    errors = iter([9, 4, 4, 6])
    monkeypatch.setattr(hinton, "errors", lambda model, x, y: next(errors))
    best, curve = when.choose_temperature((8,), _data(10, 0), (None, None), [1, 2, 3, 5], seed=11, epochs=1)
    assert (best, curve) == (2, [9, 4, 4, 6]) and seen == [11] * 4
    with pytest.raises(ValueError, match="teacher_logits"):
        when.choose_temperature((8,), _data(10, 0)[:2], (None, None), [1], seed=0, epochs=1)


# ---- fidelity --------------------------------------------------------------------------------

def test_agreement_counts_equal_arg_max_rows():
    teacher = torch.eye(4)[[0, 1, 2, 3]] * 5
    student = torch.eye(4)[[0, 1, 3, 3]] * 2 + 0.1
    assert when.agreement(student, teacher) == 0.75
    assert when.agreement(teacher, teacher) == 1.0
    with pytest.raises(ValueError, match="same shape"):
        when.agreement(student[:3], teacher)
    with pytest.raises(ValueError, match="N x C"):
        when.agreement(torch.zeros(4), teacher)


def test_kl_is_teacher_to_student_a_hand_case_and_kdlib_s_soft_target_loss_at_T_1():
    v = torch.tensor([[0.0, 0.0]], dtype=torch.float64)                # p = (1/2, 1/2)
    z = torch.tensor([[math.log(3.0), 0.0]], dtype=torch.float64)      # q = (3/4, 1/4), exact in float64
    assert when.teacher_student_kl(v, z) == pytest.approx(0.5 * math.log(4 / 3), rel=1e-12)
    assert when.teacher_student_kl(z, v) == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5), rel=1e-12)
    g = torch.Generator().manual_seed(1)
    v = torch.randn(50, 10, generator=g, dtype=torch.float64) * 4
    z = torch.randn(50, 10, generator=g, dtype=torch.float64)
    # losses.soft_target_loss is T^2 KL(p || q) with its own float64 formula: at T = 1 the same number
    assert when.teacher_student_kl(v, z) == pytest.approx(float(losses.soft_target_loss(z, v, 1.0)), rel=1e-10)
    assert when.teacher_student_kl(v, v + 3.0) == pytest.approx(0.0, abs=1e-12)  # a shift of the logits is no change
    assert when.teacher_student_kl(v, z) != pytest.approx(when.teacher_student_kl(z, v))


def test_kl_with_an_underflowing_teacher_probability_is_finite():
    v = torch.tensor([[0.0, -1000.0]])                # p_2 = e^-1000 = 0 in float64
    z = torch.tensor([[0.0, 0.0]])
    assert when.teacher_student_kl(v, z) == pytest.approx(math.log(2), rel=1e-12)


def test_fidelity_of_a_model_from_one_pass():
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 10))
    with torch.no_grad():
        m[1].weight.copy_(torch.eye(10))
        m[1].bias.zero_()
    x = torch.eye(10)[[0, 1, 2, 3, 3]] * 4                         # predicts 0, 1, 2, 3, 3
    y = torch.tensor([0, 1, 2, 3, 4])                               # one error
    v = torch.eye(10)[[0, 1, 5, 3, 3]] * 4                          # the teacher says 5 for row 2
    out = when.fidelity(m.eval(), x, y, v)
    assert out["errors"] == hinton.errors(m, x, y) == 1
    assert out["agreement"] == 0.8
    assert out["kl"] == pytest.approx(when.teacher_student_kl(v, train.predict_logits(m, x)))
    # the teacher is wrong on rows 2 (says 5) and 4 (says 3); the student copies row 4's mistake only
    assert out["copied"] == 0.5
    assert math.isnan(when.fidelity(m.eval(), x, v.argmax(1), v)["copied"])  # a teacher with no mistakes


# ---- ranked soft targets ---------------------------------------------------------------------

def test_second_class_mass_hand_cases():
    logits = torch.log(torch.tensor([[1.0, 4.0, 1.0, 2.0], [8.0, 1.0, 1.0, 6.0]], dtype=torch.float64))
    ranked = when.ranked_soft_targets(logits, 1.0)
    assert torch.allclose(ranked[0], torch.tensor([0.5, 0.25, 0.125, 0.125], dtype=torch.float64))
    assert torch.allclose(ranked.sum(1), torch.ones(2, dtype=torch.float64))
    assert (ranked[:, :-1] >= ranked[:, 1:]).all()
    # at T = 2 the probabilities go as sqrt of those at T = 1: (2, sqrt 2, 1, 1) / (4 + sqrt 2)
    assert float(when.second_class_mass(logits, 2.0)[0]) == pytest.approx(math.sqrt(2) / (4 + math.sqrt(2)), rel=1e-12)
    assert float(when.second_class_mass(logits, 1.0)[1]) == pytest.approx(6 / 16, rel=1e-12)
    # a label-smoothing-like teacher: every wrong class alike, eps / K each
    flat = torch.log(torch.tensor([[0.91] + [0.01] * 9], dtype=torch.float64))
    assert float(when.second_class_mass(flat, 1.0)[0]) == pytest.approx(0.01, rel=1e-12)
