"""The seed experiment's and the seed blog's distillation losses exactly as their code wrote them (notebook 03).

Both teachers keep dropout on (the seed left its teacher in ``train()`` mode; the blog's functional dropout ignores
``eval()``), so only their layers before the first dropout run once (:func:`split_at_dropout`, then
:func:`kdlib.train.predict_logits` on the trunk); the recipes draw the head's logits ``v`` anew per student and epoch
for the losses below, plain functions of ``(z, y, v)``."""
from __future__ import annotations

import warnings

import torch.nn.functional as F
from torch import nn

from .models import AlwaysDropout


def split_at_dropout(model: nn.Sequential) -> tuple[nn.Sequential, nn.Sequential]:
    """``(trunk, head)``: the layers before ``model``'s first dropout, and the rest (from that
    dropout on). ``head(trunk(x))`` is ``model(x)``, with the same random draws in train mode."""
    for i, m in enumerate(model):
        if isinstance(m, (nn.Dropout, AlwaysDropout)):
            return model[:i], model[i:]
    raise ValueError("model has no dropout layer: nothing random to split off")


def seed_loss(T: float = 2.0, alpha: float = 0.8):
    """The seed's hard+soft loss as written, ``loss_fn(z, y, v)`` =
    ``alpha * T^2 * KLDivLoss()(log_softmax(z/T), softmax(v/T)) + (1 - alpha) * CE(z, y)``, where
    ``KLDivLoss()``'s default reduction ``'mean'`` averages over the batch *and* the C classes (1/C of the KL).
    ``v``: the seed's teacher in train mode, dropout on, new draws on every batch."""
    kl_mean = nn.KLDivLoss()  # reduction='mean', as the seed wrote it

    def loss_fn(z, y, v):
        with warnings.catch_warnings():  # torch warns that 'mean' is not the KL: that is the point
            warnings.filterwarnings("ignore", message="reduction: 'mean' divides")
            soft = kl_mean(F.log_softmax(z / T, dim=1), F.softmax(v / T, dim=1)) * T * T
        return alpha * soft + (1 - alpha) * F.cross_entropy(z, y)
    return loss_fn


def blog_loss(T: float = 5.0, alpha: float = 0.7):
    """The seed blog's loss as written, ``loss_fn(z, y, v)`` =
    ``(1 - alpha) * CE(z, y) + alpha * KLDivLoss(reduction='batchmean')(softmax(z/T), softmax(v/T))``:
    *probabilities* q = softmax(z/T) where KLDivLoss expects log-probabilities, and no T^2.
    KLDivLoss(input=q, target=p) = 1/N sum_n sum_c p (log p - q), so its gradient is
    dL/dz_j = -(alpha / (N T)) q_j (p_j - sum_c p_c q_c): it raises the student's probability of the teacher's
    likely classes rather than matching the two distributions.
    ``v``: the blog's teacher, whose functional dropout is on in any mode."""
    kl = nn.KLDivLoss(reduction="batchmean")

    def loss_fn(z, y, v):
        return (1 - alpha) * F.cross_entropy(z, y) + alpha * kl(F.softmax(z / T, dim=1), F.softmax(v / T, dim=1))
    return loss_fn
