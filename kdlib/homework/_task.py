"""The data of homeworks 3, 4 and 6: small parts of MNIST's seed split and a teacher that trains in
seconds, so that an assignment autogrades in well under a minute on two cores.

The teacher is a 784-512-10 MLP with dropout, trained for a few epochs on the first training
images only; it is cached as a checkpoint named after its settings (:mod:`kdlib.checkpoint`), so
only the first run on a machine trains it. Notebooks 02 and 06's teachers are better, but take
minutes to train; the homework needs a teacher, not the best one.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import checkpoint, data, models, train
from ..repro import seed_everything

__all__ = ["mnist_task"]


@dataclass(frozen=True)
class HomeworkTeacher:
    """A 784-``hidden``-10 MLP, dropout after the hidden layer; Adam, ``epochs`` epochs in batches
    of ``batch_size`` on the first ``n_train`` images of the seed's training split. These settings
    name its checkpoint."""
    model: str = "MLP"
    hidden: tuple = (512,)
    dropout: float = 0.2
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 5
    data: str = "mnist-48k-seed42"
    n_train: int = 4000
    seed: int = 1


SIZES = {"train": 4000, "val": 2000, "test": 2000}


def _parts() -> dict:
    """The first SIZES[part] images of each part of the seed split (48,000 / 12,000, seed 42) and
    of the test set, normalised; only those images are converted to float."""
    images, labels = data.load("mnist", "train")
    tr, va = data.train_val_split(len(labels), 12000, seed=42)
    test_images, test_labels = data.load("mnist", "test")
    rows = {"train": (images, labels, tr), "val": (images, labels, va),
            "test": (test_images, test_labels, torch.arange(len(test_labels)))}
    return {k: (data.to_float(im[idx[:SIZES[k]]], "mnist"), lab[idx[:SIZES[k]]])
            for k, (im, lab, idx) in rows.items()}


def _teacher(parts: dict, s: HomeworkTeacher):
    def fit_it(model):
        gen = seed_everything(s.seed)
        x, y = parts["train"]
        opt = torch.optim.Adam(model.parameters(), lr=s.lr)
        hist = train.fit(model, opt, train.Batches(x[:s.n_train], y[:s.n_train],
                                                   batch_size=s.batch_size, generator=gen),
                         epochs=s.epochs, desc=None)
        return {"history": hist}

    return checkpoint.cached_model("homework-teacher", s,
                                   lambda: models.MLP(s.hidden, dropout=s.dropout), fit_it)


def mnist_task() -> dict:
    """``train``, ``val`` and ``test``: ``(x, y, teacher_logits)`` each (4,000, 2,000 and 2,000
    images; logits computed once, teacher in eval mode); ``teacher``: the frozen teacher;
    ``teacher_acc``: its test accuracy; ``loaded``: whether it came from its checkpoint.

    Runs on one thread (then restores the thread count): the teacher's matrices are small, and on a
    busy 2-core machine two threads took 8x the CPU time of one (24 s against 3 s)."""
    parts = _parts()
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        teacher, info = _teacher(parts, HomeworkTeacher())
        out = {k: (x, y, train.predict_logits(teacher, x)) for k, (x, y) in parts.items()}
    finally:
        torch.set_num_threads(old)
    _, y_te, v_te = out["test"]
    return {**out, "teacher": teacher, "teacher_acc": float((v_te.argmax(1) == y_te).float().mean()),
            "loaded": info["loaded"]}
