"""Train K copies of a small model at once, one per seed, as one run.

A 784-16-10 student does so little arithmetic per batch that PyTorch's fixed cost per operation,
not the CPU's arithmetic, sets its speed. :func:`fit_stacked` stacks the K models' weights into one
tensor per parameter, runs the K forwards and backwards as one (``torch.func.vmap``), computes the
loss once on all K batches, and updates all K with one optimizer step: the operations of one run,
for K runs.

Each model keeps what makes it *its* run: its initial weights, its own :class:`~kdlib.train.Batches`
(its seed's batch order), its own validation scores, early stopping and best weights. Two
conditions make the stacked update of each model the one it would get alone (tests compare with K
separate :func:`~kdlib.train.fit` runs): the optimizer acts element by element (SGD, Adam, Adadelta),
and ``loss_fn`` is a mean over the rows of its batch (every loss in :mod:`kdlib.losses` and
:mod:`kdlib.as_written`): then K times the loss of the K batches together is the sum of the K
models' own losses, and each model's weights get the gradient of its own loss only.
"""
from __future__ import annotations

import time

import torch
from torch.func import functional_call, vmap
from tqdm.auto import tqdm

from .train import auto_threads, cross_entropy, evaluate, torch_threads


def fit_stacked(models: list, make_optimizer, trains: list, val=None, *, epochs: int,
                loss_fn=cross_entropy, early_stopping: list | None = None, desc: str | None = "training") -> list:
    """:func:`kdlib.train.fit` for K models of one architecture at once; returns their K histories.

    ``make_optimizer(params)``: an element-wise optimizer (or a scheduler around one) over the
    stacked parameters, e.g. ``lambda p: torch.optim.Adam(p, lr=1e-3, fused=True)``.
    ``trains``: one :class:`~kdlib.train.Batches` per model (the same rows, each model's own order).
    ``early_stopping``: None, or one :class:`~kdlib.train.EarlyStopping` per model: a model that
    stops keeps its best weights, as with ``fit``, while the others train on.
    In each history ``train_acc``, ``val_loss`` and ``val_acc`` are the model's own; ``train_loss``
    is the mean over the K models (their loss is computed as one) and ``seconds`` the stacked epoch's
    time. The models are updated in place.
    """
    k = len(models)
    if k < 1 or len(trains) != k:
        raise ValueError(f"trains must hold one Batches per model: {len(trains)} for {k} models")
    if early_stopping is not None and (val is None or len(early_stopping) != k):
        raise ValueError("early_stopping needs val data and one EarlyStopping per model")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if any(True for m in models for _ in m.buffers()):
        raise ValueError("models with buffers (e.g. BatchNorm) cannot be stacked here")
    if len({(len(t.tensors[0]), t.batch_size) for t in trains}) > 1:
        raise ValueError("every model's Batches must hold the same number of rows and batch size")
    params = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in models]).requires_grad_()
              for name, _ in models[0].named_parameters()}
    optimizer = make_optimizer(list(params.values()))
    scheduler = optimizer if isinstance(optimizer, torch.optim.lr_scheduler.LRScheduler) else None
    optimizer = scheduler.optimizer if scheduler else optimizer
    base = models[0]
    forward = vmap(lambda p, x: functional_call(base, p, (x,)))
    hists = [{key: [] for key in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds")} for _ in models]
    active = list(range(k))
    bar = tqdm(total=epochs * len(trains[0]), desc=desc, unit="batch", disable=desc is None)
    with torch_threads(auto_threads(base)), bar:
        for epoch in range(epochs):
            start = time.perf_counter()
            base.train()
            total, n = torch.zeros(()), 0
            correct = torch.zeros(k, dtype=torch.long)
            for parts in zip(*trains):
                xb, yb, *extra = (torch.stack(t) for t in zip(*parts))  # (K, B, ...) each
                logits = forward(params, xb)
                loss = loss_fn(logits.flatten(0, 1), yb.flatten(0, 1), *(e.flatten(0, 1) for e in extra))
                optimizer.zero_grad(set_to_none=True)
                (loss * k).backward()  # = the sum of the K models' own mean losses
                optimizer.step()
                total += loss.detach() * yb.shape[1]
                correct += (logits.detach().argmax(-1) == yb).sum(1)
                n += yb.shape[1]
                bar.update()
            if scheduler is not None:
                scheduler.step()
            seconds = time.perf_counter() - start
            for i in list(active):
                _copy_into(models[i], params, i)
                h = hists[i]
                h["train_loss"].append(float(total) / n)
                h["train_acc"].append(float(correct[i]) / n)
                if val is not None:
                    vl, va = evaluate(models[i], *val, loss_fn=loss_fn)
                    h["val_loss"].append(vl)
                    h["val_acc"].append(va)
                h["seconds"].append(seconds)
                if early_stopping is not None and early_stopping[i].step(h["val_loss"][-1], models[i], epoch):
                    active.remove(i)
            bar.set_postfix({"epoch": f"{epoch + 1}/{epochs}", "training": f"{len(active)}/{k}",
                             "loss": f"{float(total) / n:.4f}"})
            if not active:
                bar.total = bar.n  # every model stopped early: the bar ends full
                break
    for i, m in enumerate(models):
        if early_stopping is not None and early_stopping[i].best_state is not None:
            m.load_state_dict(early_stopping[i].best_state)
            hists[i]["best_epoch"] = early_stopping[i].best_epoch
    return hists


@torch.no_grad()
def _copy_into(model: torch.nn.Module, params: dict, i: int) -> None:
    """Write model ``i``'s slice of the stacked parameters into ``model``."""
    for name, p in model.named_parameters():
        p.copy_(params[name][i])
