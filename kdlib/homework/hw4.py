"""Checks of homework 4 (homework/source/hw4_mythical_digit): Hinton et al.'s (2015) student that
never sees a 3. The transfer set without 3s, the distilled student, the accuracy on the test 3s,
the bias shift of class 3, and the shift chosen on the validation split, the test set read once.

The keyword arguments are for the instructors' hidden tests; students call ``check_...(fn)``.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .. import data, hinton, losses, models
from ..repro import seed_everything
from ._common import (KDLIB_LOSSES, KDLIB_TRAINING, Student, close, fail, graded, listing, ok,
                      tensor, unchanged)
from ._select import Words, check_selection
from .hw3 import warm_up

__all__ = ["check_transfer_set", "check_train_without_3s", "check_accuracy_on_3s",
           "check_shift_bias", "check_choose_bias", "HIDDEN", "LR", "BATCH"]

OMITTED = 3
"""The digit the student never sees."""
HIDDEN = (100,)
"""The student: models.MLP(HIDDEN), a 784-100-10 MLP without dropout."""
LR = 1e-3
BATCH = 64
KDLIB_HINTON = tuple(getattr(hinton, n) for n in ("transfer_set", "train_mlp_student", "errors",
                                                   "choose_bias"))


# ---- 1. the transfer set -----------------------------------------------------------------------

def _labelled(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    y[:3] = torch.tensor([OMITTED, 0, OMITTED])  # some 3s, at known places
    x = torch.randn(n, 1, 28, 28, generator=g)
    v = torch.randn(n, 10, generator=g) * 3
    return x, y, v


def _three_parts(out, name: str):
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        what = "nothing (None)" if out is None else (
            f"{len(out)} things" if isinstance(out, (tuple, list)) else f"a {type(out).__name__}")
        fail(f"{name} returned {what}; it must return three tensors (x, y, teacher_logits), the "
             f"teacher's logits filtered with the same rows"
             + (": did you drop the soft targets?"
                if isinstance(out, (tuple, list)) and len(out) == 2 else "."))
    return [tensor(t, name) for t in out]


@graded
def check_transfer_set(fn, *, n: int = 300, seed: int = 10) -> None:
    """Check ``fn(x, y, teacher_logits)``: the rows whose label is not 3, in their order, as
    ``(x, y, teacher_logits)``, all 10 logits of each row kept (the soft targets of class 3 too)."""
    name = "transfer_set"
    student = Student(fn, name, forbid=KDLIB_LOSSES + KDLIB_HINTON)
    x, y, v = _labelled(n, seed)
    keep = y != OMITTED
    n3 = int((~keep).sum())
    xs, ys, vs = _three_parts(student(x.clone(), y.clone(), v.clone(),
                                      protect=("x", "y", "teacher_logits")), name)
    left = int((ys == OMITTED).sum()) if ys.ndim == 1 else 0
    if left and left == len(ys):
        fail("you kept only the 3s; the transfer set is every image EXCEPT the 3s (y != 3).")
    if left:
        fail(f"{left} 3s are left in your transfer set: it must hold no image of a 3 (keep the "
             f"rows with y != 3). The student must never see a 3.")
    if len(ys) != int(keep.sum()) or not torch.equal(ys, y[keep]):
        fail(f"your transfer set's labels are not the {int(keep.sum())} labels other than 3 of the "
             f"{n} given, in their order: keep = (y != 3), then y[keep].")
    if len(xs) != len(ys) or not torch.equal(xs, x[keep]):
        fail("your transfer set's images are not the images of its labels: filter x with the same "
             "rows as y, x[keep].")
    if vs.ndim == 2 and vs.shape[1] == 9:
        fail("you dropped the teacher's logit of class 3 (9 columns left): keep all 10. The soft "
             "targets' class-3 probabilities on the other digits are all the student learns about "
             "3s: without them it has no reason ever to say 3.")
    if len(vs) == n:
        fail(f"you filtered x and y but not teacher_logits ({len(vs)} rows for {len(ys)} images): "
             f"filter the logits with the same rows, teacher_logits[keep], or each image gets "
             f"another image's soft targets.")
    if tuple(vs.shape) != (len(ys), 10):
        fail(f"your transfer set's teacher_logits have shape {tuple(vs.shape)}; they must be "
             f"{(len(ys), 10)}: the logits of the rows kept, all 10 classes.")
    if not torch.equal(vs, v[keep]):
        other = vs[:, [c for c in range(10) if c != OMITTED]]
        if torch.equal(other, v[keep][:, [c for c in range(10) if c != OMITTED]]):
            fail("you changed the teacher's logit of class 3 (set to 0, -inf or another value): "
                 "keep it as it is. The soft targets' class-3 probabilities on the other digits "
                 "are all the student learns about 3s.")
        fail("your transfer set's teacher_logits are not the logits of its images: filter them "
             "with the same rows, teacher_logits[keep], and leave their values as they are.")
    ok(f"{name} is right: the {len(ys)} images other than 3 ({n3} 3s left out), each with its label "
       f"and all 10 of its teacher logits.")


# ---- 2. the student, distilled on the transfer set ----------------------------------------------

def _train(d, T, alpha, seed, epochs, kind="right"):
    """The exercise's student, or one trained with the mistake ``kind``."""
    x, y, v = d
    gen = seed_everything(seed)
    model = models.MLP(HIDDEN)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    for _ in range(epochs):
        for xb, yb, vb in data.batches(x, y, v, batch_size=BATCH, shuffle=True, generator=gen):
            z = model(xb)
            if kind == "labels only":
                loss = F.cross_entropy(z, yb)
            elif kind == "alpha swapped":
                loss = losses.distillation_loss(z, vb, yb, T, 1 - alpha)
            elif kind == "T = 1":
                loss = losses.distillation_loss(z, vb, yb, 1.0, alpha)
            else:
                loss = losses.distillation_loss(z, vb, yb, T, alpha)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return [p.detach() for p in model.parameters()]


_TRAIN_MISTAKES = {
    "labels only": "your student learned from the labels only (cross-entropy): it must learn "
                   "from the teacher's soft targets, distillation_loss(model(xb), vb, yb, T, alpha). "
                   "Trained on labels without 3s, a student has no reason ever to say 3.",
    "alpha swapped": "alpha weights the wrong term: distillation_loss(z, vb, yb, T, alpha) already "
                     "puts alpha on the soft term; pass alpha as given.",
    "T = 1": "your student was distilled at T = 1: pass the T given. At T = 1 the teacher's "
             "probabilities of class 3 on the other digits are nearly 0, and the student hardly "
             "hears about 3s.",
}


@graded
def check_train_without_3s(fn, *, n: int = 200, T: float = 8.0, alpha: float = 0.9,
                           seeds: tuple = (13,), epochs: int = 2) -> None:
    """Check ``fn(transfer, T, alpha, seed, epochs)``: ``seed_everything(seed)``,
    ``models.MLP(HIDDEN)``, Adam (lr 1e-3), then ``epochs`` passes of
    ``data.batches(x, y, v, batch_size=64, shuffle=True, generator=gen)`` with one step on
    ``distillation_loss(model(xb), vb, yb, T, alpha)`` per batch; returns the model."""
    name = "train_student"
    warm_up()
    student = Student(fn, name, forbid=KDLIB_LOSSES + KDLIB_TRAINING + KDLIB_HINTON,
                      allow=(losses.distillation_loss,))
    x, y, v = _labelled(n, n)
    keep = y != OMITTED
    d = (x[keep], y[keep], v[keep])
    for seed in seeds:
        given = tuple(t.clone() for t in d)
        out = student(given, T, alpha, seed, epochs)
        for orig, now, arg in zip(d, given, ("x", "y", "teacher_logits")):
            unchanged(orig, now, name, arg)
        if not isinstance(out, nn.Module):
            fail(f"{name} returned {'nothing (None)' if out is None else 'a ' + type(out).__name__}; "
                 f"it must return the trained model.")
        got = [p.detach() for p in out.parameters()]

        def same(ref):
            return len(ref) == len(got) and all(close(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(got, ref))

        if same(_train(d, T, alpha, seed, epochs)):
            continue
        for kind, msg in _TRAIN_MISTAKES.items():
            if same(_train(d, T, alpha, seed, epochs, kind)):
                fail(msg)
        fail(f"with seed={seed} your student differs from: gen = seed_everything(seed); model = "
             f"models.MLP({HIDDEN}); Adam(lr={LR:g}); {epochs} epochs of data.batches(x, y, v, "
             f"batch_size={BATCH}, shuffle=True, generator=gen), each batch one step (forward, "
             f"distillation_loss at T={T:g}, alpha={alpha:g}, zero_grad, backward, step).")
    ok(f"{name} is right: the same student and steps as the recipe (T={T:g}, alpha={alpha:g}, "
       f"{epochs} epoch{'s' if epochs != 1 else ''} on {int(keep.sum())} images without 3s).")


# ---- 3. the accuracy on the test 3s -----------------------------------------------------------

def _predictions(n: int, seed: int):
    """Logits and labels where a 3 is right 60% of the time, another digit 90%, and some other
    digits are taken for 3s: every mistaken formula gives another number."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    right = torch.rand(n, generator=g) < torch.where(y == OMITTED, 0.6, 0.9)
    wrong = (y + 1 + torch.randint(0, 9, (n,), generator=g)) % 10
    pred = torch.where(right, y, wrong)
    logits = torch.randn(n, 10, generator=g)
    logits[torch.arange(n), pred] = logits.max(1).values + 1 + torch.rand(n, generator=g)
    return logits, y


def _accuracy_mistakes(logits, y):
    pred = logits.argmax(1)
    is3, said3 = y == OMITTED, pred == OMITTED
    right3 = (is3 & said3).sum().float()
    return [
        ("you computed the accuracy over the whole test set: the question is how many of the "
         "test 3s the student gets right, so count among the images with y == 3 only: "
         "(pred[y == 3] == 3).float().mean().", (pred == y).float().mean()),
        ("you divided the 3s it got right by the number of ALL test images; divide by the number "
         "of test 3s: (pred[y == 3] == 3).float().mean().", right3 / len(y)),
        ("you computed the share of test images the student calls 3 (pred == 3); the question is "
         "the share of the test 3s it calls 3: (pred[y == 3] == 3).float().mean().",
         said3.float().mean()),
        ("you divided by the number of images the student calls 3 (that is the precision of "
         "class 3); the accuracy on 3s divides by the number of test 3s.", right3 / said3.sum()),
        ("you returned the error rate on the 3s; return the accuracy, the share of the test 3s "
         "called 3.", 1 - right3 / is3.sum()),
        ("you returned a count; return the share, a number between 0 and 1.", right3),
    ]


@graded
def check_accuracy_on_3s(fn, *, n: int = 400, seed: int = 14) -> None:
    """Check ``fn(logits, y)``: the share of the images with label 3 whose predicted class (the
    argmax of their logits) is 3, a number in [0, 1] (float or 0-d tensor)."""
    name = "accuracy_on_3s"
    student = Student(fn, name, forbid=KDLIB_LOSSES + KDLIB_HINTON)
    for k in range(2):
        logits, y = _predictions(n, seed + k)
        out = student(logits.clone(), y.clone(), protect=("logits", "y"))
        try:
            value = float(out)
        except (TypeError, ValueError, RuntimeError):
            fail(f"{name} returned {'nothing (None)' if out is None else 'a ' + type(out).__name__}; "
                 f"it must return one number (a float, or a 0-d tensor).")
        right = float((logits.argmax(1)[y == OMITTED] == OMITTED).float().mean())
        if abs(value - right) < 1e-6:
            continue
        for msg, wrong in _accuracy_mistakes(logits, y):
            if abs(value - float(wrong)) < 1e-6:
                fail(msg)
        fail(f"your {name} gives {value:.6g}; of the {int((y == OMITTED).sum())} images with label 3, "
             f"a share of {right:.6g} have 3 as their largest logit.")
    ok(f"{name} is right: the share of the 3s predicted 3 (not of the whole set, not of the "
       f"predictions of 3).")


# ---- 4. the bias of class 3 --------------------------------------------------------------------

@graded
def check_shift_bias(fn, *, deltas: tuple = (3.5, -2.0), hidden: tuple = (20,), seed: int = 15) -> None:
    """Check ``fn(model, delta)``: a copy of ``model`` whose output bias of class 3 is raised by
    ``delta``, so that the 3-logit of every image rises by delta and the others stay; the model
    given is left unchanged."""
    name = "shift_bias"
    student = Student(fn, name, forbid=KDLIB_LOSSES + (models.shift_bias,) + KDLIB_HINTON)
    torch.manual_seed(seed)
    model = models.MLP(tuple(hidden)).eval()
    x = torch.randn(50, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    state = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        base = model(x)
    for delta in deltas:
        out = student(model, delta)
        if any(not torch.equal(t, model.state_dict()[k]) for k, t in state.items()):
            fail(f"your {name} changed the model it was given: copy it first (copy.deepcopy(model)) "
                 f"and shift the copy's bias, so the student before the shift is kept.")
        if not isinstance(out, nn.Module):
            fail(f"{name} returned {'nothing (None)' if out is None else 'a ' + type(out).__name__}; "
                 f"it must return the shifted copy of the model.")
        with torch.no_grad():
            diff = out.eval()(x) - base
        want = torch.zeros(10)
        want[OMITTED] = delta
        if close(diff, want.expand_as(diff), rtol=1e-5, atol=1e-5):
            continue
        for c in range(10):
            e = torch.zeros(10)
            e[c] = delta
            if c != OMITTED and close(diff, e.expand_as(diff), rtol=1e-5, atol=1e-5):
                fail(f"you shifted the bias of class {c}, not of class 3: the output bias has one "
                     f"entry per class, 0 to 9, and the digit 3 is entry 3 (bias[3]).")
        if close(diff, torch.full_like(diff, float(delta)), rtol=1e-5, atol=1e-5):
            fail("you raised every class's bias: that changes no prediction (softmax and argmax "
                 "ignore a shift of all logits). Raise only bias[3].")
        others = torch.cat([diff[:, :OMITTED], diff[:, OMITTED + 1:]], 1)
        if close(others, torch.zeros_like(others), atol=1e-5) and diff[:, OMITTED].std() > 1e-4:
            fail("you changed the WEIGHTS of class 3 (its row of the last layer's weight), not its "
                 "bias: the 3-logit then moves by delta times the hidden activations, differently "
                 "for every image. Add delta to the last layer's bias[3].")
        fail(f"with delta={delta:g} the logits of your shifted model differ from the model's by up to "
             f"{float((diff - want).abs().max()):.3g} from (0, 0, 0, delta, 0, ...): add delta to "
             f"bias[3] of the last nn.Linear only.")
    ok(f"{name} is right: the 3-logit of every image rises by delta ({listing(deltas)}), the other "
       f"logits stay, and the model given is unchanged.")


# ---- 5. the bias shift, chosen on validation ------------------------------------------------

BIAS_WORDS = Words(setting="delta", grid="deltas", val="val_errors", test="test_errors",
                   score="errors", higher_is_better=False)


@graded
def check_choose_bias(fn, *, deltas: tuple = (0.0, 1.0, 2.0, 3.0, 4.0), seed: int = 16) -> None:
    """Check ``fn(deltas, val_errors, test_errors)``: every shift scored with ``val_errors(delta)``,
    the one with the fewest errors chosen (the first of equal ones), then ``test_errors`` read
    once, for that shift; returns ``(best_delta, test_errors(best_delta))``."""
    name = "choose_bias"
    student = Student(fn, name, forbid=KDLIB_LOSSES + KDLIB_HINTON)
    check_selection(student, list(deltas), BIAS_WORDS, seed)
    ok(f"{name} is right: each shift scored on validation, the fewest errors chosen (the first on a "
       f"tie), the test set read once, for the chosen shift, after the choice.")
