"""Plain PyTorch training loops over whole tensors (no DataLoader, no per-step ``.item()``).

``loss_fn(logits, labels, *extra)`` receives the batch's slices of any extra tensors given
with the data, e.g. cached teacher logits: a frozen teacher runs once, in :func:`predict_logits`.
Hardware choices come from the model and :mod:`kdlib.config`, not from arguments: a model put in
``channels_last`` gets channels_last inputs (and bf16 autocast for training where
:func:`kdlib.config.bf16`; predictions are always float32, or float64 for a float64 model).

The speed-ups that are not plain PyTorch (several seeds as one run, one thread for a tiny model)
live apart, in :mod:`kdlib.fast`.

One device rule (issue 25): everything trains and predicts on :func:`kdlib.config.device` (the GPU
where there is one, else the CPU), and data crosses to it once, never per batch. A :class:`Batches`
holds its device (``device=None``: ``config.device()``) and moves its tensors there at its first
pass; :func:`fit` puts the model on its training data's device (wherever the model was before) and
moves the validation data once per call; the model stays there. :func:`predict_logits` and
:func:`evaluate` run where the model is (a teacher from :func:`kdlib.checkpoint.cached_model` is on
``config.device()``), moving their input once; predictions come back on the CPU, so cached teacher
logits wait there until a :class:`Batches` takes them. ``Batches(..., device="cpu")`` chooses the
CPU explicitly.
"""
from __future__ import annotations

import copy
import numbers
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import config
from .data import batches


def cross_entropy(logits, labels, *extra):
    """Hard-label loss in the ``loss_fn`` signature."""
    return F.cross_entropy(logits, labels)


class Batches:
    """Shuffled mini-batches of aligned rows of ``tensors`` (e.g. ``x, y, teacher_logits``): the
    whole-tensor version of a ``DataLoader`` over a ``TensorDataset``.

    Each pass draws a new order from ``generator`` (the same seed gives the same batches), so a
    cached teacher logit always travels with its own image. ``augment(xb, generator)``, if given,
    transforms each batch of the first tensor (e.g. random flips). The batches come on ``device``
    (default :func:`kdlib.config.device`): the tensors are moved there once, at the first pass, and
    each pass permutes and slices them there (``tensors`` keeps them as given).
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int = 64,
                 generator: torch.Generator | None = None, augment=None, device=None):
        if not tensors:
            raise ValueError("Batches needs at least one tensor (e.g. Batches(x, y))")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if len({len(t) for t in tensors}) > 1:
            raise ValueError(f"tensors must have the same length, got {[len(t) for t in tensors]}")
        self.tensors, self.batch_size = tensors, batch_size
        self.generator, self.augment = generator, augment
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
    """True for a model put in channels_last (a convnet set up for speed). Judged by its convolution
    weight with the most input channels: a weight with one input channel is contiguous in both
    layouts, so a network whose convolutions all read one channel is never taken for channels_last."""
    w = max((p for p in model.parameters() if p.ndim == 4), key=lambda p: p.shape[1], default=None)
    return w is not None and w.shape[1] > 1 and w.is_contiguous(memory_format=torch.channels_last)


def _runner(model: torch.nn.Module):
    """``(prepare(x), autocast context)`` for ``model`` (its batches are on its device already):
    memory format, and bf16 autocast of the model's device type where that device has it."""
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
    """Logits of ``model`` for every row of ``x``: eval mode, inference mode, float32, on the CPU.

    Runs on the model's device (``x`` moved there once, then ``batch_size`` rows at a time); the
    result comes back to the CPU. Call it once on a frozen teacher and pass the result to training
    as cached targets. Always computed in float32 (no bf16 autocast), so a model has one score
    whatever the hardware; the result is contiguous (a channels_last model's 4-D outputs too).
    """
    return _logits(model, *_on(_device(model), x), batch_size=batch_size).cpu()


def _score(model, x, y, extra, loss_fn) -> tuple[float, float]:
    """:func:`evaluate` for data already on the model's device."""
    logits = _logits(model, x)
    loss = loss_fn(logits, y, *extra)
    return float(loss), float((logits.argmax(1) == y).float().mean())


def evaluate(model, x, y, *extra, loss_fn=cross_entropy) -> tuple[float, float]:
    """Mean loss (``loss_fn``, default cross-entropy) and accuracy of ``model`` on ``(x, y)``,
    computed on the model's device (the data moved there once)."""
    x, y, *extra = _on(_device(model), x, y, *extra)
    return _score(model, x, y, extra, loss_fn)


def train_epoch(model, optimizer, train: Batches, loss_fn=cross_entropy, bar=None) -> tuple[float, float]:
    """One pass over ``train``: forward, loss, ``zero_grad``, ``backward``, ``step`` per batch.
    Returns the mean training loss and accuracy; ``bar`` (a tqdm bar) advances one per batch.
    The model must be on ``train.device`` already (:func:`fit` puts it there)."""
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
        xb = prepare(xb)
        with autocast():
            logits = _at_least_float32(model(xb))
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
    """Stop when the validation loss has not improved by ``min_delta`` for ``patience`` epochs;
    keeps a copy of the best weights."""

    def __init__(self, patience: int = 2, min_delta: float = 1e-4):
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        self.patience, self.min_delta = patience, min_delta
        self.best, self.best_epoch, self.best_state, self.bad_epochs = float("inf"), -1, None, 0

    def step(self, val_loss: float, model: torch.nn.Module, epoch: int) -> bool:
        """Record an epoch; return True when training should stop."""
        if val_loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = val_loss, epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience


def _to_device(model: torch.nn.Module, optimizer: torch.optim.Optimizer, device) -> torch.nn.Module:
    """Put ``model`` on ``device`` (in place: the optimizer keeps its parameters) and any state the
    optimizer already holds for them (Adam's moments from an earlier run) beside them."""
    device = config.device(device)
    moved = any(p.device != device for p in model.parameters())
    model.to(device)
    if moved and optimizer.state:
        optimizer.load_state_dict(optimizer.state_dict())  # casts the state to its parameters' devices
    return model


def fit(model, optimizer, train, val=None, *, epochs: int, loss_fn=cross_entropy,
        early_stopping: EarlyStopping | None = None, desc: str | None = "training") -> dict:
    """Train for up to ``epochs`` epochs; returns the history (lists per epoch).

    ``optimizer``: an optimizer, or a learning-rate scheduler around one (stepped once per epoch).
    ``train``: :class:`Batches` (or a tuple ``(x, y, *extra)``, batches of 64 in a random order);
    ``val``: a tuple ``(x, y, *extra)`` scored after each epoch with the same ``loss_fn``.
    Runs on ``train.device`` (:func:`kdlib.config.device` unless the Batches says otherwise): the
    model is moved there at the start (with any optimizer state) and stays there; ``val`` is moved once.
    With ``early_stopping`` the best weights (lowest validation loss) are restored at the end.
    One progress bar for the whole run (batches, with the epoch's scores); ``desc=None``: no bar.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if early_stopping is not None and val is None:
        raise ValueError("early_stopping needs val data")
    scheduler = optimizer if isinstance(optimizer, torch.optim.lr_scheduler.LRScheduler) else None
    optimizer = scheduler.optimizer if scheduler else optimizer
    train = train if isinstance(train, Batches) else Batches(*train)
    if len(train.tensors[0]) == 0:
        raise ValueError("train is empty (0 rows): nothing to train on")
    _to_device(model, optimizer, train.device)
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
