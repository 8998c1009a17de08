"""kdlib.fast.threads: one thread for a tiny model; the count is restored afterwards."""
import pytest
import torch

import kdlib
from kdlib import as_written, fast, models, train


def test_auto_threads_one_thread_for_tiny_models_only():
    assert fast.threads.auto_threads(models.StudentNet()) == 1
    assert fast.threads.auto_threads(fast.window_convs(models.WeakStudentNet())) == 1
    assert fast.threads.auto_threads(models.WeakStudentNet()) is None  # a convolution routine
    assert fast.threads.auto_threads(models.StudentNet(), copies=5) is None  # five stacked: ops 5x larger
    assert fast.threads.auto_threads(fast.window_convs(models.WeakStudentNet()), copies=20) == 1
    assert fast.threads.auto_threads(models.TeacherNet()) is None
    trunk, _ = as_written.split_at_dropout(models.TeacherNet())  # small weights, but convolutions
    assert max(p.numel() for p in trunk.parameters()) < 50_000 and fast.threads.auto_threads(trunk) is None


def test_threads_for_sets_and_restores_the_callers_count():
    before = torch.get_num_threads()
    with fast.threads_for(models.StudentNet()):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), fast.torch_threads(1):
        raise RuntimeError("restored on the way out")
    assert torch.get_num_threads() == before


def test_one_thread_trains_the_same_model_in_float64():
    """The thread count changes only the order of float additions: in float64 a training on one
    thread and on the default count agree far inside 1e-9 (the same weights on a 2-core AMD EPYC,
    where these small products are not split; float64 rounding is about 1e-16 where they are)."""
    x, y = torch.rand(512, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (512,))
    weights = []
    for threads in (1, None):
        gen = kdlib.seed_everything(0)
        model = models.StudentNet().double()
        with fast.torch_threads(threads):
            train.fit(model, torch.optim.Adam(model.parameters(), lr=1e-2), train.Batches(x, y, generator=gen),
                      epochs=2, desc=None)
        weights.append(torch.nn.utils.parameters_to_vector(model.parameters()).detach())
    assert torch.allclose(weights[0], weights[1], rtol=1e-9, atol=1e-12)
