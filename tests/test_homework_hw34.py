"""Homeworks 3 (the distillation loop and a fair comparison) and 4 (the mythical digit), issue #23.

tests/test_homework.py runs, for every assignment in homework/source (these two included), the
release-is-up-to-date, no-solution-in-the-release, hidden-tests, solutions-pass and stubs-fail
tests on the notebooks. Here:

1. every check of the two assignments, called with the settings of its visible and of its hidden
   tests, passes on the right function and fails on the stub;
2. each check names the typical mistakes of issue #23 (and refuses kdlib's own implementation,
   stops an endless loop, names an input changed in place);
3. nbgrader's autograde grades a right and three typical wrong submissions of each assignment,
   hidden tests included.
"""
from __future__ import annotations

import copy
import csv
import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats as scipy_stats
from test_homework import _nbgrader, _submission

from kdlib import data, hinton, models, stats, train
from kdlib import homework as checks
from kdlib.homework import hw3, hw4
from kdlib.losses import distillation_loss
from kdlib.repro import seed_everything

NEW = ["hw3_distillation_loop", "hw4_mythical_digit"]


def _flat(message) -> str:
    """A check's message on one line (checks may wrap theirs)."""
    return " ".join(str(message).split())


# ---- right answers, written as a student would (without kdlib's implementations) ---------------

def _teacher_logits(kind="right"):
    def fn(teacher, x):
        if kind == "in place":
            x.mul_(1)
            x += 0.5
        if kind != "train mode":
            teacher.eval()
        if kind == "with gradients":
            return teacher(x)
        if kind == "kdlib":
            return train.predict_logits(teacher, x)
        with torch.no_grad():
            return teacher(x)
    return fn


def _epoch(kind="right"):
    def fn(model, optimizer, d, T, alpha, generator):
        x, y, v = d
        n = len(y)
        if kind == "kdlib's batches":
            for xb, yb, vb in data.batches(x, y, v, batch_size=64, shuffle=True, generator=generator):
                loss = distillation_loss(model(xb), vb, yb, T, alpha)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            return
        if kind == "kdlib's train_epoch":
            train.train_epoch(model, optimizer, train.Batches(x, y, v, batch_size=64, generator=generator),
                              hinton.kd_loss(T, alpha))
            return
        if kind == "x in place":
            x /= 2
        order = {"no shuffle": torch.arange(n),
                 "generator ignored": torch.randperm(n)}.get(kind)
        if order is None:
            order = torch.randperm(n, generator=generator)
        while kind == "endless":
            pass
        for start in range(0, n, 64):
            idx = order[start:start + 64]
            xb, yb, vb = x[idx], y[idx], v[idx]
            if kind == "logits in the original order":
                vb = v[start:start + 64]
            if kind == "labels in the original order":
                yb = y[start:start + 64]
            loss = distillation_loss(model(xb), vb, yb, T, alpha)
            if kind == "no zero_grad":
                loss.backward()
                optimizer.step()
            elif kind == "zero_grad after backward":
                loss.backward()
                optimizer.zero_grad()
                optimizer.step()
            else:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    return fn


def _train_student(kind="right", epoch=None):
    epoch = epoch or _epoch()

    def fn(d, T, alpha, seed, epochs=3):
        if kind == "seeded after the model":
            model = models.StudentNet()
            gen = seed_everything(seed)
        elif kind == "not seeded":
            model, gen = models.StudentNet(), torch.Generator()
        else:
            gen = seed_everything(seed)
            model = models.StudentNet()
        if kind == "own generator":
            gen = torch.Generator().manual_seed(seed + 1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(epochs):
            epoch(model, opt, d, T, alpha, gen)
        return model
    return fn


def _paired_ci(kind="right"):
    def fn(a, b):
        a, b = np.asarray(a, float), np.asarray(b, float)
        d, n = a - b, len(a)
        q = {"1.96": 1.96, "n dof": scipy_stats.t.ppf(0.975, n)}.get(kind, scipy_stats.t.ppf(0.975, n - 1))
        if kind == "unpaired":
            se = math.sqrt(a.var(ddof=1) / n + b.var(ddof=1) / n)
        else:
            se = d.std(ddof=0 if kind == "ddof 0" else 1) / (1 if kind == "no sqrt(n)" else math.sqrt(n))
        if kind == "kdlib":
            return stats.paired_ci(a, b)
        return {"diffs": list(d), "mean": d.mean(), "low": d.mean() - q * se, "high": d.mean() + q * se}
    return fn


def _verdict(kind="right"):
    def fn(ci):
        if kind == "kdlib":
            return stats.verdict(ci)
        if kind == "by the mean":
            return "the difference is positive" if ci["mean"] > 0 else "the difference is negative"
        if kind == "always underpowered":
            return "underpowered"
        if kind == "touching 0 counts as above":
            if ci["low"] >= 0:
                return "positive"
            if ci["high"] <= 0:
                return "negative"
            return "underpowered"
        if ci["low"] > 0:
            return "positive"
        if ci["high"] < 0:
            return "negative"
        return "underpowered: the interval holds 0"
    return fn


def _choose(kind="right", higher=True):
    best_of = max if higher else min

    def fn(grid, val, test):
        if kind == "chosen on test":
            scores = [test(g) for g in grid]
            best = grid[scores.index(best_of(scores))]
            return best, test(best)
        if kind == "test read in the loop":
            scores, tests = [], []
            for g in grid:
                scores.append(val(g))
                tests.append(test(g))
            i = scores.index(best_of(scores))
            return grid[i], tests[i]
        if kind == "every test read after":
            scores = [val(g) for g in grid]
            tests = [test(g) for g in grid]
            i = scores.index(best_of(scores))
            return grid[i], tests[i]
        if kind == "last of equal scores":
            scores = [val(g) for g in grid]
            i = len(scores) - 1 - scores[::-1].index(best_of(scores))
            return grid[i], test(grid[i])
        if kind == "no test":
            scores = [val(g) for g in grid]
            return grid[scores.index(best_of(scores))], None
        scores = [val(g) for g in grid]
        best = grid[scores.index(best_of(scores))]
        return best, test(best)
    return fn


def _transfer(kind="right"):
    def fn(x, y, v):
        keep = y != 3
        if kind == "3s left":
            return x, y, v
        if kind == "logits not filtered":
            return x[keep], y[keep], v
        if kind == "class 3 dropped":
            return x[keep], y[keep], v[keep][:, [c for c in range(10) if c != 3]]
        if kind == "class 3 zeroed":
            w = v[keep].clone()
            w[:, 3] = -float("inf")
            return x[keep], y[keep], w
        if kind == "soft targets dropped":
            return x[keep], y[keep]
        if kind == "only 3s":
            return x[~keep], y[~keep], v[~keep]
        if kind == "kdlib":
            return hinton.transfer_set(x, y, v, omit=(3,))
        return x[keep], y[keep], v[keep]
    return fn


def _train_without_3s(kind="right"):
    def fn(transfer, T, alpha, seed, epochs):
        x, y, v = transfer
        if kind == "kdlib":
            return hinton.train_mlp_student(hw4.HIDDEN, hinton.kd_loss(T, alpha), transfer, seed, epochs=epochs)[0]
        gen = seed_everything(seed)
        model = models.MLP((100,))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(epochs):
            for xb, yb, vb in data.batches(x, y, v, batch_size=64, shuffle=True, generator=gen):
                z = model(xb)
                loss = {"labels only": lambda: F.cross_entropy(z, yb),
                        "T = 1": lambda: distillation_loss(z, vb, yb, 1.0, alpha),
                        "alpha swapped": lambda: distillation_loss(z, vb, yb, T, 1 - alpha),
                        }.get(kind, lambda: distillation_loss(z, vb, yb, T, alpha))()
                opt.zero_grad()
                loss.backward()
                opt.step()
        return model
    return fn


def _accuracy_on_3s(kind="right"):
    def fn(logits, y):
        pred = logits.argmax(1)
        if kind == "whole set":
            return (pred == y).float().mean()
        if kind == "over all images":
            return float(((pred == 3) & (y == 3)).sum()) / len(y)
        if kind == "precision":
            return float(((pred == 3) & (y == 3)).sum() / (pred == 3).sum())
        if kind == "error rate":
            return float((pred[y == 3] != 3).float().mean())
        return (pred[y == 3] == 3).float().mean()
    return fn


def _shift_bias(kind="right"):
    def fn(model, delta):
        if kind == "kdlib":
            return models.shift_bias(model, 3, delta)
        out = model if kind == "in place" else copy.deepcopy(model)
        with torch.no_grad():
            if kind == "wrong class":
                out[-1].bias[2] += delta
            elif kind == "weights":
                out[-1].weight[3] += delta
            elif kind == "every class":
                out[-1].bias += delta
            else:
                out[-1].bias[3] += delta
        return None if kind == "no return" else out
    return fn


def _stub(*args, **kwargs):
    raise NotImplementedError()


# ---- 1. right answers pass, stubs fail, at the visible and the hidden settings -----------------

@functools.cache
def _real_batch():
    """130 real MNIST training images, with teacher logits from a random linear teacher (the check
    needs distinct images and logits of the right shape, not a good teacher)."""
    x, y = data.load("mnist", "train")
    x = data.to_float(x[:130], "mnist")
    v = torch.randn(130, 10, generator=torch.Generator().manual_seed(0)) * 3
    return x, y[:130], v


# check, right function, hidden-test keyword arguments (from the solutions' hidden regions).
CHECKS = {
    "teacher_logits": (checks.check_teacher_logits, _teacher_logits(), dict(n=7, seed=21)),
    "distill_epoch": (checks.check_distill_epoch, _epoch(), dict(data=130, T=5.0, alpha=0.3, seed=22)),
    "train_student": (functools.partial(checks.check_train_student, epoch_fn=_epoch()), _train_student(),
                      dict(n=70, settings=((0.5, 3), (0.0, 3)), T=2.0, epochs=1)),
    "paired_ci": (checks.check_paired_ci, _paired_ci(), dict(sizes=(2, 4, 12), seed=23)),
    "verdict": (checks.check_verdict, _verdict(), dict(cases=(("touches 0", 0.4, 0.0, 0.8),))),
    "choose_temperature": (checks.check_choose_temperature, _choose(),
                           dict(temperatures=(0.5, 1.5, 3.0, 6.0, 12.0, 20.0), seed=24)),
    "transfer_set": (checks.check_transfer_set, _transfer(), dict(n=37, seed=31)),
    "train_without_3s": (checks.check_train_without_3s, _train_without_3s(),
                         dict(n=90, T=20.0, alpha=0.7, seeds=(1, 2), epochs=1)),
    "accuracy_on_3s": (checks.check_accuracy_on_3s, _accuracy_on_3s(), dict(n=1000, seed=33)),
    "shift_bias": (checks.check_shift_bias, _shift_bias(), dict(deltas=(0.5, 7.5), hidden=(30, 30), seed=34)),
    "choose_bias": (checks.check_choose_bias, _choose(higher=False),
                    dict(deltas=(-1.0, 0.5, 2.5, 3.5, 5.0, 8.0), seed=35)),
}


@pytest.mark.parametrize("hidden", [False, True], ids=["visible", "hidden"])
@pytest.mark.parametrize("name", sorted(CHECKS))
@pytest.mark.filterwarnings("error::UserWarning:kdlib")  # a check itself warns nobody
def test_check_accepts_the_right_answer(name, hidden, capsys):
    check, fn, kwargs = CHECKS[name]
    check(fn, **(kwargs if hidden else {}))
    out = capsys.readouterr().out
    assert out.startswith("✓ ") and out.count("✓") == 1, out


def test_epoch_check_on_real_images(real_data, capsys):
    """As the solution's visible test calls it: on real MNIST images."""
    checks.check_distill_epoch(_epoch(), _real_batch())
    assert capsys.readouterr().out.startswith("✓ ")


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_check_fails_on_the_stub(name):
    check, _, _ = CHECKS[name]
    stub_epoch = name == "train_student"
    with pytest.raises(checks.CheckFailed) as err:
        check(_stub)
    assert "not written yet" in _flat(err.value), err.value
    if stub_epoch:  # the train_student check with a stub epoch: the epoch is named
        with pytest.raises(checks.CheckFailed, match="distill_epoch"):
            checks.check_train_student(_train_student(), _stub)


# ---- 2. the typical mistakes are named -------------------------------------------------------

WRONG = {
    # hw3: the teacher's logits
    "teacher in train mode": (checks.check_teacher_logits, _teacher_logits("train mode"), "ran the teacher in train mode"),
    "teacher with gradients": (checks.check_teacher_logits, _teacher_logits("with gradients"),
                               "computed the logits with gradients"),
    "teacher logits by kdlib": (checks.check_teacher_logits, _teacher_logits("kdlib"),
                                "calls kdlib.train.predict_logits: write it yourself"),
    "x changed by teacher_logits": (checks.check_teacher_logits, _teacher_logits("in place"), "changed the x"),
    # hw3: one epoch
    "logits in the original order": (checks.check_distill_epoch, _epoch("logits in the original order"),
                                     "read the teacher's logits in their original order"),
    "labels in the original order": (checks.check_distill_epoch, _epoch("labels in the original order"),
                                     "read the labels in their original order"),
    "no zero_grad": (checks.check_distill_epoch, _epoch("no zero_grad"), "did not call optimizer.zero_grad()"),
    "zero_grad after backward": (checks.check_distill_epoch, _epoch("zero_grad after backward"),
                                 "did not change the weights"),
    "no shuffle": (checks.check_distill_epoch, _epoch("no shuffle"), "did not shuffle"),
    "generator ignored": (checks.check_distill_epoch, _epoch("generator ignored"),
                          "draw the order from the generator passed in"),
    "x changed by the epoch": (checks.check_distill_epoch, _epoch("x in place"), "changed the x"),
    "kdlib's batches": (checks.check_distill_epoch, _epoch("kdlib's batches"), "calls kdlib.data.batches"),
    "kdlib's train_epoch": (checks.check_distill_epoch, _epoch("kdlib's train_epoch"), "calls kdlib.train."),
    # hw3: the pair
    "seeded after the model": (functools.partial(checks.check_train_student, epoch_fn=_epoch()),
                               _train_student("seeded after the model"), "they are not a pair"),
    "not seeded": (functools.partial(checks.check_train_student, epoch_fn=_epoch()),
                   _train_student("not seeded"), "they are not a pair"),
    "another generator": (functools.partial(checks.check_train_student, epoch_fn=_epoch()),
                          _train_student("own generator"), "the same initial weights AND the same batches"),
    # hw3: the interval and its verdict
    "1.96 instead of t": (checks.check_paired_ci, _paired_ci("1.96"), "normal quantile 1.96"),
    "t with n degrees of freedom": (checks.check_paired_ci, _paired_ci("n dof"), "n degrees of freedom; the t quantile takes n - 1"),
    "unpaired interval": (checks.check_paired_ci, _paired_ci("unpaired"), "your interval is unpaired"),
    "sd with ddof=0": (checks.check_paired_ci, _paired_ci("ddof 0"), "ddof=0"),
    "no sqrt(n)": (checks.check_paired_ci, _paired_ci("no sqrt(n)"), "lacks the 1 / sqrt(n)"),
    "kdlib's paired_ci": (checks.check_paired_ci, _paired_ci("kdlib"), "calls kdlib.stats.paired_ci: write it yourself"),
    "verdict by the mean": (checks.check_verdict, _verdict("by the mean"), "you judged by the mean?"),
    "always underpowered": (checks.check_verdict, _verdict("always underpowered"),
                            "'underpowered' is for an interval that holds 0"),
    "kdlib's verdict": (checks.check_verdict, _verdict("kdlib"), "calls kdlib.stats.verdict"),
    # hw3: T on validation
    "T chosen on the test set": (checks.check_choose_temperature, _choose("chosen on test"),
                                 "you chose T on the test set"),
    "test read during the selection": (checks.check_choose_temperature, _choose("test read in the loop"),
                                       "touched the test set during the selection"),
    "test read for every T": (checks.check_choose_temperature, _choose("every test read after"),
                              "read the test set 4 times"),
    "T: last of equal scores": (checks.check_choose_temperature, _choose("last of equal scores"),
                                "take the first"),
    "test never read": (checks.check_choose_temperature, _choose("no test"), "never read the test set"),
    # hw4: the transfer set
    "3s left in the transfer set": (checks.check_transfer_set, _transfer("3s left"), "3s are left in your transfer set"),
    "soft targets not filtered": (checks.check_transfer_set, _transfer("logits not filtered"),
                                  "you filtered x and y but not teacher_logits"),
    "class-3 soft targets dropped": (checks.check_transfer_set, _transfer("class 3 dropped"),
                                     "you dropped the teacher's logit of class 3"),
    "class-3 soft targets set to -inf": (checks.check_transfer_set, _transfer("class 3 zeroed"),
                                         "you changed the teacher's logit of class 3"),
    "soft targets dropped": (checks.check_transfer_set, _transfer("soft targets dropped"), "did you drop the soft targets?"),
    "only the 3s kept": (checks.check_transfer_set, _transfer("only 3s"), "you kept only the 3s"),
    "kdlib's transfer_set": (checks.check_transfer_set, _transfer("kdlib"), "calls kdlib.hinton.transfer_set"),
    # hw4: the student
    "student on labels only": (checks.check_train_without_3s, _train_without_3s("labels only"), "from the labels only"),
    "student at T = 1": (checks.check_train_without_3s, _train_without_3s("T = 1"), "distilled at T = 1"),
    "student with alpha swapped": (checks.check_train_without_3s, _train_without_3s("alpha swapped"),
                                   "alpha weights the wrong term"),
    "kdlib's train_mlp_student": (checks.check_train_without_3s, _train_without_3s("kdlib"),
                                  "calls kdlib.hinton.train_mlp_student"),
    # hw4: the accuracy on 3s
    "accuracy over the whole test set": (checks.check_accuracy_on_3s, _accuracy_on_3s("whole set"),
                                         "you computed the accuracy over the whole test set"),
    "3s right over all images": (checks.check_accuracy_on_3s, _accuracy_on_3s("over all images"),
                                 "divided the 3s it got right by the number of ALL test images"),
    "precision of class 3": (checks.check_accuracy_on_3s, _accuracy_on_3s("precision"), "precision of class 3"),
    "error rate on 3s": (checks.check_accuracy_on_3s, _accuracy_on_3s("error rate"), "returned the error rate"),
    # hw4: the bias
    "shift on the wrong class": (checks.check_shift_bias, _shift_bias("wrong class"), "you shifted the bias of class 2"),
    "shift added to the weights": (checks.check_shift_bias, _shift_bias("weights"), "you changed the WEIGHTS of class 3"),
    "shift on every class": (checks.check_shift_bias, _shift_bias("every class"), "you raised every class's bias"),
    "model shifted in place": (checks.check_shift_bias, _shift_bias("in place"), "changed the model it was given"),
    "shifted model not returned": (checks.check_shift_bias, _shift_bias("no return"), "returned nothing (None)"),
    "kdlib's shift_bias": (checks.check_shift_bias, _shift_bias("kdlib"), "calls kdlib.models.shift_bias"),
    # hw4: the bias on validation
    "bias chosen on the test set": (checks.check_choose_bias, _choose("chosen on test", higher=False),
                                    "you chose delta on the test set"),
    "test read while choosing the bias": (checks.check_choose_bias, _choose("test read in the loop", higher=False),
                                          "touched the test set during the selection"),
    "bias: last of equal errors": (checks.check_choose_bias, _choose("last of equal scores", higher=False),
                                   "take the first"),
}


@pytest.mark.parametrize("case", sorted(WRONG))
@pytest.mark.filterwarnings("error::UserWarning:kdlib")
def test_check_names_the_mistake(case):
    check, fn, message = WRONG[case]
    with pytest.raises(checks.CheckFailed) as err:
        check(fn)
    assert message in _flat(err.value), f"{case}: got {err.value}"


def test_hidden_test_catches_what_the_visible_one_cannot():
    """A verdict that counts an interval touching 0 as positive passes the visible check (no interval
    ends at 0) and fails the hidden one of the solution."""
    checks.check_verdict(_verdict("touching 0 counts as above"))
    with pytest.raises(checks.CheckFailed, match="underpowered"):
        checks.check_verdict(_verdict("touching 0 counts as above"), **CHECKS["verdict"][2])


def test_train_student_is_graded_with_the_students_own_epoch(capsys):
    """A wrong epoch (logits in the original order) costs the epoch's points only: the pairing
    check builds its reference with the student's own epoch."""
    wrong = _epoch("logits in the original order")
    checks.check_train_student(_train_student(epoch=wrong), wrong)
    assert capsys.readouterr().out.startswith("✓ ")


def test_endless_epoch_is_stopped(monkeypatch):
    monkeypatch.setenv("KDLIB_CHECK_TIME_LIMIT", "1")
    with pytest.raises(checks.CheckFailed, match="took longer than 1 second"):
        checks.check_distill_epoch(_epoch("endless"))


def test_selection_accessors_refuse_values_off_the_grid():
    with pytest.raises(checks.CheckFailed, match="not one of the temperatures"):
        checks.check_choose_temperature(lambda grid, val, test: (grid[0], val(3.7)))


def test_mnist_task_is_the_seed_split_with_cached_teacher_logits(real_data):
    task = checks.mnist_task()
    assert task["loaded"] or task["teacher_acc"] > 0  # trained now or loaded, either way usable
    x, y = data.load("mnist", "train")
    tr, va = data.train_val_split(len(y), 12000, seed=42)
    for part, idx, n in (("train", tr, 4000), ("val", va, 2000)):
        xs, ys, vs = task[part]
        assert torch.equal(ys, y[idx[:n]])
        assert torch.equal(xs, data.to_float(x[idx[:n]], "mnist"))
        assert torch.equal(vs, train.predict_logits(task["teacher"], xs))
    assert task["teacher_acc"] > 0.85
    assert not task["teacher"].training and not any(p.requires_grad for p in task["teacher"].parameters())
    assert checks.mnist_task()["loaded"]  # the second call loads the checkpoint


# ---- 3. autograde: a right and three typical wrong submissions per assignment ----------------

# (assignment, student): (edits to the solution, expected score)
SUBMISSIONS = {
    ("hw3_distillation_loop", "alice"): ((), 14),
    # logits read in the original order: the epoch's 3 points (its train_student still passes) and
    # the experiment's 3 (its distilled students learn other images' soft targets: about 20%)
    ("hw3_distillation_loop", "bob"): ((("v[idx], y[idx], T, alpha)", "v[start:start + BATCH], y[idx], T, alpha)"),), 8),
    # 1.96 instead of the t quantile: the interval's 2 points
    ("hw3_distillation_loop", "carol"): ((("half = stats.t.ppf(0.975, n - 1) *", "half = 1.96 *"),), 12),
    # T chosen on the test set: the selection's 2 points
    ("hw3_distillation_loop", "dave"): ((("scores = [val_accuracy(T) for T in temperatures]",
                                          "scores = [test_accuracy(T) for T in temperatures]"),), 12),
    ("hw4_mythical_digit", "alice"): ((), 12),
    # 3s left in the transfer set: its 2 points and the experiment's 2
    ("hw4_mythical_digit", "bob"): ((("keep = y != 3", "keep = y >= 0"),), 8),
    # the bias chosen on the test set: the selection's 2 points
    ("hw4_mythical_digit", "carol"): ((("errors = [val_errors(d) for d in deltas]",
                                        "errors = [test_errors(d) for d in deltas]"),), 10),
    # the shift added to class 2: its 2 points and the experiment's 2 (no shift helps the 3s)
    ("hw4_mythical_digit", "dave"): ((("shifted[-1].bias[3] += delta", "shifted[-1].bias[2] += delta"),), 8),
}


@pytest.mark.parametrize("assignment", NEW)
def test_autograde_grades_right_and_wrong_submissions(assignment, real_data, tmp_path):
    """nbgrader autograde + export, hidden tests included, on students' notebooks made from the
    exercise: each wrong submission loses exactly the points of the cells its mistake breaks."""
    subs = {(student, a): _submission(a, *edits) for (a, student), (edits, _) in SUBMISSIONS.items()
            if a == assignment}
    course = _nbgrader(tmp_path, ["generate_assignment", assignment, "--force"],
                       ["autograde", assignment], ["export"], submissions=subs)
    rows = [r for r in csv.DictReader(open(course / "grades.csv")) if r["assignment"] == assignment]
    scores = {r["student_id"]: float(r["score"]) for r in rows}
    expected = {s: score for (a, s), (_, score) in SUBMISSIONS.items() if a == assignment}
    assert scores == expected
    assert {float(r["max_score"]) for r in rows} == {max(expected.values())}
