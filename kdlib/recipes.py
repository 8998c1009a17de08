"""Training recipes shared by notebooks: the seed's MNIST teacher (:func:`mnist_teacher`: trained by notebook 02,
loaded by 01, 03, 04 and homework 2), the seed blog's teacher (:func:`blog_teacher`: 02 and 03) and 03's students,
trained as one run (:mod:`kdlib.fast`). All train on :func:`kdlib.config.device`, where the teachers come back."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import checkpoint, config, data, fast, losses, models, train
from .repro import seed_everything


def mnist_split(subset: int | None = None) -> dict:
    """Normalised MNIST: the seed's 48,000 / 12,000 train/val split (seed 42), the 10,000 test images;
    ``subset`` keeps the first ``subset`` of each part."""
    return data.load_split("mnist", n_val=12000, seed=42, subset=subset)


@dataclass(frozen=True)
class ConvTeacherSettings:
    """How a conv teacher of notebook 02 is trained (every field names its checkpoint); defaults: the seed's Adadelta
    lr 1.0, StepLR ``gamma`` 0.7 per epoch, batch 64, 5 epochs, 48,000 images. ``bf16``: autocast in training."""
    model: str = "TeacherNet"
    data: str = "mnist-48k-seed42"
    optimizer: str = "Adadelta"
    lr: float = 1.0
    gamma: float | None = 0.7
    batch_size: int = 64
    epochs: int = 5
    subset: int | None = None
    seed: int = 1
    bf16: bool = False
    channels_last: bool = True


def teacher_settings() -> ConvTeacherSettings:
    """The seed teacher's settings in the current mode (fast mode: 1 epoch on 6,000 images)."""
    return ConvTeacherSettings(epochs=config.pick(5, 1), subset=config.pick(None, 6000), bf16=config.bf16())


def mnist_teacher(progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """The seed teacher, frozen, loaded from its checkpoint or trained now.
    Returns ``(model, info)``; info has ``history``, ``test_acc``, ``path``, ``loaded``, ``settings``."""
    s = teacher_settings()

    def fit_it(model):
        gen = seed_everything(s.seed)
        d = mnist_split(s.subset)
        model.to(memory_format=torch.channels_last)
        opt = torch.optim.Adadelta(model.parameters(), lr=s.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=s.gamma)
        hist = train.fit(model, sched, train.Batches(*d["train"], batch_size=s.batch_size, generator=gen),
                         d["val"], epochs=s.epochs, desc="teacher" if progress else None)
        test_loss, test_acc = train.evaluate(model, *d["test"])
        return {"history": hist, "test_loss": test_loss, "test_acc": test_acc}
    return checkpoint.cached_model("teacher", s, models.TeacherNet, fit_it)


# ---- Students (notebook 03) ----------------------------------------------------------------
@dataclass(frozen=True)
class StudentSettings:
    """Seed settings of the three-way distillation (alpha weights the soft term): Adam 1e-3,
    batch 64, up to 10 epochs with early stopping on the validation loss (patience 2)."""
    T: float = 2.0
    alpha: float = 0.8
    lr: float = 1e-3
    batch_size: int = 64
    max_epochs: int = 10
    patience: int = 2
    min_delta: float = 1e-4


STUDENT = StudentSettings()


def three_way_loss(kind: str, T: float = STUDENT.T, alpha: float = STUDENT.alpha):
    """``loss_fn(logits, labels, teacher_logits)`` of notebook 03's students: ``"hard"`` (cross-entropy),
    ``"soft"`` (soft_target_loss) or ``"hard+soft"`` (distillation_loss, ``alpha`` weighting the soft term)."""
    if kind == "hard":
        return train.cross_entropy
    if kind == "soft":
        return lambda z, y, v: losses.soft_target_loss(z, v, T)
    if kind == "hard+soft":
        return lambda z, y, v: losses.distillation_loss(z, v, y, T, alpha)
    raise ValueError(f"kind must be 'hard', 'soft' or 'hard+soft', got {kind!r}")


def train_seed_student(loss_fn, train_data, val_data, seed: int, hidden: int = 16, max_epochs: int | None = None):
    """The seed's 784-``hidden``-10 student trained with :data:`STUDENT`'s recipe on ``(x, y, *extra)`` tuples whose
    extras (cached teacher logits) reach ``loss_fn``; the best weights on validation. Returns ``(model, history)``."""
    s = STUDENT
    gen = seed_everything(seed)
    model = models.StudentNet(hidden).to(config.device())  # where fit trains it: one thread is for a CPU
    opt = torch.optim.Adam(model.parameters(), lr=s.lr, fused=True)
    es = train.EarlyStopping(patience=s.patience, min_delta=s.min_delta)
    with fast.threads_for(model):
        hist = train.fit(model, opt, train.Batches(*train_data, batch_size=s.batch_size, generator=gen),
                         val_data, epochs=max_epochs or s.max_epochs, loss_fn=loss_fn, early_stopping=es,
                         desc=f"student 784-{hidden}-10, seed {seed}")
    return model, hist


def _stacked_students(build, loss_by_kind: dict, train_data, val_data, seeds, teacher_head=None, *,
                      lr, batch_size, epochs, early_stopping: bool):
    """One student per kind and seed (a seed's initial weights and batches for every kind), in one run of
    :func:`kdlib.fast.fit_stacked`; ``teacher_head``: a teacher's head, dropout on, new per image, student, epoch."""
    students, batches, loss_fns = [], [], []
    for loss_fn in loss_by_kind.values():
        for seed in seeds:
            gen = seed_everything(seed)
            students.append(build())
            batches.append(train.Batches(*train_data, batch_size=batch_size, generator=gen))
            loss_fns.append(loss_fn)
    stopping = [train.EarlyStopping(STUDENT.patience, STUDENT.min_delta) for _ in students] if early_stopping else None
    targets = fast.fast_dropout(teacher_head).train() if teacher_head is not None else None
    desc = f"{', '.join(loss_by_kind)} x seeds {list(seeds)}"
    hists = fast.fit_stacked(students, lambda p: torch.optim.Adam(p, lr=lr, fused=True), batches, val_data,
                             epochs=epochs, loss_fn=loss_fns, early_stopping=stopping, targets=targets, desc=desc)
    runs = list(zip(students, hists))
    return {kind: runs[i * len(seeds):(i + 1) * len(seeds)] for i, kind in enumerate(loss_by_kind)}


def train_seed_students(loss_by_kind: dict, train_data, val_data, seeds, teacher_head=None, hidden: int = 16) -> dict:
    """:func:`train_seed_student` (784-``hidden``-10) for each kind (``{kind: loss_fn}``) and seed, all trained as
    one run (the same numbers as separate runs, up to float rounding).
    Returns ``{kind: [(model, history) per seed]}``."""
    return _stacked_students(lambda: models.StudentNet(hidden), loss_by_kind, train_data, val_data, seeds,
                             teacher_head, lr=STUDENT.lr, batch_size=STUDENT.batch_size, epochs=STUDENT.max_epochs,
                             early_stopping=True)


# ---- The seed blog's pair (notebook 03's weak-student experiment) ---------------------------
def mnist_full(subset: int | None = None) -> dict:
    """The blog's MNIST: all 60,000 training images (no validation split) and the test set, pixels / 255 only."""
    parts = {}
    for split in ("train", "test"):
        x, y = data.load("mnist", split)
        parts[split] = (x.unsqueeze(1).float().div(255), y)
    if subset is not None:
        parts = {k: (a[:subset], b[:subset]) for k, (a, b) in parts.items()}
    return parts


def blog_teacher_settings() -> ConvTeacherSettings:
    """The blog's recipe: Adam lr 1e-4 (no schedule), batch 32, 5 epochs on all 60,000 training images
    (pixels / 255), its network as written (:func:`kdlib.models.BlogTeacherNet`); fast mode: 1 epoch on 2,000."""
    return ConvTeacherSettings(model="BlogTeacherNet (as written: no ReLU after fc1, dropout on in eval)",
                               data="mnist-60k, pixels/255", optimizer="Adam (fused)", lr=1e-4, batch_size=32,
                               gamma=None, epochs=config.pick(5, 1), subset=config.pick(None, 2000), bf16=config.bf16())


def blog_teacher(progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """The blog's conv teacher, frozen (its dropout stays on, as in the blog), loaded from its checkpoint or
    trained now. Its history's ``val_*`` entries are test-set scores after each epoch, dropout on."""
    s = blog_teacher_settings()

    def fit_it(model):
        gen = seed_everything(s.seed)
        d = mnist_full(s.subset)
        model.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), lr=s.lr, fused=True)  # fused: one kernel for 6.5M weights
        hist = train.fit(model, opt, train.Batches(*d["train"], batch_size=s.batch_size, generator=gen),
                         d["test"], epochs=s.epochs, desc="blog teacher" if progress else None)
        return {"history": hist, "test_acc": hist["val_acc"][-1]}
    return checkpoint.cached_model("blog-teacher", s, models.BlogTeacherNet, fit_it)


def train_weak_students(loss_by_kind: dict, train_data, test_data, seeds, teacher_head, epochs: int = 5) -> dict:
    """The blog's weak student (:func:`kdlib.models.WeakStudentNet`, its convolution a :class:`kdlib.fast.WindowConv2d`)
    per kind (``{kind: loss_fn}``) and seed: Adam 1e-4, batch 32, ``epochs`` epochs, ``test_data`` scored after each,
    ``teacher_head`` (dropout on) new per student and epoch. Returns ``{kind: [(model, history) per seed]}``."""
    return _stacked_students(lambda: fast.window_convs(models.WeakStudentNet()), loss_by_kind, train_data,
                             test_data, seeds, teacher_head, lr=1e-4, batch_size=32, epochs=epochs,
                             early_stopping=False)
