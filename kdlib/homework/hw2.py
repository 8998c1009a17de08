"""Checks of homework 2 (homework/source/hw2_noisy_teacher_step): the noisy-teacher perturbation
(Sau & Balasubramanian 2016, eq. 2) and one distillation training step.

The keyword arguments (other sigma and fraction, another batch, T and alpha) are for the
instructors' hidden tests; students call ``check_...(fn)``.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

from .. import losses, models
from ._common import (KDLIB_LOSSES, KDLIB_TRAINING, NAN_CAUSES, Student, close, fail, finite,
                      graded, ok)
from .hw1 import distill_mistakes

__all__ = ["check_perturb_logits", "check_training_step"]


# ---- 1. noisy teacher ------------------------------------------------------------------------

@graded
def check_perturb_logits(fn, *, sigma: float = 0.2, fraction: float = 0.3, seed: int = 3) -> None:
    """Check ``fn(logits, sigma, fraction, generator=None)`` (Sau & Balasubramanian 2016, eq. 2):
    each row chosen with probability ``fraction``; a chosen row becomes z * (1 + xi),
    xi ~ N(0, sigma^2) drawn per logit; the other rows unchanged. ``sigma`` (not 1) and
    ``fraction`` (not 0.5, 0 or 1) are those of the statistical tests."""
    name = "perturb_logits"
    student = Student(fn, name)
    z = _perturb_input(4000, 10, seed)
    run = _perturb_runner(student, z)
    _check_nothing_to_perturb(run, z, sigma)
    _check_noise_law(_relative_noise(run, z, sigma), sigma)
    _check_row_choice(run(sigma, fraction), z, fraction)
    _check_generator(run, sigma, fraction)
    ok(f"{name} is right: about {fraction:.0%} of the rows chosen at fraction={fraction:g}, whole rows "
       f"only, multiplicative noise with xi ~ N(0, {sigma:g}^2) per logit, other rows unchanged, "
       f"repeatable with a seeded generator.")


def _perturb_input(N: int, C: int, seed: int) -> torch.Tensor:
    """N x C logits: column 0 all 0, the others at least 0.1 away from 0."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(N, C, generator=g) * 4 + 1
    z[:, 1:] = torch.where(z[:, 1:].abs() < 0.1, 0.5, z[:, 1:])
    z[:, 0] = 0.0  # a logit of 0 stays 0 under multiplicative noise; the others are not 0
    return z


def _perturb_runner(student: Student, z: torch.Tensor):
    """``run(s, f, seed=0)``: the student's perturbation of a copy of ``z`` at sigma=s, fraction=f,
    with a generator seeded ``seed``; float and finite, else the check fails."""
    name = student.name

    def run(s, f, seed=0):
        out = student.tensor(z.clone(), s, f, generator=torch.Generator().manual_seed(seed),
                             shape=z.shape, protect=("logits",))
        if not out.is_floating_point():
            fail(f"{name} returned a {out.dtype} tensor; it must return float logits.")
        finite(out, name, f"with sigma={s:g} and fraction={f:g}",
               f"Look for {NAN_CAUSES} in your code (some logits are 0: do not divide by them).")
        return out.detach()
    return run


def _check_nothing_to_perturb(run, z: torch.Tensor, sigma: float) -> None:
    """fraction=0 (no row chosen) and sigma=0 (xi = 0) must both give the input back."""
    out = run(sigma, 0.0)
    if not torch.equal(out, z):
        k = int((out != z).any(1).sum())
        fail(f"with fraction=0 no row may change, but {k} of {len(z)} rows changed: a row is "
             f"chosen when its uniform random number is < fraction (so with fraction=0 none is), "
             f"and only the chosen rows get noise.")
    out = run(0.0, 1.0)
    if not torch.equal(out, z):
        if torch.allclose(out, torch.zeros_like(z)):
            fail("with sigma=0 your output is all zeros: a chosen row becomes z * (1 + xi), "
                 "not z * xi.")
        fail("with sigma=0 the noise xi is 0, so z * (1 + xi) = z: your output must equal the "
             "input, but it differs.")


def _relative_noise(run, z: torch.Tensor, sigma: float) -> torch.Tensor:
    """xi = out / z - 1 of the nonzero logits at fraction=1, after checking that the noise is
    multiplied, reaches every row and is drawn per logit."""
    out = run(sigma, 1.0)
    if (out[:, 0] != 0).any():
        fail("noise was added instead of multiplied: a logit of 0 changed, but a chosen row "
             "becomes z * (1 + xi), so 0 stays 0. Multiply: logits * (1 + xi), not logits + xi.")
    xi = out[:, 1:] / z[:, 1:] - 1
    if torch.allclose(xi, -torch.ones_like(xi), atol=0.5):
        fail("your chosen rows are z * xi; they must be z * (1 + xi).")
    changed = (out != z).any(1)
    if changed.float().mean() < 0.99:
        fail(f"with fraction=1 every row must be perturbed, but only {changed.float().mean():.0%} "
             f"of the rows changed.")
    if xi.std(dim=1).max() < 1e-6:
        fail("every logit of a row got the same xi: draw xi per logit (a tensor of shape N x C, "
             "e.g. torch.randn(N, C) * sigma), not one per row.")
    return xi


def _check_noise_law(xi: torch.Tensor, sigma: float) -> None:
    """xi ~ N(0, sigma^2): standard deviation sigma (not sigma^2, not 1), mean 0, kurtosis 3."""
    std, mean = float(xi.std()), float(xi.mean())
    if abs(std - sigma**2) < 0.1 * sigma**2:
        fail(f"your xi has standard deviation {std:.3g} = sigma^2; it must be sigma = {sigma:g}. "
             f"N(0, sigma^2) names the variance: draw torch.randn(...) * sigma.")
    if abs(std - 1) < 0.1:
        fail(f"your xi has standard deviation {std:.3g}, whatever sigma: scale the standard "
             f"normal noise by sigma, torch.randn(...) * sigma.")
    if abs(std - sigma) > 0.05 * sigma or abs(mean) > 0.05 * sigma:
        fail(f"at sigma={sigma:g} your relative noise out / z - 1 has mean {mean:.3g} and standard "
             f"deviation {std:.3g}; xi ~ N(0, sigma^2) gives mean 0 and standard deviation {sigma:g}.")
    kurtosis = float(((xi - mean) ** 4).mean() / std**4)
    if kurtosis < 2.5:
        fail(f"your xi does not look Gaussian (kurtosis {kurtosis:.2f}; a normal distribution has "
             f"3, a uniform one 1.8): draw it with torch.randn(...) * sigma.")


def _check_row_choice(out: torch.Tensor, z: torch.Tensor, fraction: float) -> None:
    """Whole rows chosen, each with probability ``fraction`` (within 5 binomial standard errors)."""
    diff = out[:, 1:] != z[:, 1:]
    some, every = diff.any(1), diff.all(1)
    if (some & ~every).any():
        fail(f"in {int((some & ~every).sum())} rows only some logits changed: choose whole rows "
             f"(one random number per row, compared with fraction), and give every logit of a "
             f"chosen row its own xi. Rows that were not chosen must be unchanged.")
    share = float(some.float().mean())
    tol = 5 * math.sqrt(fraction * (1 - fraction) / len(z))
    if abs(share - fraction) > tol:
        if abs(share - (1 - fraction)) <= tol:
            fail(f"at fraction={fraction:g} you perturbed {share:.0%} of the rows, about "
                 f"1 - fraction: a row is chosen when its uniform random number is < fraction.")
        if share > 0.99:
            fail(f"at fraction={fraction:g} all rows changed: only a share fraction of the rows is "
                 f"chosen; rows that were not chosen must be unchanged.")
        fail(f"at fraction={fraction:g} you perturbed {share:.1%} of the rows; each row must be "
             f"chosen with probability fraction, so about {fraction:.0%} of them.")


def _check_generator(run, sigma: float, fraction: float) -> None:
    """The generator makes the noise repeatable: the same seed, the same noise; another, other."""
    if not torch.equal(run(sigma, fraction, seed=7), run(sigma, fraction, seed=7)):
        fail("two calls with the same seeded generator gave different noise: pass "
             "generator=generator to torch.rand and torch.randn inside your function.")
    if torch.equal(run(sigma, fraction, seed=7), run(sigma, fraction, seed=8)):
        fail("two different generators gave the same noise: draw your random numbers from the "
             "generator passed in (and do not call torch.manual_seed inside the function).")


# ---- 2. one distillation training step -------------------------------------------------------

def _loss_value(out, name: str) -> float:
    """The loss a step returned, as a number: a float or a one-element tensor."""
    if out is None:
        fail(f"{name} returned nothing: return the loss (e.g. `return loss.item()`), so that you "
             f"can watch it fall.")
    try:
        value = float(out.detach() if isinstance(out, torch.Tensor) else out)
    except Exception:
        fail(f"{name} returned a {type(out).__name__}"
             + (f" of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else "")
             + "; return the loss as a number (`loss.item()`) or a 0-dimensional tensor.")
    finite(torch.tensor(value), name, "",
           f"Is the loss you return computed on model(x)? Look for {NAN_CAUSES} in your code.")
    return value


@graded
def check_training_step(fn, x: torch.Tensor | None = None, y: torch.Tensor | None = None,
                        teacher_logits: torch.Tensor | None = None, T: float = 2.0,
                        alpha: float = 0.8) -> None:
    """Check ``fn(model, optimizer, x, y, teacher_logits, T, alpha)``: one SGD step on
    ``kdlib.losses.distillation_loss`` (forward, loss, zero_grad, backward, step); it must return the
    loss. ``x, y, teacher_logits`` default to a random batch; pass a real one (e.g. MNIST images,
    labels and cached teacher logits) to check on it."""
    name = "distillation_step"
    # The exercise uses kdlib's distillation_loss; kdlib's other losses and its training loops
    # (train_epoch, fit) would do the student's work.
    student = Student(fn, name, forbid=KDLIB_LOSSES + KDLIB_TRAINING,
                      allow=(losses.distillation_loss,))
    g = torch.Generator().manual_seed(4)
    x, y, teacher_logits = _step_batch(x, y, teacher_logits, g)
    lr = 0.1
    model, ref_model, stale = _step_models(g)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    out = student(model, opt, x.clone(), y.clone(), teacher_logits.clone(), T, alpha,
                  protect=(None, None, "x", "y", "teacher_logits"))
    logits0, ref_value, grads = _reference_step(ref_model, lr, x, y, teacher_logits, T, alpha)
    _check_step_loss(_loss_value(out, name), ref_value, logits0, teacher_logits, y, T, alpha)
    _check_step_weights(model, before, grads, stale, ref_model, lr)
    ok(f"{name} is right: one step of forward, distillation_loss (T={T:g}, alpha={alpha:g}), "
       f"zero_grad, backward and step gives the same weights and loss as kdlib's "
       f"(batch of {len(y)}).")


def _step_batch(x, y, teacher_logits, g: torch.Generator):
    """The batch to check on: the one passed, or (none passed) a random one drawn from ``g``."""
    if x is None:
        x = torch.randn(32, 1, 28, 28, generator=g)
        y = torch.randint(0, 10, (32,), generator=g)
        teacher_logits = torch.randn(32, 10, generator=g) * 3
    if y is None or teacher_logits is None:
        raise ValueError("pass x, y and teacher_logits together (or none of them)")
    return x, y, teacher_logits


def _step_models(g: torch.Generator):
    """``(model, ref_model, stale)``: a StudentNet (torch seed 0) and a copy of it; the model holds
    the gradients ``stale`` (drawn from ``g``) left over from a "previous step"."""
    torch.manual_seed(0)
    model = models.StudentNet()
    ref_model = copy.deepcopy(model)
    # Gradients left over from a "previous step": a right step throws them away with zero_grad.
    stale = [torch.randn(p.shape, generator=g) for p in model.parameters()]
    for p, s in zip(model.parameters(), stale):
        p.grad = s.clone()
    return model, ref_model, stale


def _reference_step(ref_model, lr: float, x, y, teacher_logits, T: float, alpha: float):
    """kdlib's step on ``ref_model``: ``(logits before the step, loss, gradients)``."""
    ref_opt = torch.optim.SGD(ref_model.parameters(), lr=lr)
    logits0 = ref_model(x)
    ref_loss = losses.distillation_loss(logits0, teacher_logits, y, T, alpha)
    ref_value = ref_loss.item()
    ref_opt.zero_grad()
    ref_loss.backward()
    grads = [p.grad.detach().clone() for p in ref_model.parameters()]
    ref_opt.step()
    return logits0, ref_value, grads


def _check_step_loss(value: float, ref_value: float, logits0, teacher_logits, y, T: float,
                     alpha: float) -> None:
    """The loss returned is distillation_loss before the step; else name the loss it is."""
    if close(torch.tensor(value), torch.tensor(ref_value), rtol=1e-4):
        return
    z0 = logits0.detach()
    for msg, formula in distill_mistakes(*z0.shape) + [
            ("it is the cross-entropy with the labels only; use "
             "distillation_loss(model(x), teacher_logits, y, T, alpha).",
             lambda z, v, y, T, a: F.cross_entropy(z, y)),
            ("it is the soft-target loss only; use "
             "distillation_loss(model(x), teacher_logits, y, T, alpha).",
             lambda z, v, y, T, a: losses.soft_target_loss(z, v, T))]:
        if close(torch.tensor(value), formula(z0, teacher_logits, y, T, alpha)):
            fail(f"the loss your step returned is not distillation_loss: {msg}")
    fail(f"your step returned the loss {value:.6g}; before the step, "
         f"distillation_loss(model(x), teacher_logits, y, T={T:g}, alpha={alpha:g}) is "
         f"{ref_value:.6g}. Compute the loss on model(x) before updating the weights, "
         f"and return it.")


def _params_are(after, expected) -> bool:
    return all(close(a, e, rtol=1e-4, atol=1e-6) for a, e in zip(after, expected))


def _check_step_weights(model, before, grads, stale, ref_model, lr: float) -> None:
    """The weights after the step are those of kdlib's step; else name the step's mistake."""
    after = [p.detach() for p in model.parameters()]
    if _params_are(after, before):
        now = [p.grad for p in model.parameters()]
        if all(gr is not None for gr in now) and all(close(a, b, rtol=1e-3) for a, b in zip(now, grads)):
            fail("the weights did not change although the gradients were computed: call "
                 "optimizer.step() after loss.backward().")
        fail("your step did not change the weights. The order is: optimizer.zero_grad(), "
             "loss.backward(), optimizer.step(). Did you call zero_grad() after backward() "
             "(it throws the gradients away), or forget backward() or step()?")
    if _params_are(after, [b - lr * (gr + s) for b, gr, s in zip(before, grads, stale)]):
        fail("you did not call optimizer.zero_grad() before loss.backward(): backward() ADDS to the "
             "gradients already there, so the previous step's gradients leaked into this step.")
    if _params_are(after, [b - lr * s for b, s in zip(before, stale)]):
        fail("optimizer.step() ran before loss.backward(): it used the previous step's gradients. "
             "The order is zero_grad(), backward(), step().")
    if not _params_are(after, [p.detach() for p in ref_model.parameters()]):
        fail("after your step the weights differ from one optimizer step on distillation_loss "
             "(forward, loss, zero_grad, backward, step, once each).")
