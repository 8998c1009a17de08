"""Train K copies of a small model at once, one per seed, as one run.

A 784-16-10 student does so little arithmetic per batch that PyTorch's fixed cost per operation,
not the CPU's arithmetic, sets its speed. :func:`fit_stacked` stacks the K models' weights into one
tensor per parameter, gathers the K batches with one index, runs the K forwards and backwards as one
(batched matrix products for an MLP, ``torch.func.vmap`` otherwise), computes the loss once on all K
batches (once per loss where the models have different ones), and updates all K with one optimizer
step: the operations of one run, for K runs (``make bench`` measures 3-5x).

Each model keeps what makes it *its* run: its initial weights, its own :class:`~kdlib.train.Batches`
(its seed's batch order), its own validation scores, early stopping and best weights. Two
conditions make the stacked update of each model the one it would get alone (tests/test_fast_stacked.py
compares with K separate :func:`~kdlib.train.fit` runs in float64): the optimizer acts element by
element (SGD, Adam, Adadelta), and ``loss_fn`` is a mean over the rows of its batch (every loss in
:mod:`kdlib.losses` and :mod:`kdlib.as_written`): then K times the loss of the K batches together is
the sum of the K models' own losses, and each model's weights get the gradient of its own loss only.

A teacher that must run on every batch (its dropout on: :mod:`kdlib.as_written`) runs instead
once per epoch and model over the whole training set, in order (``targets``).

The one device rule of :mod:`kdlib.train` holds here too: the run is on the Batches' device
(:func:`kdlib.config.device` by default), where the models, ``targets`` and the data are moved once.
"""
from __future__ import annotations

import time

import torch
from torch.func import functional_call, vmap
from tqdm.auto import tqdm

from ..train import _on, _score, cross_entropy
from .conv import WindowConv2d
from .threads import auto_threads, torch_threads


def fit_stacked(models: list, make_optimizer, trains: list, val=None, *, epochs: int,
                loss_fn=cross_entropy, early_stopping: list | None = None, targets=None,
                desc: str | None = "training") -> list:
    """:func:`kdlib.train.fit` for K models of one architecture at once; returns their K histories.

    ``make_optimizer(params)``: an element-wise optimizer (or a scheduler around one) over the
    stacked parameters, e.g. ``lambda p: torch.optim.Adam(p, lr=1e-3, fused=True)``.
    ``trains``: one :class:`~kdlib.train.Batches` per model over the same tensors (each model's own
    order, from its own generator). ``loss_fn``: one loss for all, or a list of K (models that share
    a loss object have it computed once over their rows).
    ``early_stopping``: None, or one :class:`~kdlib.train.EarlyStopping` per model: a model that
    stops keeps its best weights, as with ``fit``, while the others train on.
    ``targets``: None, or a module that turns the data's last tensor into what the losses get in its
    place, run without gradients on the caller's thread count: e.g. a teacher's head with its dropout
    on, over the cached trunk outputs (:mod:`kdlib.as_written`). At the start of every epoch it runs
    over all the rows once per model, in order: each model gets a new draw for every row each epoch,
    as when a teacher runs on each batch, since each row comes once per epoch. On the validation data
    it runs once per epoch, a draw that scores all K.
    In each history ``train_acc``, ``val_loss`` and ``val_acc`` are the model's own; ``train_loss``
    is the mean over the models that share its loss (computed as one) and ``seconds`` the stacked
    epoch's time. The models are updated in place, on the Batches' device, where they stay.
    """
    k = len(models)
    loss_fns = _checked(models, trains, val, epochs, loss_fn, early_stopping)
    device = trains[0].device
    for m in (*models, *([targets] if targets is not None else [])):
        m.to(device)
    val = None if val is None else _on(device, *val)
    run = _StackedRun(models, make_optimizer, trains, loss_fns, targets)
    hists = [{key: [] for key in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds")} for _ in models]
    active = list(range(k))
    bar = tqdm(total=epochs * len(trains[0]), desc=desc, unit="batch", disable=desc is None)
    with torch_threads(auto_threads(models[0], copies=k)), bar:
        for epoch in range(epochs):
            start = time.perf_counter()
            losses, correct, n = run.epoch(active, bar)
            seconds = time.perf_counter() - start
            val_data = val if targets is None or val is None else (*val[:-1], run.draw(val[-1]))
            for i in list(active):
                run.copy_into(i)
                h = hists[i]
                h["train_loss"].append(float(losses[run.group_of[i]]) / n)
                h["train_acc"].append(float(correct[i]) / n)
                if val is not None:
                    for key, value in zip(("val_loss", "val_acc"), _score(models[i], *val_data[:2], val_data[2:], loss_fns[i])):
                        h[key].append(value)
                h["seconds"].append(seconds)
                if early_stopping is not None and early_stopping[i].step(h["val_loss"][-1], models[i], epoch):
                    active.remove(i)
            bar.set_postfix({"epoch": f"{epoch + 1}/{epochs}", "training": f"{len(active)}/{k}",
                             "loss": f"{float(losses.sum()) / n / len(losses):.4f}"})
            if not active:
                bar.total = bar.n  # every model stopped early: the bar ends full
                break
    for i, m in enumerate(models):
        if early_stopping is not None and early_stopping[i].best_state is not None:
            m.load_state_dict(early_stopping[i].best_state)
            hists[i]["best_epoch"] = early_stopping[i].best_epoch
    return hists


def _checked(models, trains, val, epochs, loss_fn, early_stopping) -> list:
    """The K losses, after checking that the arguments describe K stackable runs (else ValueError)."""
    k = len(models)
    if k < 1 or len(trains) != k:
        raise ValueError(f"trains must hold one Batches per model: {len(trains)} for {k} models")
    loss_fns = list(loss_fn) if isinstance(loss_fn, (list, tuple)) else [loss_fn] * k
    if len(loss_fns) != k:
        raise ValueError(f"loss_fn must be one loss or a list of one per model: {len(loss_fns)} for {k} models")
    if early_stopping is not None and (val is None or len(early_stopping) != k):
        raise ValueError("early_stopping needs val data and one EarlyStopping per model")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    if any(True for m in models for _ in m.buffers()):
        raise ValueError("models with buffers (e.g. BatchNorm) cannot be stacked here")
    if len({(len(t.tensors[0]), t.batch_size) for t in trains}) > 1:
        raise ValueError("every model's Batches must hold the same number of rows and batch size")
    if len({t.device for t in trains}) > 1:
        raise ValueError(f"every model's Batches must be on one device, got {sorted({str(t.device) for t in trains})}")
    tensors = trains[0].tensors
    if any(len(t.tensors) != len(tensors) or any(a is not b for a, b in zip(t.tensors, tensors)) for t in trains):
        raise ValueError("every model's Batches must hold the same tensors (the same rows, its own order)")
    if any(t.augment is not None for t in trains):
        raise ValueError("Batches with augment cannot be stacked here")
    return loss_fns


class _StackedRun:
    """The stacked parameters, their optimizer, the loss groups and the data of one :func:`fit_stacked`."""

    def __init__(self, models, make_optimizer, trains, loss_fns, targets):
        self.models, self.trains, self.targets = models, trains, targets
        self.params = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in models]).requires_grad_()
                       for name, _ in models[0].named_parameters()}
        opt = make_optimizer(list(self.params.values()))
        self.scheduler = opt if isinstance(opt, torch.optim.lr_scheduler.LRScheduler) else None
        self.optimizer = self.scheduler.optimizer if self.scheduler else opt
        base, self.device = models[0], trains[0].device
        self.prepare, self.forward = _bmm_forward(base) or (lambda x: x, vmap(lambda p, x: functional_call(base, p, (x,))))
        groups = {}  # loss object -> (loss, the models that use it)
        for i, fn in enumerate(loss_fns):
            groups.setdefault(id(fn), (fn, []))[1].append(i)
        # (loss, how to select its models' rows: a slice (a view) for consecutive models, else an index)
        self.groups = [(fn, slice(rows[0], rows[-1] + 1) if rows == list(range(rows[0], rows[-1] + 1))
                        else torch.tensor(rows, device=self.device), len(rows)) for fn, rows in groups.values()]
        self.group_of = {i: g for g, (_, rows) in enumerate(groups.values()) for i in rows}
        tensors = trains[0].on_device()  # moved once, for the K models
        data, self.given = (tensors[:-1], tensors[-1]) if targets is not None else (tensors, None)
        self.data = (self.prepare(data[0]), *data[1:])
        self.threads = torch.get_num_threads()  # the caller's count, for the targets module
        self.per_model = None

    def draw(self, x: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
        """The targets module on the rows of ``x``, ``chunk`` rows at a time, without gradients."""
        with torch.no_grad(), torch_threads(self.threads):
            return torch.cat([self.targets(x[i:i + chunk]) for i in range(0, len(x), chunk)])

    def epoch(self, active: list, bar) -> tuple[torch.Tensor, torch.Tensor, int]:
        """One pass: each model's batches in its own order. Returns the summed loss of each group,
        each model's correct count and the number of rows per model."""
        self.models[0].train()
        dev = self.device
        orders = torch.stack([t.order() for t in self.trains]).to(dev)  # each model's own order, as alone
        if self.targets is not None:  # a new draw of the teacher's outputs for every row, per model
            # (a model that stopped early keeps its last draw: its steps are thrown away)
            self.per_model = torch.stack([self.draw(self.given) if i in active else self.per_model[i]
                                          for i in range(len(self.models))])
        totals = torch.zeros(len(self.groups), dtype=torch.float64, device=dev)
        correct = torch.zeros(len(self.models), dtype=torch.long, device=dev)
        batch_size = self.trains[0].batch_size
        for first in range(0, len(self.data[0]), batch_size):
            idx = orders[:, first:first + batch_size]  # (K, B): one gather for the K batches
            totals += self.step(idx, correct)
            bar.update()
        if self.scheduler is not None:
            self.scheduler.step()
        return totals.cpu(), correct.cpu(), orders.shape[1]  # one copy per epoch

    def step(self, idx: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
        """One optimizer step of the K models on their rows ``idx`` (K, B); returns each group's
        summed loss over its rows and adds each model's correct predictions to ``correct``."""
        flat = idx.flatten()  # index_select: 2x faster than t[idx] here
        xb, yb, *extra = (t.index_select(0, flat).view(*idx.shape, *t.shape[1:]) for t in self.data)
        if self.targets is not None:
            extra.append(self.per_model[torch.arange(len(idx), device=idx.device)[:, None], idx])
        logits = self.forward(self.params, xb)
        loss, totals = 0, torch.zeros(len(self.groups), dtype=torch.float64, device=idx.device)
        for g, (fn, sel, n_models) in enumerate(self.groups):
            z, y, *e = (a[sel].flatten(0, 1) for a in (logits, yb, *extra))
            part = fn(z, y, *e)
            loss = loss + part * n_models  # = the sum of the group's models' own mean losses
            totals[g] = part.detach() * idx.shape[1]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        correct += (logits.detach().argmax(-1) == yb).sum(1)
        return totals

    @torch.no_grad()
    def copy_into(self, i: int) -> None:
        """Write model ``i``'s slice of the stacked parameters into it."""
        for name, p in self.models[i].named_parameters():
            p.copy_(self.params[name][i])


def _bmm_layers(model: torch.nn.Module) -> list | None:
    """``model``'s layers as ``(kind, argument)`` for :func:`_bmm_forward`, or None when it is not a
    ``Sequential`` of ``Flatten``, ``Linear`` (with bias), ``ReLU`` and :class:`WindowConv2d` only."""
    if not isinstance(model, torch.nn.Sequential):
        return None
    layers = []
    for name, m in model.named_children():
        if type(m) is torch.nn.Flatten and m.start_dim == 1 and m.end_dim == -1:
            layers.append(("flatten", None))
        elif type(m) is torch.nn.ReLU:
            layers.append(("relu", None))
        elif type(m) is torch.nn.Linear and m.bias is not None:
            layers.append(("linear", name))
        elif type(m) is WindowConv2d:
            layers.append(("window", (name, m)))
        else:
            return None
    return layers


def _window(params: dict, name: str, m: WindowConv2d, x: torch.Tensor, grid: list) -> torch.Tensor:
    """K stacked copies of the :class:`WindowConv2d` ``m`` on ``x``: (K, B, windows, c k k) rows cut
    by ``prepare`` (``grid``: their rows and columns of windows), or (K, B, c, h, w) images."""
    w, b = params[f"{name}.weight"], params[f"{name}.bias"]  # (K, out, c, k, k), (K, out)
    kk, nb = x.shape[:2]
    if x.ndim == 4:
        gh, gw = grid
    else:
        gh, gw = x.shape[3] // m.kernel_size[0], x.shape[4] // m.kernel_size[0]
        x = m.windows(x.flatten(0, 1)).view(kk, nb, gh * gw, -1)
    out = torch.baddbmm(b.unsqueeze(1), x.flatten(1, 2), w.flatten(2).transpose(1, 2))  # (K, B*windows, out)
    return out.reshape(kk, nb, gh, gw, -1).permute(0, 1, 4, 2, 3)


def _bmm_forward(model: torch.nn.Module):
    """``(prepare, forward)`` for K stacked copies of ``model`` with batched matrix products
    (:func:`_bmm_layers`' models; None for any other: :func:`fit_stacked` then uses ``vmap``, the same
    numbers with more fixed cost per step). ``prepare(x)`` runs once on the whole input tensor, then
    ``forward(params, xb)`` on (K, B, ...) batches of its rows: ``prepare`` cuts the images into a
    first ``WindowConv2d``'s windows once, so that no batch copies them again (else it returns x)."""
    layers = _bmm_layers(model)
    if layers is None:
        return None
    grid = []  # the windows' rows and columns, where prepare cut them

    def prepare(x):
        if not layers or layers[0][0] != "window":
            return x
        s = layers[0][1][1].kernel_size[0]
        grid[:] = [x.shape[2] // s, x.shape[3] // s]
        return layers[0][1][1].windows(x)

    def forward(params, x):
        for kind, arg in layers:
            if kind == "flatten":
                x = x.flatten(2)
            elif kind == "relu":
                x = x.relu()
            elif kind == "linear":
                x = torch.baddbmm(params[f"{arg}.bias"].unsqueeze(1), x, params[f"{arg}.weight"].transpose(1, 2))
            else:
                x = _window(params, *arg, x, grid)
        return x
    return prepare, forward
