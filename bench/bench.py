"""Speed benchmark: run with `make bench` (or `python bench/bench.py [--skip-notebooks]`).

Every training loop of the series is measured against the machine's own limit:

1. the machine: CPU model, cores, torch version and threads, bf16 autocast, AVX-512/AVX2/AMX;
2. the limits: the machine's matmul rate in each precision a loop runs in (2048 x 2048 @ 2048 x
   2048, torch's default threads, best of a few repetitions before the loops and a few after), in
   GFLOP/s: float32, and bf16 (bf16 tensors) where the hardware has it (``config.bf16()``);
3. every training loop of notebooks 02-06 with its notebook's batch size, optimiser, loss, memory
   format and thread count (``fast.threads_for(model)``, as the recipes
   runs it), on real MNIST / CIFAR-10 tensors on the CPU, as images/s and as a fraction of the
   matmul rate of the loop's precision: 'bf16' for a loop kdlib trains under bf16 autocast (a
   convnet in channels_last where ``config.bf16()``, see ``train._runner``), else 'fp32'; so a
   fraction is the loop's share of the limit it can reach, at most 100%.
   FLOPs per image are counted with ``torch.utils.flop_counter.FlopCounterMode`` over the forward
   and backward pass of one training step (loss included, so a teacher that runs inside the loss is
   counted; the optimizer step is not), divided by the batch size. The models are fresh and
   untrained (speed does not depend on the weights) and a few seconds of steps are timed per loop
   (best of two after a warm-up). The note column splits one step's time into data (batch slicing,
   augmentation), forward + loss, backward and optimizer step. Two comparisons the README reports
   are kept: pytorch/examples' textbook MNIST loop (torchvision dataset + DataLoader, batch 64)
   against kdlib's loop for the seed teacher, and a 784-16-10 student epoch on cached teacher
   logits against a teacher forward on every batch (a fraction of the epoch, scaled to 48,000);
   and notebook 03's blog-teacher trunk with kdlib's allocator setting and with glibc's default
   (``kdlib.fast.memory``, ``KDLIB_MALLOC=1``, in two fresh processes);
4. wall time of every notebook in fast mode (run now with nbclient, unless ``--skip-notebooks``)
   and in full mode (as recorded by the last `make notebooks` in bench/notebook_times.json), and
   the per-part wall times a notebook printed in its committed full-length run.

Prints one markdown table of the loops (ready for the README) and one of the notebook times, writes
the same rows with the machine and the date to bench/results.json, and states its own run time.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from kdlib import config, data, fast, losses, models, recipes, train

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
TIMES = ROOT / "bench" / "notebook_times.json"
EPOCH = 48000  # the seed's training split: the student epochs are scaled to it
SECONDS = 1.0  # wall time per timed repetition of a loop (the step count adapts to the machine)


# ---- 1. The machine ---------------------------------------------------------------------------

def cpu_flags() -> set[str]:
    """The CPU's feature flags (/proc/cpuinfo; empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine_info() -> dict:
    """CPU model, cores, torch version and threads, bf16 autocast, vector extensions, date."""
    model = config.cpu_name()
    flags = cpu_flags()
    vector = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    return {"cpu": model, "cores": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "bf16": config.bf16(), "vector": vector,
            "date": time.strftime("%Y-%m-%d"), "load_average": load_average()}


def load_average() -> float | None:
    """The 1-minute load average (runnable processes; None where the OS has none): above the core
    count, other work competes for the cores and every rate below is pessimistic."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


# ---- 2. The limit -----------------------------------------------------------------------------

def matmul_gflops(n: int = 2048, reps: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of an n x n @ n x n matmul (2 n^3 FLOPs) at torch's default threads, best of ``reps``
    after one warm-up."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def matmul_rates(bf16: bool) -> dict[str, float]:
    """The limit of each precision, ``{precision: GFLOP/s}``: 'fp32' always, 'bf16' (bf16 tensors)
    where ``bf16`` (the hardware has it: ``config.bf16()``)."""
    rates = {"fp32": matmul_gflops()}
    if bf16:
        rates["bf16"] = matmul_gflops(dtype=torch.bfloat16)
    return rates


def best_rates(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Per precision, the better of two measurements of the limit (on a busy machine one of them
    may have caught a bad moment)."""
    return {p: max(before[p], after[p]) for p in before}


def fraction(images_per_s: float, gflop_per_image: float, precision: str, rates: dict[str, float]) -> float:
    """A loop's share of its limit: images/s x GFLOP per image / the matmul GFLOP/s of the precision
    it runs in (``rates[precision]``), so a bf16 loop is measured against the bf16 rate."""
    if precision not in rates:
        raise ValueError(f"precision {precision!r}: no matmul rate measured for it (rates: {sorted(rates)})")
    return images_per_s * gflop_per_image / rates[precision]


def loop_precision(model: torch.nn.Module) -> str:
    """'bf16' where kdlib trains ``model`` under bf16 autocast (``train._runner``: a convnet in
    channels_last where ``config.bf16()``), else 'fp32'."""
    _, autocast = train._runner(model)
    device = next(model.parameters()).device.type
    with autocast():
        bf16 = torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.bfloat16
    return "bf16" if bf16 else "fp32"


# ---- 3. The loops -----------------------------------------------------------------------------

def step_flops(model: torch.nn.Module, batch: tuple, loss_fn=train.cross_entropy) -> float:
    """FLOPs per image of one training step's forward and backward pass (loss included, optimizer
    step not), as ``FlopCounterMode`` counts them, divided by the batch size. The gradients are
    cleared afterwards. Memory format and autocast do not change the count."""
    xb, yb, *extra = batch
    model.train()
    with FlopCounterMode(display=False) as counter:
        loss_fn(model(xb).float(), yb, *extra).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(yb)


def time_loop(model: torch.nn.Module, optimizer, tensors: tuple, batch_size: int,
              loss_fn=train.cross_entropy, augment=None, seconds: float = SECONDS, reps: int = 2,
              threads: int | None | str = "auto", max_batches: int | None = None) -> float:
    """Images per second of ``train.train_epoch`` (kdlib's loop, as ``train.fit`` runs it) on rows
    of ``tensors``: a warm-up of two batches, then ``reps`` timed passes of about ``seconds`` each
    (at least 3 batches, at most the data or ``max_batches``); the best pass counts.
    ``threads="auto"``: ``fast.threads.auto_threads(model)``, as the recipes; else that count (None: as is).
    """
    n_rows = len(tensors[0])
    gen = torch.Generator().manual_seed(0)
    with fast.torch_threads(fast.threads.auto_threads(model) if threads == "auto" else threads):
        warm = tuple(t[: 2 * batch_size] for t in tensors)
        start = time.perf_counter()
        train.train_epoch(model, optimizer, train.Batches(*warm, batch_size=batch_size, generator=gen,
                                                          augment=augment), loss_fn)
        per_batch = (time.perf_counter() - start) / 2
        n_batches = max(3, int(seconds / per_batch))
        n_batches = min(n_batches, max_batches or n_batches, n_rows // batch_size)
        part = tuple(t[: n_batches * batch_size] for t in tensors)
        best = float("inf")
        for _ in range(reps):
            start = time.perf_counter()
            train.train_epoch(model, optimizer, train.Batches(*part, batch_size=batch_size, generator=gen,
                                                              augment=augment), loss_fn)
            best = min(best, time.perf_counter() - start)
    return n_batches * batch_size / best


def step_breakdown(model: torch.nn.Module, optimizer, tensors: tuple, batch_size: int,
                   loss_fn=train.cross_entropy, augment=None, steps: int = 6,
                   threads: int | None | str = "auto") -> dict:
    """Share of one training step's wall time in each phase, over ``steps`` batches (after one
    warm-up batch), with ``train.train_epoch``'s code split into: ``data`` (slicing the shuffled
    batch, augmentation, memory format), ``forward`` (model and loss, autocast as kdlib uses it),
    ``backward`` and ``optimizer`` (zero_grad and step). ``threads``: as :func:`time_loop`."""
    steps = max(1, min(steps, len(tensors[0]) // batch_size - 1))  # no more than the data holds
    prepare, autocast = train._runner(model)
    gen = torch.Generator().manual_seed(1)
    part = tuple(t[: (steps + 1) * batch_size] for t in tensors)
    phases = dict.fromkeys(("data", "forward", "backward", "optimizer"), 0.0)
    dev = next(model.parameters()).device
    model.train()
    with fast.torch_threads(fast.threads.auto_threads(model) if threads == "auto" else threads):
        it = iter(train.Batches(*part, batch_size=batch_size, generator=gen, augment=augment))
        for i in range(steps + 1):
            t0 = time.perf_counter()
            xb, yb, *extra = next(it)
            xb, yb, extra = prepare(xb), yb.to(dev), [e.to(dev) for e in extra]
            t1 = time.perf_counter()
            with autocast():
                logits = model(xb)
            loss = loss_fn(logits.float(), yb, *extra)
            t2 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            t3 = time.perf_counter()
            optimizer.step()
            t4 = time.perf_counter()
            if i:  # the first batch is the warm-up
                for k, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    phases[k] += dt
    total = sum(phases.values())
    return {k: v / total for k, v in phases.items()} | {"step_ms": 1e3 * total / steps}


@dataclass
class Loop:
    """One training loop as a notebook runs it."""
    name: str
    notebook: str
    build: object  # () -> (model, optimizer)
    tensors: tuple  # (x, y, *extra): rows to train on
    batch_size: int
    loss_fn: object = train.cross_entropy
    augment: object = None
    note: str = ""
    threads: object = "auto"
    precision: str | None = None  # None: as kdlib trains the model (loop_precision)


@dataclass
class Row:
    loop: str
    batch: int
    gflop_per_image: float
    images_per_s: float
    precision: str  # 'bf16' (trained under bf16 autocast) or 'fp32'
    note: str = ""
    breakdown: dict = field(default_factory=dict)
    fraction: float = float("nan")  # of the matmul rate of its precision: set by against()

    def against(self, rates: dict[str, float]) -> Row:
        """Sets the fraction against ``rates`` (``{precision: GFLOP/s}``); returns the row."""
        self.fraction = fraction(self.images_per_s, self.gflop_per_image, self.precision, rates)
        return self

    def markdown(self) -> str:
        note = self.note
        if self.breakdown:
            b = self.breakdown
            split = (f"step {b['step_ms']:.1f} ms: data {b['data']:.0%}, forward {b['forward']:.0%}, "
                     f"backward {b['backward']:.0%}, optimizer {b['optimizer']:.0%}")
            note = f"{note}; {split}" if note else split
        return (f"| {self.loop} | {self.batch} | {self.gflop_per_image:.4g} | {self.images_per_s:,.0f} | "
                f"{self.precision} | {self.fraction:.1%} | {note} |")


def measure(loop: Loop, rates: dict[str, float], breakdown: bool = True, **kw) -> Row:
    """FLOPs, images/s, precision and (``breakdown``) the phase split of ``loop``; ``rates``: the
    matmul GFLOP/s of each precision (:func:`matmul_rates`)."""
    b = loop.batch_size
    model, opt = loop.build()
    precision = loop.precision or loop_precision(model)
    flops = step_flops(model, tuple(t[:b] for t in loop.tensors), loop.loss_fn)
    start = time.perf_counter()
    ips = time_loop(model, opt, loop.tensors, b, loop.loss_fn, loop.augment, threads=loop.threads, **kw)
    steps = max(3, min(8, int(kw.get("seconds", SECONDS) * ips / b)))  # about one pass's time
    split = step_breakdown(model, opt, loop.tensors, b, loop.loss_fn, loop.augment, steps,
                           loop.threads) if breakdown else {}
    print(f"  ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
    row = Row(f"{loop.notebook}: {loop.name}", b, flops / 1e9, ips, precision, loop.note, split).against(rates)
    print(row.markdown(), flush=True)
    return row


def channels_last(model: torch.nn.Module) -> torch.nn.Module:
    return model.to(memory_format=torch.channels_last)


def loops() -> list[Loop]:
    """The training loops of notebooks 02-06, each with its recipe's batch size, optimiser, loss
    and memory format (read from kdlib where kdlib defines the recipe)."""
    from kdlib import as_written, noisy

    torch.manual_seed(0)
    mnist = recipes.mnist_split()
    x, y = mnist["train"]
    logits = torch.randn(len(y), 10)  # stands for cached teacher logits (their values do not matter)
    blog_x, blog_y = recipes.mnist_full()["train"]
    ts, bs, st = recipes.teacher_settings(), recipes.blog_teacher_settings(), recipes.STUDENT
    out = [
        Loop("seed teacher TeacherNet (Adadelta, channels_last)", "02",
             lambda: (m := channels_last(models.TeacherNet()), torch.optim.Adadelta(m.parameters(), lr=ts.lr)),
             (x, y), ts.batch_size, note="" if config.bf16() else "no bf16 on this CPU"),
        Loop("seed teacher, float32 contiguous (no channels_last)", "02",
             lambda: (m := models.TeacherNet(), torch.optim.Adadelta(m.parameters(), lr=ts.lr)),
             (x, y), ts.batch_size, note="comparison: the memory format"),
        Loop("blog teacher BlogTeacherNet (fused Adam, channels_last, pixels/255)", "02",
             lambda: (m := channels_last(models.BlogTeacherNet()),
                      torch.optim.Adam(m.parameters(), lr=bs.lr, fused=True)),
             (blog_x, blog_y), bs.batch_size),
        Loop("784-16-10 student, cached logits, hard+soft (fused Adam)", "03",
             lambda: (m := models.StudentNet(), torch.optim.Adam(m.parameters(), lr=st.lr, fused=True)),
             (x, y, logits), st.batch_size, recipes.three_way_loss("hard+soft")),
    ]
    # notebook 03's weak student: the blog teacher's head (dropout on) runs on cached trunk features
    _, head = as_written.split_at_dropout(models.BlogTeacherNet())
    feats = torch.randn(20000, 1024)  # stands for the cached trunk features
    out.append(Loop("blog's weak student WeakStudentNet (Adam), teacher head on cached features", "03",
                    lambda: (m := fast.window_convs(models.WeakStudentNet()), torch.optim.Adam(m.parameters(), lr=1e-4, fused=True)),
                    (blog_x[:20000], blog_y[:20000], feats), 32, weak_student_loss(fast.fast_dropout(head)),
                    note="FLOPs: mostly the teacher head's forward (1024 x 10)"))
    # notebook 05 (Sau & Balasubramanian): CPU-sized CIFAR-10 networks, the paper's MNIST ones
    cifar = noisy.settings("cifar10")
    cx, cy = noisy.load_data(cifar)["train"]
    cv = torch.randn(len(cy), 10)
    mn = noisy.settings("mnist")
    noisy_loss = noisy.noisy_teacher_loss(0.5, 1.0)
    ct, mt = cifar.teacher, mn.teacher
    out += [
        Loop(f"CIFAR-10 teacher SmallVGG({ct.model_kwargs['width']}) (fused Adam, channels_last, flips)", "05",
             lambda: (m := channels_last(noisy.build(ct.model, ct.model_kwargs)),
                      torch.optim.Adam(m.parameters(), lr=ct.lr, fused=True)),
             (cx, cy), ct.batch_size, augment=noisy.random_flip if ct.flip else None),
        Loop("CIFAR-10 student LeNetCIFAR(16, 32, 256), noisy logits (fused Adam, channels_last)", "05",
             lambda: (m := channels_last(noisy.build(cifar.student, cifar.student_kwargs)),
                      torch.optim.Adam(m.parameters(), lr=cifar.student_lrs[0], fused=True)),
             (cx, cy, cv), cifar.student_batch, noisy_loss),
        Loop("MNIST teacher LeNetMNIST (fused Adam, channels_last)", "05",
             lambda: (m := channels_last(noisy.build(mt.model, mt.model_kwargs)),
                      torch.optim.Adam(m.parameters(), lr=mt.lr, fused=True)),
             (x, y), mt.batch_size),
        Loop("MNIST student MLP800, noisy logits (fused Adam)", "05",
             lambda: (m := noisy.build(mn.student, mn.student_kwargs),
                      torch.optim.Adam(m.parameters(), lr=mn.student_lrs[0], fused=True)),
             (x, y, logits), mn.student_batch, noisy_loss),
    ]
    out += hinton_loops(x, y, logits)
    return out


def weak_student_loss(head: torch.nn.Module):
    """Notebook 03's (d) loss for the weak student: the teacher's head (its dropout on) runs on the
    batch's cached trunk features without gradients, then Hinton's distillation loss (T 5, 0.7)."""
    def loss_fn(z, yb, f):
        with torch.no_grad():
            v = head(f)
        return losses.distillation_loss(z, v, yb, 5.0, 0.7)
    return loss_fn


def hinton_loops(x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor) -> list[Loop]:
    """Notebook 06's teacher and student loops (Hinton et al. section 3), where kdlib has them."""
    if not hasattr(models, "MLP"):
        return []
    try:
        from kdlib import augment, hinton
        ts, batch, lr = hinton.teacher_settings(), hinton.BATCH, hinton.LR
        hidden, jitter = ts.hidden, ts.jitter
        t_batch, t_lr, t_in, t_drop = ts.batch_size, ts.lr, ts.input_dropout, ts.dropout
        shift = lambda xb, g: augment.jitter(xb, g, max_shift=jitter)  # noqa: E731
        s_loss = hinton.kd_loss(20.0)  # any T: the same cost
        where = "kdlib.hinton's settings"
    except ImportError:  # the networks exist, the recipe not yet: batch 128, Adam 1e-3
        hidden, t_batch, batch, t_lr, lr, t_in, t_drop, shift = (1200, 1200), 128, 128, 1e-3, 1e-3, 0.2, 0.5, None
        s_loss, where = recipes.three_way_loss("hard+soft"), "assumed recipe (no kdlib.hinton)"
    return [
        Loop(f"teacher MLP{tuple(hidden)}, dropout {t_in}/{t_drop}, jitter (fused Adam)", "06",
             lambda: (m := models.MLP(tuple(hidden), input_dropout=t_in, dropout=t_drop),
                      torch.optim.Adam(m.parameters(), lr=t_lr, fused=True)),
             (x, y), t_batch, augment=shift, note=where),
        Loop("student MLP(800, 800), cached logits, soft + hard (fused Adam)", "06",
             lambda: (m := models.MLP((800, 800)), torch.optim.Adam(m.parameters(), lr=lr, fused=True)),
             (x, y, logits), batch, s_loss, note=where),
    ]


# ---- The two comparisons of the README ----------------------------------------------------------

def write_idx(root: Path, images: np.ndarray, labels: np.ndarray, prefix: str) -> None:
    """Write MNIST's original idx files, so that torchvision's MNIST class reads them unchanged."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    n = len(labels)
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())


def textbook_teacher(rates: dict[str, float], flops: float, seconds: float = SECONDS) -> Row:
    """pytorch/examples' MNIST loop: torchvision dataset + ToTensor + Normalize + DataLoader (batch
    64, shuffled), float32 (against the fp32 rate), torch's default threads, Adadelta; ``flops``:
    per image (the seed teacher's). Two warm-up batches, then about ``seconds`` of batches (best of two passes)."""
    from torchvision import datasets, transforms

    images, labels = data.load("mnist", "train")
    with tempfile.TemporaryDirectory() as tmp:
        write_idx(Path(tmp), images.numpy(), labels.numpy(), "train")
        write_idx(Path(tmp), images[:10].numpy(), labels[:10].numpy(), "t10k")
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
        ds = datasets.MNIST(tmp, train=True, download=False, transform=tf)
        torch.manual_seed(0)
        model = models.TeacherNet()
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
        model.train()

        def run(n_batches: int) -> float:
            loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(64 * n_batches)),
                                                 batch_size=64, shuffle=True)
            start = time.perf_counter()
            for xb, yb in loader:
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
            return time.perf_counter() - start

        n = max(3, int(seconds / (run(2) / 2)))
        ips = 64 * n / min(run(n), run(n))
    row = Row("02: seed teacher, textbook loop (torchvision MNIST + DataLoader, fp32)", 64, flops / 1e9, ips,
              "fp32", "comparison: pytorch/examples' loop").against(rates)
    print(row.markdown(), flush=True)
    return row


def distillation_rows(rates: dict[str, float], x: torch.Tensor, y: torch.Tensor, student_ips: float) -> list[Row]:
    """The 784-16-10 student (hard+soft, fused Adam, batch 64, one thread as ``train.fit``) with a
    frozen TeacherNet forward on every batch, as the seed did (float32, and channels_last + bf16
    where the CPU has bf16: the teacher's forward, nearly all the FLOPs, is then a 'bf16' row), and
    the cost of caching the teacher's logits once (``predict_logits``, float32); each timed on a
    part of the epoch and scaled to 48,000 images. ``student_ips``: the cached-logit loop's rate,
    measured before."""
    st = recipes.STUDENT
    loss = recipes.three_way_loss("hard+soft")
    teacher = train.freeze(models.TeacherNet())
    variants = [("fp32, as the seed", False)] + ([("channels_last + bf16", True)] if config.bf16() else [])
    rows = []
    for what, bf16 in variants:
        t = channels_last(train.freeze(models.TeacherNet())) if bf16 else teacher

        def per_batch(z, yb, xb, t=t, bf16=bf16):  # the teacher runs on every batch (eval, no grad)
            with torch.no_grad(), torch.autocast("cpu", torch.bfloat16) if bf16 else nullcontext():
                v = t(xb.contiguous(memory_format=torch.channels_last) if bf16 else xb).float()
            return loss(z, yb, v)

        loop = Loop(f"784-16-10 student, teacher forward on every batch ({what})", "03",
                    lambda: (m := models.StudentNet(), torch.optim.Adam(m.parameters(), lr=st.lr, fused=True)),
                    (x, y, x), st.batch_size, per_batch, precision="bf16" if bf16 else "fp32")
        row = measure(loop, rates, breakdown=False)
        row.note = (f"FLOPs: the teacher's forward, 1 thread (the student's); 48k epoch "
                    f"{EPOCH / row.images_per_s:.1f} s against {EPOCH / student_ips:.2f} s with cached logits "
                    f"({student_ips / row.images_per_s:.0f}x)")
        rows.append(row)
    # the cache: one forward of the frozen teacher over the split, batches of 1000
    n = 2000
    train.predict_logits(teacher, x[:1000])
    start = time.perf_counter()
    train.predict_logits(teacher, x[:n])
    ips = n / (time.perf_counter() - start)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        teacher(x[:10])
    flops = counter.get_total_flops() / 10
    rows.append(Row("03: caching the seed teacher's logits once (predict_logits, inference)", 1000,
                    flops / 1e9, ips, "fp32", f"48k images once: {EPOCH / ips:.1f} s").against(rates))
    print(rows[-1].markdown(), flush=True)
    return rows


def stacked_rows(rates: dict[str, float], x: torch.Tensor, y: torch.Tensor, singles: dict) -> list[Row]:
    """Notebook 03's tiny students as it trains them: five seeds as one stacked run
    (:func:`kdlib.fast.fit_stacked`, float32), in images/s over all five models; ``singles``: the one-model
    rates of the same loops (images/s), for the speed-up. The weak student's soft targets come from
    the blog teacher's head with :class:`~kdlib.fast.ByteDropout` (notebook 03's fast head) as
    ``fit_stacked``'s ``targets``: a new draw for every row, per model and epoch (its FLOPs are
    counted as the head running inside the loss, the same count per image)."""
    from kdlib import as_written

    st, k = recipes.STUDENT, 5
    logits = torch.randn(len(y), 10)
    _, blog_head = as_written.split_at_dropout(models.BlogTeacherNet())
    fast_head = fast.fast_dropout(blog_head)
    blog_x = x.mul(0.3081).add(0.1307)  # pixels / 255, near enough for timing
    kd = recipes.three_way_loss("hard+soft")
    cases = [("784-16-10 student", models.StudentNet, (x, y, logits), st.batch_size, kd, None, kd, 1e-3, 3000),
             ("blog's weak student", lambda: fast.window_convs(models.WeakStudentNet()), (blog_x, y, torch.randn(len(y), 1024)), 32,
              lambda z, yb, v: losses.distillation_loss(z, v, yb, 5.0, 0.7), fast_head,
              weak_student_loss(fast_head), 1e-4, 1500)]
    rows = []
    for name, make, tensors, batch, loss_fn, targets, flops_loss, lr, n in cases:
        part = tuple(t[:n] for t in tensors)

        def run(part=part, make=make, batch=batch, loss_fn=loss_fn, targets=targets, lr=lr):
            ms = [make() for _ in range(k)]
            bs = [train.Batches(*part, batch_size=batch, generator=torch.Generator().manual_seed(i)) for i in range(k)]
            start = time.perf_counter()
            fast.fit_stacked(ms, lambda p: torch.optim.Adam(p, lr=lr, fused=True), bs, epochs=1,
                                loss_fn=loss_fn, targets=targets, desc=None)
            return time.perf_counter() - start
        run()  # warm-up
        ips = k * n / min(run(), run())
        flops = step_flops(make(), tuple(t[:batch] for t in tensors), flops_loss)
        single = singles.get(name)
        note = f"{single and ips / single:.1f}x one model at a time" if single else ""
        rows.append(Row(f"03: {name}, {k} seeds stacked (kdlib.fast)", batch, flops / 1e9, ips,
                        "fp32", note).against(rates))
        print(rows[-1].markdown(), flush=True)
    return rows


ALLOCATOR_PROBE = """
import time, torch
import kdlib
from kdlib import as_written, models, train
trunk, _ = as_written.split_at_dropout(models.BlogTeacherNet().to(memory_format=torch.channels_last))
x = torch.rand(3000, 1, 28, 28)
train.predict_logits(trunk, x[:1000])
start = time.perf_counter()
train.predict_logits(trunk, x)
print(kdlib.MALLOC_TUNED, len(x) / (time.perf_counter() - start))
"""


def allocator_rows(rates: dict[str, float]) -> list[Row]:
    """Notebook 03's blog-teacher trunk over 3,000 images (``predict_logits``, batches of 1000,
    channels_last, float32) in two fresh processes: with kdlib's allocator setting
    (``KDLIB_MALLOC=1``: :mod:`kdlib.fast.memory`) and with glibc's default (``KDLIB_MALLOC=0``)."""
    from kdlib import as_written

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        as_written.split_at_dropout(models.BlogTeacherNet())[0](torch.rand(10, 1, 28, 28))
    flops = counter.get_total_flops() / 10
    rows = []
    for setting, env in [("kdlib's allocator setting", "1"), ("glibc's default allocator, KDLIB_MALLOC=0", "0")]:
        out = subprocess.run([sys.executable, "-c", ALLOCATOR_PROBE], capture_output=True, text=True, check=True,
                             env=os.environ | {"KDLIB_MALLOC": env}, cwd=ROOT)
        tuned, ips = out.stdout.split()
        rows.append(Row(f"03: blog teacher trunk, inference ({setting})", 1000, flops / 1e9, float(ips), "fp32",
                        f"allocator tuned: {tuned}; 70k images: {70000 / float(ips):.0f} s").against(rates))
        print(rows[-1].markdown(), flush=True)
    return rows


# ---- 4. Notebook wall times ---------------------------------------------------------------------

def part_times() -> dict:
    """Per-part wall times that a notebook's last cells printed (a ``| part | seconds |`` table,
    further columns such as a budget ignored) in its committed (full-length) run, per notebook."""
    out = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            for o in cell.get("outputs", []):
                text = "".join(o.get("data", {}).get("text/markdown", ""))
                if text.startswith("| part | seconds |"):
                    rows = [line.split("|")[1:3] for line in text.splitlines()[2:]]
                    out[path.name] = {part.strip(): float(sec) for part, sec in rows}
    return out


def notebook_times_fast(paths: list[Path] | None = None, timeout: int = 600) -> dict:
    """Seconds to execute each notebook in fast mode (``KDLIB_FAST=1``) with nbclient, as
    scripts/run_notebooks.py runs them; the notebook files are not changed (the jupytext .py
    source is read when there is one). A failed run: NaN."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    times = {}
    old = os.environ.get("KDLIB_FAST")
    os.environ["KDLIB_FAST"] = "1"  # the kernel inherits it
    try:
        for path in paths or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
            src = path.with_suffix(".py")
            nb = jupytext.read(src) if src.exists() else nbformat.read(path, as_version=4)
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent)}})
            start = time.perf_counter()
            try:
                client.execute()
                times[path.name] = time.perf_counter() - start
            except Exception as e:  # noqa: BLE001 - a failed notebook is reported, the rest still run
                print(f"  {path.name} failed: {type(e).__name__}: {str(e)[:200]}", flush=True)
                times[path.name] = float("nan")
            print(f"  {path.name}: {times[path.name]:.0f} s (fast mode)", flush=True)
    finally:
        if old is None:
            os.environ.pop("KDLIB_FAST", None)
        else:
            os.environ["KDLIB_FAST"] = old
    return times


def notebook_rows(fast: dict) -> list[dict]:
    full = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    rows = []
    for name in sorted(set(fast) | set(full)):
        f = full.get(name, {}).get("full")
        fs = fast.get(name)
        rows.append({"notebook": name, "fast_s": None if fs is None or fs != fs else round(fs, 1),
                     "fast_failed": fs is not None and fs != fs,
                     "full_s": f["seconds"] if f else None, "full_date": f["date"] if f else None})
    for name, parts in part_times().items():
        for part, sec in parts.items():
            rows.append({"notebook": f"{name}, {part}", "fast_s": None, "full_s": sec,
                         "full_date": "committed run"})
    return rows


def notebook_markdown(rows: list[dict]) -> str:
    lines = ["| notebook | fast mode (now) | full mode (recorded) |", "|---|---|---|"]
    for r in rows:
        fast = "failed" if r.get("fast_failed") else "skipped" if r["fast_s"] is None else f"{r['fast_s']:.0f} s"
        full = "not recorded" if r["full_s"] is None else f"{r['full_s']:.0f} s ({r['full_date']})"
        lines.append(f"| {r['notebook']} | {fast} | {full} |")
    return "\n".join(lines)


# ---- main -------------------------------------------------------------------------------------

def run_loops(rates: dict[str, float], args: argparse.Namespace) -> list[Row]:
    """Every loop of :func:`loops`, with the comparisons the README reports placed after the loop
    they compare with; fractions against ``rates`` (``{precision: GFLOP/s}``)."""
    rows: list[Row] = []
    all_loops = loops()
    for loop in all_loops:
        rows.append(measure(loop, rates, breakdown=not args.no_breakdown, seconds=args.seconds))
        if loop.name.startswith("seed teacher TeacherNet"):
            seed = rows[-1]
            rows.append(textbook_teacher(rates, seed.gflop_per_image * 1e9, args.seconds))
            times = f"{seed.images_per_s / rows[-1].images_per_s:.1f}x the textbook loop"
            seed.note = f"{seed.note}; {times}" if seed.note else times
        if loop.name.startswith("784-16-10 student"):
            x, y = all_loops[0].tensors
            rows += distillation_rows(rates, x, y, rows[-1].images_per_s)
        if loop.name.startswith("blog's weak student"):
            singles = {"784-16-10 student": next(r.images_per_s for r in rows if "784-16-10 student, cached" in r.loop),
                       "blog's weak student": rows[-1].images_per_s}
            rows += stacked_rows(rates, x, y, singles)
            rows += allocator_rows(rates)
    return rows


def rates_text(rates: dict[str, float]) -> str:
    """``{'fp32': 182.0, 'bf16': 787.0}`` as 'fp32 182.0 GFLOP/s, bf16 787.0 GFLOP/s'."""
    return ", ".join(f"{p} {r:.1f} GFLOP/s" for p, r in rates.items())


def record_limits(info: dict, before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """The limit of each precision, the best of the measurements before and after the loops, written
    into ``info`` (``matmul_gflops_<precision>`` and its ``_before`` / ``_after``); returns it."""
    rates = best_rates(before, after)
    for p in rates:
        info[f"matmul_gflops_{p}"] = round(rates[p], 1)
        info[f"matmul_gflops_{p}_before"], info[f"matmul_gflops_{p}_after"] = round(before[p], 1), round(after[p], 1)
    return rates


def report(info: dict, rows: list[Row], nb_rows: list[dict], seconds: float, output: Path) -> dict:
    """Prints the two tables and the machine line, writes the JSON results to ``output``."""
    print("\n| loop | batch | GFLOP per image | images/s | precision | fraction of its precision's matmul rate "
          "| note |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(r.markdown())
    print()
    print(notebook_markdown(nb_rows))
    limits = ", ".join(f"{p} matmul {info[f'matmul_gflops_{p}']:.1f} GFLOP/s (before / after the loops: "
                       f"{info[f'matmul_gflops_{p}_before']:.1f} / {info[f'matmul_gflops_{p}_after']:.1f})"
                       for p in ("fp32", "bf16") if f"matmul_gflops_{p}" in info)
    print(f"\nmachine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, bf16 autocast {info['bf16']}, "
          f"{limits}, load average {info['load_average']}, {info['date']}")
    print(f"benchmark run time: {seconds:.0f} s")
    result = {"machine": info, "run_seconds": round(seconds, 1),
              "loops": [asdict(r) | {"gflop_per_image": round(r.gflop_per_image, 6),
                                     "images_per_s": round(r.images_per_s, 1), "fraction": round(r.fraction, 4),
                                     "breakdown": {k: round(v, 3) for k, v in r.breakdown.items()}}
                        for r in rows],
              "notebooks": nb_rows}
    output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {output}")
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-notebooks", action="store_true", help="skip the fast-mode notebook runs")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the per-phase split of each step")
    ap.add_argument("--seconds", type=float, default=SECONDS, help="seconds per timed pass of a loop")
    ap.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    os.environ.pop("KDLIB_FAST", None)  # full-size recipes (the data is cut here, not by fast mode)
    info = machine_info()
    print(f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, {info['threads']} threads, "
          f"bf16 autocast: {info['bf16']}, {' '.join(info['vector']) or 'no AVX2/AVX-512'}", flush=True)
    before = matmul_rates(info["bf16"])
    print(f"limits: matmul 2048 x 2048 @ 2048 x 2048, {info['threads']} threads: {rates_text(before)}", flush=True)
    if info["load_average"] is not None and info["load_average"] > 0.5 * (info["cores"] or 1):
        print(f"warning: load average {info['load_average']} on {info['cores']} cores: other work is running, "
              "the rates below are pessimistic and noisy", flush=True)
    print("\nloops as measured (fractions of the matmul rate of each row's precision above; the final table "
          "uses the best of this one and one after the loops):", flush=True)
    rows = run_loops(before, args)
    # the limits again, after the loops: the machine's limit in each precision is the best of both
    # measurements (on a busy machine one of them may have caught a bad moment); fractions recomputed
    after = matmul_rates(info["bf16"])
    info["load_average_after"] = load_average()
    rates = record_limits(info, before, after)
    for r in rows:
        r.against(rates)
    print(f"matmul again after the loops: {rates_text(after)} (load average {info['load_average']} -> "
          f"{info['load_average_after']}); the limits, the best of both: {rates_text(rates)}", flush=True)
    fast = {} if args.skip_notebooks else notebook_times_fast()
    return report(info, rows, notebook_rows(fast), time.perf_counter() - start, args.output)


if __name__ == "__main__":
    main()
