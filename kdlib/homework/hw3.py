"""Checks of homework 3 (homework/source/hw3_distillation_loop): the teacher's logits computed once,
one epoch of distillation with cached teacher logits, a paired pair of students, the paired
confidence interval and its verdict, and a temperature chosen on the validation split.

The epoch check runs the student's loop on a model that records the images of every batch it is
given, so it knows the order the loop drew, and replays that order with the right step and with
the typical mistaken ones (teacher logits in the original order, no ``zero_grad``). The selection
check gives the student's function accessors that record when the test set is read. The keyword
arguments are for the instructors' hidden tests; students call ``check_...(fn)``.
"""
from __future__ import annotations

import copy
import functools
import math

import numpy as np
import torch
from scipy import stats as scipy_stats
from torch import nn

from .. import data, losses, models, stats, train
from ..repro import seed_everything
from ._common import (KDLIB_LOSSES, KDLIB_TRAINING, Student, close, fail, finite,
                      graded, ok, unchanged)
from ._select import Words, check_selection

__all__ = ["check_teacher_logits", "check_distill_epoch", "check_train_student", "check_paired_ci",
           "check_verdict", "check_choose_temperature"]

BATCH = 64
"""The batch size of the exercise's epoch."""
# kdlib's batching: the exercise asks for the shuffle and the indexing written out.
KDLIB_BATCHING = (data.batches, train.Batches.__iter__, train.Batches.order)
KDLIB_STATS = tuple(getattr(stats, n) for n in ("paired_ci", "verdict", "claim_verdict"))


@functools.cache
def warm_up() -> None:
    """Run once what a student's training runs: a forward pass, distillation_loss, backward, an SGD
    and an Adam step. PyTorch imports some modules on the first optimizer step (seconds on a busy
    machine): here, outside the student's time limit, which must not stop an import halfway."""
    with torch.random.fork_rng(devices=[]):
        model = models.StudentNet()
        x, v = torch.randn(4, 1, 28, 28), torch.randn(4, 10)
        for opt in (torch.optim.SGD(model.parameters(), lr=0.1), torch.optim.Adam(model.parameters())):
            loss = losses.distillation_loss(model(x), v, torch.zeros(4, dtype=torch.long), 2.0, 0.5)
            opt.zero_grad()
            loss.backward()
            opt.step()


def _unchanged(originals, given, name: str) -> None:
    """The data tuple's tensors are as they were (the student got ``given``, copies)."""
    for orig, now, arg in zip(originals, given, ("x", "y", "teacher_logits")):
        unchanged(orig, now, name, arg)


def _unwrapped(f):
    """The function itself, under a decorator such as torch.inference_mode (whose wrapper's code
    is shared by every decorated function)."""
    return getattr(f, "__wrapped__", f)


# ---- 1. the teacher's logits, once -------------------------------------------------------------

def _dropout_teacher(seed: int) -> nn.Module:
    """A teacher with dropout, in train mode, whose weights require gradients (as built)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 10))


@graded
def check_teacher_logits(fn, *, n: int = 40, seed: int = 6) -> None:
    """Check ``fn(teacher, x)``: the teacher's logits for every row of ``x``, in eval mode (no
    dropout) and without gradients; the teacher given is in train mode, as a trained one may be."""
    name = "teacher_logits"
    student = Student(fn, name, forbid=KDLIB_LOSSES + (_unwrapped(train.predict_logits),))
    teacher = _dropout_teacher(seed)
    x = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = teacher.eval()(x)
    teacher.train()
    out = student.tensor(teacher, x.clone(), shape=(n, 10), protect=(None, "x"))
    if out.requires_grad:
        fail(f"your {name} computed the logits with gradients (they require grad): the teacher is "
             f"frozen, so run it under `with torch.no_grad():` (or torch.inference_mode()). With "
             f"gradients, PyTorch keeps the graph of the whole training set in memory, and a "
             f"loss could train the teacher.")
    finite(out, name)
    if not close(out, ref, rtol=1e-4, atol=1e-5):
        teacher.train()
        with torch.no_grad():
            noisy = teacher(x)
        if not close(out, noisy, rtol=0, atol=0) and (out - ref).abs().max() > 1e-3:
            fail(f"your {name} ran the teacher in train mode: its dropout was on, so the logits "
                 f"are random (they differ from the eval-mode logits by up to "
                 f"{float((out - ref).abs().max()):.3g}). Call teacher.eval() before the forward pass.")
        fail(f"your {name} differs from teacher(x) in eval mode by up to "
             f"{float((out - ref).abs().max()):.3g}.")
    ok(f"{name} is right: the teacher's eval-mode logits for all {n} images, without gradients.")


# ---- 2. one epoch of distillation --------------------------------------------------------------

class _Recorder(nn.Module):
    """``net``, recording the images of each forward pass made with gradients (a training step)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net, self.seen = net, []

    def forward(self, x):
        if torch.is_grad_enabled():
            self.seen.append(x.detach().clone())
        return self.net(x)


def _rows_of(x: torch.Tensor) -> dict:
    keys = {row.numpy().tobytes(): i for i, row in enumerate(x.detach().flatten(1))}
    if len(keys) != len(x):
        raise ValueError("the images given to check_distill_epoch must be distinct (they identify "
                         "the rows the loop drew)")
    return keys


def _order(seen: list, keys: dict, name: str) -> list[torch.Tensor]:
    """The row indices of each recorded batch."""
    if not seen:
        fail(f"your {name} never ran the model with gradients: each batch needs a forward pass "
             f"`model(xb)` (not under torch.no_grad()), the loss, then backward and step.")
    order = []
    for xb in seen:
        idx = [keys.get(row.numpy().tobytes()) for row in xb.flatten(1)]
        if None in idx:
            fail(f"your {name} passed the model images that are not rows of x: give it x[idx], "
                 f"the images of the batch, as they are.")
        order.append(torch.tensor(idx))
    return order


def _check_order(order: list, n: int, name: str) -> None:
    flat = torch.cat(order)
    if len(flat) != n or not torch.equal(flat.sort().values, torch.arange(n)):
        fail(f"your {name} did not use every image exactly once ({len(flat)} images in "
             f"{len(order)} forward passes for {n} images): one epoch is one pass over a "
             f"permutation, order = torch.randperm(n, generator=generator), cut into batches "
             f"of {BATCH}.")
    sizes = [len(b) for b in order]
    right = [min(BATCH, n - s) for s in range(0, n, BATCH)]
    if sizes != right:
        fail(f"your {name} used batches of {sorted(set(sizes))} images; the exercise's are "
             f"{BATCH} (the last one smaller when {BATCH} does not divide n): "
             f"order[start:start + {BATCH}].")
    if torch.equal(flat, torch.arange(n)):
        fail(f"your {name} did not shuffle: it took the images in their stored order. Draw a new "
             f"order every epoch, order = torch.randperm(n, generator=generator).")


def _replay(net, stale, opt_lr, x, y, v, T, alpha, order, kind: str) -> list[torch.Tensor]:
    """The weights after the epoch in ``order``, done right or with the mistake ``kind``."""
    net = copy.deepcopy(net)
    for p, s in zip(net.parameters(), stale):
        p.grad = s.clone()
    opt = torch.optim.SGD(net.parameters(), lr=opt_lr)
    start = 0
    for idx in order:
        xb, yb, vb = x[idx], y[idx], v[idx]
        if kind == "logits in the original order":
            vb = v[start:start + len(idx)]
        if kind == "labels in the original order":
            yb = y[start:start + len(idx)]
        start += len(idx)
        loss = losses.distillation_loss(net(xb), vb, yb, T, alpha)
        if kind != "no zero_grad":
            opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach() for p in net.parameters()]


_EPOCH_MISTAKES = {
    "logits in the original order": (
        "you shuffled the images but read the teacher's logits in their original order "
        "(teacher_logits[start:start + 64] instead of teacher_logits[idx]): each image got another "
        "image's soft targets. Index the images, the labels and the logits with the same idx."),
    "labels in the original order": (
        "you shuffled the images but read the labels in their original order (y[start:start + 64] "
        "instead of y[idx]): index the images, the labels and the logits with the same idx."),
    "no zero_grad": (
        "you did not call optimizer.zero_grad() before loss.backward(): backward() ADDS to the "
        "gradients already there, so every step also used the previous steps' gradients."),
}


def _epoch_once(student, net, x, y, v, T, alpha, seed):
    """Run the student's epoch on a recording copy of ``net`` (with stale gradients and plain
    SGD); returns (weights after, recorded batches, stale gradients)."""
    g = torch.Generator().manual_seed(seed)
    model = _Recorder(copy.deepcopy(net))
    stale = [torch.randn(p.shape, generator=g) for p in model.parameters()]
    for p, s in zip(model.parameters(), stale):
        p.grad = s.clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    given = (x.clone(), y.clone(), v.clone())
    student(model, opt, given, T, alpha, torch.Generator().manual_seed(seed))
    _unchanged((x, y, v), given, student.name)
    return [p.detach().clone() for p in model.net.parameters()], model.seen, stale


@graded
def check_distill_epoch(fn, data: tuple | int = 200, *, T: float = 2.0, alpha: float = 0.8,
                        seed: int = 7) -> None:
    """Check ``fn(model, optimizer, data, T, alpha, generator)``, ``data = (x, y, teacher_logits)``:
    one epoch in batches of 64 of a shuffled order drawn from ``generator``, each batch's images,
    labels and teacher logits taken with the same indices, and per batch forward,
    ``distillation_loss``, ``zero_grad``, ``backward``, ``step``. ``data``: the tensors to check on
    (e.g. real MNIST images, labels and cached teacher logits), or a number of random images."""
    name = "distill_epoch"
    warm_up()
    student = Student(fn, name, forbid=KDLIB_LOSSES + KDLIB_TRAINING + KDLIB_BATCHING,
                      allow=(losses.distillation_loss,))
    if isinstance(data, int):
        g = torch.Generator().manual_seed(seed)
        data = (torch.randn(data, 1, 28, 28, generator=g), torch.randint(0, 10, (data,), generator=g),
                torch.randn(data, 10, generator=g) * 3)
    x, y, v = data
    n, keys = len(y), _rows_of(x)
    torch.manual_seed(seed)
    net = models.StudentNet()
    after, seen, stale = _epoch_once(student, net, x, y, v, T, alpha, seed)
    order = _order(seen, keys, name)
    _check_order(order, n, name)
    if all(close(a, p, rtol=0, atol=0) for a, p in zip(after, net.parameters())):
        fail(f"your {name} did not change the weights. Per batch: optimizer.zero_grad(), "
             f"loss.backward(), optimizer.step() (zero_grad after backward throws the gradients away).")

    def matches(kind):
        return all(close(a, r, rtol=1e-4, atol=1e-6)
                   for a, r in zip(after, _replay(net, stale, 0.1, x, y, v, T, alpha, order, kind)))

    if not matches("right"):
        for kind, msg in _EPOCH_MISTAKES.items():
            if matches(kind):
                fail(msg)
        fail(f"after your {name} the weights differ from one pass of: forward model(xb), "
             f"distillation_loss(logits, vb, yb, T={T:g}, alpha={alpha:g}), zero_grad, backward, "
             f"step, per batch of the order it drew.")
    # The order comes from the generator: the same seed, the same order; another, another.
    again = _order(_epoch_once(student, net, x, y, v, T, alpha, seed)[1], keys, name)
    if len(again) != len(order) or not all(torch.equal(a, b) for a, b in zip(again, order)):
        fail(f"two epochs with equally seeded generators drew different orders: draw the order "
             f"from the generator passed in, torch.randperm(n, generator=generator), so that a "
             f"seed repeats the run.")
    other = _order(_epoch_once(student, net, x, y, v, T, alpha, seed + 1)[1], keys, name)
    if all(torch.equal(a, b) for a, b in zip(other, order)):
        fail(f"generators with different seeds drew the same order: draw it from the generator "
             f"passed in (and do not seed anything inside the function).")
    ok(f"{name} is right: {len(order)} batches of a seeded shuffle of {n} images, each with its own "
       f"labels and teacher logits, and forward, loss, zero_grad, backward, step per batch "
       f"(T={T:g}, alpha={alpha:g}).")


# ---- 3. a pair of students ---------------------------------------------------------------------

LR = 1e-3
"""The students' learning rate (Adam)."""


def _reference_student(epoch_fn, d, T, alpha, seed, epochs):
    gen = seed_everything(seed)
    model = models.StudentNet()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    for _ in range(epochs):
        epoch_fn(model, opt, d, T, alpha, gen)
    return [p.detach() for p in model.parameters()]


def _weights(out, name: str) -> list[torch.Tensor]:
    if not isinstance(out, nn.Module):
        fail(f"{name} returned {'nothing (None)' if out is None else 'a ' + type(out).__name__}; "
             f"it must return the trained model."
             + (" Did you forget `return model`?" if out is None else ""))
    return [p.detach().clone() for p in out.parameters()]


@graded
def check_train_student(fn, epoch_fn, *, n: int = 150, settings: tuple = ((0.0, 11), (0.8, 11), (0.8, 12)),
                        T: float = 4.0, epochs: int = 2) -> None:
    """Check ``fn(data, T, alpha, seed, epochs)``: ``seed_everything(seed)``, a fresh
    ``StudentNet()``, Adam (lr 1e-3), then ``epochs`` times ``epoch_fn(model, optimizer, data, T,
    alpha, generator)`` with the generator seed_everything returned. ``epoch_fn`` is the
    student's own epoch, so this check grades the pairing, not the epoch. ``settings``: (alpha,
    seed) pairs; ``epochs=0`` shows the initial weights."""
    name = "train_student"
    warm_up()
    student = Student(fn, name, forbid=KDLIB_LOSSES + KDLIB_TRAINING + KDLIB_BATCHING,
                      allow=(losses.distillation_loss,))
    # The student's own epoch makes the reference: a wrong epoch costs the epoch's points only.
    epoch = Student(epoch_fn, "distill_epoch (which this check runs)",
                    forbid=KDLIB_LOSSES + KDLIB_TRAINING + KDLIB_BATCHING,
                    allow=(losses.distillation_loss,))
    g = torch.Generator().manual_seed(n)
    d = (torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g),
         torch.randn(n, 10, generator=g) * 3)

    def run(alpha, seed, k):
        given = tuple(t.clone() for t in d)
        out = student(given, T, alpha, seed, k)
        _unchanged(d, given, name)
        return _weights(out, name)

    inits = [(alpha, seed, run(alpha, seed, 0)) for alpha, seed in settings]
    for i, (alpha, seed, init) in enumerate(inits):
        for alpha0, seed0, init0 in inits[:i]:
            if seed0 == seed and not all(torch.equal(a, b) for a, b in zip(init, init0)):
                fail(f"with the same seed ({seed}), your students for alpha={alpha0:g} and "
                     f"alpha={alpha:g} start from different weights: they are not a pair. Call "
                     f"seed_everything(seed) at the start of the function, before StudentNet().")
    for alpha, seed, init in inits:
        torch.manual_seed(seed)
        if not all(torch.equal(a, b) for a, b in zip(init, models.StudentNet().parameters())):
            fail(f"with epochs=0 your {name} must return StudentNet() as seed_everything({seed}) "
                 f"initialises it; yours has other weights (seed first, then build the model).")
    for alpha, seed in settings:
        ref = _reference_student(epoch, d, T, alpha, seed, epochs)
        got = run(alpha, seed, epochs)
        if not all(close(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(got, ref)):
            again = run(alpha, seed, epochs)
            if not all(torch.equal(a, b) for a, b in zip(got, again)):
                fail(f"two calls of your {name} with the same seed ({seed}) gave different "
                     f"students: call seed_everything(seed) inside the function and pass the "
                     f"generator it returns to every epoch.")
            fail(f"at alpha={alpha:g}, seed={seed} your student differs from: gen = "
                 f"seed_everything(seed); model = StudentNet(); Adam(lr={LR:g}); then {epochs} "
                 f"times distill_epoch(model, optimizer, data, T, alpha, gen). The same seed must "
                 f"give the same initial weights AND the same batches whatever alpha.")
    ok(f"{name} is right: the same seed gives the same initial weights and the same batches, "
       f"whatever alpha ({len(settings)} students checked).")


# ---- 4. the paired comparison ------------------------------------------------------------------

def _ci(a, b, q=0.975, dof=-1, paired=True, ddof=1, sqrt_n=True, z=None):
    """An interval for mean(a - b); the right one with the defaults, a mistaken one otherwise."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n, d = len(a), a - b
    if paired:
        spread = d.std(ddof=ddof) / (math.sqrt(n) if sqrt_n else 1)
    else:
        spread = math.sqrt(a.var(ddof=ddof) / n + b.var(ddof=ddof) / n)
    quantile = z if z is not None else scipy_stats.t.ppf(q, n + dof)
    m = float(d.mean())
    return m - quantile * spread, m + quantile * spread


CI_MISTAKES = [
    ("you used the normal quantile 1.96; with n seeds the interval needs Student's t quantile with "
     "n - 1 degrees of freedom, scipy.stats.t.ppf(0.975, n - 1) (4.30 for n = 3, 2.78 for n = 5): "
     "the sample standard deviation of a few seeds is itself uncertain.",
     lambda a, b: _ci(a, b, z=1.96)),
    ("you used n degrees of freedom; the t quantile takes n - 1: scipy.stats.t.ppf(0.975, n - 1).",
     lambda a, b: _ci(a, b, dof=0)),
    ("your interval is a 90% interval: a two-sided 95% interval takes the 0.975 quantile, "
     "scipy.stats.t.ppf(0.975, n - 1), not 0.95.",
     lambda a, b: _ci(a, b, q=0.95)),
    ("your interval is unpaired: it combines the spreads of a and of b as if the two lists were "
     "independent. Runs with the same seed share their initial weights and batches: take the "
     "per-seed differences d = a - b and the spread of d, sd(d) / sqrt(n).",
     lambda a, b: _ci(a, b, paired=False)),
    ("your interval is unpaired (and uses 1.96): take the per-seed differences d = a - b, "
     "their standard deviation sd(d) / sqrt(n) and the t quantile with n - 1 degrees of freedom.",
     lambda a, b: _ci(a, b, paired=False, z=1.96)),
    ("your standard deviation divides by n (ddof=0, NumPy's default); the sample standard "
     "deviation divides by n - 1: np.std(d, ddof=1).",
     lambda a, b: _ci(a, b, ddof=0)),
    ("your half-width lacks the 1 / sqrt(n): the interval is for the MEAN difference, whose "
     "standard error is sd(d) / sqrt(n).",
     lambda a, b: _ci(a, b, sqrt_n=False)),
    ("your interval is for b - a: the differences are d = a - b (a minus b, seed by seed).",
     lambda a, b: _ci(b, a)),
]


def _number(out: dict, key: str, name: str) -> float:
    try:
        return float(out[key])
    except (KeyError, TypeError, ValueError, IndexError):
        fail(f"{name} must return a dict with a number under {key!r} (keys 'diffs', 'mean', "
             f"'low', 'high'); got {out!r:.200}.")


@graded
def check_paired_ci(fn, *, sizes: tuple = (3, 5, 8), seed: int = 8) -> None:
    """Check ``fn(a, b)``: a dict with ``diffs`` (a - b per seed), their ``mean``, and the 95%
    interval ``low``, ``high``: mean -+ t_{0.975, n-1} * sd(d, ddof=1) / sqrt(n). ``a`` and ``b``
    are given as lists of floats (per seed), strongly correlated, as paired runs are."""
    name = "paired_ci"
    student = Student(fn, name, forbid=KDLIB_LOSSES + KDLIB_STATS)
    g = np.random.default_rng(seed)
    for n in sizes:
        b = 0.90 + 0.02 * g.standard_normal(n)
        a = b + 0.004 + 0.003 * g.standard_normal(n)
        out = student(list(a), list(b))
        if not isinstance(out, dict):
            fail(f"{name} returned {type(out).__name__}; it must return a dict with 'diffs', "
                 f"'mean', 'low' and 'high'.")
        diffs = out.get("diffs")
        try:
            diffs = np.asarray(diffs, dtype=float)
        except (TypeError, ValueError):
            diffs = None
        if diffs is None or diffs.shape != (n,) or not np.allclose(diffs, a - b, rtol=1e-6, atol=1e-9):
            fail(f"{name}'s 'diffs' must be the per-seed differences a - b ({n} numbers, a[i] - b[i]); "
                 f"got {out.get('diffs')!r:.200}.")
        mean, low, high = (_number(out, k, name) for k in ("mean", "low", "high"))
        if not math.isclose(mean, float((a - b).mean()), rel_tol=1e-6, abs_tol=1e-9):
            fail(f"{name}'s 'mean' must be the mean of the differences, {float((a - b).mean()):.6g}; "
                 f"got {mean:.6g}.")
        right = _ci(a, b)
        if np.allclose((low, high), right, rtol=1e-5, atol=1e-9):
            continue
        for msg, formula in CI_MISTAKES:
            if np.allclose((low, high), formula(a, b), rtol=1e-5, atol=1e-9):
                fail(msg)
        fail(f"for n = {n} seeds your interval is [{low:.6g}, {high:.6g}]; the paired 95% interval "
             f"is [{right[0]:.6g}, {right[1]:.6g}]: mean(d) -+ t.ppf(0.975, n - 1) * "
             f"std(d, ddof=1) / sqrt(n), d = a - b.")
    ok(f"{name} is right: per-seed differences, their mean and the paired 95% t interval with "
       f"n - 1 degrees of freedom (n = {', '.join(map(str, sizes))}).")


_VERDICT_CASES = (("above", 0.30, 0.05, 0.55), ("below", -0.30, -0.55, -0.05),
                  ("holds, mean above 0", 0.25, -0.20, 0.70), ("holds, mean below 0", -0.25, -0.70, 0.20))


@graded
def check_verdict(fn, *, cases: tuple = _VERDICT_CASES) -> None:
    """Check ``fn(ci)`` on intervals ``{'mean', 'low', 'high', 'n', 'diffs'}``: a sentence (str) that
    says "positive" for an interval above 0, "negative" for one below 0 and "underpowered" for one
    that holds 0, whatever the sign of the mean. ``cases``: (label, mean, low, high)."""
    name = "verdict"
    student = Student(fn, name, forbid=KDLIB_LOSSES + KDLIB_STATS)
    for label, mean, low, high in cases:
        ci = {"mean": mean, "low": low, "high": high, "n": 5, "diffs": [mean] * 5}
        out = student(dict(ci))
        if not isinstance(out, str):
            fail(f"{name} returned {'nothing (None)' if out is None else 'a ' + type(out).__name__}; "
                 f"it must return a sentence (a str).")
        text = out.lower()
        interval = f"[{low:+g}, {high:+g}] (mean {mean:+g})"
        holds = low <= 0 <= high
        if holds and "underpowered" not in text:
            sign = "positive" if mean > 0 else "negative"
            fail(f"for the interval {interval} your verdict is {out!r}. The interval holds 0: "
                 f"these seeds cannot tell the sign"
                 + (f"; a {sign} mean alone is no evidence (you judged by the mean?)" if sign in text else "")
                 + ". Say 'underpowered'.")
        if not holds and "underpowered" in text:
            fail(f"for the interval {interval} your verdict is {out!r}: the interval lies "
                 f"{'above' if low > 0 else 'below'} 0, so the difference is "
                 f"{'positive' if low > 0 else 'negative'}; 'underpowered' is for an interval "
                 f"that holds 0.")
        if not holds:
            word, wrong = ("positive", "negative") if low > 0 else ("negative", "positive")
            if word not in text or wrong in text:
                fail(f"for the interval {interval} your verdict is {out!r}: it must say the "
                     f"difference is {word!r} (and not {wrong!r}).")
    ok(f"{name} is right: 'positive' above 0, 'negative' below 0, 'underpowered' when the "
       f"interval holds 0 ({len(cases)} intervals).")


# ---- 5. the temperature, chosen on validation ----------------------------------------------

TEMPERATURE_WORDS = Words(setting="T", grid="temperatures", val="val_accuracy",
                          test="test_accuracy", score="accuracy", higher_is_better=True)


@graded
def check_choose_temperature(fn, *, temperatures: tuple = (1.0, 2.0, 4.0, 8.0), seed: int = 9) -> None:
    """Check ``fn(temperatures, val_accuracy, test_accuracy)``: every T scored with
    ``val_accuracy(T)``, the best chosen (the first of equal scores), then ``test_accuracy`` read
    once, for that T; returns ``(best_T, test_accuracy(best_T))``. The accessors record every
    read: a test read during the selection, or a T chosen on the test set, is named."""
    name = "choose_temperature"
    student = Student(fn, name, forbid=KDLIB_LOSSES + KDLIB_STATS)
    check_selection(student, list(temperatures), TEMPERATURE_WORDS, seed)
    ok(f"{name} is right: each T scored on validation, the best chosen (the first on a tie), the "
       f"test set read once, for the chosen T, after the choice (grid {list(temperatures)}).")
