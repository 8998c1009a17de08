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
from .losses import logit_regression_loss, perturb_logits
from .repro import seed_everything


def noisy_teacher_loss(sigma: float, fraction: float, generator: torch.Generator | None = None):
    """``loss_fn(student_logits, labels, teacher_logits)`` for :func:`kdlib.train.fit`: eq. 3,
    1/2 ||z_s - z_t (1 + xi)||^2 averaged over the batch, with fresh noise on every call."""
    def loss_fn(z, y, v):
        return logit_regression_loss(z, perturb_logits(v, sigma, fraction, generator))
    return loss_fn


def expected_noisy_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                        sigma: float, fraction: float) -> torch.Tensor:
    """Closed form of the expected eq.-3 loss (section 2.2, the regulariser view):
    E = 1/2 ||s - z||^2 + fraction * sigma^2 / 2 * ||z||^2, averaged over the batch."""
    clean = logit_regression_loss(student_logits, teacher_logits)
    return clean + fraction * sigma ** 2 / 2 * teacher_logits.pow(2).sum(1).mean()


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
class TeacherSettings:
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
    teacher: TeacherSettings
    student: str
    student_kwargs: dict = field(default_factory=dict)
    student_epochs: int = 10
    student_subset: int | None = None
    student_lrs: tuple = (1e-3, 3e-3)  # Adam learning rates tried; each loss picks its own
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
        t_epochs, s_epochs, s_subset = (4, 10, 10000) if mnist else (5, 10, 10000)
    teacher = TeacherSettings(
        model=nets["teacher"][0], model_kwargs=nets["teacher"][1], epochs=config.pick(t_epochs, 1),
        lr=2e-3 if nets["teacher"][0] == "SmallVGG" else 1e-3, batch_size=64 if mnist else 128,
        flip=dataset == "cifar10", bf16=config.bf16())
    return Settings(dataset=dataset, size=size, n_val=N_VAL[dataset], subset=config.pick(None, 2000),
                    teacher=teacher, student=nets["student"][0], student_kwargs=nets["student"][1],
                    student_epochs=config.pick(s_epochs, 2), student_subset=config.pick(s_subset, None))


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
        model.cpu()
        return {"history": hist, "test_acc": train.evaluate(model, *dd["test"])[1]}

    model, info = checkpoint.cached_model(f"noisy-teacher-{s.dataset}", _teacher_key(s),
                                          lambda: build(t.model, t.model_kwargs), fit_it)
    return model.to(config.device()), info


def train_noisy_student(s: Settings, train_data: tuple, seed: int, sigma: float | None = None,
                        fraction: float = 1.0, dropout: float = 0.0, lr: float | None = None,
                        progress: bool = True):
    """Train ``s``'s student from scratch on :func:`kdlib.config.device` and return it in eval mode.

    ``train_data`` is ``(x, y, teacher_logits)``. ``sigma=None``: the student alone, cross-entropy
    on the labels. Otherwise logit regression to the teacher (eq. 1) with noise ``sigma`` on a
    ``fraction`` of each batch (eq. 3); ``sigma=0`` is the clean teacher. ``dropout`` puts noise
    in the student instead. Adam (``lr``, default the first of ``s.student_lrs``),
    cosine-annealed over ``s.student_epochs``, no early stop.
    """
    gen = seed_everything(seed)
    lr = lr or s.student_lrs[0]
    model = build(s.student, s.student_kwargs, dropout=dropout).to(config.device())
    if _is_conv(model):
        model.to(memory_format=torch.channels_last)
    loss_fn = train.cross_entropy if sigma is None else noisy_teacher_loss(sigma, fraction, gen)
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=s.student_epochs)
    what = ("alone" if sigma is None else f"sigma={sigma:g} fraction={fraction:g}") + f" lr={lr:g}"
    train.fit(model, sched, train.Batches(*train_data, batch_size=s.student_batch, generator=gen),
              epochs=s.student_epochs, loss_fn=loss_fn,
              desc=f"student {what} dropout={dropout:g} seed {seed}" if progress else None)
    return model.eval()


def experiment(s: Settings, sigmas, fractions, fixed_fraction: float, dropouts, seeds,
               d: dict | None = None, progress: bool = True, log=print) -> dict:
    """Notebook 05's protocol on one dataset; every choice is made on the validation split.

    With the first seed: the student alone and the clean teacher (sigma=0) at each learning rate of
    ``s.student_lrs`` (cross-entropy and logit regression each keep their best), the ``sigmas``
    grid at ``fixed_fraction``, the ``fractions`` grid at the best sigma, the ``dropouts`` grid
    (clean teacher).
    Then the four key students (alone, clean, best noisy teacher, best dropout) with the other
    ``seeds``. ``d``: the data of :func:`load_data`, if already loaded. Returns the teacher's
    scores, the choices, the test accuracies of the key students and one record per run.
    """
    start = time.perf_counter()
    d = d or load_data(s)
    teacher, tinfo = dataset_teacher(s, d, progress)
    x_tr, y_tr = d["train"]
    if s.student_subset:
        x_tr, y_tr = x_tr[: s.student_subset], y_tr[: s.student_subset]
    v_tr = train.predict_logits(teacher, x_tr)  # once: the teacher is frozen
    out = dict(dataset=s.dataset, size=s.size, n_train=len(y_tr), teacher_info=tinfo,
               teacher_val=train.evaluate(teacher, *d["val"])[1],
               teacher_test=train.evaluate(teacher, *d["test"])[1], runs=[])
    log(f"{s.dataset} teacher {s.teacher.model}: val {out['teacher_val']:.4f}, test "
        f"{out['teacher_test']:.4f} ({'loaded' if tinfo['loaded'] else 'trained'}); students learn "
        f"from {len(y_tr)} training images")

    lrs = {}  # per loss, chosen on validation below

    def run(stage, seed, sigma=None, fraction=1.0, dropout=0.0, lr=None):
        t = time.perf_counter()
        lr = lr or lrs["alone" if sigma is None else "teacher"]
        m = train_noisy_student(s, (x_tr, y_tr, v_tr), seed, sigma, fraction, dropout, lr, progress)
        r = dict(stage=stage, seed=seed, sigma=sigma, fraction=fraction, dropout=dropout, lr=lr,
                 val_acc=train.evaluate(m, *d["val"])[1], test_acc=train.evaluate(m, *d["test"])[1],
                 seconds=time.perf_counter() - t)
        out["runs"].append(r)
        log(f"  {stage:13s} seed {seed} sigma {sigma} fraction {fraction:g} dropout {dropout:g} "
            f"lr {lr:g}: val {r['val_acc']:.4f} test {r['test_acc']:.4f} ({r['seconds']:.0f} s)")
        return r

    s0 = seeds[0]

    def best_of(rs):  # on validation; the first of equals
        return max(rs, key=lambda r: r["val_acc"])

    key = {"alone": [best_of([run("alone", s0, lr=lr) for lr in s.student_lrs])],
           "clean teacher": [best_of([run("clean teacher", s0, 0.0, lr=lr) for lr in s.student_lrs])]}
    lrs.update(alone=key["alone"][0]["lr"], teacher=key["clean teacher"][0]["lr"])
    grid = [run("sigma grid", s0, sg, fixed_fraction) for sg in sigmas]
    best_sigma = best_of(grid)["sigma"]
    grid = [r for r in grid if r["sigma"] == best_sigma]
    grid += [run("fraction grid", s0, best_sigma, f) for f in fractions if f != fixed_fraction]
    best = best_of(grid)
    drop = [run("dropout grid", s0, 0.0, 1.0, p) for p in dropouts]
    best_drop = best_of(drop)
    key["noisy teacher"], key["dropout student"] = [best], [best_drop]
    for seed in seeds[1:]:
        key["alone"].append(run("alone", seed))
        key["clean teacher"].append(run("clean teacher", seed, 0.0))
        key["noisy teacher"].append(run("noisy teacher", seed, best["sigma"], best["fraction"]))
        key["dropout student"].append(run("dropout", seed, 0.0, 1.0, best_drop["dropout"]))
    out.update(best_sigma=best["sigma"], best_fraction=best["fraction"],
               best_dropout=best_drop["dropout"], lr_alone=lrs["alone"], lr_teacher=lrs["teacher"],
               key={k: [r["test_acc"] for r in v] for k, v in key.items()},
               seconds=time.perf_counter() - start)
    return out
