"""Noisy teachers (Sau & Balasubramanian 2016, "Deep Model Compression: Distilling Knowledge
from Noisy Teachers", arXiv 1610.09650).

The student regresses to the teacher's logits (eq. 1); in every mini-batch each sample is chosen
with probability ``alpha`` and its teacher logits become z * (1 + xi), xi ~ N(0, sigma^2) per
logit (eq. 2); the student regresses to those perturbed logits (eq. 3). The teacher's logits are
computed once (``kdlib.train.predict_logits``); only the noise is drawn per batch.
"""
from __future__ import annotations

import torch

from .losses import logit_regression_loss, perturb_logits


def noisy_teacher_loss(sigma: float, alpha: float, generator: torch.Generator | None = None):
    """``loss_fn(student_logits, labels, teacher_logits)`` for :func:`kdlib.train.fit`: eq. 3,
    1/2 ||z_s - z_t (1 + xi)||^2 averaged over the batch, with fresh noise on every call."""
    def loss_fn(z, y, v):
        return logit_regression_loss(z, perturb_logits(v, sigma, alpha, generator))
    return loss_fn


def expected_noisy_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                        sigma: float, alpha: float) -> torch.Tensor:
    """Closed form of the expected eq.-3 loss (section 2.2, the regulariser view):
    E = 1/2 ||s - z||^2 + alpha * sigma^2 / 2 * ||z||^2, averaged over the batch."""
    clean = logit_regression_loss(student_logits, teacher_logits)
    return clean + alpha * sigma ** 2 / 2 * teacher_logits.pow(2).sum(1).mean()
