"""kdlib.recipes: the students of notebook 03, trained together, are the ones trained one by one.

Compared in float64 (the default dtype for these tests): the stacked recipes use batched kernels
and the single runs plain ones, whose float32 rounding differs between CPUs (tests/test_fast_stacked.py
says by how much); in float64 they agree to about 1e-11 (9e-12 measured there), and 1e-9 leaves a margin of 100."""
import pytest
import torch

from kdlib import as_written, fast, models, recipes, train

TOL = 1e-9


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g), 3 * torch.randn(n, 10, generator=g)


def _same(m1, m2):
    return all(torch.allclose(a, b, rtol=TOL, atol=TOL) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


def test_three_way_loss_kinds():
    z, y, v = torch.randn(8, 10), torch.randint(0, 10, (8,)), torch.randn(8, 10)
    from kdlib import losses
    assert recipes.three_way_loss("hard")(z, y, v) == torch.nn.functional.cross_entropy(z, y)
    assert recipes.three_way_loss("soft")(z, y, v) == losses.soft_target_loss(z, v, 2.0)
    assert recipes.three_way_loss("hard+soft")(z, y, v) == losses.distillation_loss(z, v, y, 2.0, 0.8)
    with pytest.raises(ValueError, match="kind must be"):
        recipes.three_way_loss("medium")


def test_train_seed_students_equals_train_seed_student(float64):
    data, val = _data(320, 0), _data(128, 1)
    kinds = {"hard": recipes.three_way_loss("hard"), "hard+soft": recipes.three_way_loss("hard+soft")}
    together = recipes.train_seed_students(kinds, data, val, [3, 4])
    assert list(together) == list(kinds) and all(len(runs) == 2 for runs in together.values())
    for kind, loss_fn in kinds.items():
        for seed, (m, h) in zip([3, 4], together[kind]):
            alone, ha = recipes.train_seed_student(loss_fn, data, val, seed)
            assert ha["val_loss"] == pytest.approx(h["val_loss"], rel=TOL)
            assert ha.get("best_epoch") == h.get("best_epoch")
            assert _same(alone, m)


def test_train_weak_students_equals_the_blog_recipe_run_alone(float64):
    """The weak students with a dropout teacher head: each equals a plain run of the blog's recipe
    (nn.Conv2d student, Adam 1e-4, batch 32) whose loss gets the head's logits for the same draws.
    The head's dropout makes draws random, so the head here is deterministic (p = 0): what is
    compared is the plumbing (rows, order, heads, the swapped convolution), not dropout."""
    x, y, _ = _data(256, 0)
    feats = torch.randn(256, 12)
    head = torch.nn.Sequential(torch.nn.Dropout(0.0), torch.nn.Linear(12, 10))
    test = (x[:64], y[:64], feats[:64])
    kd = as_written.blog_loss()
    runs = recipes.train_weak_students({"blog": kd}, (x, y, feats), test, [5], head, epochs=2)
    (m, h), = runs["blog"]
    assert isinstance(m[0], fast.WindowConv2d)
    import kdlib
    gen = kdlib.seed_everything(5)
    plain = models.WeakStudentNet()
    loss = lambda z, yb, fb: kd(z, yb, head(fb).detach())  # noqa: E731
    ha = train.fit(plain, torch.optim.Adam(plain.parameters(), lr=1e-4), train.Batches(x, y, feats, batch_size=32, generator=gen),
                   test, epochs=2, loss_fn=loss, desc=None)
    assert ha["val_acc"] == h["val_acc"]
    assert _same(plain, m)
