"""Noisy teachers (Sau & Balasubramanian 2016, "Deep Model Compression: Distilling Knowledge
from Noisy Teachers", arXiv 1610.09650), the experiments of notebook 05.

The student regresses to the teacher's logits (eq. 1); in every mini-batch each sample is chosen
with probability ``fraction`` (the paper calls it alpha; in kdlib alpha is the soft-term weight of
:func:`kdlib.losses.distillation_loss`) and its teacher logits become z * (1 + xi),
xi ~ N(0, sigma^2) per logit (eq. 2); the student regresses to those perturbed logits (eq. 3).
The teacher's logits are computed once (``kdlib.train.predict_logits``); only the noise is drawn
per batch.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import torch

from . import checkpoint, config, data, models, train
from .augment import random_flip
from .losses import check_noise, logit_regression_loss, perturb_logits, soft_target_loss
from .repro import seed_everything


def noisy_teacher_loss(sigma: float, fraction: float, generator: torch.Generator | None = None):
    """``loss_fn(student_logits, labels, teacher_logits)`` for :func:`kdlib.train.fit`: eq. 3,
    1/2 ||z_s - z_t (1 + xi)||^2 averaged over the batch, with fresh noise on every call."""
    sigma, fraction = check_noise(sigma, fraction)

    def loss_fn(z, y, v):
        return logit_regression_loss(z, perturb_logits(v, sigma, fraction, generator))
    return loss_fn


def expected_noisy_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                        sigma: float, fraction: float) -> torch.Tensor:
    """Closed form of the expected eq.-3 loss (section 2.2, the regulariser view):
    E = 1/2 ||s - z||^2 + fraction * sigma^2 / 2 * ||z||^2, averaged over the batch."""
    sigma, fraction = check_noise(sigma, fraction)
    clean = logit_regression_loss(student_logits, teacher_logits)
    return clean + fraction * sigma ** 2 / 2 * teacher_logits.pow(2).sum(1).mean()


# ---- The expected update: plain SGD against Adam ------------------------------------------------

SCALAR_DEMO = dict(z=5.0, lr=0.01, steps=300)  # the one-parameter student of notebook 05, section 2
MEAN_UPDATE = dict(steps=10, batch_size=128, seed=0)  # the real student's short runs (mean_update)


def _optimizer(name: str, params, lr: float):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"optimizer must be 'sgd' or 'adam', got {name!r}")


def scalar_demo(optimizer: str, sigma: float, fraction: float, repeats: int = 4000, steps: int | None = None):
    """``repeats`` independent one-parameter students s (all from 0) regressing to a noisy teacher
    logit z(1 + xi) (eq. 3 with one logit): ``steps`` steps of ``optimizer`` ("sgd" or "adam") on
    1/2 (s - z(1 + xi))^2, fresh noise on each (z, lr and the default steps: :data:`SCALAR_DEMO`).
    Returns the final s of every repeat. A toy of a few thousand scalars: it runs on the CPU.

    One tensor holds all repeats: both optimizers act elementwise, so summing the repeats' losses
    trains each repeat as its own run. Under SGD E[s] does not depend on sigma (the step is linear in
    the target); under Adam it does (the step is divided by a running RMS that the noise inflates).
    """
    gen = torch.Generator().manual_seed(0)
    s = torch.zeros(repeats, 1, dtype=torch.float64, requires_grad=True)
    opt = _optimizer(optimizer, [s], SCALAR_DEMO["lr"])
    target = torch.full((repeats, 1), SCALAR_DEMO["z"], dtype=torch.float64)
    for _ in range(steps or SCALAR_DEMO["steps"]):
        loss = 0.5 * (s - perturb_logits(target, sigma, fraction, gen)).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return s.detach().squeeze(1)


def mean_update(make_model, data: tuple, optimizer: tuple, noise: tuple, repeats: int = 8) -> dict:
    """How far a real student moves, on average over noise draws, along the clean teacher's path.

    ``data = (x, v)``: images and teacher logits; ``optimizer = (name, lr)``; ``noise = (sigma,
    fraction)``. Each repeat starts from the same weights (``make_model()`` after seeding) and takes
    the same few steps on the same batches (:data:`MEAN_UPDATE`) with fresh noise. ``ratio`` is
    <mean displacement, clean displacement> / |clean displacement|^2: 1 means the average noisy
    run goes as far as the clean run; ``se`` is its standard error over the repeats.
    """
    (x, v), (name, lr), (sigma, fraction) = data, optimizer, noise
    steps, bs, seed = MEAN_UPDATE["steps"], MEAN_UPDATE["batch_size"], MEAN_UPDATE["seed"]
    dev = config.device()
    x, v = x.to(dev), v.to(dev)  # once, not per step

    def displacement(noise_seed, sig):
        torch.manual_seed(seed)
        model = make_model().to(dev)
        start = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
        opt = _optimizer(name, model.parameters(), lr)
        loss_fn = noisy_teacher_loss(sig, fraction, torch.Generator().manual_seed(noise_seed))
        for k in range(steps):
            i = slice((k * bs) % len(x), (k * bs) % len(x) + bs)
            loss = loss_fn(model(x[i]), None, v[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        return torch.nn.utils.parameters_to_vector(model.parameters()).detach() - start

    clean = displacement(0, 0.0)
    proj = torch.stack([displacement(1000 + r, sigma) @ clean for r in range(repeats)]) / clean.dot(clean)
    return {"ratio": float(proj.mean()), "se": float(proj.std() / repeats ** 0.5) if repeats > 1 else 0.0}


# ---- Experiment settings -------------------------------------------------------------------
# "paper": the paper's architectures on the full training sets (for a GPU);
# "cpu": sized for a 2-core laptop (smaller CIFAR-10 networks, fewer epochs), stated in notebook 05.

SIZES = ("cpu", "paper")
N_VAL = {"mnist": 12000, "cifar10": 5000, "svhn": 6000}  # validation split of the training set, seed 42

_PAPER = {
    "mnist": dict(teacher=("LeNetMNIST", {}), student=("MLP800", {})),
    "cifar10": dict(teacher=("NiN", {}), student=("LeNetCIFAR", {})),
    "svhn": dict(teacher=("NiN", {}), student=("LeNetSVHN", {})),
}
_CPU_RGB = dict(teacher=("SmallVGG", {"width": 24}),
               student=("LeNetCIFAR", {"channels": [16, 32], "hidden": 256}))
_CPU = {**_PAPER, "cifar10": _CPU_RGB, "svhn": _CPU_RGB}  # MNIST keeps the paper's networks


@dataclass(frozen=True)
class DatasetTeacherSettings:
    """How a dataset's teacher is trained: Adam (``lr``), cosine-annealed over ``epochs``, batch
    ``batch_size``, random flips when ``flip``; these settings (with the data's) name its checkpoint."""
    model: str
    model_kwargs: dict
    epochs: int
    lr: float
    batch_size: int
    seed: int = 1
    flip: bool = False
    bf16: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything that defines notebook 05's runs on one dataset (see :func:`settings`)."""
    dataset: str
    size: str
    n_val: int
    subset: int | None  # fast mode: the first 2,000 images of each split
    teacher: DatasetTeacherSettings
    student: str
    student_kwargs: dict = field(default_factory=dict)
    student_epochs: int = 10
    student_subset: int | None = None  # the first images of the training split the students learn from
    student_lrs: tuple = (1e-3, 3e-3)  # Adam learning rates tried first; each loss picks its own
    student_batch: int = 128
    split_seed: int = 42


def settings(dataset: str, size: str = "cpu") -> Settings:
    """Notebook 05's settings for ``dataset`` at ``size`` ("cpu" or "paper").

    Fast mode (``KDLIB_FAST=1``) cuts the data and the epochs but keeps the networks.
    """
    if dataset not in data.NAMES:
        raise ValueError(f"dataset must be one of {data.NAMES}, got {dataset!r}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    nets = (_PAPER if size == "paper" else _CPU)[dataset]
    mnist = dataset == "mnist"
    if size == "paper":
        t_epochs, s_epochs, s_subset = (20, 30, None) if mnist else (60, 40, None)
    else:
        t_epochs, s_epochs, s_subset = (4, 8, 10000) if mnist else (5, 10, 10000)  # MNIST: 8 fits 600 s
    teacher = DatasetTeacherSettings(
        model=nets["teacher"][0], model_kwargs=nets["teacher"][1], epochs=config.pick(t_epochs, 1),
        lr=2e-3 if nets["teacher"][0] == "SmallVGG" else 1e-3, batch_size=64 if mnist else 128,
        flip=dataset == "cifar10", bf16=config.bf16())
    return Settings(dataset=dataset, size=size, n_val=N_VAL[dataset], subset=config.pick(None, 2000),
                    teacher=teacher, student=nets["student"][0], student_kwargs=nets["student"][1],
                    student_epochs=config.pick(s_epochs, 2), student_subset=config.pick(s_subset, 1000),
                    student_lrs=config.pick((1e-3, 3e-3), (1e-3,)))


def build(name: str, kwargs: dict, **extra) -> torch.nn.Module:
    """A model of :mod:`kdlib.models` by name (``extra``: e.g. ``dropout`` for a student)."""
    return getattr(models, name)(**{**kwargs, **extra})


def load_data(s: Settings) -> dict:
    """Normalised ``train``/``val``/``test`` tensors for ``s.dataset`` (see :func:`settings`)."""
    return data.load_split(s.dataset, n_val=s.n_val, seed=s.split_seed, subset=s.subset)


def _is_conv(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def _teacher_key(s: Settings) -> dict:
    """What the teacher's checkpoint depends on: its training settings and its data."""
    return dict(dataset=s.dataset, n_val=s.n_val, split_seed=s.split_seed, subset=s.subset,
                **dataclasses.asdict(s.teacher))


def dataset_teacher(s: Settings, d: dict | None = None, progress: bool = True):
    """The teacher of settings ``s``, frozen, loaded from its checkpoint or trained now (on ``s``'s
    training split; Adam, cosine-annealed learning rate). Returns ``(model, info)``."""
    t = s.teacher

    def fit_it(model):
        dd = d or load_data(s)
        gen = seed_everything(t.seed)
        model.to(config.device(), memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), lr=t.lr, fused=True)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t.epochs)
        batches = train.Batches(*dd["train"], batch_size=t.batch_size, generator=gen,
                                augment=random_flip if t.flip else None)
        hist = train.fit(model, sched, batches, dd["val"], epochs=t.epochs,
                         desc=f"{s.dataset} teacher" if progress else None)
        return {"history": hist, "test_acc": train.evaluate(model, *dd["test"])[1]}

    model, info = checkpoint.cached_model(f"noisy-teacher-{s.dataset}", _teacher_key(s),
                                          lambda: build(t.model, t.model_kwargs), fit_it)
    return model.to(config.device()), info


NOISE_SEED_BASE = 1_000_003  # noise generators are seeded apart from the batches' (seed_everything)


def noise_generator(seed: int) -> torch.Generator:
    """The generator of student ``seed``'s noisy teacher: its own, so the noise draws never move the
    batch order, which ``seed_everything(seed)`` fixes for every loss (a pair shares weights and batches)."""
    return torch.Generator().manual_seed(NOISE_SEED_BASE + seed)


LOSSES = ("labels", "KD", "L2")


@dataclass(frozen=True)
class Student:
    """One student of notebook 05: ``loss`` "labels" (cross-entropy: the student alone), "KD"
    (Hinton's soft targets at ``T``, T^2 KL, no labels: the loss whose T -> infinity limit is
    logit regression, notebook 04) or "L2" (logit regression to the teacher, eq. 1, with noise
    ``sigma`` on a ``fraction`` of each batch, eq. 3; sigma 0: the clean teacher); ``dropout``
    after each hidden layer of the student; Adam at ``lr``."""
    loss: str
    lr: float
    T: float | None = None
    sigma: float = 0.0
    fraction: float = 0.0
    dropout: float = 0.0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if (self.loss == "KD") != (self.T is not None) or (self.T is not None and not self.T > 0):
            raise ValueError(f"T must be a number > 0 for loss 'KD' and None otherwise, got {self.T!r}")
        check_noise(self.sigma, self.fraction)

    def loss_fn(self, seed: int):
        """``loss_fn(z, y, v)`` for :func:`kdlib.train.fit`; the noise from :func:`noise_generator`."""
        if self.loss == "labels":
            return train.cross_entropy
        if self.loss == "KD":
            return lambda z, y, v: soft_target_loss(z, v, self.T)
        return noisy_teacher_loss(self.sigma, self.fraction, noise_generator(seed))

    def __str__(self):
        what = "labels" if self.loss == "labels" else f"KD, T={self.T:g}" if self.loss == "KD" else "L2, clean"
        if self.loss == "L2" and self.sigma and self.fraction:
            what = f"L2, sigma {self.sigma:g} (var {self.sigma ** 2:.3g}), fraction {self.fraction:g}"
        return what + (f", dropout {self.dropout:g}" if self.dropout else "")


def train_student(s: Settings, loss_fn, train_data: tuple, seed: int, lr: float, dropout: float = 0.0):
    """``s``'s student, trained from scratch with ``loss_fn(z, y, v)`` on ``train_data = (x, y,
    teacher_logits)``: Adam (``lr``), cosine-annealed over ``s.student_epochs``, batch
    ``s.student_batch``, no early stop; ``dropout`` in the student. The same ``seed`` gives the same
    initial weights and batches whatever the loss. Returns the model in eval mode."""
    gen = seed_everything(seed)
    model = build(s.student, s.student_kwargs, dropout=dropout).to(config.device())
    if _is_conv(model):
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=s.student_epochs)
    train.fit(model, sched, train.Batches(*train_data, batch_size=s.student_batch, generator=gen),
              epochs=s.student_epochs, loss_fn=loss_fn, desc=None)  # no bar: score prints one line
    return model.eval()


def student_data(s: Settings, d: dict, teacher: torch.nn.Module) -> dict:
    """``d`` with its training split cut to the first ``s.student_subset`` images and joined by the
    frozen teacher's logits, computed once: ``train = (x, y, v)``, ``val`` and ``test`` as in ``d``."""
    x, y = d["train"]
    if s.student_subset:
        x, y = x[: s.student_subset], y[: s.student_subset]
    return {"train": (x, y, train.predict_logits(teacher, x)), "val": d["val"], "test": d["test"]}


def score(s: Settings, data: dict, student: Student, seed: int, split: str) -> dict:
    """Train ``student`` with ``seed`` on ``data["train"]`` (:func:`student_data`) and score it on
    ``data[split]`` ("val" while tuning, "test" to report); prints one line. Returns ``{"student",
    "seed", "split", "acc", "seconds"}``."""
    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    t = time.perf_counter()
    model = train_student(s, student.loss_fn(seed), data["train"], seed, student.lr, student.dropout)
    r = dict(student=student, seed=seed, split=split, acc=train.evaluate(model, *data[split])[1],
             seconds=time.perf_counter() - t)
    print(f"  {s.dataset} seed {seed}, {student}, lr {student.lr:g}: {split} {r['acc']:.4f} ({r['seconds']:.0f} s)")
    return r


# ---- Grid search that does not stop at an edge ------------------------------------------------

LR_LADDER = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)  # Adam learning rates, a factor of about 3 apart


def lr_below(lr: float) -> float | None:
    """The next smaller learning rate of :data:`LR_LADDER` (None at its end)."""
    smaller = [x for x in LR_LADDER if x < lr * 0.99]
    return smaller[-1] if smaller else None


def lr_above(lr: float) -> float | None:
    """The next larger learning rate of :data:`LR_LADDER` (None at its end)."""
    larger = [x for x in LR_LADDER if x > lr * 1.01]
    return larger[0] if larger else None


def search(run, values, below=None, above=None, known: dict | None = None, max_extra: int = 3) -> dict:
    """Grid search on validation that extends its grid until the best value is inside it.

    ``run(value)`` trains one student and returns its record (with ``acc``, on validation); every value of
    ``values`` is run; ``known`` maps values already run (e.g. sigma = 0, the clean teacher) to their
    records. While the best value (highest ``acc``, the smallest of equals) is the smallest
    (largest) value tried and ``below(value)`` (``above(value)``) gives a further one, that value is
    run too, at most ``max_extra`` times. Returns ``best`` (the value), ``records`` (value -> record)
    and ``edge``: None when the best is inside the grid, else "lower" or "upper" (the grid could
    not, or was not allowed to, go further).
    """
    if max_extra < 0:
        raise ValueError(f"max_extra must be >= 0, got {max_extra}")
    recs = dict(known or {})
    for v in values:
        if v not in recs:
            recs[v] = run(v)

    def best_value():
        return max(sorted(recs), key=lambda v: recs[v]["acc"])

    for _ in range(max_extra):
        lo, hi, best = min(recs), max(recs), best_value()
        if best == lo and below is not None:
            nxt = below(lo)
        elif best == hi and above is not None:
            nxt = above(hi)
        else:
            nxt = None
        if nxt is None or nxt in recs:
            break
        recs[nxt] = run(nxt)
    best = best_value()
    edge = None if len(recs) < 2 or min(recs) < best < max(recs) else ("lower" if best == min(recs) else "upper")
    return dict(best=best, records=dict(sorted(recs.items())), edge=edge)


# ---- Notebook 05's grids -----------------------------------------------------------------------

PAPER_FRACTION = {"mnist": 0.15, "svhn": 0.15, "cifar10": 0.5}  # the paper's alpha, section 3
# Adam's average step under noise is a fraction of the clean one (notebook 05, section 2, measures it on
# the MNIST student at fractions 1 and 0.15, not on CIFAR-10's): the noisy teachers (and the dropout
# students) also try this multiple of the clean teacher's learning rate, at the largest value of their
# grid (the ladder's next step, 3x, was far worse than the chosen rate for the clean teacher on both
# datasets).
NOISY_LR_FACTOR = 1.5
KD_T_TOP = 64.0  # the KD grid's upper end: at large T soft targets approach logit regression (notebook 04)


@dataclass(frozen=True)
class Grids:
    """The grids notebook 05 searches on validation with the tuning seed (see :func:`search`):
    ``sigmas`` at the paper's fraction, ``fractions`` at the best sigma, ``dropouts`` in the student
    (clean teacher), ``temperatures`` for Hinton's soft targets (extended up to :data:`KD_T_TOP`);
    the sigma and dropout grids run at one learning rate, chosen at their largest value from
    ``lr_factors`` times the clean teacher's.
    Small on purpose: notebook 05 must fit its CPU budget with five report seeds. sigma = 0,
    fraction = 0 and dropout = 0 are the clean teacher."""
    sigmas: tuple = (0.1, 0.3, 1.0)
    fractions: tuple = (0.15, 0.5, 1.0)
    dropouts: tuple = (0.1, 0.3)
    temperatures: tuple = (4.0, 8.0)  # extended down to 1 or up to KD_T_TOP = 64 within max_extra steps
    lr_factors: tuple = (1.0, NOISY_LR_FACTOR)  # multiples of the clean teacher's lr, tried at a grid's top
    max_extra: int = 3


def grids() -> Grids:
    """Full grids, or one or two values each in fast mode (no extensions)."""
    if config.fast_mode():
        return Grids(sigmas=(0.25, 1.0), fractions=(1.0,), dropouts=(0.2,), temperatures=(4.0,), lr_factors=(1.0,),
                     max_extra=0)
    return Grids()


def halve(v: float) -> float | None:
    """The grid step below ``v`` for sigma and dropout: v / 2, then 0 (the clean teacher)."""
    return v / 2 if v > 0.05 else 0.0


def T_below(T: float) -> float | None:
    """The KD grid's step below ``T``: T / 2 down to 1 (the plain softmax)."""
    return T / 2 if T > 1 else None


def T_above(T: float) -> float | None:
    """The KD grid's step above ``T``: 2 T up to :data:`KD_T_TOP`."""
    return 2 * T if T < KD_T_TOP else None


def best_record(found: dict, above_zero: bool = False) -> dict:
    """The record of a :func:`search`'s best value; with ``above_zero``, the best value other than 0
    (the clean teacher): the best noisy setting, even where the clean teacher beat every one."""
    recs = found["records"]
    if not above_zero:
        return recs[found["best"]]
    return recs[max(sorted(v for v in recs if v > 0), key=lambda v: recs[v]["acc"])]


def better(*records: dict) -> dict:
    """The record with the highest ``acc`` (the first of equals)."""
    return max(records, key=lambda r: r["acc"])
