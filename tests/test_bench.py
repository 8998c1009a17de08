"""bench/bench.py's helpers on tiny models: the FLOP count and the loop timing (no timing thresholds)."""
import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from kdlib import models

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("kdlib_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def batch(n=8, extra=()):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g), *extra)


def test_linear_forward_backward_flops(bench):
    # forward 2 * 784 * 16 per image; backward: the weight gradient, another 2 * 784 * 16. The
    # input's gradient is not computed for data that needs none, so not 3 * 2 * 784 * 16...
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 16))
    loss = lambda z, y: z.pow(2).mean()  # noqa: E731
    assert bench.step_flops(model, batch(), loss) == 2 * 2 * 784 * 16
    # ... which it is when the input needs a gradient (as for a layer inside a network)
    x, y = batch()
    assert bench.step_flops(model, (x.requires_grad_(), y), loss) == 3 * 2 * 784 * 16
    assert all(p.grad is None for p in model.parameters())  # cleared after counting


def test_student_flops_count_both_layers_and_the_cached_logits_cost_nothing(bench):
    # 784-16-10: the first layer forward + weight gradient, the second forward + both gradients
    expected = 2 * 2 * 784 * 16 + 3 * 2 * 16 * 10
    model = models.StudentNet()
    assert bench.step_flops(model, batch()) == expected
    from kdlib import recipes
    v = torch.randn(8, 10)
    assert bench.step_flops(model, batch(extra=(v,)), recipes.student_loss("hard+soft")) == expected


def test_a_teacher_inside_the_loss_is_counted(bench):
    head = nn.Linear(32, 10)
    model = models.StudentNet()

    def loss_fn(z, y, f):
        with torch.no_grad():
            v = head(f)
        return (z - v).pow(2).mean()
    with_head = bench.step_flops(model, batch(extra=(torch.randn(8, 32),)), loss_fn)
    assert with_head == bench.step_flops(model, batch()) + 2 * 32 * 10


def test_time_loop_and_breakdown_on_a_tiny_model(bench):
    x, y = batch(256)
    threads = torch.get_num_threads()
    model = models.StudentNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rate = bench.time_loop(model, opt, (x, y), 32, seconds=0.01, reps=1)
    assert math.isfinite(rate) and rate > 0
    split = bench.step_breakdown(model, opt, (x, y), 32, steps=3)
    shares = [split[k] for k in ("data", "forward", "backward", "optimizer")]
    assert all(s >= 0 for s in shares) and math.isclose(sum(shares), 1.0)
    assert split["step_ms"] > 0
    assert torch.get_num_threads() == threads  # the tiny model ran on one thread, then restored


def test_measure_row_and_matmul_rate(bench):
    x, y = batch(128)
    loop = bench.Loop("tiny", "00", lambda: (m := models.StudentNet(), torch.optim.SGD(m.parameters(), lr=0.1)),
                      (x, y), 32)
    row = bench.measure(loop, rate=10.0, breakdown=True, seconds=0.01, reps=1)
    assert row.gflop_per_image == bench.step_flops(models.StudentNet(), batch(32)) / 1e9
    assert row.images_per_s > 0 and row.fraction == pytest.approx(row.images_per_s * row.gflop_per_image / 10)
    assert row.markdown().count("|") == 7  # six columns
    assert bench.matmul_gflops(n=64, reps=1) > 0
    info = bench.machine_info()
    assert {"cpu", "cores", "torch", "threads", "bf16", "vector", "date"} <= set(info)


def test_part_times_reads_the_committed_part_tables(bench):
    """Notebook 05 prints | part | seconds | budget |: the budget column is not a time."""
    parts = bench.part_times()["05_noisy_teachers.ipynb"]
    assert {"MNIST part", "CIFAR-10 part", "whole notebook"} <= set(parts)
    assert all(isinstance(v, float) and v > 0 for v in parts.values())
