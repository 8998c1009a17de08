"""kdlib.as_written: the seed's and the blog's losses as written, with the teacher's trunk cached."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kdlib import as_written, models, train


@pytest.mark.parametrize("make, shape", [(models.TeacherNet, (16, 1, 28, 28)),
                                         (models.BlogTeacherNet, (16, 1, 28, 28))])
def test_cached_trunk_equals_the_full_teacher_in_train_mode(make, shape):
    torch.manual_seed(0)
    teacher = make().train()
    x = torch.randn(shape)
    trunk, head = as_written.split_at_dropout(teacher)
    features = train.predict_logits(trunk, x, batch_size=5)  # once, in pieces, inference mode
    torch.manual_seed(42)
    full = teacher(x)
    torch.manual_seed(42)
    cached = head.train()(features)
    assert torch.allclose(full, cached, atol=1e-5, rtol=1e-5)
    torch.manual_seed(43)
    other = head(features)
    assert not torch.allclose(full, other, atol=1e-3)  # dropout really is drawn per call


def test_split_needs_a_dropout():
    with pytest.raises(ValueError, match="no dropout"):
        as_written.split_at_dropout(models.StudentNet())


def test_seed_loss_is_the_mean_reduced_kl_with_the_teacher_in_train_mode():
    torch.manual_seed(1)
    teacher = models.TeacherNet().train()
    trunk, head = as_written.split_at_dropout(teacher)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    z = torch.randn(8, 10)
    T, alpha = 2.0, 0.8
    torch.manual_seed(5)
    v_cached = head.train()(train.predict_logits(trunk, x))  # the seed's teacher in train mode, cached trunk
    got = as_written.seed_loss(T, alpha)(z, y, v_cached)
    torch.manual_seed(5)
    v = teacher(x).detach()
    p, log_q = F.softmax(v / T, 1), F.log_softmax(z / T, 1)
    kl_per_sample = (p * (p.log() - log_q)).sum(1)
    soft = kl_per_sample.mean() / 10 * T * T  # 'mean' over batch and the 10 classes
    want = alpha * soft + (1 - alpha) * F.cross_entropy(z, y)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


def test_blog_loss_value_and_its_gradient():
    torch.manual_seed(2)
    v = torch.randn(6, 10) * 3
    y = torch.randint(0, 10, (6,))
    z = torch.randn(6, 10, requires_grad=True)
    T, alpha = 5.0, 0.7
    loss = as_written.blog_loss(T, alpha)(z, y, v)
    p, q = F.softmax(v / T, 1), F.softmax(z.detach() / T, 1)
    value = alpha * (p * (p.log() - q)).sum(1).mean() + (1 - alpha) * F.cross_entropy(z.detach(), y)
    assert loss.item() == pytest.approx(value.item(), rel=1e-5)
    loss.backward()
    n = len(y)
    ce_grad = (F.softmax(z.detach(), 1) - F.one_hot(y, 10)) / n
    soft_grad = -(alpha / (n * T)) * q * (p - (p * q).sum(1, keepdim=True))
    assert torch.allclose(z.grad, (1 - alpha) * ce_grad + soft_grad, atol=1e-6)


def test_the_blog_teacher_keeps_dropout_on_in_eval_mode():
    torch.manual_seed(3)
    teacher = train.freeze(models.BlogTeacherNet())
    x = torch.rand(4, 1, 28, 28)
    assert not teacher.training and not torch.equal(teacher(x), teacher(x))
    trunk, head = as_written.split_at_dropout(teacher)
    det = head[1:](trunk(x))  # dropout left out: the deterministic teacher
    assert torch.equal(det, head[1:](trunk(x)))
