"""Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network", section 3 (MNIST): notebook 06.

A 784-1200-1200-10 teacher trained with dropout on jittered images; plain MLP students (no dropout, no jitter)
trained on the labels alone or on the teacher's soft targets at a temperature T plus the labels. The teacher's
logits are computed once (:func:`kdlib.train.predict_logits`) and travel with the images as an extra tensor.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import augment, checkpoint, config, losses, models, recipes, train
from .repro import seed_everything


# ---- The teacher (section 3, first paragraph) ------------------------------------------------
@dataclass(frozen=True)
class MLPTeacherSettings:
    """The 784-1200-1200-10 teacher (its settings name the checkpoint): dropout 0.5 after each hidden layer and 0.2
    on the inputs (Srivastava et al. 2014's MNIST nets, without their max-norm constraint), training images jittered
    by up to ``jitter`` pixels (section 3). CPU-sized: Adam (fused), cosine from ``lr`` to 0 over ``epochs`` epochs,
    on the 48,000-image split (the paper used all 60,000)."""
    model: str = "MLP(1200, 1200)"
    hidden: tuple = (1200, 1200)
    input_dropout: float = 0.2
    dropout: float = 0.5
    jitter: int = 2
    optimizer: str = "Adam (fused), cosine to 0"
    lr: float = 1e-3
    batch_size: int = 256
    epochs: int = 50
    data: str = "mnist-48k-seed42"
    subset: int | None = None
    seed: int = 1


def teacher_settings() -> MLPTeacherSettings:
    """The teacher's settings in the current mode (fast mode: 1 epoch on 2,000 images)."""
    return MLPTeacherSettings(epochs=config.pick(50, 1), subset=config.pick(None, 2000))


def _train_teacher(model: torch.nn.Module, s, desc: str | None, loss_fn=train.cross_entropy) -> dict:
    """Section 3's recipe with the settings ``s`` on ``loss_fn`` (:mod:`kdlib.when` passes smoothed labels)."""
    gen = seed_everything(s.seed)
    d = recipes.mnist_split(s.subset)
    opt = torch.optim.Adam(model.parameters(), lr=s.lr, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=s.epochs)
    shift = lambda xb, g: augment.jitter(xb, g, max_shift=s.jitter)  # noqa: E731
    hist = train.fit(model, sched, train.Batches(*d["train"], batch_size=s.batch_size, generator=gen, augment=shift),
                     d["val"], epochs=s.epochs, loss_fn=loss_fn, desc=desc)
    return {"history": hist, "test_errors": errors(model, *d["test"]), "test_images": len(d["test"][1])}


def hinton_teacher(progress: bool = True, settings: MLPTeacherSettings | None = None):
    """The frozen teacher (``settings`` default: :func:`teacher_settings`), loaded or trained now. Returns ``(model,
    info)``; info has ``history``, ``test_errors``, ``test_images``, ``path``, ``loaded`` and ``settings``."""
    s = settings or teacher_settings()
    build = lambda: models.MLP(s.hidden, input_dropout=s.input_dropout, dropout=s.dropout)  # noqa: E731
    return checkpoint.cached_model("hinton-teacher", s, build,
                                   lambda m: _train_teacher(m, s, "MLP teacher" if progress else None))


# ---- Transfer sets and students (section 3) --------------------------------------------------
LR = 1e-3       # students: Adam (fused), cosine-annealed from LR to 0 over the run's epochs
BATCH = 256     # students' batch size
ALPHA = 0.9     # weight of the soft term; the labels get 1 - ALPHA, "a considerably lower weight" (section 2)


def transfer_set(x: torch.Tensor, y: torch.Tensor, *extra: torch.Tensor, omit=(), keep=None) -> tuple:
    """The rows of ``(x, y, *extra)`` whose label is not in ``omit`` (section 3: "omitting all examples of the
    digit 3"), or, with ``keep``, only those whose label is in ``keep`` ("only the 7s and 8s").
    ``extra`` (e.g. cached teacher logits) is filtered with the same rows."""
    if keep is not None and len(omit):
        raise ValueError("give omit or keep, not both")
    if keep is not None:
        rows = torch.isin(y, torch.as_tensor(list(keep), dtype=y.dtype))
    else:
        rows = ~torch.isin(y, torch.as_tensor(list(omit), dtype=y.dtype))
    return tuple(t[rows] for t in (x, y, *extra))


def kd_loss(T: float, alpha: float = ALPHA):
    """``loss_fn(z, y, v) = alpha * T^2 * KL(softmax(v/T) || softmax(z/T)) + (1 - alpha) * CE(z, y)`` (section 2;
    :func:`kdlib.losses.distillation_loss`), ``v`` the teacher's cached logits."""
    return lambda z, y, v: losses.distillation_loss(z, v, y, T, alpha)


def train_mlp_student(hidden, loss_fn, train_data: tuple, seed: int, *, epochs: int, desc: str | None = None):
    """A 784-``hidden``-10 MLP without dropout trained ``epochs`` epochs on ``train_data`` = ``(x, y)`` or ``(x, y, v)``
    (``v``: cached teacher logits) with ``loss_fn`` (:func:`kd_loss` or :func:`kdlib.train.cross_entropy`). A ``seed``
    gives the same initial weights and batches whatever ``loss_fn``. Returns ``(model in eval mode, history)``."""
    if len(train_data) < 3 and loss_fn is not train.cross_entropy:
        raise ValueError(f"train_data has {len(train_data)} tensors; a loss other than "
                         "train.cross_entropy needs train_data = (x, y, teacher_logits)")
    gen = seed_everything(seed)
    model = models.MLP(tuple(hidden))
    opt = torch.optim.Adam(model.parameters(), lr=LR, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    hist = train.fit(model, sched, train.Batches(*train_data, batch_size=BATCH, generator=gen),
                     None, epochs=epochs, loss_fn=loss_fn, desc=desc)
    return model.eval(), hist


# ---- Scores ----------------------------------------------------------------------------------
def errors(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, classes=None) -> int:
    """How many images of ``(x, y)`` ``model`` gets wrong (the paper counts test errors out of
    10,000); with ``classes``, only among the images of those classes (e.g. the test 3s)."""
    wrong = train.predict_logits(model, x).argmax(1) != y
    if classes is not None:
        wrong &= torch.isin(y, torch.as_tensor(list(np.atleast_1d(classes)), dtype=y.dtype))
    return int(wrong.sum())


def choose_bias(model: torch.nn.Module, x_val: torch.Tensor, y_val: torch.Tensor, classes, deltas):
    """The bias shift of ``classes`` with the fewest validation errors (section 3: raise the unseen 3's bias, lower
    7's and 8's; the paper chose on the test set), from logits computed once (a bias shift is a logit shift).
    Returns ``(best delta, validation errors per delta)``; on a tie the first minimum wins."""
    logits = train.predict_logits(model, x_val)
    shift = torch.zeros(logits.shape[1])
    shift[torch.as_tensor(np.atleast_1d(classes))] = 1.0
    curve = [int(((logits + float(d) * shift).argmax(1) != y_val).sum()) for d in deltas]
    return float(deltas[int(np.argmin(curve))]), curve
