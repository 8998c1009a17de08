"""bench/bench.py's helpers on tiny models: the FLOP count and the loop timing (no timing thresholds)."""
import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from kdlib import config, models

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
    assert bench.step_flops(model, batch(extra=(v,)), recipes.three_way_loss("hard+soft")) == expected


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
    row = bench.measure(loop, {"fp32": 10.0, "bf16": 40.0}, breakdown=True, seconds=0.01, reps=1)
    assert row.gflop_per_image == bench.step_flops(models.StudentNet(), batch(32)) / 1e9
    assert row.precision == "fp32"  # an MLP: no autocast, whatever the CPU
    assert row.images_per_s > 0 and row.fraction == pytest.approx(row.images_per_s * row.gflop_per_image / 10)
    assert row.markdown().count("|") == 8  # seven columns
    assert "| fp32 |" in row.markdown()
    assert bench.matmul_gflops(n=64, reps=1) > 0
    info = bench.machine_info()
    assert {"cpu", "cores", "torch", "threads", "bf16", "vector", "date"} <= set(info)


def test_part_times_reads_the_committed_part_tables(bench):
    """Notebook 05 prints | part | seconds | budget |: the budget column is not a time."""
    parts = bench.part_times()["05_noisy_teachers.ipynb"]
    assert {"MNIST part", "CIFAR-10 part", "whole notebook"} <= set(parts)
    assert all(isinstance(v, float) and v > 0 for v in parts.values())


# ---- the fraction: each loop against the matmul rate of the precision it runs in ----------------
# Made-up rates and rows (no timing): a CPU whose bf16 matmul is 4x its float32 matmul.
RATES = {"fp32": 200.0, "bf16": 800.0}


def test_fraction_is_work_rate_over_the_limit_of_its_precision(bench):
    # 1,000 images/s x 0.1 GFLOP per image = 100 GFLOP/s of work
    assert bench.fraction(1000.0, 0.1, "fp32", RATES) == pytest.approx(100 / 200)
    assert bench.fraction(1000.0, 0.1, "bf16", RATES) == pytest.approx(100 / 800)
    # a bf16 loop doing 300 GFLOP/s: 150% of the fp32 rate (the old report), 37.5% of its own
    assert bench.fraction(3000.0, 0.1, "bf16", RATES) == pytest.approx(0.375)
    with pytest.raises(ValueError, match="bf16"):  # no bf16 rate measured (a CPU without bf16)
        bench.fraction(1000.0, 0.1, "bf16", {"fp32": 200.0})


def test_a_row_uses_its_own_precision_rate(bench):
    rows = [bench.Row("a", 64, 0.1, 1000.0, "fp32"), bench.Row("b", 64, 0.1, 1000.0, "bf16")]
    for r in rows:
        assert r.against(RATES) is r
    assert [r.fraction for r in rows] == pytest.approx([0.5, 0.125])
    assert "| bf16 | 12.5% |" in rows[1].markdown()
    rows[1].against({"fp32": 200.0, "bf16": 400.0})  # only its own precision's rate moves it
    assert rows[1].fraction == pytest.approx(0.25)


def test_best_rates_takes_the_better_measurement_per_precision(bench):
    before, after = {"fp32": 150.0, "bf16": 800.0}, {"fp32": 180.0, "bf16": 700.0}
    assert bench.best_rates(before, after) == {"fp32": 180.0, "bf16": 800.0}
    assert bench.best_rates({"fp32": 150.0}, {"fp32": 140.0}) == {"fp32": 150.0}
    info = {}
    assert bench.record_limits(info, before, after) == {"fp32": 180.0, "bf16": 800.0}
    assert info["matmul_gflops_bf16"] == 800.0 and info["matmul_gflops_bf16_after"] == 700.0
    assert info["matmul_gflops_fp32"] == 180.0 and info["matmul_gflops_fp32_before"] == 150.0


def tiny_convnet(channels_last):
    # two input channels: a (out, 1, k, k) weight is channels_last-contiguous in either layout
    model = nn.Sequential(nn.Conv2d(2, 2, 3), nn.Flatten(), nn.Linear(2 * 26 * 26, 10))
    return model.to(memory_format=torch.channels_last) if channels_last else model


@pytest.mark.parametrize("has_bf16", [True, False])
def test_loop_precision_follows_kdlib_autocast(bench, monkeypatch, has_bf16):
    """bf16 exactly where train._runner trains under bf16 autocast: a channels_last convnet on
    bf16 hardware (config.bf16 is set here, so the test holds on any CPU)."""
    monkeypatch.setattr(config, "bf16", lambda *a: has_bf16)
    assert bench.loop_precision(tiny_convnet(True)) == ("bf16" if has_bf16 else "fp32")
    assert bench.loop_precision(tiny_convnet(False)) == "fp32"  # contiguous: no autocast
    assert bench.loop_precision(models.StudentNet()) == "fp32"  # no convolution


def test_measure_puts_a_bf16_loop_against_the_bf16_rate(bench, monkeypatch):
    monkeypatch.setattr(config, "bf16", lambda *a: True)
    x, y = torch.randn(96, 2, 28, 28), torch.randint(0, 10, (96,))
    loop = bench.Loop("tiny conv", "00", lambda: (m := tiny_convnet(True), torch.optim.SGD(m.parameters(), lr=0.1)),
                      (x, y), 32)
    row = bench.measure(loop, RATES, breakdown=False, seconds=0.01, reps=1)
    assert row.precision == "bf16"
    assert row.fraction == pytest.approx(row.images_per_s * row.gflop_per_image / RATES["bf16"])
    forced = bench.Loop("tiny conv", "00", loop.build, (x, y), 32, precision="fp32")  # a Loop may say its own
    row = bench.measure(forced, RATES, breakdown=False, seconds=0.01, reps=1)
    assert row.precision == "fp32"
    assert row.fraction == pytest.approx(row.images_per_s * row.gflop_per_image / RATES["fp32"])
