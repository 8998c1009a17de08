"""Plain PyTorch training loops over whole tensors (no DataLoader, no per-step ``.item()``).

``loss_fn(logits, labels, *extra)`` gets the batch's slices of any extra tensors (e.g. teacher logits cached by
:func:`predict_logits`). A ``channels_last`` model gets channels_last inputs and, where :func:`kdlib.config.bf16`,
bf16 autocast in training; predictions are float32 (float64 for a float64 model). Other speed-ups: :mod:`kdlib.fast`.
Device rule: all runs on :func:`kdlib.config.device` (``Batches(..., device="cpu")`` chooses the CPU), data crossing
once, never per batch: a :class:`Batches` moves its tensors at its first pass, :func:`fit` moves the model there for
good and ``val`` once per call; :func:`predict_logits` and :func:`evaluate` run where the model is, answer on the CPU.
"""
from __future__ import annotations

import copy
import math
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import argcheck, config
from .data import batches


def cross_entropy(logits, labels, *extra):
    """Hard-label loss in the ``loss_fn`` signature."""
    return F.cross_entropy(logits, labels)


class Batches:
    """Shuffled mini-batches of aligned rows of ``tensors`` (e.g. ``x, y, teacher_logits``), a whole-tensor
    ``DataLoader``: each pass draws a new order from ``generator``; ``augment(xb, generator)`` transforms each batch
    of the first tensor. The tensors move to ``device`` (default :func:`kdlib.config.device`) at the first pass."""

    def __init__(self, *tensors: torch.Tensor, batch_size: int = 64,
                 generator: torch.Generator | None = None, augment=None, device=None):
        if not tensors:
            raise ValueError("Batches needs at least one tensor (e.g. Batches(x, y))")
        batch_size = argcheck.integer("batch_size", batch_size, "an integer >= 1", lambda v: v >= 1)
        if len({len(t) for t in tensors}) > 1:
            raise ValueError(f"tensors must have the same length, got {[len(t) for t in tensors]}")
        self.tensors, self.batch_size, self.generator, self.augment = tensors, batch_size, generator, augment
        self.device, self._moved = config.device(device), None

    def __len__(self) -> int:
        return -(-len(self.tensors[0]) // self.batch_size)

    def order(self) -> torch.Tensor:
        """The next pass's order of the rows (a permutation drawn from ``generator``)."""
        return torch.randperm(len(self.tensors[0]), generator=self.generator)

    def on_device(self) -> tuple:
        """The tensors on :attr:`device`, moved at the first call (then the same tensors)."""
        if self._moved is None:
            self._moved = _on(self.device, *self.tensors)
        return self._moved

    def __iter__(self):
        tensors = self.on_device()
        order = self.order().to(self.device)  # drawn on the CPU (the generator's), moved once per pass
        for xb, *rest in batches(*(t[order] for t in tensors), batch_size=self.batch_size):
            yield (xb if self.augment is None else self.augment(xb, self.generator)), *rest


def _on(device: torch.device, *tensors: torch.Tensor) -> tuple:
    """``tensors`` on ``device``: the one place kdlib's training data changes device."""
    return tuple(t.to(device) for t in tensors)


def _device(model: torch.nn.Module) -> torch.device:
    """Where ``model`` is (its first parameter's device): where it predicts."""
    return next(model.parameters()).device


def _fast_path(model: torch.nn.Module) -> bool:
    """True for a model put in channels_last, judged by its convolution weight with the most input
    channels (a weight with one input channel is contiguous in both layouts)."""
    w = max((p for p in model.parameters() if p.ndim == 4), key=lambda p: p.shape[1], default=None)
    return w is not None and w.shape[1] > 1 and w.is_contiguous(memory_format=torch.channels_last)


def _runner(model: torch.nn.Module):
    """``(prepare(x), autocast context)`` for ``model``: its memory format, bf16 autocast where its device has it."""
    dev = _device(model)
    fast = _fast_path(model)

    def prepare(x):
        return x.contiguous(memory_format=torch.channels_last) if fast and x.ndim == 4 else x
    bf16 = fast and config.bf16(dev)
    return prepare, (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if bf16 else nullcontext


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """bf16 (autocast) outputs as float32; float32 and float64 as they are."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """A teacher as the students see it: float32, eval mode (no dropout), no gradients."""
    model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@torch.inference_mode()
def _logits(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """:func:`predict_logits` for ``x`` already on the model's device, left there."""
    was_training = model.training
    model.eval()
    try:
        prepare, _ = _runner(model)
        out = []
        for (xb,) in batches(x, batch_size=batch_size):
            out.append(_at_least_float32(model(prepare(xb))).contiguous())  # e.g. a channels_last trunk's output
    finally:
        model.train(was_training)
    return torch.cat(out)


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits of ``model`` for every row of ``x`` (eval mode, ``batch_size`` rows at a time on its device), contiguous,
    on the CPU. Never under bf16 autocast, so a model has one score whatever the hardware. Call it once on a
    frozen teacher and pass the result to training as cached targets."""
    return _logits(model, *_on(_device(model), x), batch_size=batch_size).cpu()


def _score(model, x, y, extra, loss_fn) -> tuple[float, float]:
    """:func:`evaluate` for data already on the model's device."""
    logits = _logits(model, x)
    return float(loss_fn(logits, y, *extra)), float((logits.argmax(1) == y).float().mean())


def evaluate(model, x, y, *extra, loss_fn=cross_entropy) -> tuple[float, float]:
    """Mean loss (``loss_fn``, default cross-entropy) and accuracy of ``model`` on ``(x, y)``, on its device."""
    x, y, *extra = _on(_device(model), x, y, *extra)
    return _score(model, x, y, extra, loss_fn)


def train_epoch(model, optimizer, train: Batches, loss_fn=cross_entropy, bar=None) -> tuple[float, float]:
    """One pass over ``train`` (forward, loss, ``zero_grad``, ``backward``, ``step`` per batch; ``bar``
    advances one per batch) by a model on ``train.device``. Returns the mean training loss and accuracy."""
    dev = _device(model)
    if dev != train.device:
        raise ValueError(f"model is on {dev} but train's batches come on {train.device}: move it first, "
                         f"model.to(train.device) (fit does), or give Batches device={str(dev)!r}")
    model.train()
    prepare, autocast = _runner(model)
    total_loss = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.long, device=dev)
    n = 0
    for xb, yb, *extra in train:
        with autocast():
            logits = _at_least_float32(model(prepare(xb)))
        loss = loss_fn(logits, yb, *extra)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.detach() * len(yb)
        correct += (logits.detach().argmax(1) == yb).sum()
        n += len(yb)
        if bar is not None:
            bar.update()
    return float(total_loss) / n, float(correct) / n


class EarlyStopping:
    """Stop after ``patience`` epochs without a validation loss improvement of ``min_delta``; keeps the best weights."""

    def __init__(self, patience: int = 2, min_delta: float = 1e-4):
        self.patience = argcheck.integer("patience", patience, "an integer >= 1", lambda n: n >= 1)
        self.min_delta = argcheck.number("min_delta", min_delta, "a finite number >= 0", lambda d: 0 <= d < math.inf)
        self.best, self.best_epoch, self.best_state, self.bad_epochs = float("inf"), -1, None, 0

    def step(self, val_loss: float, model: torch.nn.Module, epoch: int) -> bool:
        """Record an epoch; return True when training should stop."""
        if val_loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = val_loss, epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience


def fit(model, optimizer, train, val=None, *, epochs: int, loss_fn=cross_entropy,
        early_stopping: EarlyStopping | None = None, desc: str | None = "training") -> dict:
    """Train for up to ``epochs`` epochs on ``train.device`` (the model and any optimizer state move there and stay);
    returns the history (lists per epoch). ``optimizer``: an optimizer, or a learning-rate scheduler around one (stepped
    once per epoch). ``train``: :class:`Batches` or a tuple ``(x, y, *extra)`` (batches of 64 in a random order);
    ``val``: ``(x, y, *extra)``, scored after each epoch with ``loss_fn``. With ``early_stopping`` the best weights
    (lowest validation loss) are restored at the end. ``desc=None``: no progress bar."""
    epochs = argcheck.integer("epochs", epochs, "an integer >= 1", lambda v: v >= 1)
    if early_stopping is not None and val is None:
        raise ValueError("early_stopping needs val data")
    scheduler = optimizer if isinstance(optimizer, torch.optim.lr_scheduler.LRScheduler) else None
    optimizer = scheduler.optimizer if scheduler else optimizer
    train = train if isinstance(train, Batches) else Batches(*train)
    if len(train.tensors[0]) == 0:
        raise ValueError("train is empty (0 rows): nothing to train on")
    moved = any(p.device != train.device for p in model.parameters())
    model.to(train.device)  # in place: the optimizer keeps its parameters
    if moved and optimizer.state:  # e.g. Adam's moments from an earlier run: cast to their parameters' device
        optimizer.load_state_dict(optimizer.state_dict())
    val = None if val is None else _on(train.device, *val)
    hist = {k: [] for k in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds")}
    bar = tqdm(total=epochs * len(train), desc=desc, unit="batch", disable=desc is None)
    with bar:
        for epoch in range(epochs):
            start = time.perf_counter()
            tl, ta = train_epoch(model, optimizer, train, loss_fn, bar)
            if scheduler is not None:
                scheduler.step()
            hist["train_loss"].append(tl)
            hist["train_acc"].append(ta)
            scores = {"epoch": f"{epoch + 1}/{epochs}", "loss": f"{tl:.4f}", "acc": f"{ta:.4f}"}
            if val is not None:
                vl, va = _score(model, *val[:2], val[2:], loss_fn)
                hist["val_loss"].append(vl)
                hist["val_acc"].append(va)
                scores.update(val_loss=f"{vl:.4f}", val_acc=f"{va:.4f}")
            hist["seconds"].append(time.perf_counter() - start)
            bar.set_postfix(scores)
            if early_stopping is not None and early_stopping.step(vl, model, epoch):
                bar.total = bar.n  # stopped early: the bar ends full
                break
    if early_stopping is not None and early_stopping.best_state is not None:
        model.load_state_dict(early_stopping.best_state)
        hist["best_epoch"] = early_stopping.best_epoch
    return hist
