"""Checks of homework 5 (homework/source/hw5_gradient_check, after notebook 04): the gradient of the
soft-target loss written by hand, a central-difference gradient, and the high-temperature limit.

As in homework 1, a check recognises a mistake by computing what the mistaken formula would give on
the same inputs and finding that the student's numbers match it. Every comparison is in float64.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import losses
from ._common import KDLIB_LOSSES, Student, _label, close, fail, finite, first_mistake, graded, listing, ok

__all__ = ["check_soft_target_grad", "check_central_difference", "check_logit_matching_grad"]

AUTOGRAD = (torch.autograd.grad, torch.autograd.backward, torch.Tensor.backward, torch.autograd.functional.jacobian,
            torch.autograd.functional.jvp, torch.autograd.functional.hessian, torch.autograd.forward_ad.make_dual,
            torch.autograd.forward_ad.unpack_dual, torch.func.grad, torch.func.grad_and_value, torch.func.vjp,
            torch.func.jvp, torch.func.jacrev, torch.func.jacfwd, torch.func.hessian, torch.func.linearize)
"""What computes a gradient for you: the exercises ask for it by hand (the checks use it to compare)."""


class ByHand(Student):
    """A :class:`~kdlib.homework._common.Student` whose function may call neither kdlib's losses nor autograd."""

    def __init__(self, fn, name: str):  # losses.softmax_t is torch.softmax(z / T): allowed, as torch.softmax is
        super().__init__(fn, name, forbid=tuple(f for f in KDLIB_LOSSES if f is not losses.softmax_t) + AUTOGRAD)

    def _refuse(self, what: str):
        if what in {_label(f) for f in AUTOGRAD}:
            fail(f"your {self.name} calls {what}, which computes the gradient for you: write it by hand, as the "
                 f"exercise asks. The check compares your function with autograd, so autograd proves nothing.")
        super()._refuse(what)


def autograd_grad(loss_fn, z: torch.Tensor) -> torch.Tensor:
    """d loss_fn(z) / dz by autograd (the reference the checks compare with)."""
    z = z.detach().clone().requires_grad_()
    (g,) = torch.autograd.grad(loss_fn(z), z)
    return g


def _logits(N: int, C: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded float64 student and teacher logits, each row with its own offset (nonzero row means)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(N, C, generator=g, dtype=torch.float64) * 2 + torch.randn(N, 1, generator=g, dtype=torch.float64)
    v = torch.randn(N, C, generator=g, dtype=torch.float64) * 4 + torch.randn(N, 1, generator=g, dtype=torch.float64)
    return z, v


def _matrix(student: Student, args: tuple, shape: tuple, protect: tuple, where: str) -> torch.Tensor:
    """Call; the output must be a finite tensor of ``shape``, returned detached in float64."""
    out = student.tensor(*args, shape=shape, protect=protect)
    finite(out, student.name, where)
    return out.detach().double()


def _wrong_by(val: torch.Tensor, ref: torch.Tensor, name: str, where: str, what: str) -> None:
    """Fail: ``val`` is not ``ref`` (``what``: where the right values come from)."""
    err = (val - ref).abs().max()
    digits = (" Your numbers agree with the right ones to about 7 digits: computed or stored in float32? Keep "
              "float64 throughout." if close(val, ref, rtol=1e-5, atol=1e-7) else "")
    fail(f"{where + ' ' if where else ''}your {name} differs from {what} by up to {err:.3g} (its largest entry "
         f"is {ref.abs().max():.3g}). The first row should begin {ref[0, :3].tolist()}, yours begins "
         f"{val[0, :3].tolist()}.{digits}")


# ---- 1. the gradient of the soft-target loss -----------------------------------------------------

def soft_grad_mistakes(N: int, C: int):
    """(message, formula(z, v, T)) of the mistakes check_soft_target_grad recognises, most specific first."""
    def qp(z, v, T):
        return torch.softmax(z / T, 1) - torch.softmax(v / T, 1)
    return [
        ("your gradient is (q - p) / (N T), the gradient of the KL term alone (Hinton et al.'s eq. 2, averaged "
         "over the batch). The loss is T^2 times that KL (homework 1's soft_target_loss), so its gradient is "
         "T^2 times yours: T (q - p) / N.", lambda z, v, T: qp(z, v, T) / (N * T)),
        ("your gradient has the T^2 but not the 1/T of the chain rule: d(z_i / T)/dz_i = 1/T, so the gradient "
         "of T^2 KL is T^2 (q - p) / (N T) = T (q - p) / N.", lambda z, v, T: T * T * qp(z, v, T) / N),
        ("your gradient does not depend on T the way it should: the chain rule gives 1/T (the logits are "
         "divided by T) and the loss is multiplied by T^2, so the gradient is T (q - p) / N.",
         lambda z, v, T: qp(z, v, T) / N),
        ("your gradient has the wrong sign: where q_i > p_i, raising z_i raises q_i further above p_i and the "
         "loss rises, so dL/dz_i has the sign of q_i - p_i: T (q_i - p_i) / N.", lambda z, v, T: -T * qp(z, v, T) / N),
        (f"you divided by C = {C} (the classes), not by N = {N} (the rows of the batch): T (q - p) / N.",
         lambda z, v, T: T * qp(z, v, T) / C),
        ("your gradient is (q - p) / (N T^2), the size notebook 04 gives the KL's gradient at high T, not the "
         "gradient itself: the loss's gradient is T (q - p) / N.", lambda z, v, T: qp(z, v, T) / (N * T * T)),
        ("only q is softened: p = softmax(v / T) too.",
         lambda z, v, T: T * (torch.softmax(z / T, 1) - torch.softmax(v, 1)) / N),
        ("only p is softened: q = softmax(z / T) too.",
         lambda z, v, T: T * (torch.softmax(z, 1) - torch.softmax(v / T, 1)) / N),
        (f"your gradient is {N}x too large ({N} is the batch size): the loss averages over the batch "
         f"('batchmean'), so each logit's gradient is divided by N.", lambda z, v, T: T * qp(z, v, T)),
        (f"your gradient is {C}x too small: the loss sums over the {C} classes and averages over the batch only "
         f"('batchmean', not 'mean'), so divide by N, not by N * C.", lambda z, v, T: T * qp(z, v, T) / (N * C)),
        ("your q and p are the softmax at T = 1: soften both with the temperature, q = softmax(z / T) and "
         "p = softmax(v / T).", lambda z, v, T: T * qp(z, v, 1.0) / N),
        ("your softmax runs over the batch dimension: the classes are dim=1.",
         lambda z, v, T: T * (torch.softmax(z / T, 0) - torch.softmax(v / T, 0)) / N),
    ]


@graded
def check_soft_target_grad(fn, *, N: int = 8, C: int = 10, temperatures: tuple = (1.0, 2.0, 5.0, 20.0),
                           seed: int = 0) -> None:
    """Check ``fn(z, v, T)``: the gradient of T^2 KL(softmax(v/T) || softmax(z/T)) (batchmean) with respect to
    ``z``, written as a formula (autograd is refused)."""
    name = "soft_target_grad"
    student = ByHand(fn, name)
    z, v = _logits(N, C, seed)
    values, args = [], []
    for T in temperatures:
        values.append(_matrix(student, (z.clone(), v.clone(), T), (N, C), ("z", "v"), f"at T={T:g}"))
        args.append((z, v, T))
    refs = [autograd_grad(lambda x, v=v, T=T: losses.soft_target_loss(x, v, T), z) for z, v, T in args]
    if not all(close(val, r, rtol=1e-6, atol=1e-12) for val, r in zip(values, refs)):
        first_mistake(values, args, soft_grad_mistakes(N, C), rtol=1e-6, atol=1e-12)
        val, ref, (_, _, T) = next((val, r, a) for val, r, a in zip(values, refs, args)
                                   if not close(val, r, rtol=1e-6, atol=1e-12))
        _wrong_by(val, ref, name, f"at T={T:g}", "autograd's gradient of the loss")
    big, big_v = z * 300, v * 300  # logits in the thousands: exp overflows even float64 beyond 709
    val = student.tensor(big.clone(), big_v.clone(), 1.0, shape=(N, C), protect=("z", "v")).detach().double()
    ref = autograd_grad(lambda x: losses.soft_target_loss(x, big_v, 1.0), big)
    if not close(val, ref, rtol=1e-6, atol=1e-12):
        fail(f"at large logits (up to {big.abs().max():.0f}, T=1) your {name} is wrong although it "
             f"is right for smaller logits: compute q and p with torch.softmax (or subtract each row's maximum "
             f"before the exponential).")
    ok(f"{name} is right: T (q - p) / N equals autograd's gradient of the T^2 KL loss at T = "
       f"{listing(sorted(temperatures))}, in float64, and at logits in the thousands.")


# ---- 2. a central-difference gradient --------------------------------------------------------------

def _cube(x):
    return (x ** 3).sum()


def _unit(z: torch.Tensor, i: int, eps: float) -> torch.Tensor:
    """``eps`` at element ``i`` of a float64 tensor shaped like ``z``, 0 elsewhere (eps e_i)."""
    e = torch.zeros(z.numel(), dtype=torch.float64)
    e[i] = eps
    return e.view(z.shape)


def central(f, z: torch.Tensor, eps: float) -> torch.Tensor:
    """The central difference (f(z + eps e_i) - f(z - eps e_i)) / (2 eps) for every element i, in float64."""
    z = z.detach().double()
    parts = [(f(z + _unit(z, i, eps)) - f(z - _unit(z, i, eps))) / (2 * eps) for i in range(z.numel())]
    return torch.stack(parts).view(z.shape)


def difference_mistakes(eps: float):
    """(message, formula(f, z)) of the mistakes check_central_difference recognises."""
    return [
        ("your gradient is a forward difference, (f(z + eps e_i) - f(z)) / eps: its error shrinks like eps, "
         "a central difference's like eps^2. Use (f(z + eps e_i) - f(z - eps e_i)) / (2 eps).",
         lambda f, z: torch.stack([(f(z + _unit(z, i, eps)) - f(z)) / eps for i in range(z.numel())]).view(z.shape)),
        ("your differences are divided by eps, not by 2 eps: z + eps e_i and z - eps e_i are 2 eps apart.",
         lambda f, z: 2 * central(f, z, eps)),
        ("you moved every element of z at once (z + eps): that gives the sum of all the partial derivatives "
         "in every entry. Move one element at a time: z + eps e_i, where e_i is 1 at element i and 0 elsewhere.",
         lambda f, z: ((f(z + eps) - f(z - eps)) / (2 * eps)).expand(z.shape)),
        ("your differences were computed in float32: float32 keeps about 7 significant digits, and "
         "f(z + eps e_i) - f(z - eps e_i) loses most of them. Compute in float64 (z = z.double()).",
         lambda f, z: torch.stack([(f((z + _unit(z, i, eps)).float()) - f((z - _unit(z, i, eps)).float())).double()
                                   / (2 * eps) for i in range(z.numel())]).view(z.shape)),
        (f"your gradient does not depend on eps: use the eps you are given (here {eps:g}), not a number of "
         f"your own.", lambda f, z: 3 * z.double() ** 2),
    ]


@graded
def check_central_difference(fn, *, shape: tuple = (3, 4), eps: float = 0.1, seed: int = 2) -> None:
    """Check ``fn(f, z, eps)``: the central-difference gradient (f(z + eps e_i) - f(z - eps e_i)) / (2 eps) of a
    scalar function ``f`` at ``z``, element by element, computed and returned in float64 (autograd refused)."""
    name = "central_difference"
    student = ByHand(fn, name)
    z = (torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3 + 0.5)
    z = z * torch.where(torch.arange(z.numel()).view(shape) % 2 == 0, 1.0, -1.0)  # both signs, none near 0
    val = student.tensor(_cube, z.clone(), eps, shape=shape, protect=(None, "z"))
    if val.dtype != torch.float64:
        fail(f"your {name} returned {val.dtype}: return the float64 result (torch.zeros(shape) and torch.tensor(list) "
             f"make float32 unless given dtype=torch.float64). float32 keeps about 7 significant digits, and "
             f"f(z + eps e_i) - f(z - eps e_i) with a small eps loses nearly all of them.")
    finite(val, name, f"on f(z) = sum(z^3) with eps {eps:g}:")
    val = val.detach()
    ref = central(_cube, z, eps)  # = 3 z^2 + eps^2, for a cube
    # 1e-9: a central difference written otherwise rounds differently by about 1e-13 (f ~ 500, float64, / 0.2),
    # against entries >= 0.75; a forward difference is off by 3 z eps, 1e-2 of them
    if not close(val, ref, rtol=1e-9, atol=1e-12):
        first_mistake([val], [(_cube, z)], difference_mistakes(eps), rtol=1e-6, atol=1e-12)
        err = (val - ref).abs().max()
        fail(f"on f(z) = sum(z^3) with eps {eps:g} your gradient differs from the central difference (3 z^2 + "
             f"eps^2 for a cube) by up to {err:.3g}: for z = {z.flatten()[:3].tolist()} it should begin "
             f"{ref.flatten()[:3].tolist()}, yours begins {val.flatten()[:3].tolist()}.")
    out = student(_cube, z.float(), 1e-6)
    if not isinstance(out, torch.Tensor) or out.dtype != torch.float64:
        fail(f"given a float32 z, your {name} returned {getattr(out, 'dtype', type(out).__name__)}: convert z "
             f"to float64 first (z = z.double()) and return the float64 result. With eps = 1e-6, float32 (about 7 "
             f"significant digits) loses nearly every digit of f(z + eps e_i) - f(z - eps e_i).")
    exact = 3 * z.float().double() ** 2
    if not close(out.detach(), exact, rtol=1e-5, atol=1e-8):
        fail(f"given a float32 z and eps = 1e-6, your {name} is off by up to {(out.detach() - exact).abs().max():.3g} "
             f"(the derivative is 3 z^2): compute in float64, f(z.double() + ...), since float32 keeps about 7 "
             f"significant digits and f(z + eps e_i) - f(z - eps e_i) loses nearly all of them.")
    ok(f"{name} is right: central differences one element at a time, in float64 (also for a float32 z), "
       f"with the eps it is given.")


# ---- 3. the high-temperature limit -----------------------------------------------------------------

_WRONG_MEAN = ("you subtracted the mean over the batch (dim=0) or over the whole tensor: subtract each row's mean "
               "over its classes, dim=1.")


def limit_mistakes(N: int, C: int):
    """(message, formula(z, v)) of the mistakes check_logit_matching_grad recognises."""
    def centred(x, dim=1):
        return x - x.mean(dim, keepdim=True)
    return [
        ("your limit uses the raw logits: it holds for zero-mean rows. Subtract each row's mean first "
         "(z - z.mean(dim=1, keepdim=True)); the loss does not change when a row is shifted, so neither does "
         "its limit.", lambda z, v: (z - v) / (N * C)),
        (_WRONG_MEAN, lambda z, v: (centred(z, 0) - centred(v, 0)) / (N * C)),
        (_WRONG_MEAN, lambda z, v: ((z - z.mean()) - (v - v.mean())) / (N * C)),
        (f"your limit is {C}x too large: at high T, q_i is about (1 + z_i / T) / C, so a 1/C comes with it: "
         f"(z_i - v_i) / (N C) for zero-mean rows.", lambda z, v: (centred(z) - centred(v)) / N),
        (f"your limit is {N}x too large: the loss averages over the N = {N} rows of the batch, so divide by N.",
         lambda z, v: (centred(z) - centred(v)) / C),
        ("your limit has the wrong sign: gradient descent moves the student's logits towards the teacher's, so "
         "the gradient points from v to z: ((z - mean z) - (v - mean v)) / (N C).",
         lambda z, v: (centred(v) - centred(z)) / (N * C)),
        ("you centred z but not v: subtract each one's own row means.", lambda z, v: (centred(z) - v) / (N * C)),
        ("you centred v but not z: subtract each one's own row means.", lambda z, v: (z - centred(v)) / (N * C)),
    ]


@graded
def check_logit_matching_grad(fn, *, N: int = 8, C: int = 10, seed: int = 4) -> None:
    """Check ``fn(z, v)``: the T -> infinity limit of the soft-target loss's gradient (T^2 KL, batchmean),
    ((z - mean z) - (v - mean v)) / (N C), each row's mean over its classes (Hinton et al. 2015, section 2.1)."""
    name = "logit_matching_grad"
    student = ByHand(fn, name)
    z, v = _logits(N, C, seed)
    val = _matrix(student, (z.clone(), v.clone()), (N, C), ("z", "v"), "")
    ref = ((z - z.mean(1, keepdim=True)) - (v - v.mean(1, keepdim=True))) / (N * C)
    if not close(val, ref, rtol=1e-6, atol=1e-12):
        first_mistake([val], [(z, v)], limit_mistakes(N, C), rtol=1e-6, atol=1e-12)
        _wrong_by(val, ref, name, "", "the limit ((z - mean z) - (v - mean v)) / (N C)")
    T = 1e4
    at_T = autograd_grad(lambda x: losses.soft_target_loss(x, v, T), z)
    gap = float((at_T - val).norm() / val.norm())
    ok(f"{name} is right, and the soft-target loss's own gradient (autograd) at T = {T:g} is within "
       f"{100 * gap:.2g}% of it.")
