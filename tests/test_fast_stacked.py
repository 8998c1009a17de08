"""kdlib.fast.stacked: K models trained as one stacked run equal K separate kdlib.train.fit runs.

The two sides use different kernels (batched matrix products against plain ones), which add in
another order: in float32 their results differ in the last bits, and Adam at lr 1e-2 grows that
difference over a few epochs by a CPU-dependent factor (on an AMD EPYC with bf16 a float32 run of
this test moved a validation loss by 2e-4 relative). So the runs that compare whole trainings are
made in float64, where the same rounding is about 1e-16: after these few epochs the largest relative
difference of a weight or a validation loss between the two sides measured 9e-12 (AMD EPYC, 2026-12-02),
so the tolerances below (1e-9, relative and absolute) leave a margin of 100 for CPUs that round
differently, while an algorithmic difference (a wrong batch, a wrong gradient) moves them by 1e-3 or more.
"""
from __future__ import annotations

import pytest
import torch

import kdlib
from kdlib import as_written, fast, models, recipes, train
from kdlib.fast import stacked

TOL = 1e-9  # float64: see the module's docstring


def _data(n=640, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 28, 28, generator=g).to(dtype)
    y = torch.randint(0, 10, (n,), generator=g)
    v = 3 * torch.randn(n, 10, generator=g).to(dtype)
    return x, y, v


def _close(m1, m2):
    return all(torch.allclose(a, b, rtol=TOL, atol=TOL) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


def _separate(make, seeds, data, val, loss_fn, epochs, patience):
    out = []
    for s in seeds:
        gen = kdlib.seed_everything(s)
        m = make().double()
        h = train.fit(m, torch.optim.Adam(m.parameters(), lr=1e-2, fused=True),
                      train.Batches(*data, batch_size=32, generator=gen), val, epochs=epochs, loss_fn=loss_fn,
                      early_stopping=train.EarlyStopping(patience, 1e-4) if patience else None, desc=None)
        out.append((m, h))
    return out


def _stacked(make, seeds, data, val, loss_fn, epochs, patience, targets=None):
    ms, bs = [], []
    for s in seeds:
        gen = kdlib.seed_everything(s)
        ms.append(make().double())
        bs.append(train.Batches(*data, batch_size=32, generator=gen))
    hs = stacked.fit_stacked(ms, lambda p: torch.optim.Adam(p, lr=1e-2, fused=True), bs, val, epochs=epochs,
                             loss_fn=loss_fn, desc=None, targets=targets,
                             early_stopping=[train.EarlyStopping(patience, 1e-4) for _ in ms] if patience else None)
    return list(zip(ms, hs))


def _weak():
    return fast.window_convs(models.WeakStudentNet())


@pytest.mark.parametrize("make, kind", [(models.StudentNet, "hard+soft"), (models.StudentNet, "soft"),
                                        (_weak, "hard")])
def test_stacked_runs_equal_separate_runs(make, kind):
    data, val = _data(), _data(200, seed=1)
    loss_fn = recipes.three_way_loss(kind)
    seeds = [0, 1, 2]
    for (m1, h1), (m2, h2) in zip(_separate(make, seeds, data, val, loss_fn, 5, 1),
                                  _stacked(make, seeds, data, val, loss_fn, 5, 1)):
        assert h1.get("best_epoch") == h2.get("best_epoch")        # each model stops on its own
        assert len(h1["val_loss"]) == len(h2["val_loss"])
        assert h1["val_loss"] == pytest.approx(h2["val_loss"], rel=TOL)
        assert h1["train_acc"] == h2["train_acc"]
        assert _close(m1, m2)


def _one_sgd_step(stacked_run, dtype):
    """Two StudentNets after one SGD step on the same batch, by fit_stacked or by two fit calls."""
    data = _data(64, dtype=dtype)
    loss_fn = recipes.three_way_loss("hard+soft")
    ms, bs = [], []
    for s in (0, 1):
        gen = kdlib.seed_everything(s)
        ms.append(models.StudentNet().to(dtype))
        bs.append(train.Batches(*data, batch_size=64, generator=gen))
    if stacked_run:
        stacked.fit_stacked(ms, lambda p: torch.optim.SGD(p, lr=0.1), bs, epochs=1, loss_fn=loss_fn, desc=None)
    else:
        for m, b in zip(ms, bs):
            train.fit(m, torch.optim.SGD(m.parameters(), lr=0.1), b, epochs=1, loss_fn=loss_fn, desc=None)
    return [torch.cat([p.detach().double().flatten() for p in m.parameters()]) for m in ms]


def test_one_stacked_step_equals_separate_steps_in_float32():
    """In float32, the dtype the notebooks train in, one step by each kernel lands as near the exact
    (float64) step as the other does. The tolerance is measured in the run, on the CPU it runs on:
    the plain path's own float32 error (its distance from float64) times 4, plus one float32 ulp of
    the largest weight. SGD, not Adam: Adam's first step is lr * g / (|g| + eps), about lr * sign(g),
    so a gradient within rounding of zero can move a weight by up to 2 * lr on one side only (that is
    what failed the earlier version of this test on another CPU); SGD's step is lr * g, so rounding in
    g moves a weight by lr times that rounding. A wrong batch or gradient moves weights by ~lr * |g|
    (the step itself is up to 4e-3 here), far above the bound (6e-8 on the Intel Xeon of 2026-12-02,
    where each float32 side was 1e-8 from float64)."""
    exact = _one_sgd_step(False, torch.float64)
    plain, stacked32 = _one_sgd_step(False, torch.float32), _one_sgd_step(True, torch.float32)
    for e, p, s in zip(exact, plain, stacked32):
        bound = 4 * (p - e).abs().max() + torch.finfo(torch.float32).eps * e.abs().max()
        assert (s - e).abs().max() <= bound


def test_stacked_run_with_one_loss_per_model_equals_separate_runs():
    """Models with different losses train together (each group's loss computed once): each model
    is the one its own loss gives alone, history included."""
    data, val = _data(), _data(200, seed=1)
    hard, soft = recipes.three_way_loss("hard"), recipes.three_way_loss("soft")
    seeds, fns = [0, 1, 2], [hard, soft, hard]
    ms, bs = [], []
    for s in seeds:
        gen = kdlib.seed_everything(s)
        ms.append(models.StudentNet().double())
        bs.append(train.Batches(*data, batch_size=32, generator=gen))
    hs = stacked.fit_stacked(ms, lambda p: torch.optim.Adam(p, lr=1e-2, fused=True), bs, val, epochs=4,
                             loss_fn=fns, desc=None, early_stopping=[train.EarlyStopping(1, 1e-4) for _ in ms])
    for seed, fn, m2, h2 in zip(seeds, fns, ms, hs):
        (m1, h1), = _separate(models.StudentNet, [seed], data, val, fn, 4, 1)
        assert h1["val_loss"] == pytest.approx(h2["val_loss"], rel=TOL)
        assert h1["train_acc"] == h2["train_acc"]
        assert _close(m1, m2)
    assert hs[0]["train_loss"] == hs[2]["train_loss"] != hs[1]["train_loss"]  # the mean over its group


@pytest.mark.parametrize("make", [models.StudentNet, _weak])
def test_batched_matmul_forward_equals_the_models(make):
    torch.manual_seed(0)
    ms = [make().double() for _ in range(3)]
    params = {n: torch.stack([dict(m.named_parameters())[n] for m in ms]) for n, _ in ms[0].named_parameters()}
    data = torch.randn(20, 1, 28, 28, dtype=torch.float64)
    idx = torch.tensor([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3], [5, 8, 9, 7, 9]])  # (K, B) rows of data
    prepare, forward = stacked._bmm_forward(ms[0])
    expected = torch.stack([m(data[i]) for m, i in zip(ms, idx)])
    assert torch.allclose(forward(params, prepare(data)[idx]), expected, rtol=1e-12, atol=1e-12)  # rows of the prepared data
    assert torch.allclose(forward(params, data[idx]), expected, rtol=1e-12, atol=1e-12)  # or of the images themselves
    assert stacked._bmm_forward(models.TeacherNet()) is None  # a convnet: vmap instead
    assert stacked._bmm_forward(models.WeakStudentNet()) is None  # a plain Conv2d too
    if make is _weak:
        with pytest.raises(ValueError, match="multiples of 7"):
            prepare(torch.zeros(2, 1, 27, 28))


def test_stacked_train_loss_is_the_mean_over_the_models():
    data = _data()
    seeds = [0, 1]
    sep = _separate(models.StudentNet, seeds, data, None, train.cross_entropy, 1, None)
    st = _stacked(models.StudentNet, seeds, data, None, train.cross_entropy, 1, None)
    mean = sum(h["train_loss"][0] for _, h in sep) / 2
    assert st[0][1]["train_loss"][0] == pytest.approx(mean, rel=TOL)
    assert st[0][1]["train_loss"] == st[1][1]["train_loss"]


def test_stacked_dropout_head_loss_trains_each_model_on_its_own_batches():
    """The seed's loss (teacher head with dropout on each batch) runs stacked: it trains, and a model
    trained with the others is not a copy of them."""
    torch.manual_seed(0)
    teacher = models.TeacherNet().double()
    trunk, head = as_written.split_at_dropout(teacher)
    x, y, _ = _data(128)
    f = train.predict_logits(trunk, x)
    runs = _stacked(models.StudentNet, [0, 1], (x, y, f), None, as_written.seed_loss(), 2, None,
                    targets=fast.fast_dropout(head).train())
    w0, w1 = (m.state_dict()["1.weight"] for m, _ in runs)
    assert not torch.allclose(w0, w1)
    assert all(h["train_loss"][1] < h["train_loss"][0] for _, h in runs)


def test_targets_equal_a_loss_that_runs_the_head_itself():
    """``targets``: the head runs once per step on the K batches (and once per epoch on the
    validation data) and the losses get its outputs: the same runs as losses that call it per model."""
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Linear(32, 10), torch.nn.Tanh()).double()  # deterministic: comparable
    x, y, _ = _data(256)
    f = torch.randn(256, 32, dtype=torch.float64)
    val = (x[:64], y[:64], f[:64])
    kd = recipes.three_way_loss("hard+soft")

    def head_inside(z, yb, fb):
        with torch.no_grad():
            v = head(fb)
        return kd(z, yb, v)
    inside = _stacked(models.StudentNet, [0, 1], (x, y, f), val, head_inside, 3, 1)
    once = _stacked(models.StudentNet, [0, 1], (x, y, f), val, kd, 3, 1, targets=head)
    for (m1, h1), (m2, h2) in zip(inside, once):
        assert h1["val_loss"] == pytest.approx(h2["val_loss"], rel=TOL)
        assert h1["train_loss"] == pytest.approx(h2["train_loss"], rel=TOL)
        assert _close(m1, m2)


def test_targets_draw_dropout_per_row():
    """A dropout head as ``targets``: every model's rows get their own draws, though the K models
    read the same features."""
    seen = []

    def record(z, yb, v):
        seen.append(v.detach().view(2, -1, v.shape[-1]))  # (K, B, C): K = 2 models
        return train.cross_entropy(z, yb)
    x, y, _ = _data(64)
    f = torch.ones(64, 10, dtype=torch.float64)
    _stacked(models.StudentNet, [0, 0], (x, y, f), None, record, 1, None,  # the same seed: the same rows
             targets=fast.ByteDropout(0.5).train())
    first = seen[0]
    assert ((first == 0) | (first == 2)).all()          # dropout on the features, kept ones scaled
    assert not torch.equal(first[0], first[1])           # each model its own mask
    assert 0.3 < (first == 0).float().mean() < 0.7


def test_fit_stacked_refuses_mismatched_arguments():
    x, y, v = _data(64)
    ms = [models.StudentNet(), models.StudentNet()]
    opt = lambda p: torch.optim.SGD(p, lr=0.1)  # noqa: E731
    with pytest.raises(ValueError, match="one Batches per model"):
        stacked.fit_stacked(ms, opt, [train.Batches(x, y)], epochs=1, desc=None)
    with pytest.raises(ValueError, match="same number of rows"):
        stacked.fit_stacked(ms, opt, [train.Batches(x, y), train.Batches(x[:32], y[:32])], epochs=1, desc=None)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        stacked.fit_stacked(ms, opt, [train.Batches(x, y), train.Batches(x, y)], epochs=0, desc=None)
    with pytest.raises(ValueError, match="early_stopping needs val"):
        stacked.fit_stacked(ms, opt, [train.Batches(x, y), train.Batches(x, y)], epochs=1, desc=None,
                            early_stopping=[train.EarlyStopping(), train.EarlyStopping()])
    with pytest.raises(ValueError, match="same tensors"):
        stacked.fit_stacked(ms, opt, [train.Batches(x, y), train.Batches(x.clone(), y)], epochs=1, desc=None)
    with pytest.raises(ValueError, match="one loss or a list"):
        stacked.fit_stacked(ms, opt, [train.Batches(x, y), train.Batches(x, y)], epochs=1, desc=None,
                            loss_fn=[train.cross_entropy])
    bn = [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(784)) for _ in range(2)]
    with pytest.raises(ValueError, match="buffers"):
        stacked.fit_stacked(bn, opt, [train.Batches(x, y), train.Batches(x, y)], epochs=1, desc=None)


def test_targets_run_on_the_callers_thread_count_not_one_captured_at_import():
    """A thread count set after ``import kdlib`` is the one the targets module runs on (issue 26: a
    count captured at import ignored a later torch.set_num_threads)."""
    seen = []

    class Record(torch.nn.Module):
        def forward(self, f):
            seen.append(torch.get_num_threads())
            return f
    x, y, _ = _data(64)
    f = torch.randn(64, 10, dtype=torch.float64)
    before = torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            seen.clear()
            _stacked(models.StudentNet, [0], (x, y, f), None, recipes.three_way_loss("soft"), 1, None, targets=Record())
            assert seen and set(seen) == {count}
    finally:
        torch.set_num_threads(before)


# ---- issue 25, item 4: one device rule ----------------------------------------------------------

def test_stacked_run_moves_the_shared_data_once_on_the_batches_device(monkeypatch):
    """K Batches over the same tensors: the data is moved once for all K, the validation data once
    per call, and the run is on the Batches' explicit device, not kdlib.config.device() (made to
    answer 'meta' here, where no number can be computed: had the run gone there, it would fail)."""
    monkeypatch.setattr(kdlib.config, "device", lambda which=None: torch.device("meta" if which is None else which))
    calls, real = [], torch.Tensor.to

    def spy(self, *args, **kwargs):
        calls.append(self)
        return real(self, *args, **kwargs)
    monkeypatch.setattr(torch.Tensor, "to", spy)
    (x, y, v), (xv, yv, vv) = _data(96), _data(40, seed=1)
    ms, bs = [], []
    for s in (0, 1, 2):
        gen = kdlib.seed_everything(s)
        ms.append(models.StudentNet().double())
        bs.append(train.Batches(x, y, v, batch_size=32, generator=gen, device="cpu"))
    hs = stacked.fit_stacked(ms, lambda p: torch.optim.Adam(p, lr=1e-2), bs, (xv, yv, vv), epochs=2,
                             loss_fn=recipes.three_way_loss("hard+soft"), desc=None)
    assert [sum(c is t for c in calls) for t in (x, y, v, xv, yv, vv)] == [1] * 6
    assert all(len(h["val_loss"]) == 2 for h in hs)
    assert {p.device for m in ms for p in m.parameters()} == {torch.device("cpu")}


def test_fit_stacked_refuses_batches_on_different_devices():
    x, y, _ = _data(64)
    ms = [models.StudentNet(), models.StudentNet()]
    with pytest.raises(ValueError, match="one device"):
        stacked.fit_stacked(ms, lambda p: torch.optim.SGD(p, lr=0.1),
                            [train.Batches(x, y, device="cpu"), train.Batches(x, y, device="meta")], epochs=1, desc=None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_stacked_runs_on_a_gpu_equal_separate_runs_there():
    """On the default device (the GPU) the models, their stacked parameters, a targets module and the
    data all go there; the stacked run equals K separate fits there (float64, TOL as above) and the
    models stay on the GPU."""
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.Tanh()).double()
    data, val = _data(), _data(200, seed=1)
    kd = recipes.three_way_loss("hard+soft")
    sep = _separate(models.StudentNet, [0, 1], data, val, lambda z, yb, fb: kd(z, yb, head.to(fb.device)(fb).detach()), 3, 1)
    st = _stacked(models.StudentNet, [0, 1], data, val, kd, 3, 1, targets=head)
    gpu = kdlib.config.device()
    for (m1, h1), (m2, h2) in zip(sep, st):
        assert {p.device for p in m2.parameters()} == {gpu} == {p.device for p in m1.parameters()}
        assert h1["val_loss"] == pytest.approx(h2["val_loss"], rel=TOL)
        assert _close(m1, m2)
