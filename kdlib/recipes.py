"""The training recipes shared by several notebooks (so none of them repeats another's code).

``get_teacher()`` returns the seed experiment's MNIST teacher, trained once and checkpointed:
notebook 02 trains it, notebooks 01, 03 and 05 load it (or train it if it is missing).
"""
from __future__ import annotations

import torch

from . import checkpoint, config, data, models, train
from .repro import seed_everything


def use_bf16() -> bool:
    """bf16 autocast where the hardware has it (a GPU, or a CPU with AVX512-BF16/AMX)."""
    if torch.cuda.is_available():
        return True
    return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())


def mnist_split(subset: int | None = None) -> dict:
    """MNIST as normalised tensors: the seed's 48,000 / 12,000 train/val split (seed 42) and
    the 10,000 test images. ``subset`` keeps the first ``subset`` of each part."""
    return data.load_split("mnist", n_val=12000, seed=42, subset=subset)


def teacher_settings() -> dict:
    """Seed recipe: Adadelta lr 1.0, StepLR gamma 0.7 per epoch, batch 64, 5 epochs, trained on
    the 48,000-image split only (fast mode: 1 epoch on 6,000 images)."""
    return dict(model="TeacherNet", data="mnist-48k-seed42", optimizer="Adadelta", lr=1.0,
                gamma=0.7, batch_size=64, epochs=config.pick(5, 1),
                subset=config.pick(None, 6000), seed=1, bf16=use_bf16(), channels_last=True)


def train_teacher(model: torch.nn.Module, settings: dict, progress: bool = True) -> dict:
    """Train ``model`` with ``settings`` (see :func:`teacher_settings`); returns history and test score."""
    s = settings
    gen = seed_everything(s["seed"])
    d = mnist_split(s["subset"])
    if s["channels_last"]:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adadelta(model.parameters(), lr=s["lr"])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=s["gamma"])
    hist = train.fit(model, opt, d["train"], d["val"], epochs=s["epochs"], batch_size=s["batch_size"],
                     generator=gen, scheduler=sched, bf16=s["bf16"],
                     channels_last=s["channels_last"], desc="teacher", progress=progress)
    test_loss, test_acc = train.evaluate(model, *d["test"], bf16=s["bf16"])
    return {"history": hist, "test_loss": test_loss, "test_acc": test_acc}


def get_teacher(progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """The seed teacher in eval mode, loaded from its checkpoint or trained now.

    Returns ``(model, info)``; info has ``history``, ``test_acc``, ``path`` and ``loaded``.
    """
    settings = teacher_settings()
    model = models.TeacherNet()
    info = checkpoint.train_or_load("teacher", settings, model,
                                    lambda m: train_teacher(m, settings, progress))
    model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, {**info, "settings": settings}
