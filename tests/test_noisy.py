import pytest
import torch

import kdlib
from kdlib import models, noisy, train
from kdlib.losses import logit_regression_loss


@pytest.mark.parametrize("make, params, shape", [
    (models.LeNetMNIST, 431_080, (2, 1, 28, 28)),
    (models.MLP800, 1_276_810, (2, 1, 28, 28)),
    (models.NiN, 966_986, (2, 3, 32, 32)),
    (models.LeNetCIFAR, 8_609_674, (2, 3, 32, 32)),
    (models.LeNetSVHN, 3_276_234, (2, 3, 32, 32)),
])
def test_parameter_counts(make, params, shape):
    m = make()
    assert models.count_parameters(m) == params
    assert m(torch.zeros(shape)).shape == (2, 10)


def test_noise_is_reproducible_and_fresh_per_batch():
    z, v = torch.zeros(8, 10), torch.randn(8, 10)
    f1 = noisy.noisy_teacher_loss(0.5, 1.0, torch.Generator().manual_seed(0))
    f2 = noisy.noisy_teacher_loss(0.5, 1.0, torch.Generator().manual_seed(0))
    a, b = f1(z, None, v), f1(z, None, v)
    assert a != b  # a new draw on each batch
    assert f2(z, None, v) == a  # same seed, same noise
    assert noisy.noisy_teacher_loss(0.0, 1.0)(z, None, v) == logit_regression_loss(z, v)


def test_expected_loss_matches_monte_carlo():
    torch.manual_seed(0)
    s, z = torch.randn(4, 10, dtype=torch.float64), 3 * torch.randn(4, 10, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    f = noisy.noisy_teacher_loss(0.4, 0.5, gen)
    mc = torch.stack([f(s, None, z) for _ in range(20000)]).mean()
    exact = noisy.expected_noisy_loss(s, z, 0.4, 0.5)
    assert mc == pytest.approx(exact.item(), rel=0.02)
    assert exact > logit_regression_loss(s, z)


def test_noisy_teacher_training_lowers_the_loss(real_data):
    d = kdlib.recipes.mnist_split(subset=1000)
    gen = kdlib.seed_everything(0)
    teacher = models.LeNetMNIST()
    v = train.predict_logits(teacher, d["train"][0]) * 5  # a fixed random teacher is enough here
    student = models.MLP800()
    loss_fn = noisy.noisy_teacher_loss(0.3, 0.5, gen)
    before = logit_regression_loss(train.predict_logits(student, d["train"][0]), v)
    opt = torch.optim.SGD(student.parameters(), lr=0.01)
    train.fit(student, opt, (*d["train"], v), epochs=3, loss_fn=loss_fn, generator=gen, progress=False)
    after = logit_regression_loss(train.predict_logits(student, d["train"][0]), v)
    assert after < 0.5 * before
