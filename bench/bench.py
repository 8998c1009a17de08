"""Speed benchmark: run with `make bench` (or `python bench/bench.py [--skip-notebooks]`).

Measures, on this machine, in one run and on the same data:
1. teacher training, images/s: the textbook loop of pytorch/examples' MNIST (torchvision MNIST
   dataset, ToTensor + Normalize, DataLoader, batch 64, float32) against kdlib's loop (whole
   tensors, channels_last, bf16 autocast where the CPU has it);
2. one distillation epoch of the 784-16-10 student: cached teacher logits against a teacher
   forward on every batch;
3. wall time of every notebook in fast mode (run now) and in full mode (as recorded by the last
   `make notebooks`, in bench/notebook_times.json), and notebook 05's wall time per part (the
   table in the last cell of its committed full-length run).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import kdlib
from kdlib import data, models, recipes, train

ROOT = Path(__file__).resolve().parent.parent
N_TEACHER = 6400  # images per timed teacher run (100 batches of 64)


def write_idx(root: Path, images: np.ndarray, labels: np.ndarray, prefix: str) -> None:
    """Write MNIST's original idx files, so that torchvision's MNIST class reads them unchanged."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    n = len(labels)
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())


def textbook_teacher(n: int) -> float:
    """pytorch/examples' MNIST loop: torchvision dataset + ToTensor + Normalize + DataLoader."""
    from torchvision import datasets, transforms

    images, labels = data.load("mnist", "train")
    with tempfile.TemporaryDirectory() as tmp:
        write_idx(Path(tmp), images.numpy(), labels.numpy(), "train")
        write_idx(Path(tmp), images[:10].numpy(), labels[:10].numpy(), "t10k")
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
        ds = torch.utils.data.Subset(datasets.MNIST(tmp, train=True, download=False, transform=tf), range(n))
        loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True)
        torch.manual_seed(0)
        model = models.TeacherNet()
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
        model.train()
        start = time.perf_counter()
        for x, y in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        return n / (time.perf_counter() - start)


def kdlib_teacher(n: int, channels_last: bool) -> float:
    """kdlib's loop; a channels_last model also gets bf16 autocast where kdlib.config.bf16()."""
    x, y = recipes.mnist_split()["train"]
    gen = kdlib.seed_everything(0)
    model = models.TeacherNet()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    start = time.perf_counter()
    train.train_epoch(model, opt, train.Batches(x[:n], y[:n], generator=gen))
    return n / (time.perf_counter() - start)


def distillation_epochs(n: int) -> tuple[float, float, float, float]:
    """Seconds for one hard+soft student epoch with cached logits, with an fp32 and a bf16 teacher
    forward per batch, and for computing the cached logits once."""
    teacher, info = recipes.mnist_teacher(progress=False)
    bf16 = info["settings"].bf16
    x, y = recipes.mnist_split()["train"]
    x, y = x[:n], y[:n]
    loss = recipes.student_loss("hard+soft")

    def epoch(loss_fn, *extra):
        gen = kdlib.seed_everything(0)
        student = models.StudentNet()
        opt = torch.optim.Adam(student.parameters(), lr=1e-3, fused=True)
        with train.torch_threads(train.auto_threads(student)):
            start = time.perf_counter()
            train.train_epoch(student, opt, train.Batches(x, y, *extra, generator=gen), loss_fn)
            return time.perf_counter() - start

    def per_batch(fast: bool):
        def loss_fn(z, yb, xb):  # the teacher runs on every batch (eval mode, no grad)
            with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=fast and bf16):
                v = teacher(xb.contiguous(memory_format=torch.channels_last) if fast else xb).float()
            return loss(z, yb, v)
        return loss_fn

    start = time.perf_counter()
    v = train.predict_logits(teacher, x)
    cache_s = time.perf_counter() - start
    cached = epoch(loss, v)
    forward_fp32 = epoch(per_batch(False), x)
    forward_fast = epoch(per_batch(True), x)
    return cached, forward_fp32, forward_fast, cache_s


def noisy_part_times() -> dict:
    """Per-part wall times of notebook 05, read from the table its last cell printed in the
    committed (full-length) run."""
    nb = json.loads((ROOT / "notebooks" / "05_noisy_teachers.ipynb").read_text())
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("data", {}).get("text/markdown", ""))
            if text.startswith("| part | seconds |"):
                rows = [line.strip("| ").split(" | ") for line in text.splitlines()[2:]]
                return {part: int(sec) for part, sec in rows}
    return {}


def notebook_times_fast() -> dict:
    times = {}
    for nb in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook",
                                "--execute", str(nb), "--output-dir", tmp],
                               env={**os.environ, "KDLIB_FAST": "1"}, capture_output=True, text=True)
            times[nb.name] = time.perf_counter() - start if r.returncode == 0 else float("nan")
        print(f"  {nb.name}: {times[nb.name]:.0f} s (fast mode)", flush=True)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-notebooks", action="store_true", help="skip the fast-mode notebook runs")
    args = ap.parse_args()
    os.environ.pop("KDLIB_FAST", None)
    bf16 = kdlib.config.bf16()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16 autocast: {bf16}", flush=True)
    rows = []
    textbook = textbook_teacher(N_TEACHER)
    rows.append(("teacher training, textbook loop (DataLoader, fp32)", f"{textbook:.0f} images/s", "1.0x"))
    for cl, name in [(False, "kdlib loop, fp32"), (True, f"kdlib loop, channels_last{', bf16' if bf16 else ''} (used)")]:
        ips = kdlib_teacher(N_TEACHER, cl)
        rows.append((f"teacher training, {name}", f"{ips:.0f} images/s", f"{ips / textbook:.1f}x"))
        print(rows[-1], flush=True)
    cached, forward, forward_fast, cache_s = distillation_epochs(48000)
    rows.append(("student epoch (48k), teacher forward per batch (fp32, as the seed)", f"{forward:.1f} s", "1.0x"))
    rows.append(("student epoch (48k), teacher forward per batch (bf16, channels_last)",
                 f"{forward_fast:.1f} s", f"{forward / forward_fast:.1f}x"))
    rows.append(("student epoch (48k), cached teacher logits", f"{cached:.2f} s",
                 f"{forward / cached:.0f}x ({forward_fast / cached:.0f}x against bf16 per batch)"))
    rows.append(("computing the cached logits once (48k)", f"{cache_s:.1f} s", ""))
    print(rows[-4:], flush=True)
    fast = {} if args.skip_notebooks else notebook_times_fast()
    times_file = ROOT / "bench" / "notebook_times.json"
    full = json.loads(times_file.read_text()) if times_file.exists() else {}
    for nb in sorted(set(fast) | set(full)):
        f = full.get(nb, {}).get("full", {})
        full_s = f"{f['seconds']:.0f} s (recorded {f['date']})" if f else "not recorded"
        fast_s = f"{fast[nb]:.0f} s" if nb in fast else "skipped"
        rows.append((f"notebook {nb}: fast mode / full mode", fast_s, full_s))
    for part, sec in noisy_part_times().items():
        rows.append((f"notebook 05, {part}, full mode", f"{sec} s", "from the committed run's last cell"))
    width = max(len(r[0]) for r in rows)
    print("\n| measurement | value | ratio / note |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]:{width}s} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
