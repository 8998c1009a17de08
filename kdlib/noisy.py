"""Noisy teachers (Sau & Balasubramanian 2016, "Deep Model Compression: Distilling Knowledge from Noisy Teachers",
arXiv 1610.09650), the experiments of notebook 05: the student regresses to the teacher's logits (eq. 1); in each
batch a sample is picked with probability ``fraction`` (the paper's alpha; in kdlib alpha is the soft-term weight of
:func:`kdlib.losses.distillation_loss`) and its teacher logits become z (1 + xi), xi ~ N(0, sigma^2) per logit
(eq. 2); the loss is eq. 3."""
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
    """``loss_fn(z, y, v)`` for :func:`kdlib.train.fit`: eq. 3, mean 1/2 ||z - v (1 + xi)||^2, new noise per call."""
    sigma, fraction = check_noise(sigma, fraction)
    return lambda z, y, v: logit_regression_loss(z, perturb_logits(v, sigma, fraction, generator))


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
    """The final s of ``repeats`` one-parameter students (from 0; elementwise, each its own run) after ``steps``
    of ``optimizer`` ("sgd" or "adam") on 1/2 (s - z(1 + xi))^2 (eq. 3, one logit; :data:`SCALAR_DEMO`). It shows
    that under SGD E[s] does not depend on sigma and under Adam it does. Runs on the CPU."""
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
    """How far a real student moves on average over ``repeats`` noise draws, along the clean run's path: ``ratio``
    = <mean noisy displacement, clean one> / |clean one|^2 (1: as far as the clean run) and its ``se``; each
    repeat takes the same MEAN_UPDATE steps from the same weights. ``data = (x, v)``, ``optimizer = (name, lr)``,
    ``noise = (sigma, fraction)``."""
    (x, v), (name, lr), (sigma, fraction) = data, optimizer, noise
    steps, bs, seed = MEAN_UPDATE["steps"], MEAN_UPDATE["batch_size"], MEAN_UPDATE["seed"]
    dev = config.device()
    x, v = x.to(dev), v.to(dev)

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


# ---- Experiment settings: "paper" (the paper's networks, full data; for a GPU), "cpu" (a laptop) -----
SIZES = ("cpu", "paper")
N_VAL = {"mnist": 12000, "cifar10": 5000, "svhn": 6000}  # validation split of the training set, seed 42
_PAPER = {"mnist": dict(teacher=("LeNetMNIST", {}), student=("MLP800", {})),
          "cifar10": dict(teacher=("NiN", {}), student=("LeNetCIFAR", {})),
          "svhn": dict(teacher=("NiN", {}), student=("LeNetSVHN", {}))}
_CPU_RGB = dict(teacher=("SmallVGG", {"width": 24}), student=("LeNetCIFAR", {"channels": [16, 32], "hidden": 256}))
_CPU = {**_PAPER, "cifar10": _CPU_RGB, "svhn": _CPU_RGB}  # MNIST keeps the paper's networks
NOISE_SEED_BASE = 1_000_003  # noise generators are seeded apart from the batches' (seed_everything)
LOSSES = ("labels", "KD", "L2")


@dataclass(frozen=True)
class DatasetTeacherSettings:
    """A dataset's teacher: Adam (``lr``), cosine-annealed over ``epochs``, flips if ``flip``; names its checkpoint."""
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
    """Notebook 05's settings for ``dataset`` at ``size`` ("cpu" or "paper"); fast mode cuts data and epochs."""
    if dataset not in data.NAMES:
        raise ValueError(f"dataset must be one of {data.NAMES}, got {dataset!r}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    nets = (_PAPER if size == "paper" else _CPU)[dataset]
    mnist = dataset == "mnist"
    # (teacher epochs, student epochs, student images); on the CPU, MNIST's 8 student epochs fit 600 s
    runs = ({"paper": (20, 30, None), "cpu": (4, 8, 10000)} if mnist else
            {"paper": (60, 40, None), "cpu": (5, 10, 10000)})
    t_epochs, s_epochs, s_subset = runs[size]
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


def _teacher_key(s: Settings) -> dict:
    """What the teacher's checkpoint depends on: its training settings and its data."""
    return dict(dataset=s.dataset, n_val=s.n_val, split_seed=s.split_seed, subset=s.subset,
                **dataclasses.asdict(s.teacher))


def dataset_teacher(s: Settings, d: dict | None = None, progress: bool = True):
    """``(model, info)``: ``s``'s teacher, frozen, loaded from its checkpoint or trained now on ``s``'s data."""
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


def noise_generator(seed: int) -> torch.Generator:
    """Student ``seed``'s noise generator: its own, so the noise never moves the batch order (a pair shares both)."""
    return torch.Generator().manual_seed(NOISE_SEED_BASE + seed)


@dataclass(frozen=True)
class Student:
    """A student of notebook 05: ``loss`` "labels" (cross-entropy), "KD" (soft targets at ``T``, T^2 KL, no labels;
    its T -> inf limit is logit regression, notebook 04) or "L2" (eq. 1; noise ``sigma`` on a ``fraction`` of a
    batch, eq. 3; sigma 0: clean teacher), ``dropout``, Adam ``lr``."""
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
        if self.loss == "labels":
            what = "labels"
        elif self.loss == "KD":
            what = f"KD, T={self.T:g}"
        elif self.sigma and self.fraction:
            what = f"L2, sigma {self.sigma:g} (var {self.sigma ** 2:.3g}), fraction {self.fraction:g}"
        else:
            what = "L2, clean"
        if self.dropout:
            what += f", dropout {self.dropout:g}"
        return what


def train_student(s: Settings, loss_fn, train_data: tuple, seed: int, lr: float, dropout: float = 0.0):
    """``s``'s student, in eval mode, trained from scratch with ``loss_fn(z, y, v)`` on ``train_data = (x, y, v)``:
    Adam (``lr``), cosine-annealed, no early stop; ``seed`` fixes the initial weights and batches whatever the loss."""
    gen = seed_everything(seed)
    model = build(s.student, s.student_kwargs, dropout=dropout).to(config.device())
    if any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=s.student_epochs)
    train.fit(model, sched, train.Batches(*train_data, batch_size=s.student_batch, generator=gen),
              epochs=s.student_epochs, loss_fn=loss_fn, desc=None)  # no bar: score prints one line
    return model.eval()


def student_data(s: Settings, d: dict, teacher: torch.nn.Module) -> dict:
    """``d`` with ``train = (x, y, v)``: the first ``s.student_subset`` images, labels, the teacher's logits."""
    x, y = d["train"]
    if s.student_subset:
        x, y = x[: s.student_subset], y[: s.student_subset]
    return {"train": (x, y, train.predict_logits(teacher, x)), "val": d["val"], "test": d["test"]}


def score(s: Settings, data: dict, student: Student, seed: int, split: str) -> dict:
    """Train ``student`` with ``seed`` on ``data["train"]`` and score it on ``data[split]`` ("val" or
    "test"); prints one line. Returns ``{"student", "seed", "split", "acc", "seconds"}``."""
    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    t = time.perf_counter()
    model = train_student(s, student.loss_fn(seed), data["train"], seed, student.lr, student.dropout)
    r = dict(student=student, seed=seed, split=split, acc=train.evaluate(model, *data[split])[1],
             seconds=time.perf_counter() - t)
    print(f"  {s.dataset} seed {seed}, {student}, lr {student.lr:g}: {split} {r['acc']:.4f} ({r['seconds']:.0f} s)")
    return r


# ---- Grid search that does not stop at an edge, and notebook 05's grids -----------------------
LR_LADDER = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)  # Adam learning rates, a factor of about 3 apart
PAPER_FRACTION = {"mnist": 0.15, "svhn": 0.15, "cifar10": 0.5}  # the paper's alpha, section 3
# Under noise Adam's mean step is a fraction of the clean one (notebook 05, section 2, measured on the MNIST student
# only), so the noisy and dropout grids also try this multiple of the clean teacher's lr, at the grid's largest value
# (3x, the ladder's next step, was far worse on both datasets).
NOISY_LR_FACTOR = 1.5
KD_T_TOP = 64.0  # the KD grid's upper end: at large T soft targets approach logit regression (notebook 04)


def lr_below(lr: float) -> float | None:
    """The next smaller learning rate of :data:`LR_LADDER` (None at its end)."""
    return next((x for x in reversed(LR_LADDER) if x < lr * 0.99), None)


def lr_above(lr: float) -> float | None:
    """The next larger learning rate of :data:`LR_LADDER` (None at its end)."""
    return next((x for x in LR_LADDER if x > lr * 1.01), None)


def search(run, values, below=None, above=None, known: dict | None = None, max_extra: int = 3) -> dict:
    """Grid search on validation: ``run(value)`` (a record with ``acc``) for each of ``values`` not in ``known`` (value
    -> record), then, while the best (the smallest of equals) is the smallest (largest) value, ``below(value)``
    (``above(value)``), at most ``max_extra`` times. Returns ``best``, ``records`` and ``edge``: None when the best
    is inside the grid, else "lower" or "upper" (the grid could not, or was not allowed to, go further)."""
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


@dataclass(frozen=True)
class Grids:
    """Notebook 05's grids (value 0: the clean teacher): ``sigmas`` at the paper's fraction, ``fractions`` at the best
    sigma, ``dropouts``, KD's ``temperatures``. The sigma and dropout grids run at one lr: ``lr_factors`` times the
    clean teacher's, chosen at the grid's largest value. Small on purpose: CPU budget, five report seeds."""
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
    """The record of a :func:`search`'s best value; with ``above_zero``, of the best above 0 (the clean teacher)."""
    recs = found["records"]
    if not above_zero:
        return recs[found["best"]]
    return recs[max(sorted(v for v in recs if v > 0), key=lambda v: recs[v]["acc"])]


def better(*records: dict) -> dict:
    """The record with the highest ``acc`` (the first of equals)."""
    return max(records, key=lambda r: r["acc"])
