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

def _optimizer(name: str, params, lr: float):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"optimizer must be 'sgd' or 'adam', got {name!r}")


def scalar_demo(optimizer: str, sigma: float, fraction: float, z: float = 5.0, lr: float = 0.01,
                steps: int = 300, repeats: int = 4000, seed: int = 0) -> torch.Tensor:
    """``repeats`` independent one-parameter students s (all from 0) regressing to a noisy teacher
    logit z(1 + xi) (eq. 3 with one logit): ``steps`` steps of ``optimizer`` ("sgd" or "adam") on
    1/2 (s - z(1 + xi))^2, fresh noise on each. Returns the final s of every repeat.

    One tensor holds all repeats: both optimizers act elementwise, so summing the repeats' losses
    trains each repeat as its own run. Under SGD E[s] does not depend on sigma (the step is linear in
    the target); under Adam it does (the step is divided by a running RMS that the noise inflates).
    """
    gen = torch.Generator().manual_seed(seed)
    s = torch.zeros(repeats, 1, dtype=torch.float64, requires_grad=True)
    opt = _optimizer(optimizer, [s], lr)
    target = torch.full((repeats, 1), z, dtype=torch.float64)
    for _ in range(steps):
        loss = 0.5 * (s - perturb_logits(target, sigma, fraction, gen)).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return s.detach().squeeze(1)


def mean_update(make_model, x: torch.Tensor, v: torch.Tensor, optimizer: str, lr: float,
                sigma: float, fraction: float, steps: int = 10, repeats: int = 8,
                batch_size: int = 128, seed: int = 0) -> dict:
    """How far a real student moves, on average over noise draws, along the clean teacher's path.

    Each repeat starts from the same weights (``make_model()`` after seeding with ``seed``) and
    takes ``steps`` steps of ``optimizer`` on the same batches of ``x`` (with teacher logits ``v``),
    with fresh noise (``sigma``, ``fraction``) per repeat. ``ratio`` is
    <mean displacement, clean displacement> / |clean displacement|^2: 1 means the average noisy
    run goes as far as the clean run; ``se`` is its standard error over the repeats.
    """
    def displacement(noise_seed, sig):
        torch.manual_seed(seed)
        model = make_model()
        start = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
        opt = _optimizer(optimizer, model.parameters(), lr)
        loss_fn = noisy_teacher_loss(sig, fraction, torch.Generator().manual_seed(noise_seed))
        for k in range(steps):
            i = slice((k * batch_size) % len(x), (k * batch_size) % len(x) + batch_size)
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
        t_epochs, s_epochs, s_subset = (4, 10, 10000) if mnist else (5, 10, 10000)
    teacher = TeacherSettings(
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
        model.cpu()
        return {"history": hist, "test_acc": train.evaluate(model, *dd["test"])[1]}

    model, info = checkpoint.cached_model(f"noisy-teacher-{s.dataset}", _teacher_key(s),
                                          lambda: build(t.model, t.model_kwargs), fit_it)
    return model.to(config.device()), info


def train_noisy_student(s: Settings, train_data: tuple, seed: int, sigma: float | None = None,
                        fraction: float = 1.0, dropout: float = 0.0, lr: float | None = None,
                        T: float | None = None, progress: bool = True):
    """Train ``s``'s student from scratch on :func:`kdlib.config.device` and return it in eval mode.

    ``train_data`` is ``(x, y, teacher_logits)``. ``sigma=None``: the student alone, cross-entropy
    on the labels, or, with ``T``, Hinton's soft targets at temperature ``T`` (T^2 KL, no labels:
    the loss whose T -> infinity limit is logit regression, notebook 04). Otherwise logit regression
    to the teacher (eq. 1) with noise ``sigma`` on a ``fraction`` of each batch (eq. 3); ``sigma=0``
    is the clean teacher. ``dropout`` puts noise in the student instead. Adam (``lr``, default the
    first of ``s.student_lrs``), cosine-annealed over ``s.student_epochs``, no early stop.
    """
    gen = seed_everything(seed)
    lr = lr or s.student_lrs[0]
    model = build(s.student, s.student_kwargs, dropout=dropout).to(config.device())
    if _is_conv(model):
        model.to(memory_format=torch.channels_last)
    if sigma is not None:
        loss_fn, what = noisy_teacher_loss(sigma, fraction, gen), f"sigma={sigma:g} fraction={fraction:g}"
    elif T is not None:
        loss_fn, what = (lambda z, y, v: soft_target_loss(z, v, T)), f"KD T={T:g}"
    else:
        loss_fn, what = train.cross_entropy, "alone"
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=s.student_epochs)
    train.fit(model, sched, train.Batches(*train_data, batch_size=s.student_batch, generator=gen),
              epochs=s.student_epochs, loss_fn=loss_fn,
              desc=f"student {what} lr={lr:g} dropout={dropout:g} seed {seed}" if progress else None)
    return model.eval()


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

    ``run(value)`` trains one student and returns its record (with ``val_acc``); every value of
    ``values`` is run; ``known`` maps values already run (e.g. sigma = 0, the clean teacher) to their
    records. While the best value (highest ``val_acc``, the smallest of equals) is the smallest
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
        return max(sorted(recs), key=lambda v: recs[v]["val_acc"])

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


# ---- Notebook 05's protocol -------------------------------------------------------------------

PAPER_FRACTION = {"mnist": 0.15, "svhn": 0.15, "cifar10": 0.5}  # the paper's alpha, section 3
# Adam's average step under noise is a fraction of the clean one (0.74 at sigma 1 in notebook 05's
# measurement): each sigma is also tried at this multiple of the clean teacher's learning rate (the
# ladder's next step, 3x, was far worse than the chosen rate for the clean teacher on both datasets).
NOISY_LR_FACTOR = 1.5
KEY_STUDENTS = ("alone", "clean teacher", "KD", "noisy teacher", "dropout student")


@dataclass(frozen=True)
class Grids:
    """The grids notebook 05 searches on validation with the tuning seed (see :func:`search`).

    ``sigmas`` at the paper's fraction, at the learning rate chosen at the largest of them from two
    (the clean teacher's and :data:`NOISY_LR_FACTOR` times it: Adam's step shrinks as the noise
    grows, section 2 of the notebook); then
    ``fractions`` at the best sigma; ``dropouts`` in the student (clean teacher); ``temperatures``
    for Hinton's soft targets (then their learning rate). Small on purpose: notebook 05 must fit
    its CPU budget with five report seeds. sigma = 0, fraction = 0 and dropout = 0 are the clean teacher.
    """
    sigmas: tuple = (0.1, 0.3, 1.0)
    fractions: tuple = (0.15, 0.5, 1.0)
    dropouts: tuple = (0.1,)
    temperatures: tuple = (2.0, 4.0)
    max_extra: int = 3


def grids() -> Grids:
    """Full grids, or one or two values each in fast mode (no extensions)."""
    if config.fast_mode():
        return Grids(sigmas=(0.25, 1.0), fractions=(1.0,), dropouts=(0.2,), temperatures=(4.0,), max_extra=0)
    return Grids()


def _best_above_zero(found: dict) -> float:
    """The best value of a :func:`search` other than 0 (the clean teacher): the best noisy setting,
    even where the clean teacher beat every one (the smallest of equals)."""
    recs = found["records"]
    return max(sorted(v for v in recs if v > 0), key=lambda v: recs[v]["val_acc"])


def experiment(s: Settings, g: Grids, tune_seed: int, report_seeds, d: dict | None = None,
               progress: bool = True, log=print) -> dict:
    """Notebook 05's protocol on one dataset.

    1. Tuning, with ``tune_seed`` only, every choice on the validation split (:func:`search`):
       the learning rate of the student alone and of the clean teacher (logit regression, sigma 0);
       Hinton's soft targets: T over ``g.temperatures`` at the alone student's learning rate, then
       the learning rate at the best T; sigma at the paper's fraction
       (:data:`PAPER_FRACTION`), at the learning rate chosen at the largest sigma from the clean
       teacher's and :data:`NOISY_LR_FACTOR` times it; the fraction at the best sigma; the student's dropout rate (clean teacher).
    2. Reporting, with ``report_seeds`` (fresh: none of them tuned anything): the five key students
       (:data:`KEY_STUDENTS`) with the chosen settings, scored on the test set.
    Tuning runs are scored on validation only (``test_acc`` None), report runs on test only.
    Returns the teacher's scores, the searches, the chosen records, the key students' test
    accuracies per report seed (``key``) and one record per run (``runs``).
    """
    if tune_seed in report_seeds:
        raise ValueError(f"report_seeds must not hold the tuning seed {tune_seed}, got {list(report_seeds)}")
    if len(report_seeds) < 2:
        raise ValueError(f"report_seeds needs at least 2 seeds for a paired interval, got {list(report_seeds)}")
    start = time.perf_counter()
    d = d or load_data(s)
    teacher, tinfo = dataset_teacher(s, d, progress)
    x_tr, y_tr = d["train"]
    if s.student_subset:
        x_tr, y_tr = x_tr[: s.student_subset], y_tr[: s.student_subset]
    v_tr = train.predict_logits(teacher, x_tr)  # once: the teacher is frozen
    out = dict(dataset=s.dataset, size=s.size, n_train=len(y_tr), n_val=len(d["val"][1]), teacher_info=tinfo,
               teacher_val=train.evaluate(teacher, *d["val"])[1],
               teacher_test=train.evaluate(teacher, *d["test"])[1], runs=[],
               paper_fraction=PAPER_FRACTION[s.dataset], tune_seed=tune_seed, report_seeds=list(report_seeds))
    log(f"{s.dataset} teacher {s.teacher.model}: val {out['teacher_val']:.4f}, test "
        f"{out['teacher_test']:.4f} ({'loaded' if tinfo['loaded'] else 'trained'}); students learn "
        f"from {len(y_tr)} training images")

    def run(stage, seed, lr, sigma=None, fraction=0.0, dropout=0.0, T=None):
        t = time.perf_counter()
        m = train_noisy_student(s, (x_tr, y_tr, v_tr), seed, sigma, fraction, dropout, lr, T, progress)
        report = stage.startswith("report")  # tuning runs are scored on validation only, reports on test only
        split = "test" if report else "val"
        acc = train.evaluate(m, *d[split])[1]
        r = dict(stage=stage, seed=seed, sigma=sigma, fraction=fraction, dropout=dropout, T=T, lr=lr,
                 val_acc=None if report else acc, test_acc=acc if report else None,
                 seconds=time.perf_counter() - t)
        out["runs"].append(r)
        what = ("labels" if sigma is None and T is None else f"KD T {T:g}" if T is not None
                else f"sigma {sigma:g} fraction {fraction:g}")
        log(f"  {stage:13s} seed {seed} {what} dropout {dropout:g} lr {lr:g}: "
            f"{split} {acc:.4f} ({r['seconds']:.0f} s)")
        return r

    seed, lrs, extra = tune_seed, s.student_lrs, g.max_extra
    found = {}

    def lr_search(stage, **kw):
        return search(lambda lr: run(stage, seed, lr, **kw), lrs, lr_below, lr_above, max_extra=extra)

    found["alone"] = lr_search("alone")
    found["clean teacher"] = lr_search("clean teacher", sigma=0.0)
    clean = found["clean teacher"]["records"][found["clean teacher"]["best"]]
    lr_alone = found["alone"]["best"]  # KD's loss has cross-entropy's scale: T at its rate, then the rate
    found["T"] = search(lambda T: run("KD T grid", seed, lr_alone, T=T), g.temperatures,
                        lambda T: T / 2 if T > 1 else None, lambda T: 2 * T if T < 16 else None, max_extra=extra)
    best_T = found["T"]["best"]
    found["KD"] = search(lambda lr: run("KD lr grid", seed, lr, T=best_T), [], lr_below, lr_above,
                         known={lr_alone: found["T"]["records"][best_T]}, max_extra=extra)
    f0 = PAPER_FRACTION[s.dataset]
    # the noisy teachers' learning rate: the clean teacher's or NOISY_LR_FACTOR times it, chosen at
    # the grid's largest sigma (where Adam's step shrinks most), then used for every sigma
    top = max(g.sigmas)
    by_sigma = {top: [run("sigma grid", seed, lr, top, f0)
                      for lr in ([clean["lr"], NOISY_LR_FACTOR * clean["lr"]] if extra else [clean["lr"]])]}
    at_top = max(by_sigma[top], key=lambda r: r["val_acc"])

    def sigma_run(sigma):
        by_sigma[sigma] = [run("sigma grid", seed, at_top["lr"], sigma, f0)]
        return by_sigma[sigma][0]

    found["sigma"] = search(sigma_run, [v for v in g.sigmas if v != top], lambda v: v / 2 if v > 0.05 else 0.0,
                            lambda v: 2 * v, known={0.0: clean, top: at_top}, max_extra=extra)
    best_sigma = _best_above_zero(found["sigma"])  # the best noisy one
    at = found["sigma"]["records"][best_sigma]
    found["fraction"] = search(lambda f: run("fraction grid", seed, at["lr"], best_sigma, f),
                               [f for f in g.fractions if f != f0], None, None,
                               known={0.0: clean, f0: at}, max_extra=0)
    best_fraction = _best_above_zero(found["fraction"])
    found["dropout"] = search(lambda p: run("dropout grid", seed, clean["lr"], 0.0, 0.0, p), g.dropouts,
                              lambda v: v / 2 if v > 0.05 else 0.0, lambda v: v + 0.2 if v < 0.7 else None,
                              known={0.0: clean}, max_extra=extra)
    best_dropout = _best_above_zero(found["dropout"])
    chosen = {"alone": found["alone"]["records"][lr_alone], "clean teacher": clean,
              "KD": found["KD"]["records"][found["KD"]["best"]],
              "noisy teacher": found["fraction"]["records"][best_fraction],
              "dropout student": found["dropout"]["records"][best_dropout]}
    out.update(searches=found, sigma_lrs=by_sigma, chosen=chosen, key={k: [] for k in chosen})
    for seed in report_seeds:
        for k, c in chosen.items():
            r = run(f"report: {k}", seed, c["lr"], c["sigma"], c["fraction"], c["dropout"], c["T"])
            out["key"][k].append(r["test_acc"])
    out["seconds"] = time.perf_counter() - start
    return out
