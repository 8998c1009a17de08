"""Notebook 06's pieces (Hinton, Vinyals & Dean 2015, section 3): models.MLP, models.shift_bias
and augment.jitter."""
import math

import pytest
import torch
from torch import nn

from kdlib import augment, models, train


# ---- models.MLP ------------------------------------------------------------------------------

@pytest.mark.parametrize("hidden, params", [
    ((1200, 1200), 2_395_210),
    ((800, 800), 1_276_810),
    ((300, 300), 328_810),
    ((30, 30), 24_790),
])
def test_mlp_parameter_counts_and_output(hidden, params):
    m = models.MLP(hidden)
    assert models.count_parameters(m) == params
    assert m(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_mlp_default_is_mlp800():
    assert models.count_parameters(models.MLP()) == models.count_parameters(models.MLP800()) == 1_276_810
    assert [tuple(p.shape) for p in models.MLP().parameters()] == \
        [tuple(p.shape) for p in models.MLP800().parameters()]


def test_mlp_layers_and_dropout_positions():
    m = models.MLP((1200, 1200), input_dropout=0.2, dropout=0.5)
    assert [type(l) for l in m] == [nn.Flatten, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout,
                                    nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert [l.p for l in m if isinstance(l, nn.Dropout)] == [0.2, 0.5, 0.5]
    assert [(l.in_features, l.out_features) for l in m if isinstance(l, nn.Linear)] == \
        [(784, 1200), (1200, 1200), (1200, 10)]
    plain = models.MLP((30, 30))
    assert [type(l) for l in plain] == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]


def test_mlp_other_shapes():
    m = models.MLP((64,), in_features=3 * 32 * 32, num_classes=100)
    assert m(torch.zeros(4, 3, 32, 32)).shape == (4, 100)
    assert models.count_parameters(m) == 3072 * 64 + 64 + 64 * 100 + 100
    linear = models.MLP(())
    assert [type(l) for l in linear] == [nn.Flatten, nn.Linear]
    assert models.count_parameters(linear) == 7850


@pytest.mark.parametrize("kwargs, name", [
    (dict(hidden=(800, 0)), "hidden"),
    (dict(hidden=(-5,)), "hidden"),
    (dict(hidden=(800.0, 800)), "hidden"),
    (dict(hidden=(True,)), "hidden"),
    (dict(hidden=800), "hidden"),
    (dict(hidden="800"), "hidden"),
    (dict(dropout=1.0), "dropout"),
    (dict(dropout=-0.1), "dropout"),
    (dict(dropout=float("nan")), "dropout"),
    (dict(input_dropout=1.0), "input_dropout"),
    (dict(input_dropout=-0.2), "input_dropout"),
    (dict(in_features=0), "in_features"),
    (dict(num_classes=0), "num_classes"),
    (dict(num_classes=10.0), "num_classes"),
])
def test_mlp_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must .*(\[0, 1\)|positive int)"):
        models.MLP(**kwargs)


# ---- models.shift_bias -----------------------------------------------------------------------

def _net():
    torch.manual_seed(0)
    return models.MLP((16, 16)).eval()


@pytest.mark.parametrize("classes, delta, chosen", [
    (3, 3.5, [3]),
    ((7, 8), -7.6, [7, 8]),
    ([0, 9], 2, [0, 9]),
    (torch.tensor([7, 8]), -7.6, [7, 8]),
])
def test_shift_bias_moves_only_the_chosen_logits(classes, delta, chosen):
    m = _net()
    x = torch.randn(32, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        z0 = m(x)
        z1 = models.shift_bias(m, classes, delta)(x)
    others = [k for k in range(10) if k not in chosen]
    assert torch.equal(z1[:, others], z0[:, others])
    torch.testing.assert_close(z1[:, chosen] - z0[:, chosen], torch.full((32, len(chosen)), float(delta)),
                               atol=1e-5, rtol=0)


def test_shift_bias_returns_a_copy_and_leaves_the_model_alone():
    m = _net()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    s = models.shift_bias(m, 3, 3.5)
    assert s is not m
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    diff = s[-1].bias.detach() - m[-1].bias.detach()
    expected = torch.zeros(10)
    expected[3] = 3.5
    torch.testing.assert_close(diff, expected, atol=1e-6, rtol=0)
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(s.parameters(), m.parameters()))
    assert not s.training  # mode carried over from the eval() model


def test_shift_bias_on_a_frozen_model_and_twice():
    m = train.freeze(_net())
    s = models.shift_bias(models.shift_bias(m, 3, 3.5), 3, -3.5)
    assert not any(p.requires_grad for p in s.parameters())
    torch.testing.assert_close(s[-1].bias, m[-1].bias, atol=1e-6, rtol=0)
    raised = models.shift_bias(m, (7, 8), -7.6)
    assert float(raised[-1].bias[7] - m[-1].bias[7]) == pytest.approx(-7.6, abs=1e-5)


@pytest.mark.parametrize("classes, delta, match", [
    (10, 1.0, "classes"),
    (-1, 1.0, "classes"),
    ((3, 10), 1.0, "classes"),
    ((), 1.0, "classes"),
    ([], 1.0, "classes"),
    ((3, 3), 1.0, "classes"),
    (3.0, 1.0, "classes"),
    (True, 1.0, "classes"),
    ("3", 1.0, "classes"),
    (3, float("nan"), "delta"),
    (3, float("inf"), "delta"),
    (3, -math.inf, "delta"),
    (3, "1", "delta"),
])
def test_shift_bias_bad_arguments(classes, delta, match):
    m = _net()
    with pytest.raises(ValueError, match=match):
        models.shift_bias(m, classes, delta)


@pytest.mark.parametrize("model", [
    nn.Linear(4, 3, bias=False),
    nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)),
    nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()),
    nn.ReLU(),
])
def test_shift_bias_needs_a_final_linear_with_bias(model):
    with pytest.raises(ValueError, match="nn.Linear with a bias"):
        models.shift_bias(model, 0, 1.0)


def test_shift_bias_accepts_parameterless_layers_after_the_output():
    m = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.LogSoftmax(1))
    s = models.shift_bias(m, 1, 2.0)
    assert float((s[1].bias[1] - m[1].bias[1]).detach()) == pytest.approx(2.0)
    s = models.shift_bias(models.WeakStudentNet(), 3, 1.0)  # conv net ending in Linear(16, 10)
    assert isinstance(s, nn.Sequential)


# ---- augment.jitter --------------------------------------------------------------------------

def _recover_shifts(x, out, search=4):
    """Per image, the (dx, dy) with out[:, :, i, j] == x[:, :, i - dy, j - dx] on the whole overlap
    (searched in [-search, search]^2), or None when no or several shifts match; plus whether the
    uncovered border equals each image's per-channel minimum."""
    n, c, h, w = x.shape
    found = [[] for _ in range(n)]
    border_ok = torch.ones(n, dtype=torch.bool)
    lo = x.amin(dim=(2, 3), keepdim=True)
    for dy in range(-search, search + 1):
        for dx in range(-search, search + 1):
            # out rows i with 0 <= i - dy < h, columns j with 0 <= j - dx < w
            oi = slice(max(dy, 0), h + min(dy, 0))
            oj = slice(max(dx, 0), w + min(dx, 0))
            si = slice(max(-dy, 0), h + min(-dy, 0))
            sj = slice(max(-dx, 0), w + min(-dx, 0))
            match = (out[:, :, oi, oj] == x[:, :, si, sj]).flatten(1).all(1)
            for k in match.nonzero().flatten().tolist():
                found[k].append((dx, dy))
                mask = torch.ones(h, w, dtype=torch.bool)
                mask[oi, oj] = False
                border_ok[k] = bool((out[k][:, mask] == lo[k, :, 0]).all())
    shifts = [f[0] if len(f) == 1 else None for f in found]
    return shifts, border_ok


def test_jitter_moves_by_at_most_two_pixels_and_keeps_the_content():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 2, 20, 24, generator=g)  # distinct values, two channels, H != W
    out = augment.jitter(x, torch.Generator().manual_seed(1))
    shifts, border_ok = _recover_shifts(x, out)
    assert None not in shifts  # every image is a whole-pixel shift of its own input
    assert all(abs(dx) <= 2 and abs(dy) <= 2 for dx, dy in shifts)
    counts = {s: shifts.count(s) for s in set(shifts)}
    assert len(counts) == 25  # every shift in [-2, 2]^2 occurs ...
    assert all(40 <= c <= 130 for c in counts.values()), counts  # ... about 80 times each
    assert bool(border_ok.all())  # uncovered border filled with the image's own minimum


def test_jitter_max_shift_one_and_zero():
    x = torch.randn(600, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    shifts, _ = _recover_shifts(x, augment.jitter(x, torch.Generator().manual_seed(3), max_shift=1))
    assert set(shifts) == {(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)}
    same = augment.jitter(x, torch.Generator().manual_seed(3), max_shift=0)
    assert torch.equal(same, x) and same.data_ptr() != x.data_ptr()


def test_jitter_fills_with_the_normalised_background():
    black = (0 - 0.1307) / 0.3081
    x = torch.full((64, 1, 28, 28), black)
    x[:, :, 10:18, 9:17] = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(4)) + 1
    out = augment.jitter(x, torch.Generator().manual_seed(5))
    assert (out == black).sum() == (x == black).sum()  # no 0 (or other) border appeared
    torch.testing.assert_close(out.sum((1, 2, 3)), x.sum((1, 2, 3)))  # the digit is all there
    assert not torch.equal(out, x)


def test_jitter_fixed_fill_value_on_the_border_only():
    x = torch.randn(500, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    out = augment.jitter(x, torch.Generator().manual_seed(7), fill=-7.0)
    shifts, _ = _recover_shifts(x, out)
    assert None not in shifts
    for k, (dx, dy) in enumerate(shifts):
        uncovered = 8 * 8 - (8 - abs(dx)) * (8 - abs(dy))
        assert int((out[k] == -7.0).sum()) == 3 * uncovered


def test_jitter_is_repeatable_with_a_seeded_generator():
    x = torch.randn(256, 1, 28, 28, generator=torch.Generator().manual_seed(8))
    a = augment.jitter(x, torch.Generator().manual_seed(42))
    b = augment.jitter(x, torch.Generator().manual_seed(42))
    c = augment.jitter(x, torch.Generator().manual_seed(43))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    torch.manual_seed(9)
    d = augment.jitter(x)
    torch.manual_seed(9)
    assert torch.equal(d, augment.jitter(x))


def test_jitter_leaves_its_input_alone_and_keeps_dtype_shape_device():
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        x = torch.randn(32, 3, 32, 32, generator=torch.Generator().manual_seed(10)).to(dtype)
        keep = x.clone()
        out = augment.jitter(x, torch.Generator().manual_seed(11))
        assert torch.equal(x, keep)
        assert out.dtype == dtype and out.shape == x.shape and out.device == x.device
        assert out.data_ptr() != x.data_ptr()
        assert not torch.equal(out, x)
    assert augment.jitter(torch.zeros(0, 1, 28, 28)).shape == (0, 1, 28, 28)


@pytest.mark.parametrize("x, kwargs, match", [
    (torch.zeros(4, 28, 28), {}, "x must be a 4-D"),
    (torch.zeros(2, 4, 1, 28, 28), {}, "x must be a 4-D"),
    ([[0.0]], {}, "x must be a 4-D"),
    (torch.zeros(4, 1, 28, 28), dict(max_shift=-1), "max_shift must be an int >= 0"),
    (torch.zeros(4, 1, 28, 28), dict(max_shift=1.5), "max_shift must be an int >= 0"),
    (torch.zeros(4, 1, 28, 28), dict(max_shift=2.0), "max_shift must be an int >= 0"),
    (torch.zeros(4, 1, 28, 28), dict(max_shift=True), "max_shift must be an int >= 0"),
    (torch.zeros(4, 1, 28, 28), dict(fill=float("nan")), "fill must be"),
    (torch.zeros(4, 1, 28, 28), dict(fill="black"), "fill must be"),
])
def test_jitter_bad_arguments(x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        augment.jitter(x, None, **kwargs)


def test_jitter_as_the_training_augment_hook():
    g = torch.Generator().manual_seed(12)
    x, y = torch.randn(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
    seen = []

    def spy(xb, generator):
        out = augment.jitter(xb, generator)
        seen.append(not torch.equal(out, xb))
        return out

    m = models.MLP((8,))
    data = train.Batches(x, y, batch_size=16, generator=torch.Generator().manual_seed(13), augment=spy)
    hist = train.fit(m, torch.optim.SGD(m.parameters(), lr=0.01), data, epochs=1, desc=None)
    assert len(hist["train_loss"]) == 1 and math.isfinite(hist["train_loss"][0])
    assert len(seen) == 4 and all(seen)
