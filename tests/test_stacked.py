"""kdlib.stacked: K models trained as one stacked run equal K separate kdlib.train.fit runs."""
from __future__ import annotations

import pytest
import torch

import kdlib
from kdlib import as_written, models, recipes, stacked, train


def _data(n=640, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    v = 3 * torch.randn(n, 10, generator=g)
    return x, y, v


def _separate(make, seeds, data, val, loss_fn, epochs, patience):
    out = []
    for s in seeds:
        gen = kdlib.seed_everything(s)
        m = make()
        h = train.fit(m, torch.optim.Adam(m.parameters(), lr=1e-2, fused=True),
                      train.Batches(*data, batch_size=32, generator=gen), val, epochs=epochs, loss_fn=loss_fn,
                      early_stopping=train.EarlyStopping(patience, 1e-4) if patience else None, desc=None)
        out.append((m, h))
    return out


def _stacked(make, seeds, data, val, loss_fn, epochs, patience):
    ms, bs = [], []
    for s in seeds:
        gen = kdlib.seed_everything(s)
        ms.append(make())
        bs.append(train.Batches(*data, batch_size=32, generator=gen))
    hs = stacked.fit_stacked(ms, lambda p: torch.optim.Adam(p, lr=1e-2, fused=True), bs, val, epochs=epochs,
                             loss_fn=loss_fn, desc=None,
                             early_stopping=[train.EarlyStopping(patience, 1e-4) for _ in ms] if patience else None)
    return list(zip(ms, hs))


@pytest.mark.parametrize("make, kind", [(models.StudentNet, "hard+soft"), (models.StudentNet, "soft"),
                                        (models.WeakStudentNet, "hard")])
def test_stacked_runs_equal_separate_runs(make, kind):
    data, val = _data(), _data(200, seed=1)
    loss_fn = recipes.student_loss(kind)
    seeds = [0, 1, 2]
    for (m1, h1), (m2, h2) in zip(_separate(make, seeds, data, val, loss_fn, 5, 1),
                                  _stacked(make, seeds, data, val, loss_fn, 5, 1)):
        assert h1.get("best_epoch") == h2.get("best_epoch")        # each model stops on its own
        assert len(h1["val_loss"]) == len(h2["val_loss"])
        assert h1["val_loss"] == pytest.approx(h2["val_loss"], rel=1e-4)
        assert h1["train_acc"] == pytest.approx(h2["train_acc"], abs=1e-9)
        for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
            assert torch.allclose(a, b, atol=1e-5)


def test_stacked_run_with_one_loss_per_model_equals_separate_runs():
    """Models with different losses train together (each group's loss computed once): each model
    is the one its own loss gives alone, history included."""
    data, val = _data(), _data(200, seed=1)
    hard, soft = recipes.student_loss("hard"), recipes.student_loss("soft")
    seeds, fns = [0, 1, 2], [hard, soft, hard]
    ms, bs = [], []
    for s in seeds:
        gen = kdlib.seed_everything(s)
        ms.append(models.StudentNet())
        bs.append(train.Batches(*data, batch_size=32, generator=gen))
    hs = stacked.fit_stacked(ms, lambda p: torch.optim.Adam(p, lr=1e-2, fused=True), bs, val, epochs=4,
                             loss_fn=fns, desc=None, early_stopping=[train.EarlyStopping(1, 1e-4) for _ in ms])
    for seed, fn, m2, h2 in zip(seeds, fns, ms, hs):
        (m1, h1), = _separate(models.StudentNet, [seed], data, val, fn, 4, 1)
        assert h1["val_loss"] == pytest.approx(h2["val_loss"], rel=1e-4)
        assert h1["train_acc"] == pytest.approx(h2["train_acc"], abs=1e-9)
        for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
            assert torch.allclose(a, b, atol=1e-5)
    assert hs[0]["train_loss"] == hs[2]["train_loss"] != hs[1]["train_loss"]  # the mean over its group


@pytest.mark.parametrize("make", [models.StudentNet, models.WeakStudentNet])
def test_batched_matmul_forward_equals_vmap(make):
    torch.manual_seed(0)
    ms = [make() for _ in range(3)]
    params = {n: torch.stack([dict(m.named_parameters())[n] for m in ms]) for n, _ in ms[0].named_parameters()}
    x = torch.randn(3, 5, 1, 28, 28)
    fast = stacked._bmm_forward(ms[0])
    assert fast is not None
    expected = torch.stack([m(xi) for m, xi in zip(ms, x)])
    assert torch.allclose(fast(params, x), expected, atol=1e-5)
    assert stacked._bmm_forward(models.TeacherNet()) is None  # a convnet: vmap instead


def test_stacked_train_loss_is_the_mean_over_the_models():
    data = _data()
    seeds = [0, 1]
    sep = _separate(models.StudentNet, seeds, data, None, train.cross_entropy, 1, None)
    st = _stacked(models.StudentNet, seeds, data, None, train.cross_entropy, 1, None)
    mean = sum(h["train_loss"][0] for _, h in sep) / 2
    assert st[0][1]["train_loss"][0] == pytest.approx(mean, rel=1e-5)
    assert st[0][1]["train_loss"] == st[1][1]["train_loss"]


def test_stacked_dropout_head_loss_trains_each_model_on_its_own_batches():
    """The seed's loss (teacher head with dropout on each batch) runs stacked: it trains, and a model
    trained with the others is not a copy of them."""
    torch.manual_seed(0)
    teacher = models.TeacherNet()
    trunk, head = as_written.split_at_dropout(teacher)
    x, y, _ = _data(128)
    f = train.predict_logits(trunk, x)
    runs = _stacked(models.StudentNet, [0, 1], (x, y, f), None, as_written.seed_loss(models.fast_dropout(head)), 2, None)
    w0, w1 = (m.state_dict()["1.weight"] for m, _ in runs)
    assert not torch.allclose(w0, w1)
    assert all(h["train_loss"][1] < h["train_loss"][0] for _, h in runs)


def test_fit_stacked_refuses_mismatched_arguments():
    x, y, v = _data(64)
    ms = [models.StudentNet(), models.StudentNet()]
    opt = lambda p: torch.optim.SGD(p, lr=0.1)  # noqa: E731
    with pytest.raises(ValueError, match="one Batches per model"):
        stacked.fit_stacked(ms, opt, [train.Batches(x, y)], epochs=1, desc=None)
    with pytest.raises(ValueError, match="same number of rows"):
        stacked.fit_stacked(ms, opt, [train.Batches(x, y), train.Batches(x[:32], y[:32])], epochs=1, desc=None)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
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


def test_train_mnist_students_matches_train_mnist_student():
    data, val = _data(320), _data(128, seed=1)
    loss_fn = recipes.student_loss("hard+soft")
    together = recipes.train_mnist_students(loss_fn, data, val, [3, 4], desc=None)
    for seed, (m, h) in zip([3, 4], together):
        alone, ha = recipes.train_mnist_student(loss_fn, data, val, seed=seed, desc=None)
        assert ha["val_loss"] == pytest.approx(h["val_loss"], rel=1e-4)
        for a, b in zip(alone.state_dict().values(), m.state_dict().values()):
            assert torch.allclose(a, b, atol=1e-5)
