"""Checks for the homework notebooks (homework/): each compares a student's function with kdlib's.

Call a check on your function in a notebook, e.g. ``check_softmax_t(softmax_t)``. It runs your function
on several inputs and compares it with the reference in :mod:`kdlib.losses`. On success it prints a
line starting with "✓"; otherwise it raises :class:`CheckFailed` (an ``AssertionError``) whose
message says what went wrong and, for the common mistakes, why: no T^2, ``reduction='mean'``
instead of ``'batchmean'``, alpha on the wrong term, a softmax over the wrong dimension,
``log(softmax(...))`` at large logits, noise added instead of multiplied, and so on.

Each check recognises a mistake by computing what the mistaken formula would give on the same
inputs and finding that the student's numbers match it.
"""
from __future__ import annotations

import copy
import functools
import math

import torch
import torch.nn.functional as F

from . import losses, models
from .train import torch_threads

__all__ = ["CheckFailed", "check_softmax_t", "check_soft_target_loss", "check_distillation_loss",
           "check_perturb_logits", "check_training_step"]


class CheckFailed(AssertionError):
    """Your function gave a wrong answer; the message says what and, where it can tell, why."""


def _one_thread(check):
    """Run a check with one intra-op thread: its tensors are tiny (see kdlib.train.auto_threads)."""
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        __tracebackhide__ = True  # noqa: F841 (IPython and pytest leave this frame out)
        try:
            with torch_threads(1):
                return check(*args, **kwargs)
        except CheckFailed as e:
            # The same message without the check's insides in the traceback; the cause (an error
            # raised in the student's own function) keeps its traceback.
            short = CheckFailed(*e.args)
            short.__suppress_context__ = True
            raise short from e.__cause__  # your function failed this check: see the message below
    return wrapper


def _fail(msg: str):
    raise CheckFailed(msg)


def _ok(msg: str) -> None:
    print(f"✓ {msg}")


def _call(fn, name: str, *args, **kwargs):
    """Call the student's function; turn its exceptions into a message about the function."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(f"{name} is not written yet: replace `raise NotImplementedError()` "
                          f"with your code, run that cell, then run this check again.") from None
    except CheckFailed:
        raise
    except Exception as e:
        raise CheckFailed(f"{name} raised {type(e).__name__}: {e}") from e


def _tensor(out, name: str, shape: tuple | None = None) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        what = "nothing (None)" if out is None else f"a {type(out).__name__}"
        _fail(f"{name} returned {what}; it must return a torch.Tensor"
              + (f" of shape {tuple(shape)}" if shape is not None else "") + "."
              + (" Did you forget `return`?" if out is None else ""))
    if shape is not None and tuple(out.shape) != tuple(shape):
        _fail(f"{name} returned a tensor of shape {tuple(out.shape)}; it must have shape {tuple(shape)}.")
    return out


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """Same shape and values (nan matching nan: a mistaken formula may give nan too)."""
    a, b = torch.as_tensor(a).detach().double(), torch.as_tensor(b).detach().double()
    return a.shape == b.shape and torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def _unchanged(before: torch.Tensor, after: torch.Tensor, name: str, arg: str) -> None:
    if not torch.equal(before, after):
        _fail(f"{name} changed the {arg} it was given (an in-place operation such as `{arg} /= T` "
              f"or `{arg}.mul_(...)`?). Compute a new tensor and leave the input as it was.")


# ---- 1. softmax with temperature -------------------------------------------------------------

@_one_thread
def check_softmax_t(fn) -> None:
    """Check ``fn(logits, T)``: softmax of ``logits / T`` over the classes (last dimension)."""
    name = "softmax_t"
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 10, generator=g) * 3
    for T in (1.0, 2.0, 5.0, 0.5):
        zin = z.clone()
        q = _tensor(_call(fn, name, zin, T), name, z.shape)
        _unchanged(z, zin, name, "logits")
        ref = losses.softmax_t(z, T)
        if _close(q, ref):
            continue
        if not torch.isfinite(q).all():
            _fail(f"at T={T:g} your probabilities contain nan or inf.")
        if _close(q, torch.softmax(z / T, dim=0)):
            _fail("you took the softmax over the wrong dimension: your columns sum to 1, not your "
                  "rows. The classes are the last dimension of the N x C logits: use dim=-1 (or dim=1).")
        if T != 1 and _close(q, torch.softmax(z, dim=-1)):
            _fail(f"your probabilities do not depend on T (at T={T:g} they equal those at T=1): "
                  f"divide the logits by T before the exponential.")
        if _close(q, torch.softmax(z * T, dim=-1)):
            _fail(f"at T={T:g} you multiplied the logits by T; divide them by T: "
                  f"q_i = exp(z_i / T) / sum_j exp(z_j / T).")
        sums = q.detach().sum(dim=-1)
        if not _close(sums, torch.ones_like(sums), rtol=1e-4, atol=1e-4):
            worst = sums[(sums - 1).abs().argmax()]
            _fail(f"at T={T:g} your probabilities sum to {worst:.4g}; they must sum to 1 over the "
                  f"classes: divide exp(z_i / T) by the sum of exp(z_j / T) over j (dim=-1).")
        err = (q.detach() - ref).abs().max()
        _fail(f"at T={T:g} your probabilities sum to 1 but differ from the right ones by up to "
              f"{err:.3g}. For logits {z[0, :4].tolist()}... the first row should begin "
              f"{ref[0, :4].tolist()}, yours begins {q[0, :4].detach().tolist()}.")
    # Large logits: exp(900) overflows float32 (exp(89) already does).
    big = z * 300
    q = _tensor(_call(fn, name, big.clone(), 1.0), name, big.shape)
    if not torch.isfinite(q).all():
        _fail(f"at large logits (up to {big.abs().max():.0f}) your softmax gives nan or inf: "
              f"exp(z) overflows float32 beyond z = 88. Subtract each row's maximum from the logits "
              f"before the exponential (softmax does not change when you shift a row), or use "
              f"torch.softmax, which does it for you.")
    if not _close(q, losses.softmax_t(big, 1.0)):
        _fail(f"at large logits (up to {big.abs().max():.0f}) your probabilities are wrong "
              f"although they are finite.")
    _ok(f"{name} is right: rows sum to 1, and it matches kdlib.losses.softmax_t at T = 0.5, 1, 2 "
        f"and 5, and at logits as large as {big.abs().max():.0f}.")


# ---- 2. soft-target loss ---------------------------------------------------------------------

def _kl(log_q, log_p):
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)


# (message, formula) pairs: the mistakes check_soft_target_loss recognises, most specific first.
def _soft_mistakes(N: int, C: int):
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
        ("you passed the teacher's log-probabilities as the target without log_target=True: "
         "F.kl_div expects probabilities as its target unless you add log_target=True.",
         lambda z, v, T: F.kl_div(ls(z / T, 1), ls(v / T, 1), reduction="batchmean") * T * T),
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


def _scalar(out, name: str, N: int, C: int) -> torch.Tensor:
    out = _tensor(out, name)
    if out.ndim == 0:
        return out
    if tuple(out.shape) == (N,):
        _fail(f"{name} returned one value per example (shape ({N},)); it must return one number: "
              f"sum over the classes and average over the batch (reduction='batchmean').")
    if tuple(out.shape) == (N, C):
        _fail(f"{name} returned the N x C terms (reduction='none'?); it must return one number: "
              f"use reduction='batchmean'.")
    _fail(f"{name} returned a tensor of shape {tuple(out.shape)}; it must return one number "
          f"(a 0-dimensional tensor).")


def _diagnose(values, refs, args, mistakes, name, describe):
    """Fail naming the first mistake whose formula reproduces all the student's values, else the
    first input where the student's value is wrong."""
    for msg, formula in mistakes:
        if all(_close(val, formula(*a)) for val, a in zip(values, args)):
            _fail(msg)
    for val, ref, a in zip(values, refs, args):
        if not _close(val, ref):
            _fail(f"{describe(*a)}: your {name} gives {float(val):.6g}, the right value is "
                  f"{float(ref):.6g}.")


@_one_thread
def check_soft_target_loss(fn) -> None:
    """Check ``fn(student_logits, teacher_logits, T)``: T^2 * KL(p || q), batchmean."""
    name = "soft_target_loss"
    N, C = 8, 10
    g = torch.Generator().manual_seed(1)
    z, v = torch.randn(N, C, generator=g) * 2, torch.randn(N, C, generator=g) * 3
    values, args = [], []
    for T in (1.0, 2.0, 4.0):
        zin, vin = z.clone(), v.clone()
        out = _scalar(_call(fn, name, zin, vin, T), name, N, C)
        _unchanged(z, zin, name, "student_logits")
        _unchanged(v, vin, name, "teacher_logits")
        values.append(out.detach())
        args.append((z, v, T))
    refs = [losses.soft_target_loss(*a) for a in args]
    if not all(_close(val, r) for val, r in zip(values, refs)):
        _diagnose(values, refs, args, _soft_mistakes(N, C), name, lambda z, v, T: f"at T={T:g}")
    # Gradients must reach the student's logits.
    zg = z.clone().requires_grad_(True)
    out = _call(fn, name, zg, v.clone(), 2.0)
    if not out.requires_grad:
        _fail(f"{name} carries no gradient back to the student's logits (did you call .item(), "
              f".detach() or .numpy()?): training could not use it. Keep it a torch computation.")
    out.backward()
    zr = z.clone().requires_grad_(True)
    losses.soft_target_loss(zr, v, 2.0).backward()
    if zg.grad is None or not _close(zg.grad, zr.grad, rtol=1e-3, atol=1e-6):
        _fail(f"{name} gives the right value but the wrong gradient with respect to the student's logits.")
    # Large student logits: log(softmax(z)) underflows to log(0) = -inf.
    big = z * 200
    out = _call(fn, name, big.clone(), v.clone(), 1.0)
    ref = losses.soft_target_loss(big, v, 1.0)
    if not torch.isfinite(torch.as_tensor(out)).all():
        _fail(f"at large student logits (up to {big.abs().max():.0f}) your loss is "
              f"{float(out)}: torch.log(torch.softmax(...)) rounds the tiny probabilities to 0 and "
              f"log(0) = -inf. Use F.log_softmax, which computes the same thing without underflow.")
    if not _close(out, ref, rtol=1e-3):
        _fail(f"at large student logits (up to {big.abs().max():.0f}) your loss is {float(out):.6g}; "
              f"the right value is {float(ref):.6g}. Compute log-probabilities with F.log_softmax.")
    _ok(f"{name} is right: T^2 * KL(p || q) with reduction='batchmean' at T = 1, 2 and 4, with the "
        f"right gradient, and stable at large logits.")


# ---- 3. distillation loss --------------------------------------------------------------------

def _distill_mistakes(N: int, C: int):
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


_DISTILL_SETTINGS = ((2.0, 0.8), (4.0, 0.3), (1.0, 0.5), (3.0, 0.0), (3.0, 1.0))


def _distill_inputs(N: int = 8, C: int = 10):
    g = torch.Generator().manual_seed(2)
    return (torch.randn(N, C, generator=g) * 2, torch.randn(N, C, generator=g) * 3,
            torch.randint(0, C, (N,), generator=g))


@_one_thread
def check_distillation_loss(fn) -> None:
    """Check ``fn(student_logits, teacher_logits, labels, T, alpha)``:
    alpha * soft_target_loss + (1 - alpha) * cross_entropy (alpha weights the SOFT term)."""
    name = "distillation_loss"
    N, C = 8, 10
    z, v, y = _distill_inputs(N, C)
    values, args = [], []
    for T, a in _DISTILL_SETTINGS:
        zin, vin, yin = z.clone(), v.clone(), y.clone()
        out = _scalar(_call(fn, name, zin, vin, yin, T, a), name, N, C)
        _unchanged(z, zin, name, "student_logits")
        _unchanged(v, vin, name, "teacher_logits")
        values.append(out.detach())
        args.append((z, v, y, T, a))
    refs = [losses.distillation_loss(*a) for a in args]
    if not all(_close(val, r) for val, r in zip(values, refs)):
        _diagnose(values, refs, args, _distill_mistakes(N, C), name,
                  lambda z, v, y, T, a: f"at T={T:g}, alpha={a:g}")
    zg = z.clone().requires_grad_(True)
    out = _call(fn, name, zg, v.clone(), y.clone(), 2.0, 0.8)
    if not out.requires_grad:
        _fail(f"{name} carries no gradient back to the student's logits (did you call .item(), "
              f".detach() or .numpy()?).")
    _ok(f"{name} is right: alpha * T^2 * KL(p || q) + (1 - alpha) * cross-entropy at "
        + ", ".join(f"(T={T:g}, alpha={a:g})" for T, a in _DISTILL_SETTINGS) + ".")


# ---- 4. noisy teacher ------------------------------------------------------------------------

@_one_thread
def check_perturb_logits(fn) -> None:
    """Check ``fn(logits, sigma, fraction, generator=None)`` (Sau & Balasubramanian 2016, eq. 2):
    each row chosen with probability ``fraction``; a chosen row becomes z * (1 + xi),
    xi ~ N(0, sigma^2) drawn per logit; the other rows unchanged."""
    name = "perturb_logits"
    N, C = 4000, 10
    g = torch.Generator().manual_seed(3)
    z = torch.randn(N, C, generator=g) * 4 + 1
    z[:, 1:] = torch.where(z[:, 1:].abs() < 0.1, 0.5, z[:, 1:])
    z[:, 0] = 0.0  # a logit of 0 stays 0 under multiplicative noise; the others are not 0

    def run(sigma, fraction, seed=0):
        zin = z.clone()
        out = _tensor(_call(fn, name, zin, sigma, fraction,
                            generator=torch.Generator().manual_seed(seed)), name, z.shape)
        _unchanged(z, zin, name, "logits")
        if not out.is_floating_point():
            _fail(f"{name} returned a {out.dtype} tensor; it must return float logits.")
        return out.detach()

    out = run(0.2, 0.0)
    if not torch.equal(out, z):
        k = int((out != z).any(1).sum())
        _fail(f"with fraction=0 no row may change, but {k} of {N} rows changed: a row is chosen "
              f"when its uniform random number is < fraction (so with fraction=0 none is), and "
              f"only the chosen rows get noise.")
    out = run(0.0, 1.0)
    if not torch.equal(out, z):
        if torch.allclose(out, torch.zeros_like(z)):
            _fail("with sigma=0 your output is all zeros: a chosen row becomes z * (1 + xi), "
                  "not z * xi.")
        _fail("with sigma=0 the noise xi is 0, so z * (1 + xi) = z: your output must equal the "
              "input, but it differs.")
    sigma = 0.2
    out = run(sigma, 1.0)
    if (out[:, 0] != 0).any():
        _fail("noise was added instead of multiplied: a logit of 0 changed, but a chosen row "
              "becomes z * (1 + xi), so 0 stays 0. Multiply: logits * (1 + xi), not logits + xi.")
    xi = out[:, 1:] / z[:, 1:] - 1
    if torch.allclose(xi, -torch.ones_like(xi), atol=0.5):
        _fail("your chosen rows are z * xi; they must be z * (1 + xi).")
    changed = (out != z).any(1)
    if changed.float().mean() < 0.99:
        _fail(f"with fraction=1 every row must be perturbed, but only {changed.float().mean():.0%} "
              f"of the rows changed.")
    if xi.std(dim=1).max() < 1e-6:
        _fail("every logit of a row got the same xi: draw xi per logit (a tensor of shape N x C, "
              "e.g. torch.randn(N, C) * sigma), not one per row.")
    std, mean = float(xi.std()), float(xi.mean())
    if abs(std - sigma**2) < 0.1 * sigma**2:
        _fail(f"your xi has standard deviation {std:.3g} = sigma^2; it must be sigma = {sigma:g}. "
              f"N(0, sigma^2) names the variance: draw torch.randn(...) * sigma.")
    if abs(std - 1) < 0.1:
        _fail(f"your xi has standard deviation {std:.3g}, whatever sigma: scale the standard "
              f"normal noise by sigma, torch.randn(...) * sigma.")
    if abs(std - sigma) > 0.05 * sigma or abs(mean) > 0.05 * sigma:
        _fail(f"at sigma={sigma:g} your relative noise out / z - 1 has mean {mean:.3g} and standard "
              f"deviation {std:.3g}; xi ~ N(0, sigma^2) gives mean 0 and standard deviation {sigma:g}.")
    kurtosis = float(((xi - mean) ** 4).mean() / std**4)
    if kurtosis < 2.5:
        _fail(f"your xi does not look Gaussian (kurtosis {kurtosis:.2f}; a normal distribution has "
              f"3, a uniform one 1.8): draw it with torch.randn(...) * sigma.")
    fraction = 0.3
    out = run(sigma, fraction)
    diff = out[:, 1:] != z[:, 1:]
    some, every = diff.any(1), diff.all(1)
    if (some & ~every).any():
        _fail(f"in {int((some & ~every).sum())} rows only some logits changed: choose whole rows "
              f"(one random number per row, compared with fraction), and give every logit of a "
              f"chosen row its own xi. Rows that were not chosen must be unchanged.")
    share = float(some.float().mean())
    tol = 5 * math.sqrt(fraction * (1 - fraction) / N)
    if abs(share - fraction) > tol:
        if abs(share - (1 - fraction)) <= tol:
            _fail(f"at fraction={fraction:g} you perturbed {share:.0%} of the rows, about "
                  f"1 - fraction: a row is chosen when its uniform random number is < fraction.")
        if share > 0.99:
            _fail(f"at fraction={fraction:g} all rows changed: only a share fraction of the rows is "
                  f"chosen; rows that were not chosen must be unchanged.")
        _fail(f"at fraction={fraction:g} you perturbed {share:.1%} of the rows; each row must be "
              f"chosen with probability fraction, so about {fraction:.0%} of them.")
    # The generator makes the noise repeatable.
    if not torch.equal(run(sigma, fraction, seed=7), run(sigma, fraction, seed=7)):
        _fail("two calls with the same seeded generator gave different noise: pass "
              "generator=generator to torch.rand and torch.randn inside your function.")
    if torch.equal(run(sigma, fraction, seed=7), run(sigma, fraction, seed=8)):
        _fail("two different generators gave the same noise: draw your random numbers from the "
              "generator passed in (and do not call torch.manual_seed inside the function).")
    _ok(f"{name} is right: about {fraction:.0%} of the rows chosen at fraction={fraction:g}, whole rows "
        f"only, multiplicative noise with xi ~ N(0, {sigma:g}^2) per logit, other rows unchanged, "
        f"repeatable with a seeded generator.")


# ---- 5. one distillation training step -------------------------------------------------------

@_one_thread
def check_training_step(fn, x: torch.Tensor | None = None, y: torch.Tensor | None = None,
                        teacher_logits: torch.Tensor | None = None, T: float = 2.0,
                        alpha: float = 0.8) -> None:
    """Check ``fn(model, optimizer, x, y, teacher_logits, T, alpha)``: one SGD step on
    ``kdlib.losses.distillation_loss`` (forward, loss, zero_grad, backward, step); it must return the
    loss. ``x, y, teacher_logits`` default to a random batch; pass a real one (e.g. MNIST images,
    labels and cached teacher logits) to check on it."""
    name = "distillation_step"
    g = torch.Generator().manual_seed(4)
    if x is None:
        x = torch.randn(32, 1, 28, 28, generator=g)
        y = torch.randint(0, 10, (32,), generator=g)
        teacher_logits = torch.randn(32, 10, generator=g) * 3
    if y is None or teacher_logits is None:
        raise ValueError("pass x, y and teacher_logits together (or none of them)")
    lr = 0.1
    torch.manual_seed(0)
    model = models.StudentNet()
    ref_model = copy.deepcopy(model)
    before = [p.detach().clone() for p in model.parameters()]
    # Gradients left over from a "previous step": a right step throws them away with zero_grad.
    stale = [torch.randn(p.shape, generator=g) for p in model.parameters()]
    for p, s in zip(model.parameters(), stale):
        p.grad = s.clone()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    xin, yin, vin = x.clone(), y.clone(), teacher_logits.clone()
    out = _call(fn, name, model, opt, xin, yin, vin, T, alpha)
    _unchanged(teacher_logits, vin, name, "teacher_logits")

    ref_opt = torch.optim.SGD(ref_model.parameters(), lr=lr)
    logits0 = ref_model(x)
    ref_loss = losses.distillation_loss(logits0, teacher_logits, y, T, alpha)
    ref_opt.zero_grad()
    ref_loss.backward()
    grads = [p.grad.detach().clone() for p in ref_model.parameters()]
    ref_opt.step()
    after = [p.detach() for p in model.parameters()]

    def params_are(expected):
        return all(_close(a, e, rtol=1e-4, atol=1e-6) for a, e in zip(after, expected))

    if out is None:
        _fail(f"{name} returned nothing: return the loss (e.g. `return loss.item()`), so that you "
              f"can watch it fall.")
    try:
        value = float(out.detach() if isinstance(out, torch.Tensor) else out)
    except Exception:
        _fail(f"{name} returned a {type(out).__name__}; return the loss as a number "
              f"(`loss.item()`) or a 0-dimensional tensor.")
    if not _close(torch.tensor(value), ref_loss, rtol=1e-4):
        z0 = logits0.detach()
        for msg, formula in _distill_mistakes(*z0.shape) + [
                ("it is the cross-entropy with the labels only; use "
                 "distillation_loss(model(x), teacher_logits, y, T, alpha).",
                 lambda z, v, y, T, a: F.cross_entropy(z, y)),
                ("it is the soft-target loss only; use "
                 "distillation_loss(model(x), teacher_logits, y, T, alpha).",
                 lambda z, v, y, T, a: losses.soft_target_loss(z, v, T))]:
            if _close(torch.tensor(value), formula(z0, teacher_logits, y, T, alpha)):
                _fail(f"the loss your step returned is not distillation_loss: {msg}")
        _fail(f"your step returned the loss {value:.6g}; before the step, "
              f"distillation_loss(model(x), teacher_logits, y, T={T:g}, alpha={alpha:g}) is "
              f"{float(ref_loss):.6g}. Compute the loss on model(x) before updating the weights, "
              f"and return it.")
    if params_are(before):
        now = [p.grad for p in model.parameters()]
        if all(gr is not None for gr in now) and all(_close(a, b, rtol=1e-3) for a, b in zip(now, grads)):
            _fail("the weights did not change although the gradients were computed: call "
                  "optimizer.step() after loss.backward().")
        _fail("your step did not change the weights. The order is: optimizer.zero_grad(), "
              "loss.backward(), optimizer.step(). Did you call zero_grad() after backward() "
              "(it throws the gradients away), or forget backward() or step()?")
    if params_are([b - lr * (gr + s) for b, gr, s in zip(before, grads, stale)]):
        _fail("you did not call optimizer.zero_grad() before loss.backward(): backward() ADDS to the "
              "gradients already there, so the previous step's gradients leaked into this step.")
    if params_are([b - lr * s for b, s in zip(before, stale)]):
        _fail("optimizer.step() ran before loss.backward(): it used the previous step's gradients. "
              "The order is zero_grad(), backward(), step().")
    if not params_are([p.detach() for p in ref_model.parameters()]):
        _fail("after your step the weights differ from one optimizer step on distillation_loss "
              "(forward, loss, zero_grad, backward, step, once each).")
    _ok(f"{name} is right: one step of forward, distillation_loss (T={T:g}, alpha={alpha:g}), "
        f"zero_grad, backward and step gives the same weights and loss as kdlib's "
        f"(batch of {len(y)}).")
