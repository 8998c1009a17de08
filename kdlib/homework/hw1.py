"""Checks of homework 1 (homework/source/hw1_soft_targets): softmax with temperature, the
soft-target loss and the distillation loss.

Each check recognises a mistake by computing what the mistaken formula would give on the same
inputs and finding that the student's numbers match it. The keyword arguments (other shapes,
temperatures, seeds) are for the instructors' hidden tests; students call ``check_...(fn)``.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from .. import losses
from ._common import (KDLIB_LOSSES, NAN_CAUSES, TORCH_SOFTMAX, CheckFailed, Student, close,
                      diagnose, fail, finite, graded, listing, ok)

__all__ = ["check_softmax_t", "check_soft_target_loss", "check_distillation_loss"]


# ---- 1. softmax with temperature -------------------------------------------------------------

@graded
def check_softmax_t(fn, *, shape: tuple = (4, 10), temperatures: tuple = (1.0, 2.0, 5.0, 0.5),
                    seed: int = 0) -> None:
    """Check ``fn(logits, T)``: softmax of ``logits / T`` over the classes (last dimension),
    written with ``torch.exp`` (torch's softmax and kdlib's are refused)."""
    name = "softmax_t"
    student = Student(fn, name, forbid=KDLIB_LOSSES + (TORCH_SOFTMAX,))
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(*shape, generator=g) * 3
    for T in temperatures:
        q = student.tensor(z.clone(), T, shape=z.shape, protect=("logits",))
        ref = losses.softmax_t(z, T)
        if close(q, ref):
            continue
        finite(q, name, f"at T={T:g}")
        if close(q, torch.softmax(z / T, dim=0)):
            fail("you took the softmax over the wrong dimension: your columns sum to 1, not your "
                 "rows. The classes are the last dimension of the N x C logits: use dim=-1 (or dim=1).")
        if T != 1 and close(q, torch.softmax(z, dim=-1)):
            fail(f"your probabilities do not depend on T (at T={T:g} they equal those at T=1): "
                 f"divide the logits by T before the exponential.")
        if close(q, torch.softmax(z * T, dim=-1)):
            fail(f"at T={T:g} you multiplied the logits by T; divide them by T: "
                 f"q_i = exp(z_i / T) / sum_j exp(z_j / T).")
        sums = q.detach().sum(dim=-1)
        if not close(sums, torch.ones_like(sums), rtol=1e-4, atol=1e-4):
            worst = sums.flatten()[(sums - 1).abs().argmax()]
            fail(f"at T={T:g} your probabilities sum to {worst:.4g}; they must sum to 1 over the "
                 f"classes: divide exp(z_i / T) by the sum of exp(z_j / T) over j (dim=-1).")
        err = (q.detach() - ref).abs().max()
        fail(f"at T={T:g} your probabilities sum to 1 but differ from the right ones by up to "
             f"{err:.3g}. For logits {z[0, :4].tolist()}... the first row should begin "
             f"{ref[0, :4].tolist()}, yours begins {q[0, :4].detach().tolist()}.")
    # Large logits: exp(900) overflows float32 (exp(89) already does).
    big = z * 300
    q = student.tensor(big.clone(), 1.0, shape=big.shape, protect=("logits",))
    if not torch.isfinite(q).all():
        fail(f"at large logits (up to {big.abs().max():.0f}) your softmax gives nan or inf: "
             f"exp(z) overflows float32 beyond z = 88. Subtract each row's maximum from the logits "
             f"before the exponential: softmax does not change when you shift a row by a constant, "
             f"and every exponent is then at most 0.")
    if not close(q, losses.softmax_t(big, 1.0)):
        fail(f"at large logits (up to {big.abs().max():.0f}) your probabilities are wrong "
             f"although they are finite.")
    _softmax_gradient(student, z, g)
    ok(f"{name} is right: rows sum to 1, and it matches kdlib.losses.softmax_t at "
       f"T = {listing(sorted(temperatures))}, at logits as large as {big.abs().max():.0f}, and "
       f"in its gradient.")


_NO_GRADIENT = ("softmax_t carries no gradient back to the logits (did you call .detach(), .numpy() "
                "or .item(), or compute it in NumPy or SciPy?): a softmax that training uses must "
                "stay a torch computation, written with torch.exp and a sum.")


def _softmax_gradient(student: Student, z: torch.Tensor, g: torch.Generator, T: float = 2.0) -> None:
    """The gradient of sum(w * softmax_t(z, T)) must reach z and equal the reference's."""
    zg = z.clone().requires_grad_(True)
    try:
        q = student.tensor(zg, T, shape=z.shape, protect=("logits",))
    except CheckFailed as e:  # .numpy() refuses a tensor that requires grad
        if isinstance(e.__cause__, RuntimeError) and "numpy" in str(e.__cause__).lower():
            fail(_NO_GRADIENT)
        raise
    if not q.requires_grad:
        fail(_NO_GRADIENT)
    w = torch.randn(z.shape, generator=g)
    try:
        (q * w).sum().backward()
    except RuntimeError as e:
        raise CheckFailed(f"softmax_t cannot be differentiated: backward() raised "
                          f"{type(e).__name__}: {e}") from e
    zr = z.clone().requires_grad_(True)
    (losses.softmax_t(zr, T) * w).sum().backward()
    if zg.grad is None or not close(zg.grad, zr.grad, rtol=1e-3, atol=1e-6):
        fail(f"softmax_t gives the right values but not their gradient with respect to the logits "
             f"(at T={T:g}): keep the whole computation in torch, without .detach() or a "
             f"value copied in from elsewhere.")


# ---- 2. soft-target loss ---------------------------------------------------------------------

def _kl(log_q, log_p):
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)


# (message, formula) pairs: the mistakes check_soft_target_loss recognises, most specific first.
def soft_mistakes(N: int, C: int):
    ls = F.log_softmax
    return [
        ("your loss does not scale with T^2: multiply the KL divergence by T * T. The soft "
         "targets' gradients shrink as 1/T^2; the factor T^2 keeps the soft term's size the same "
         "whatever T (Hinton et al. 2015, section 2).",
         lambda z, v, T: losses.soft_target_loss(z, v, T) / T**2),
        ("your loss scales with T, not T^2: multiply the KL divergence by T * T (T squared).",
         lambda z, v, T: losses.soft_target_loss(z, v, T) / T),
        (f"your loss is {C}x too small: did you use reduction='mean' instead of 'batchmean'? "
         f"'mean' divides by N * C (all {N * C} entries); the KL divergence sums over the {C} "
         f"classes and averages over the batch only: reduction='batchmean'.",
         lambda z, v, T: losses.soft_target_loss(z, v, T) / C),
        (f"your loss is {C}x too small (reduction='mean' instead of 'batchmean') and does not scale "
         f"with T^2 (multiply by T * T).",
         lambda z, v, T: losses.soft_target_loss(z, v, T) / C / T**2),
        (f"your loss is {N}x too large ({N} is the batch size): reduction='sum' adds the examples "
         f"up; use reduction='batchmean' to average over the batch.",
         lambda z, v, T: losses.soft_target_loss(z, v, T) * N),
        ("you computed KL(q || p), with student and teacher swapped: F.kl_div(input, target) "
         "computes KL(target || input), so the student's log-probabilities go first and the "
         "teacher's (log-)probabilities second.",
         lambda z, v, T: _kl(ls(v / T, 1), ls(z / T, 1)) * T * T),
        ("the first argument of F.kl_div must be log-probabilities: use "
         "F.log_softmax(student_logits / T, dim=1), not softmax.",
         lambda z, v, T: F.kl_div(F.softmax(z / T, 1), F.softmax(v / T, 1),
                                  reduction="batchmean") * T * T),
        ("divide the student's logits by T too: both distributions are softened with the same T.",
         lambda z, v, T: _kl(ls(z, 1), ls(v / T, 1)) * T * T),
        ("divide the teacher's logits by T too: the soft targets are softmax(teacher_logits / T).",
         lambda z, v, T: _kl(ls(z / T, 1), ls(v, 1)) * T * T),
        ("you took the (log-)softmax over the batch dimension: the classes are dim=1.",
         lambda z, v, T: _kl(ls(z / T, 0), ls(v / T, 0)) * T * T),
        ("you computed the cross-entropy -sum p log q, not the KL divergence sum p log(p / q): they "
         "differ by the teacher's entropy (a constant, so the gradients agree, but the value does "
         "not). Use F.kl_div, or subtract the entropy -sum p log p.",
         lambda z, v, T: -(F.softmax(v / T, 1) * ls(z / T, 1)).sum(1).mean() * T * T),
    ]


# A nan from F.kl_div: the teacher's log-probabilities (negative) taken as probabilities.
_SOFT_NAN = ("The usual cause: F.kl_div takes its target as probabilities unless you pass "
             "log_target=True; given the teacher's log-probabilities (negative numbers) without "
             "log_target=True, it takes their log, which is nan. Otherwise look for "
             f"{NAN_CAUSES}.")


@graded
def check_soft_target_loss(fn, *, N: int = 8, C: int = 10, temperatures: tuple = (1.0, 2.0, 4.0),
                           seed: int = 1) -> None:
    """Check ``fn(student_logits, teacher_logits, T)``: T^2 * KL(p || q), batchmean."""
    name = "soft_target_loss"
    student = Student(fn, name)
    both = ("student_logits", "teacher_logits")
    g = torch.Generator().manual_seed(seed)
    z, v = torch.randn(N, C, generator=g) * 2, torch.randn(N, C, generator=g) * 3
    values, args = [], []
    for T in temperatures:
        out = student.loss(z.clone(), v.clone(), T, N=N, C=C, protect=both, nan=f"at T={T:g}",
                           hint=_SOFT_NAN)
        values.append(out.detach())
        args.append((z, v, T))
    refs = [losses.soft_target_loss(*a) for a in args]
    if not all(close(val, r) for val, r in zip(values, refs)):
        diagnose(values, refs, args, soft_mistakes(N, C), name, lambda z, v, T: f"at T={T:g}")
    # Gradients must reach the student's logits.
    T = 2.0
    zg = z.clone().requires_grad_(True)
    out = student.loss(zg, v.clone(), T, N=N, C=C, protect=both, nan=f"at T={T:g}", hint=_SOFT_NAN)
    if not out.requires_grad:
        fail(f"{name} carries no gradient back to the student's logits (did you call .item(), "
             f".detach() or .numpy()?): training could not use it. Keep it a torch computation.")
    try:
        out.backward()
    except RuntimeError as e:
        raise CheckFailed(f"{name}'s loss cannot be differentiated: backward() raised "
                          f"{type(e).__name__}: {e}") from e
    zr = z.clone().requires_grad_(True)
    losses.soft_target_loss(zr, v, T).backward()
    if zg.grad is None or not close(zg.grad, zr.grad, rtol=1e-3, atol=1e-6):
        fail(f"{name} gives the right value but the wrong gradient with respect to the student's logits.")
    # Large student logits: log(softmax(z)) underflows to log(0) = -inf.
    big = z * 200
    out = student.loss(big.clone(), v.clone(), 1.0, N=N, C=C, protect=both, nan=None)
    ref = losses.soft_target_loss(big, v, 1.0)
    value = float(out.detach())
    if not torch.isfinite(out.detach()):
        fail(f"at large student logits (up to {big.abs().max():.0f}) your loss is {value}: "
             f"torch.log(torch.softmax(...)) rounds the tiny probabilities to 0 and "
             f"log(0) = -inf. Use F.log_softmax, which computes the same thing without underflow.")
    if not close(out, ref, rtol=1e-3):
        fail(f"at large student logits (up to {big.abs().max():.0f}) your loss is {value:.6g}; "
             f"the right value is {float(ref):.6g}. Compute log-probabilities with F.log_softmax.")
    ok(f"{name} is right: T^2 * KL(p || q) with reduction='batchmean' at "
       f"T = {listing(temperatures)}, with the right gradient, and stable at large logits.")


# ---- 3. distillation loss --------------------------------------------------------------------

def distill_mistakes(N: int, C: int):
    soft, ce = losses.soft_target_loss, F.cross_entropy
    return [
        ("alpha weights the wrong term: in this course (as in Hinton et al. 2015 and kdlib.losses) "
         "alpha weights the SOFT term: alpha * soft_target_loss + (1 - alpha) * cross_entropy. "
         "(torchdistill and the Keras example use the opposite convention.)",
         lambda z, v, y, T, a: (1 - a) * soft(z, v, T) + a * ce(z, y)),
        ("the soft term lacks T^2: use the soft-target loss T^2 * KL(p || q) (your "
         "soft_target_loss), not the bare KL divergence.",
         lambda z, v, y, T, a: a * soft(z, v, T) / T**2 + (1 - a) * ce(z, y)),
        (f"the soft term is {C}x too small: reduction='mean' instead of 'batchmean' in the KL "
         f"divergence.",
         lambda z, v, y, T, a: a * soft(z, v, T) / C + (1 - a) * ce(z, y)),
        ("the hard term must be weighted by (1 - alpha): alpha * soft + (1 - alpha) * cross_entropy.",
         lambda z, v, y, T, a: a * soft(z, v, T) + ce(z, y)),
        ("the soft term must be weighted by alpha: alpha * soft + (1 - alpha) * cross_entropy.",
         lambda z, v, y, T, a: soft(z, v, T) + (1 - a) * ce(z, y)),
        ("the cross-entropy with the true labels uses the student's plain logits (T = 1), not "
         "student_logits / T.",
         lambda z, v, y, T, a: a * soft(z, v, T) + (1 - a) * ce(z / T, y)),
        ("F.cross_entropy takes raw logits (it applies log_softmax itself): do not pass it "
         "softmax probabilities.",
         lambda z, v, y, T, a: a * soft(z, v, T) + (1 - a) * ce(F.softmax(z, 1), y)),
        ("your loss ignores the true labels: add (1 - alpha) * F.cross_entropy(student_logits, labels).",
         lambda z, v, y, T, a: a * soft(z, v, T)),
        ("your loss ignores the teacher: add alpha * soft_target_loss(student_logits, teacher_logits, T).",
         lambda z, v, y, T, a: (1 - a) * ce(z, y)),
    ]


def _reference_soft_target_loss(student_logits, teacher_logits, T):
    """kdlib's soft-target loss, in place of the student's own while distillation_loss is checked."""
    return losses.soft_target_loss(student_logits, teacher_logits, T)


def _global_names(code) -> set:
    """The global names ``code`` and the functions defined inside it refer to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _global_names(const)
    return names


@contextlib.contextmanager
def _reference_in_place_of_soft_target_loss(fn):
    """While the block runs, the global name ``soft_target_loss`` of ``fn``'s module (the student's
    notebook) means kdlib's soft-target loss, if ``fn`` uses that name and it is not kdlib's own
    function already (which the check refuses). Yields whether it swapped: distillation_loss then
    earns its points on its own, whether or not the student's soft_target_loss is right."""
    names, code = getattr(fn, "__globals__", None), getattr(fn, "__code__", None)
    if (not isinstance(names, dict) or code is None or "soft_target_loss" not in _global_names(code)
            or names.get("soft_target_loss") in KDLIB_LOSSES):
        yield False
        return
    missing = object()
    old = names.get("soft_target_loss", missing)
    names["soft_target_loss"] = _reference_soft_target_loss
    try:
        yield True
    finally:
        if old is missing:
            names.pop("soft_target_loss", None)
        else:
            names["soft_target_loss"] = old


DISTILL_SETTINGS = ((2.0, 0.8), (4.0, 0.3), (1.0, 0.5), (3.0, 0.0), (3.0, 1.0))
_DISTILL_NAN = ("Does your soft_target_loss pass its check? Otherwise look for "
                f"{NAN_CAUSES}.")


@graded
def check_distillation_loss(fn, *, N: int = 8, C: int = 10, settings: tuple = DISTILL_SETTINGS,
                            seed: int = 2) -> None:
    """Check ``fn(student_logits, teacher_logits, labels, T, alpha)``:
    alpha * soft_target_loss + (1 - alpha) * cross_entropy (alpha weights the SOFT term);
    ``settings`` are its (T, alpha) pairs. Where ``fn`` calls the student's ``soft_target_loss``,
    kdlib's stands in for it during the check, so that each exercise is graded on its own."""
    with _reference_in_place_of_soft_target_loss(fn) as swapped:
        _check_distillation_loss(fn, N, C, settings, seed)
    ok(f"distillation_loss is right: alpha * T^2 * KL(p || q) + (1 - alpha) * cross-entropy at "
       + ", ".join(f"(T={T:g}, alpha={a:g})" for T, a in settings)
       + (" (checked with kdlib's soft-target loss in place of your soft_target_loss)."
          if swapped else "."))


def _check_distillation_loss(fn, N: int, C: int, settings: tuple, seed: int) -> None:
    name = "distillation_loss"
    student = Student(fn, name, allow=(_reference_soft_target_loss,))
    inputs = ("student_logits", "teacher_logits", "labels")
    g = torch.Generator().manual_seed(seed)
    z, v = torch.randn(N, C, generator=g) * 2, torch.randn(N, C, generator=g) * 3
    y = torch.randint(0, C, (N,), generator=g)
    values, args = [], []
    for T, a in settings:
        out = student.loss(z.clone(), v.clone(), y.clone(), T, a, N=N, C=C, protect=inputs,
                           nan=f"at T={T:g}, alpha={a:g}", hint=_DISTILL_NAN)
        values.append(out.detach())
        args.append((z, v, y, T, a))
    refs = [losses.distillation_loss(*a) for a in args]
    if not all(close(val, r) for val, r in zip(values, refs)):
        diagnose(values, refs, args, distill_mistakes(N, C), name,
                 lambda z, v, y, T, a: f"at T={T:g}, alpha={a:g}")
    T, a = settings[0]
    zg = z.clone().requires_grad_(True)
    out = student.loss(zg, v.clone(), y.clone(), T, a, N=N, C=C, protect=inputs,
                       nan=f"at T={T:g}, alpha={a:g}", hint=_DISTILL_NAN)
    if not out.requires_grad:
        fail(f"{name} carries no gradient back to the student's logits (did you call .item(), "
             f".detach() or .numpy()?).")
