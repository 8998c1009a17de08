"""Distillation losses, each a few lines over ``log_softmax``.

Notation (Hinton, Vinyals & Dean 2015): z = student logits, v = teacher logits, both N x C;
T = temperature; q = softmax(z/T) the student's soft output; p = softmax(v/T) the soft targets.
``alpha`` weights the SOFT term, as in Hinton et al. and the seed experiment (torchdistill and the
Keras example weight the hard term). T must be at least ``T_MIN`` (smaller: z / T overflows).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import argcheck

T_MIN = 1e-4
T_MAX = 1e8  # soft_target_loss's largest T: the range its exactness is tested over


def _check_logits(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a float tensor of shape N x C, got {shape}")
    if x.shape[1] == 0:  # a softmax over no classes
        raise ValueError(f"{name} must have at least one class (C >= 1), got shape {tuple(x.shape)}")


def _check_pair(z: torch.Tensor, v: torch.Tensor, names=("student_logits", "teacher_logits")):
    _check_logits(names[0], z)
    _check_logits(names[1], v)
    if z.shape != v.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape N x C, "
                         f"got {tuple(z.shape)} and {tuple(v.shape)}")
    if z.shape[0] == 0:  # a mean over no rows is NaN
        raise ValueError(f"{names[0]} must have at least one row (N >= 1), got shape {tuple(z.shape)}")


def softmax_t(logits: torch.Tensor, T: float) -> torch.Tensor:
    """Softmax with temperature over the class dimension: q_i = exp(z_i/T) / sum_j exp(z_j/T)
    (Hinton et al. 2015, eq. 1). T -> 0 gives the arg-max one-hot, T -> inf gives 1/C."""
    T = argcheck.number("T", T, f"a finite number >= T_MIN = {T_MIN:g}", lambda t: T_MIN <= t < math.inf)
    if not isinstance(logits, torch.Tensor) or logits.ndim < 1 or not logits.is_floating_point():
        raise ValueError("logits must be a float tensor with the classes in the last dimension")
    return torch.softmax(logits / T, dim=-1)


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     T: float) -> torch.Tensor:
    """T^2 * KL(p || q), summed over classes and averaged over the batch ('batchmean').

    Its gradient is T (q - p) / N per logit: Hinton eq. 2, dC/dz_i = (q_i - p_i) / T, times T^2 so
    that the soft term keeps its size as T changes (section 2). A teacher logit of -inf adds 0.
    Computed in float64 as sum_i [p_i l_i - (p_i - q_i)], l_i = log p_i - log q_i, every term >= 0,
    so rounding cannot cancel it away at a large T (``kl_div`` in float32 gave 8947.7 for 5.514 at
    T = 1e6); the result comes in the logits' dtype. T at most ``T_MAX``.
    """
    T = argcheck.number("T", T, f"a number >= T_MIN = {T_MIN:g} and <= T_MAX = {T_MAX:g}",
              lambda t: T_MIN <= t <= T_MAX)
    _check_pair(student_logits, teacher_logits)
    log_q = F.log_softmax(student_logits.double() / T, dim=1)
    log_p = F.log_softmax(teacher_logits.double() / T, dim=1)
    # p_i = 0 gives log p_i = -inf and p_i * l_i = 0 * -inf = NaN;
    # the most negative float instead adds exactly 0, and its gradient is 0.
    log_p = log_p.clamp(min=torch.finfo(log_p.dtype).min)
    p, q, l = log_p.exp(), log_q.exp(), log_p - log_q
    # p - q = q expm1(l) = -p expm1(-l), each side of l = 0 in the form that cannot overflow
    p_minus_q = q * torch.expm1(l.clamp(max=0)) - p * torch.expm1(-l.clamp(min=0))
    kl = (p * l - p_minus_q).sum(1).mean()
    return (kl * T * T).to(student_logits.dtype)


def _check_labels(labels: torch.Tensor, n: int, c: int) -> None:
    if (not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int64, torch.int32)
            or labels.shape != (n,)):
        got = (labels.dtype, tuple(labels.shape)) if isinstance(labels, torch.Tensor) else labels
        raise ValueError(f"labels must be an integer tensor of shape ({n},), got {got}")
    lo, hi = torch.aminmax(labels) if n else (0, 0)
    if lo < 0 or hi >= c:
        raise ValueError(f"labels must lie in [0, {c}), got [{int(lo)}, {int(hi)}]")


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """alpha * soft_target_loss(z, v, T) + (1 - alpha) * cross_entropy(z, y).

    alpha weights the SOFT term (Hinton et al. 2015, section 2; seed experiment: T=2, alpha=0.8).
    alpha=1 is pure distillation, alpha=0 plain training on the labels.
    """
    alpha = argcheck.number("alpha", alpha, "a number in [0, 1]", lambda a: 0 <= a <= 1)
    _check_pair(student_logits, teacher_logits)
    _check_labels(labels, *student_logits.shape)
    soft = soft_target_loss(student_logits, teacher_logits, T)
    hard = F.cross_entropy(student_logits, labels.long())  # cross_entropy rejects int32
    return alpha * soft + (1 - alpha) * hard


def logit_regression_loss(student_logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 1/2 ||z - v||^2 (Sau & Balasubramanian 2016, eq. 1)."""
    _check_pair(student_logits, target_logits, ("student_logits", "target_logits"))
    return 0.5 * (student_logits - target_logits).pow(2).sum(dim=1).mean()


def check_noise(sigma: float, fraction: float) -> tuple[float, float]:
    """``(sigma, fraction)`` as floats, or a ValueError: sigma a finite number >= 0, fraction in [0, 1]."""
    return (argcheck.number("sigma", sigma, "a finite number >= 0", lambda s: 0 <= s < math.inf),
            argcheck.number("fraction", fraction, "a number in [0, 1]", lambda f: 0 <= f <= 1))


def perturb_logits(logits: torch.Tensor, sigma: float, fraction: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Noisy teacher (Sau & Balasubramanian 2016, eq. 2): each row is chosen with probability
    ``fraction``; a chosen row becomes z * (1 + xi) with xi ~ N(0, sigma^2) drawn per logit;
    the other rows are returned unchanged. Pass a seeded ``generator`` to repeat the noise.
    """
    _check_logits("logits", logits)
    sigma, fraction = check_noise(sigma, fraction)
    n, c = logits.shape
    chosen = torch.rand(n, generator=generator) < fraction
    xi = torch.randn(n, c, generator=generator, dtype=logits.dtype) * sigma
    chosen, xi = chosen.to(logits.device), xi.to(logits.device)
    return torch.where(chosen[:, None], logits * (1 + xi), logits)
