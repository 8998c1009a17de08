"""Train K copies of a small model at once, one per seed, as one run.

A 784-16-10 student does so little arithmetic per batch that PyTorch's fixed cost per operation,
not the CPU's arithmetic, sets its speed. :func:`fit_stacked` stacks the K models' weights into one
tensor per parameter, gathers the K batches with one index, runs the K forwards and backwards as one
(batched matrix products for an MLP, ``torch.func.vmap`` otherwise), computes the loss once on all K
batches (once per loss where the models have different ones), and updates all K with one optimizer
step: the operations of one run, for K runs.

Each model keeps what makes it *its* run: its initial weights, its own :class:`~kdlib.train.Batches`
(its seed's batch order), its own validation scores, early stopping and best weights. Two
conditions make the stacked update of each model the one it would get alone (tests compare with K
separate :func:`~kdlib.train.fit` runs): the optimizer acts element by element (SGD, Adam, Adadelta),
and ``loss_fn`` is a mean over the rows of its batch (every loss in :mod:`kdlib.losses` and
:mod:`kdlib.as_written`): then K times the loss of the K batches together is the sum of the K
models' own losses, and each model's weights get the gradient of its own loss only.

A teacher that must run on every batch (its dropout on: :mod:`kdlib.as_written`) runs instead
once per epoch and model over the whole training set, in order (``targets``).
"""
from __future__ import annotations

import time

import torch
from torch.func import functional_call, vmap
from tqdm.auto import tqdm

from .models import WindowConv2d
from .train import auto_threads, cross_entropy, evaluate, torch_threads

# PyTorch's thread count when kdlib was imported: a teacher's head (``targets``) is no tiny model,
# even inside a stacked run of tiny students that runs on one thread (kdlib.train.auto_threads)
ALL_THREADS = torch.get_num_threads()


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
    place, run without gradients on all of the CPU's threads: e.g. a teacher's head with its dropout
    on, over the cached trunk outputs (:mod:`kdlib.as_written`). At the start of every epoch it runs
    over all the rows once per model, in order (no gather of the large inputs per batch): each model
    gets a new draw for every row each epoch, as when a teacher runs on each batch, since each row
    comes once per epoch. On the validation data it runs once per epoch, a draw that scores all K.
    In each history ``train_acc``, ``val_loss`` and ``val_acc`` are the model's own; ``train_loss``
    is the mean over the models that share its loss (computed as one) and ``seconds`` the stacked
    epoch's time. The models are updated in place.
    """
    k = len(models)
    if k < 1 or len(trains) != k:
        raise ValueError(f"trains must hold one Batches per model: {len(trains)} for {k} models")
    loss_fns = list(loss_fn) if isinstance(loss_fn, (list, tuple)) else [loss_fn] * k
    if len(loss_fns) != k:
        raise ValueError(f"loss_fn must be one loss or a list of one per model: {len(loss_fns)} for {k} models")
    if early_stopping is not None and (val is None or len(early_stopping) != k):
        raise ValueError("early_stopping needs val data and one EarlyStopping per model")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if any(True for m in models for _ in m.buffers()):
        raise ValueError("models with buffers (e.g. BatchNorm) cannot be stacked here")
    if len({(len(t.tensors[0]), t.batch_size) for t in trains}) > 1:
        raise ValueError("every model's Batches must hold the same number of rows and batch size")
    tensors, batch_size = trains[0].tensors, trains[0].batch_size
    if any(len(t.tensors) != len(tensors) or any(a is not b for a, b in zip(t.tensors, tensors)) for t in trains):
        raise ValueError("every model's Batches must hold the same tensors (the same rows, its own order)")
    if any(t.augment is not None for t in trains):
        raise ValueError("Batches with augment cannot be stacked here")
    params = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in models]).requires_grad_()
              for name, _ in models[0].named_parameters()}
    optimizer = make_optimizer(list(params.values()))
    scheduler = optimizer if isinstance(optimizer, torch.optim.lr_scheduler.LRScheduler) else None
    optimizer = scheduler.optimizer if scheduler else optimizer
    base = models[0]
    prepare, forward = _bmm_forward(base) or (lambda x: x, vmap(lambda p, x: functional_call(base, p, (x,))))
    groups = {}  # loss object -> the models that use it
    for i, fn in enumerate(loss_fns):
        groups.setdefault(id(fn), (fn, []))[1].append(i)
    # (loss, its models, how to select their rows: a slice (a view) for consecutive models, else an index)
    groups = [(fn, rows, slice(rows[0], rows[-1] + 1) if rows == list(range(rows[0], rows[-1] + 1))
               else torch.tensor(rows)) for fn, rows in groups.values()]
    group_of = {i: g for g, (_, rows, _) in enumerate(groups) for i in rows}
    n_rows = len(tensors[0])
    data, given = (tensors[:-1], tensors[-1]) if targets is not None else (tensors, None)
    data = (prepare(data[0]), *data[1:])
    model_rows = torch.arange(k)[:, None]
    hists = [{key: [] for key in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds")} for _ in models]
    active = list(range(k))
    bar = tqdm(total=epochs * len(trains[0]), desc=desc, unit="batch", disable=desc is None)
    with torch_threads(auto_threads(base, copies=k)), bar:
        for epoch in range(epochs):
            start = time.perf_counter()
            base.train()
            orders = torch.stack([t.order() for t in trains])  # each model's own order, as alone
            if targets is not None:  # a new draw of the teacher's outputs for every row, per model
                # (a model that stopped early keeps its last draw: its steps are thrown away)
                per_model = torch.stack([_run(targets, given) if i in active else per_model[i] for i in range(k)])
            totals = torch.zeros(len(groups))
            correct = torch.zeros(k, dtype=torch.long)
            n = 0
            for first in range(0, n_rows, batch_size):
                idx = orders[:, first:first + batch_size]  # (K, B): one gather for the K batches
                flat = idx.flatten()  # index_select: 2x faster than t[idx] here
                xb, yb, *extra = (t.index_select(0, flat).view(*idx.shape, *t.shape[1:]) for t in data)
                if targets is not None:
                    extra.append(per_model[model_rows, idx])
                logits = forward(params, xb)
                loss = 0
                for g, (fn, rows, sel) in enumerate(groups):
                    z, y, *e = (a[sel].flatten(0, 1) for a in (logits, yb, *extra))
                    part = fn(z, y, *e)
                    loss = loss + part * len(rows)  # = the sum of the group's models' own mean losses
                    totals[g] += part.detach() * yb.shape[1]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                correct += (logits.detach().argmax(-1) == yb).sum(1)
                n += yb.shape[1]
                bar.update()
            if scheduler is not None:
                scheduler.step()
            seconds = time.perf_counter() - start
            val_data = val if targets is None or val is None else (*val[:-1], _run(targets, val[-1]))
            for i in list(active):
                _copy_into(models[i], params, i)
                h = hists[i]
                h["train_loss"].append(float(totals[group_of[i]]) / n)
                h["train_acc"].append(float(correct[i]) / n)
                if val is not None:
                    vl, va = evaluate(models[i], *val_data, loss_fn=loss_fns[i])
                    h["val_loss"].append(vl)
                    h["val_acc"].append(va)
                h["seconds"].append(seconds)
                if early_stopping is not None and early_stopping[i].step(h["val_loss"][-1], models[i], epoch):
                    active.remove(i)
            bar.set_postfix({"epoch": f"{epoch + 1}/{epochs}", "training": f"{len(active)}/{k}",
                             "loss": f"{float(totals.sum()) / n / len(groups):.4f}"})
            if not active:
                bar.total = bar.n  # every model stopped early: the bar ends full
                break
    for i, m in enumerate(models):
        if early_stopping is not None and early_stopping[i].best_state is not None:
            m.load_state_dict(early_stopping[i].best_state)
            hists[i]["best_epoch"] = early_stopping[i].best_epoch
    return hists


def _run(module, x: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    """``module`` on the rows of ``x``, ``chunk`` rows at a time; without gradients, on all threads."""
    with torch.no_grad(), torch_threads(ALL_THREADS):
        return torch.cat([module(x[i:i + chunk]) for i in range(0, len(x), chunk)])


def _bmm_forward(model: torch.nn.Module):
    """``(prepare, forward)`` for K stacked copies of ``model`` with batched matrix products, for a
    ``Sequential`` of ``Flatten``, ``Linear``, ``ReLU`` and :class:`~kdlib.models.WindowConv2d`:
    ``prepare(x)`` once on the whole input tensor, then ``forward(params, xb)`` on (K, B, ...)
    batches of its rows; None for any other model (:func:`fit_stacked` then uses ``vmap``, the same
    numbers with more fixed cost per step). ``prepare`` cuts the images into a first
    ``WindowConv2d``'s windows once, so that no batch copies them again (else it returns x)."""
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
                name, m = arg
                w, b = params[f"{name}.weight"], params[f"{name}.bias"]  # (K, out, c, s, s), (K, out)
                kk, nb = x.shape[:2]
                if x.ndim == 4:  # (K, B, windows, c s s): cut by prepare
                    gh, gw = grid
                else:  # (K, B, c, h, w): images
                    gh, gw = x.shape[3] // m.kernel_size[0], x.shape[4] // m.kernel_size[0]
                    x = m.windows(x.flatten(0, 1)).view(kk, nb, gh * gw, -1)
                win = x.flatten(1, 2)
                out = torch.baddbmm(b.unsqueeze(1), win, w.flatten(2).transpose(1, 2))  # (K, B*windows, out)
                x = out.reshape(kk, nb, gh, gw, -1).permute(0, 1, 4, 2, 3)
        return x
    return prepare, forward


@torch.no_grad()
def _copy_into(model: torch.nn.Module, params: dict, i: int) -> None:
    """Write model ``i``'s slice of the stacked parameters into ``model``."""
    for name, p in model.named_parameters():
        p.copy_(params[name][i])
