import pytest
import torch
from torchinfo import summary

from kdlib import models


@pytest.mark.parametrize("make, params, out", [
    (models.TeacherNet, 1_199_882, (1, 10)),
    (models.StudentNet, 12_730, (1, 10)),
    (models.BlogTeacherNet, 6_508_298, (1, 10)),
    (models.WeakStudentNet, 220, (1, 10)),
])
def test_parameter_counts_and_output(make, params, out):
    m = make()
    assert models.count_parameters(m) == params
    assert m(torch.zeros(1, 1, 28, 28)).shape == out


def test_teacher_summary_matches_seed_table():
    s = summary(models.TeacherNet(), input_size=(1, 1, 28, 28), verbose=0)
    shapes = [tuple(l.output_size) for l in s.summary_list if l.depth == 1]
    assert shapes[:6] == [(1, 32, 26, 26), (1, 32, 26, 26), (1, 64, 24, 24), (1, 64, 24, 24),
                          (1, 64, 12, 12), (1, 64, 12, 12)]
    assert shapes[6] == (1, 9216) and shapes[-1] == (1, 10)
    assert s.total_params == 1_199_882


def test_weak_student_summary():
    s = summary(models.WeakStudentNet(), input_size=(1, 1, 28, 28), verbose=0)
    shapes = [tuple(l.output_size) for l in s.summary_list if l.depth == 1]
    assert shapes == [(1, 1, 4, 4), (1, 1, 4, 4), (1, 16), (1, 10)]


@pytest.mark.parametrize("c_in, c_out, k, hw", [(1, 1, 7, 28), (3, 5, 4, 8), (2, 3, 2, 6)])
def test_window_conv_equals_conv2d_with_stride_equal_to_kernel(c_in, c_out, k, hw):
    torch.manual_seed(0)
    fast = models.WindowConv2d(c_in, c_out, k)
    ref = torch.nn.Conv2d(c_in, c_out, k, stride=k)
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(4, c_in, hw, hw, requires_grad=True)
    out, expected = fast(x), ref(x)
    assert out.shape == expected.shape
    assert torch.allclose(out, expected, atol=1e-5)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, [x, fast.weight, fast.bias], g)
    ref_grads = torch.autograd.grad(ref(x), [x, ref.weight, ref.bias], g)
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, atol=1e-4)


def test_window_conv_refuses_an_input_it_does_not_tile():
    with pytest.raises(ValueError, match="multiples of 7"):
        models.WindowConv2d(1, 1, 7)(torch.zeros(1, 1, 27, 28))


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_byte_dropout_has_nn_dropouts_distribution(p):
    torch.manual_seed(0)
    d = models.ByteDropout(p).train()
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


def test_byte_dropout_modes_and_arguments():
    x = torch.ones(100, 100)
    assert models.ByteDropout(0.5).eval()(x) is x
    assert (models.ByteDropout(0.5, always=True).eval()(x) == 0).any()
    for bad in (1.0, -0.1, 0.3, "0.5"):
        with pytest.raises(ValueError, match="p must be a multiple of 1/256"):
            models.ByteDropout(bad)


def test_fast_dropout_swaps_dropouts_and_keeps_the_original():
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Dropout(0.25), torch.nn.Linear(8, 4), models.AlwaysDropout(0.5))
    fast = models.fast_dropout(head)
    assert isinstance(head[0], torch.nn.Dropout) and isinstance(head[2], models.AlwaysDropout)
    assert isinstance(fast[0], models.ByteDropout) and not fast[0].always and fast[0].p == 0.25
    assert isinstance(fast[2], models.ByteDropout) and fast[2].always and fast[2].p == 0.5
    x = torch.randn(3, 8)
    fast.eval()
    head.eval()
    assert torch.equal(fast[:2](x), head[:2](x))  # the same weights; dropout off in eval mode
