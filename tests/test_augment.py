"""kdlib.augment: the jitter of notebook 06's teacher (Hinton et al. 2015, section 3)."""
import math

import pytest
import torch

from kdlib import augment, models, train


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
