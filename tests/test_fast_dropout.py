"""kdlib.fast.dropout: ByteDropout has nn.Dropout's distribution; fast_dropout swaps it in."""
import pytest
import torch

from kdlib import fast, models

@pytest.mark.parametrize("p", [0.25, 0.5])
def test_byte_dropout_has_nn_dropouts_distribution(p):
    torch.manual_seed(0)
    d = fast.ByteDropout(p).train()
    x = torch.full((500, 1000), 2.0)
    y = d(x)
    dropped = (y == 0).float()
    n = dropped.numel()
    assert abs(dropped.mean().item() - p) < 4 * (p * (1 - p) / n) ** 0.5  # 4 standard errors
    assert torch.allclose(y[y != 0], torch.tensor(2.0 / (1 - p)))      # kept ones scaled by 1/(1-p)
    assert abs(y.mean().item() - 2.0) < 0.01                            # unbiased, as nn.Dropout
    # no pattern across positions: each column's drop rate is within noise of p
    col = dropped.mean(0)
    assert (col - p).abs().max() < 6 * (p * (1 - p) / 500) ** 0.5
    assert not torch.equal(d(x), y)                                     # a new mask per call
    # each of the 8 bytes of a 64-bit draw (the top one too) gives a mask element at rate p
    by_byte = dropped.reshape(-1)[: n // 8 * 8].view(-1, 8).mean(0)
    assert (by_byte - p).abs().max() < 5 * (p * (1 - p) / (n / 8)) ** 0.5


@pytest.mark.parametrize("p", [0.25, 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_byte_dropout_blocks_compute_the_plain_formula_bit_for_bit(p, dtype):
    # on a CPU, without gradients, the products run fast.dropout.BLOCK elements at a time: every element is
    # still one product x * (keep / (1 - p)) of the same mask byte, so the result is the plain formula's exactly
    x = torch.randn(3, fast.dropout.BLOCK // 2 + 7, dtype=dtype)  # crosses block edges, a short last block
    torch.manual_seed(1)
    y = fast.ByteDropout(p).train()(x)
    torch.manual_seed(1)
    keep = (fast.dropout.random_bytes(x.numel()).view(x.shape) >= round(256 * p)).to(dtype)
    assert torch.equal(y, x * (keep * (1 / (1 - p))))
    assert torch.equal(y.signbit(), (x * (keep * (1 / (1 - p)))).signbit())  # -0.0 where a negative x is dropped
    x.requires_grad_()
    torch.manual_seed(1)
    z = fast.ByteDropout(p).train()(x)  # the unblocked path, for autograd
    assert torch.equal(z.detach(), y)
    z.sum().backward()
    assert torch.equal(x.grad, keep * (1 / (1 - p)))


def test_byte_dropout_modes_and_arguments():
    x = torch.ones(100, 100)
    assert fast.ByteDropout(0.5).eval()(x) is x
    assert (fast.ByteDropout(0.5, always=True).eval()(x) == 0).any()
    for bad in (1.0, -0.1, 0.3, "0.5"):
        with pytest.raises(ValueError, match="p must be a multiple of 1/256"):
            fast.ByteDropout(bad)


def test_fast_dropout_swaps_dropouts_and_keeps_the_original():
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Dropout(0.25), torch.nn.Linear(8, 4), models.AlwaysDropout(0.5))
    quick = fast.fast_dropout(head)
    assert isinstance(head[0], torch.nn.Dropout) and isinstance(head[2], models.AlwaysDropout)
    assert isinstance(quick[0], fast.ByteDropout) and not quick[0].always and quick[0].p == 0.25
    assert isinstance(quick[2], fast.ByteDropout) and quick[2].always and quick[2].p == 0.5
    x = torch.randn(3, 8)
    quick.eval()
    head.eval()
    assert torch.equal(quick[:2](x), head[:2](x))  # the same weights; dropout off in eval mode
