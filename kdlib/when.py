"""When does distillation help? Notebook 07's experiments, built on :mod:`kdlib.hinton`: stratified data
fractions (Hinton, Vinyals & Dean 2015, section 6), a quick teacher with or without label smoothing
(Müller, Kornblith & Hinton 2019), T chosen on validation, fidelity (Stanton et al. 2021: top-1 agreement
with the teacher and KL(teacher || student) at T = 1) and the teacher's ranked soft targets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import argcheck, checkpoint, config, hinton, losses, models, train

LABEL_SMOOTHING = 0.1  # the quick teacher's smoothing in notebook 07 (Szegedy et al. 2016's value)


# ---- Data fractions (Hinton et al. 2015, section 6) -----------------------------------------

def fraction_indices(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices of a stratified random ``fraction`` (in (0, 1]) of the rows of ``labels``: per class
    c (in increasing order), the first max(1, floor(fraction * n_c + 1/2)) rows of a random order drawn
    from ``seed``. With one seed, a smaller fraction's rows are a subset of a larger one's."""
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.is_floating_point() \
            or len(labels) == 0:
        got = (tuple(labels.shape), labels.dtype) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a non-empty 1-D integer tensor, got {got}")
    argcheck.number("fraction", fraction, "a number in (0, 1]", lambda f: 0 < f <= 1)  # checked, then used as given
    seed = argcheck.integer("seed", seed, "an integer in [0, 2**63)", lambda n: 0 <= n < 2**63)
    gen = torch.Generator().manual_seed(seed)  # its own generator: no global state changes
    keep = []
    for c in torch.unique(labels):
        rows = (labels == c).nonzero().flatten()
        rows = rows[torch.randperm(len(rows), generator=gen)]
        keep.append(rows[: max(1, math.floor(fraction * len(rows) + 0.5))])
    return torch.cat(keep).sort().values


def matched_epochs(n_full: int, n_subset: int, epochs: int, batch_size: int = hinton.BATCH) -> int:
    """Epochs on ``n_subset`` images with about as many weight updates as ``epochs`` epochs on ``n_full``:
    round(epochs * ceil(n_full / b) / ceil(n_subset / b)), at least 1, b = ``batch_size``; so a student on a
    share of the data differs from one on all of it in its data only."""
    n_full = argcheck.integer("n_full", n_full, "an integer >= 1", lambda n: n >= 1)
    n_subset = argcheck.integer("n_subset", n_subset, "an integer >= 1", lambda n: n >= 1)
    epochs = argcheck.integer("epochs", epochs, "an integer >= 1", lambda n: n >= 1)
    batch_size = argcheck.integer("batch_size", batch_size, "an integer >= 1", lambda n: n >= 1)
    steps = epochs * -(-n_full // batch_size)
    return max(1, round(steps / -(-n_subset // batch_size)))


# ---- A quick teacher, with or without label smoothing (Müller et al. 2019) -------------------

@dataclass(frozen=True)
class QuickTeacherSettings(hinton.MLPTeacherSettings):
    """Notebook 06's teacher recipe (:class:`kdlib.hinton.MLPTeacherSettings`) for 6 epochs (fast mode: 1 epoch on
    2,000 images, see :func:`quick_teacher_settings`), on labels smoothed to (1 - eps) one-hot + eps / K, eps =
    ``label_smoothing`` (Szegedy et al. 2016, section 7; Müller et al. 2019, section 2). These settings name the
    checkpoint; two teachers that differ in ``label_smoothing`` only are the experiment."""
    label_smoothing: float = 0.0
    epochs: int = 6


def quick_teacher_settings(label_smoothing: float = 0.0) -> QuickTeacherSettings:
    """The quick teacher's settings in the current mode (fast mode: 1 epoch on 2,000 images);
    ``label_smoothing`` in [0, 1)."""
    eps = argcheck.number("label_smoothing", label_smoothing, "a number in [0, 1)", lambda v: 0 <= v < 1)
    return QuickTeacherSettings(label_smoothing=eps, epochs=config.pick(6, 1), subset=config.pick(None, 2000))


def smoothed_cross_entropy(eps: float):
    """``loss_fn(z, y, *extra)``: cross-entropy against (1 - eps) one-hot + eps/K, which is
    (1 - eps) * CE(z, y) + eps * mean_k(-log q_k), q = softmax(z)."""
    return lambda z, y, *extra: F.cross_entropy(z, y, label_smoothing=eps)


def quick_teacher(settings: QuickTeacherSettings | None = None, progress: bool = True):
    """The frozen quick teacher, from its checkpoint (``quick-teacher-<hash>.pt``) or trained now;
    ``settings`` defaults to :func:`quick_teacher_settings` (no smoothing). Returns ``(model, info)``; info
    has ``history``, ``test_errors``, ``test_images``, ``path``, ``loaded`` and ``settings``."""
    s = settings or quick_teacher_settings()
    desc = f"quick teacher (label smoothing {s.label_smoothing:g})" if progress else None

    def build():
        return models.MLP(s.hidden, input_dropout=s.input_dropout, dropout=s.dropout)

    def fit_it(model):  # notebook 06's teacher recipe on smoothed labels
        return hinton._train_teacher(model, s, desc, smoothed_cross_entropy(s.label_smoothing))

    return checkpoint.cached_model("quick-teacher", s, build, fit_it)


# ---- The temperature, chosen on validation ---------------------------------------------------

def choose_temperature(hidden, train_data: tuple, val_data: tuple, grid, seed: int, epochs: int):
    """For each T of ``grid``: a 784-``hidden``-10 student distilled with :func:`kdlib.hinton.kd_loss` (T)
    from ``train_data = (x, y, teacher_logits)`` with the tuning ``seed``, scored by its errors on
    ``val_data = (x, y)``. Returns ``(the T with the fewest errors (the first on a tie), [errors per T])``.
    The test set is never read."""
    if len(train_data) != 3:
        raise ValueError("train_data must be (x, y, teacher_logits)")
    if len(grid) == 0:
        raise ValueError("grid must hold at least one temperature")
    curve = []
    for T in grid:
        model, _ = hinton.train_mlp_student(hidden, hinton.kd_loss(T), train_data, seed, epochs=epochs)
        curve.append(hinton.errors(model, *val_data))
    return grid[curve.index(min(curve))], curve


# ---- Fidelity (Stanton et al. 2021) ----------------------------------------------------------

def _check_pair(student_logits, teacher_logits) -> None:
    """ValueError unless both are float tensors N x C (N >= 1) of the same shape."""
    for name, t in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not isinstance(t, torch.Tensor) or t.ndim != 2 or not t.is_floating_point() or len(t) == 0:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a float tensor of shape N x C with N >= 1, got {got}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits and teacher_logits must have the same shape, got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")


def agreement(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> float:
    """Top-1 agreement: the share of rows where the student's arg-max class is the teacher's
    (Stanton et al. 2021, section 3, "fidelity")."""
    _check_pair(student_logits, teacher_logits)
    return float((student_logits.argmax(1) == teacher_logits.argmax(1)).double().mean())


def teacher_student_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> float:
    """KL(p || q) = sum_k p_k (log p_k - log q_k), 'batchmean', p = softmax(v) the teacher's and
    q = softmax(z) the student's predictions at T = 1 (Stanton et al. 2021). In float64 from log_softmax, so a
    p_k that underflows adds 0, not NaN."""
    _check_pair(student_logits, teacher_logits)
    log_p = F.log_softmax(teacher_logits.double(), dim=1)
    log_q = F.log_softmax(student_logits.double(), dim=1)
    return float(F.kl_div(log_q, log_p, log_target=True, reduction="batchmean"))


def fidelity(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor) -> dict:
    """``model``'s ``errors`` on ``(x, y)``, its ``agreement`` with the teacher, ``kl`` = KL(teacher ||
    student) at T = 1, and ``copied``: on the rows the teacher gets wrong, the share where the student
    picks the teacher's wrong class. ``teacher_logits``: the teacher's logits for the same rows."""
    z = train.predict_logits(model, x)
    said, says = teacher_logits.argmax(1), z.argmax(1)
    wrong = said != y
    copied = (says[wrong] == said[wrong]).double().mean() if wrong.any() else torch.nan
    return {"errors": int((says != y).sum()), "agreement": agreement(z, teacher_logits),
            "kl": teacher_student_kl(teacher_logits, z), "copied": float(copied)}


# ---- The soft targets, ranked (Müller et al. 2019, section 4) --------------------------------

def ranked_soft_targets(logits: torch.Tensor, T: float) -> torch.Tensor:
    """Each row's soft targets softmax(v / T), sorted from the most to the least likely class: column 0 is the
    top class's mass, column 1 the second-most-likely class's."""
    return losses.softmax_t(logits, T).sort(dim=-1, descending=True).values


def second_class_mass(logits: torch.Tensor, T: float) -> torch.Tensor:
    """Per row, the soft-target mass at ``T`` on the second-most-likely class (the similarity that label
    smoothing pushes towards eps / K for every wrong class alike)."""
    return ranked_soft_targets(logits, T)[..., 1]
