import math

import pytest
import torch
from torch import nn
from torchinfo import summary

from kdlib import models, train


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
