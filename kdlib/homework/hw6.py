"""Checks of homework 6 (homework/source/hw6_fidelity, after notebook 07): how closely a student matches
its teacher (Stanton et al. 2021, "Does Knowledge Distillation Really Work?"): top-1 agreement,
KL(teacher || student) at T = 1, and the share of the teacher's mistakes the student copies.

As in the other homeworks, a check recognises a mistake by computing what the mistaken formula would give
on the same inputs and finding that the student's number matches it. The references are
:func:`kdlib.when.agreement` and :func:`kdlib.when.teacher_student_kl` (refused inside the student's code).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import when
from ._common import KDLIB_LOSSES, CheckFailed, Student, fail, first_mistake, graded, ok

__all__ = ["check_agreement", "check_teacher_student_kl", "check_copied_mistakes"]

WHEN = (when.agreement, when.teacher_student_kl, when.fidelity)
"""Notebook 07's own fidelity measures: the references, refused inside the student's functions."""


def _number(student: Student, args: tuple, protect: tuple, none: str = "did you forget `return`?") -> float:
    """Call; the output must be one number (a Python or NumPy number, or a 0-d tensor); ``none``: what to say
    to a function that returned None."""
    out = student(*args, protect=protect)
    if out is None:
        fail(f"{student.name} returned None: {none}")
    if isinstance(out, torch.Tensor) and out.ndim == 0:
        return float(out.detach())
    if isinstance(out, (bool, torch.Tensor)) or not hasattr(out, "__float__"):
        shape = f" of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else ""
        fail(f"{student.name} returned a {type(out).__name__}{shape}; it must return one number, a float (float(...) "
             f"turns a one-element tensor into one).")
    return float(out)


def _first_mistake(value: float, mistakes: list) -> None:
    """Fail with the message of the first ``(message, wrong value)`` whose value is ``value``."""
    formulas = [(msg, lambda w=wrong: torch.tensor(float(w))) for msg, wrong in mistakes]
    first_mistake([torch.tensor(value)], [()], formulas, rtol=1e-6, atol=1e-9)


def _logits(N: int, C: int, seed: int, same: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded float64 student and teacher logits; the student's rows lean towards the teacher's top class with
    probability ``same``."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(N, C, generator=g, dtype=torch.float64) * 3
    z = torch.randn(N, C, generator=g, dtype=torch.float64) * 2
    copy = torch.rand(N, generator=g) < same
    z[copy] += 3 * F.one_hot(v[copy].argmax(1), C)  # these rows lean towards the teacher's top class
    return z, v


# ---- 1. top-1 agreement -----------------------------------------------------------------------------

@graded
def check_agreement(fn, *, N: int = 60, C: int = 10, seed: int = 0) -> None:
    """Check ``fn(student_logits, teacher_logits)``: the share of rows whose top class is the same for both."""
    name = "agreement"
    student = Student(fn, name, forbid=KDLIB_LOSSES + WHEN)
    z, v = _logits(N, C, seed, same=0.7)
    value = _number(student, (z.clone(), v.clone()), ("student_logits", "teacher_logits"))
    ref = when.agreement(z, v)
    if not math.isclose(value, ref, rel_tol=1e-6, abs_tol=1e-9):  # a float32 mean is right too
        dim0 = float((z.argmax(0) == v.argmax(0)).double().mean())
        _first_mistake(value, [
            (f"your agreement is a count ({value:g} rows), not a share: divide by the number of rows, {N}.", ref * N),
            ("your agreement is a percentage: return the share, between 0 and 1.", 100 * ref),
            ("you measured the disagreement: the share of rows where the two top classes are the same is 1 minus "
             "yours.", 1 - ref),
            (f"your agreement is 0, but the top classes agree on {ref:.4g} of the rows: integer division (//) or "
             f"int() of the share rounds it down; or an arg-max over the batch (dim=0; each row's top class is its "
             f"arg-max over the classes, dim=1).", 0.0),
            ("your arg-max runs over the batch (dim=0): each row's top class is its arg-max over the classes, "
             "dim=1.", dim0 if dim0 not in (0.0, 1.0) else math.nan),
        ])
        fail(f"your agreement is {value:.6g}; on these {N} rows the top classes agree on {ref:.6g} of them.")
    ok(f"{name} is right: the share of rows with the same top class ({ref:.3g} on {N} random rows).")


# ---- 2. KL(teacher || student) at T = 1 -------------------------------------------------------------------

def kl_mistakes(z: torch.Tensor, v: torch.Tensor) -> list:
    """(message, value) of the mistakes check_teacher_student_kl recognises, most specific first."""
    N, C = z.shape
    ls = F.log_softmax
    ref = when.teacher_student_kl(v, z)
    return [
        ("you computed KL(student || teacher): the measure is KL(p || q) = sum_k p_k (log p_k - log q_k) with p "
         "the teacher's probabilities (F.kl_div(input, target) computes KL(target || input): the student's "
         "log-probabilities go first).", when.teacher_student_kl(z, v)),
        (f"your KL is {C}x too small: reduction='mean' divides by N * C; the KL sums over the {C} classes and "
         f"averages over the rows only ('batchmean').", ref / C),
        (f"your KL is {N}x too large ({N} is the number of rows): average over the rows ('batchmean'), do not "
         f"sum them.", ref * N),
        ("you computed the cross-entropy -sum_k p_k log q_k: the KL subtracts the teacher's entropy, "
         "sum_k p_k (log p_k - log q_k).", float(-(ls(v.double(), 1).exp() * ls(z.double(), 1)).sum(1).mean())),
        ("the first argument of F.kl_div must be the student's log-probabilities (F.log_softmax), not its "
         "probabilities.", float(F.kl_div(F.softmax(z, 1), F.softmax(v, 1), reduction="batchmean"))),
        ("your KL is negative: a KL divergence is never below 0. Check the sign: sum_k p_k (log p_k - log q_k).",
         -ref),
        ("your (log-)softmax runs over the batch (dim=0): the classes are dim=1.",
         float(F.kl_div(ls(z, 0), ls(v, 0), reduction="batchmean", log_target=True))),
    ]


@graded
def check_teacher_student_kl(fn, *, N: int = 8, C: int = 10, seed: int = 1) -> None:
    """Check ``fn(teacher_logits, student_logits)``: KL(p || q) at T = 1, p = softmax(v) the teacher's and
    q = softmax(z) the student's probabilities, summed over the classes and averaged over the rows."""
    name = "teacher_student_kl"
    student = Student(fn, name, forbid=KDLIB_LOSSES + WHEN)
    both = ("teacher_logits", "student_logits")
    z, v = _logits(N, C, seed, same=0.5)
    value = _number(student, (v.clone(), z.clone()), both)
    ref = when.teacher_student_kl(v, z)
    if not math.isclose(value, ref, rel_tol=1e-5, abs_tol=1e-9):
        if math.isnan(value):
            fail(f"your KL is nan (right: {ref:.6g}). The usual cause: F.kl_div takes its target as probabilities "
                 f"unless log_target=True; given the teacher's log-probabilities (negative numbers) without it, it "
                 f"takes their log, which is nan. Otherwise look for 0 / 0 or the log of a negative number.")
        _first_mistake(value, kl_mistakes(z, v))
        fail(f"your KL is {value:.6g}; on these logits KL(teacher || student) is {ref:.6g}.")
    big_z, big_v = z * 300, v * 300  # probabilities that round to 0, exponentials beyond float64's (exp(710) = inf)
    value = _number(student, (big_v.clone(), big_z.clone()), both)
    ref = when.teacher_student_kl(big_v, big_z)
    if not math.isclose(value, ref, rel_tol=1e-5, abs_tol=1e-9):
        fail(f"at large logits (up to {max(big_z.abs().max(), big_v.abs().max()):.0f}) your KL is {value:.6g}, the "
             f"right one {ref:.6g}: a probability that rounds to 0 (log 0 = -inf), an exponential that overflows, "
             f"or an eps added to a probability. Compute the log-probabilities with F.log_softmax (for F.kl_div's "
             f"target too, with log_target=True), not from probabilities.")
    ok(f"{name} is right: KL(teacher || student) at T = 1, batchmean, also at logits in the thousands.")


# ---- 3. the teacher's mistakes the student copies ---------------------------------------------------------

def _copy_task(N: int, C: int, seed: int) -> tuple:
    """Labels, teacher logits wrong on about a third of the rows, and student logits that copy about half of
    those mistakes (wrong elsewhere too)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (N,), generator=g)
    v = torch.randn(N, C, generator=g, dtype=torch.float64)
    t_pick = torch.where(torch.rand(N, generator=g) < 0.35, torch.randint(0, C, (N,), generator=g), y)
    v += 5 * F.one_hot(t_pick, C)
    z = torch.randn(N, C, generator=g, dtype=torch.float64)
    s_pick = torch.where(torch.rand(N, generator=g) < 0.5, t_pick,
                         torch.where(torch.rand(N, generator=g) < 0.6, y, torch.randint(0, C, (N,), generator=g)))
    z += 5 * F.one_hot(s_pick, C)
    return z, v, y


def copied(z: torch.Tensor, v: torch.Tensor, y: torch.Tensor) -> float:
    """Of the rows the teacher gets wrong, the share where the student picks the teacher's class (nan if none)."""
    said, says = v.argmax(1), z.argmax(1)
    wrong = said != y
    return float((says[wrong] == said[wrong]).double().mean()) if wrong.any() else math.nan


def copy_mistakes(z, v, y) -> list:
    """(message, value) of the mistakes check_copied_mistakes recognises."""
    said, says = v.argmax(1), z.argmax(1)
    t_wrong, s_wrong = said != y, says != y
    return [
        ("you divided by all the rows: the share is over the teacher's mistakes only (the rows where the "
         "teacher's top class is not the label).", float(((says == said) & t_wrong).double().mean())),
        ("you counted every student error on the teacher's mistakes: a copied mistake is one where the student "
         "picks the *teacher's* wrong class, not any wrong class.", float(s_wrong[t_wrong].double().mean())),
        ("you divided by the student's mistakes: the share is over the teacher's mistakes.",
         float((says[s_wrong] == said[s_wrong]).double().mean())),
        ("you measured the agreement over all rows: restrict it to the rows the teacher gets wrong.",
         float((says == said).double().mean())),
        ("your share is a percentage: return it between 0 and 1.", 100 * copied(z, v, y)),
        ("your share is a count of images: divide it by the number of the teacher's mistakes.",
         float(((says == said) & t_wrong).sum())),
    ]


@graded
def check_copied_mistakes(fn, *, N: int = 300, C: int = 10, seed: int = 2) -> None:
    """Check ``fn(student_logits, teacher_logits, labels)``: of the rows where the teacher's top class is not the
    label, the share where the student's top class is the teacher's; ``nan`` when the teacher makes no mistake."""
    name = "copied_mistakes"
    student = Student(fn, name, forbid=KDLIB_LOSSES + WHEN)
    names = ("student_logits", "teacher_logits", "labels")
    z, v, y = _copy_task(N, C, seed)
    value = _number(student, (z.clone(), v.clone(), y.clone()), names)
    ref = copied(z, v, y)
    if not math.isclose(value, ref, rel_tol=1e-6, abs_tol=1e-9):  # a float32 mean is right too
        _first_mistake(value, copy_mistakes(z, v, y))
        fail(f"your share is {value:.6g}; the teacher is wrong on {int((v.argmax(1) != y).sum())} of the {N} rows "
             f"and the student copies its class on {ref:.6g} of those.")
    perfect = 5.0 * F.one_hot(y, C).double()  # a teacher without a mistake
    try:
        value = _number(student, (z.clone(), perfect, y.clone()), names, none="return float('nan') instead.")
    except CheckFailed as e:  # e.g. a ZeroDivisionError in the student's code, kept as the cause
        raise CheckFailed(f"when the teacher makes no mistake: {e} The share of no mistakes is undefined: "
                          f"return float('nan') (what a mean over no rows gives).") from e.__cause__
    if not math.isnan(value):
        fail(f"when the teacher makes no mistake your {name} returns {value:g}: the share of no mistakes is "
             f"undefined, so return float('nan') (what a mean over no rows gives), not {value:g}.")
    ok(f"{name} is right: of the teacher's {int((v.argmax(1) != y).sum())} mistakes on {N} rows the student "
       f"copies {ref:.3g}; nan when the teacher makes none.")
