"""kdlib.fast.conv: WindowConv2d computes nn.Conv2d(k, stride=k), compared in float64 (the two
kernels add in another order; float64's rounding, about 1e-16, leaves 1e-12 a wide margin)."""
import pytest
import torch

from kdlib import fast, models


@pytest.mark.parametrize("c_in, c_out, k, hw", [(1, 1, 7, 28), (3, 5, 4, 8), (2, 3, 2, 6)])
def test_window_conv_equals_conv2d_with_stride_equal_to_kernel(c_in, c_out, k, hw):
    torch.manual_seed(0)
    window = fast.WindowConv2d(c_in, c_out, k).double()
    ref = torch.nn.Conv2d(c_in, c_out, k, stride=k).double()
    ref.load_state_dict(window.state_dict())
    x = torch.randn(4, c_in, hw, hw, dtype=torch.float64, requires_grad=True)
    out, expected = window(x), ref(x)
    assert out.shape == expected.shape
    assert torch.allclose(out, expected, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, [x, window.weight, window.bias], g)
    ref_grads = torch.autograd.grad(ref(x), [x, ref.weight, ref.bias], g)
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_window_conv_refuses_an_input_it_does_not_tile():
    with pytest.raises(ValueError, match="multiples of 7"):
        fast.WindowConv2d(1, 1, 7)(torch.zeros(1, 1, 27, 28))


def test_window_convs_swaps_the_weak_students_conv_and_keeps_its_weights_and_random_state():
    torch.manual_seed(0)
    plain = models.WeakStudentNet().double()
    after_plain = torch.rand(3)
    torch.manual_seed(0)
    swapped = fast.window_convs(models.WeakStudentNet()).double()
    assert torch.equal(torch.rand(3), after_plain)  # the swap drew no random numbers
    assert type(plain[0]) is torch.nn.Conv2d and type(swapped[0]) is fast.WindowConv2d
    assert list(plain.state_dict()) == list(swapped.state_dict())  # checkpoints load into either
    for a, b in zip(plain.state_dict().values(), swapped.state_dict().values()):
        assert torch.equal(a, b)
    x = torch.rand(5, 1, 28, 28, dtype=torch.float64)
    assert torch.allclose(plain(x), swapped(x), rtol=1e-12, atol=1e-12)


def test_window_convs_leaves_other_convolutions_alone():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Conv2d(2, 2, 2, stride=2, padding=1),
                              torch.nn.Conv2d(2, 2, 2, stride=2))
    fast.window_convs(net)
    assert [type(m) for m in net] == [torch.nn.Conv2d, torch.nn.Conv2d, fast.WindowConv2d]
