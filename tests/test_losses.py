"""Tests of kdlib.losses: gradients, the Hinton eq. 2 derivation, reference implementations,
extreme inputs, the noisy teacher and every argument check."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from kdlib import losses

N, C = 6, 10


def _logits(seed, n=N, c=C, scale=3.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g, dtype=dtype) * scale


def _labels(seed, n=N, c=C):
    return torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(seed))


# ---- gradcheck (float64) --------------------------------------------------------------------

@pytest.mark.parametrize("T", [0.5, 1.0, 4.0])
def test_gradcheck_softmax_t(T):
    z = _logits(0).requires_grad_()
    assert gradcheck(lambda z: losses.softmax_t(z, T), (z,))


@pytest.mark.parametrize("T", [0.5, 2.0, 20.0])
def test_gradcheck_soft_target_loss(T):
    z, v = _logits(0).requires_grad_(), _logits(1).requires_grad_()
    assert gradcheck(lambda z, v: losses.soft_target_loss(z, v, T), (z, v))


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_gradcheck_distillation_loss(alpha):
    z, v, y = _logits(0).requires_grad_(), _logits(1).requires_grad_(), _labels(2)
    assert gradcheck(lambda z, v: losses.distillation_loss(z, v, y, 2.0, alpha), (z, v))


def test_gradcheck_logit_regression_loss():
    z, v = _logits(0).requires_grad_(), _logits(1).requires_grad_()
    assert gradcheck(losses.logit_regression_loss, (z, v))


# ---- values ---------------------------------------------------------------------------------

def test_softmax_t_limits_and_rows():
    z = _logits(0)
    q = losses.softmax_t(z, 2.0)
    assert torch.allclose(q.sum(1), torch.ones(N, dtype=z.dtype))
    assert torch.allclose(q, torch.exp(z / 2) / torch.exp(z / 2).sum(1, keepdim=True))
    assert torch.allclose(losses.softmax_t(z, 1e-3), F.one_hot(z.argmax(1), C).to(z.dtype))
    assert torch.allclose(losses.softmax_t(z, 1e6), torch.full_like(z, 1 / C), atol=1e-5)


@pytest.mark.parametrize("T", [0.1, 1.0, 3.0, 50.0])
def test_soft_target_loss_zero_iff_equal(T):
    z, v = _logits(0), _logits(1)
    assert losses.soft_target_loss(z, z.clone(), T).abs().item() < 1e-12
    # Adding a constant per row does not change the softmax, hence no loss.
    assert losses.soft_target_loss(z, z + 7.0, T).abs().item() < 1e-10
    assert losses.soft_target_loss(z, v, T).item() > 0


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
def test_soft_target_loss_matches_kldivloss_batchmean(T):
    z, v = _logits(0), _logits(1)
    ref = torch.nn.KLDivLoss(reduction="batchmean")(F.log_softmax(z / T, dim=1),
                                                   F.softmax(v / T, dim=1)) * T ** 2
    # and against the definition sum_i p_i (log p_i - log q_i), averaged over rows
    p, q = torch.softmax(v / T, 1), torch.softmax(z / T, 1)
    by_hand = (p * (p.log() - q.log())).sum(1).mean() * T ** 2
    got = losses.soft_target_loss(z, v, T)
    assert torch.allclose(got, ref, rtol=1e-10) and torch.allclose(got, by_hand, rtol=1e-10)
    # 'mean' would be C times smaller: the test tells the two reductions apart
    with warnings.catch_warnings():  # PyTorch warns that 'mean' is not the KL definition
        warnings.simplefilter("ignore", UserWarning)
        mean = torch.nn.KLDivLoss(reduction="mean")(F.log_softmax(z / T, dim=1),
                                                   F.softmax(v / T, dim=1)) * T ** 2
    assert not torch.allclose(got, mean) and torch.allclose(got, mean * C)


@pytest.mark.parametrize("T", [0.5, 1.0, 2.0, 8.0])
def test_soft_gradient_is_hinton_eq2(T):
    """d(soft / T^2)/dz = (q - p) / (N T): Hinton eq. 2, batch-averaged."""
    z, v = _logits(0).requires_grad_(), _logits(1)
    (losses.soft_target_loss(z, v, T) / T ** 2).backward()
    q, p = torch.softmax(z.detach() / T, 1), torch.softmax(v / T, 1)
    expected = (q - p) / (N * T)
    assert torch.allclose(z.grad, expected, rtol=1e-10, atol=1e-14)
    # With the T^2 factor the gradient is T (q - p) / N.
    z.grad = None
    losses.soft_target_loss(z, v, T).backward()
    assert torch.allclose(z.grad, T * (q - p) / N, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.8, 1.0])
@pytest.mark.parametrize("T", [1.0, 2.0, 4.0])
def test_distillation_loss_is_weighted_sum(alpha, T):
    z, v, y = _logits(0), _logits(1), _labels(2)
    p = torch.softmax(v / T, 1)
    log_q = torch.log_softmax(z / T, 1)
    soft = T * T * (p * (p.log() - log_q)).sum(1).mean()
    log_probs = torch.log_softmax(z, 1)
    ce = -log_probs[torch.arange(N), y].mean()
    expected = alpha * soft + (1 - alpha) * ce
    assert torch.allclose(losses.distillation_loss(z, v, y, T, alpha), expected, rtol=1e-10)


def test_distillation_loss_alpha_weights_the_soft_term():
    z, v, y = _logits(0), _logits(1), _labels(2)
    assert torch.allclose(losses.distillation_loss(z, v, y, 2.0, 1.0), losses.soft_target_loss(z, v, 2.0))
    assert torch.allclose(losses.distillation_loss(z, v, y, 2.0, 0.0), F.cross_entropy(z, y))


def test_distillation_loss_accepts_int32_labels():
    z, v, y = _logits(0), _logits(1), _labels(2)
    assert torch.allclose(losses.distillation_loss(z, v, y.int(), 2.0, 0.5),
                          losses.distillation_loss(z, v, y, 2.0, 0.5))


def test_logit_regression_loss_formula():
    z, v = _logits(0), _logits(1)
    expected = sum(0.5 * sum((z[i, j] - v[i, j]) ** 2 for j in range(C)) for i in range(N)) / N
    assert torch.allclose(losses.logit_regression_loss(z, v), expected, rtol=1e-12)
    assert losses.logit_regression_loss(z, z.clone()).item() == 0
    z = z.clone().requires_grad_()
    losses.logit_regression_loss(z, v).backward()
    assert torch.allclose(z.grad, (z.detach() - v) / N)


# ---- extreme inputs -------------------------------------------------------------------------

@pytest.mark.parametrize("T", [0.05, 0.5, 1.0, 10.0, 100.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_for_huge_logits_and_any_T(T, dtype):
    g = torch.Generator().manual_seed(0)
    sign = torch.randint(0, 2, (N, C), generator=g).to(dtype) * 2 - 1
    z = (sign * 1e4).requires_grad_()
    v = -sign * 1e4  # the teacher's order is the opposite: the largest possible KL
    y = _labels(3)
    for loss in (losses.soft_target_loss(z, v, T), losses.distillation_loss(z, v, y, T, 0.5),
                 losses.logit_regression_loss(z, v), losses.softmax_t(z, T).sum()):
        z.grad = None
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z.grad).all(), (T, dtype)
    assert torch.isfinite(losses.softmax_t(z, T)).all()
    assert losses.soft_target_loss(z, v, T).item() > 0
    assert losses.soft_target_loss(z, z.detach(), T).item() == pytest.approx(0, abs=1e-6)


# ---- perturb_logits -------------------------------------------------------------------------

def _nonzero_logits(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    mag = torch.rand(n, C, generator=g) + 1.0
    sign = torch.randint(0, 2, (n, C), generator=g) * 2 - 1
    return (mag * sign).double()


def test_perturb_identity_cases():
    z = _nonzero_logits(200)
    assert torch.equal(losses.perturb_logits(z, 0.0, 1.0), z)
    assert torch.equal(losses.perturb_logits(z, 0.5, 0.0), z)


def test_perturb_fraction_one_changes_every_row():
    z = _nonzero_logits(500)
    out = losses.perturb_logits(z, 0.1, 1.0, generator=torch.Generator().manual_seed(0))
    assert (out != z).any(1).all()
    assert out.shape == z.shape and out.dtype == z.dtype


@pytest.mark.parametrize("sigma,fraction", [(0.1, 0.3), (0.5, 0.7), (0.05, 0.05)])
def test_perturb_statistics(sigma, fraction):
    n = 20000
    z = _nonzero_logits(n)
    out = losses.perturb_logits(z, sigma, fraction, generator=torch.Generator().manual_seed(1))
    changed = (out != z).any(1)
    share = changed.double().mean().item()
    # binomial standard error sqrt(f(1-f)/n) <= 0.0036; 5 of them
    assert abs(share - fraction) < 5 * math.sqrt(fraction * (1 - fraction) / n)
    ratio = (out[changed] / z[changed] - 1)
    # sample std of m = changed*C normal draws: relative standard error ~ 1/sqrt(2m)
    m = ratio.numel()
    assert abs(ratio.std().item() / sigma - 1) < 5 / math.sqrt(2 * m)
    assert abs(ratio.mean().item()) < 5 * sigma / math.sqrt(m)
    # unchanged rows are exactly the input
    assert torch.equal(out[~changed], z[~changed])


def test_perturb_reproducible_with_seeded_generator():
    z = _nonzero_logits(300)
    a = losses.perturb_logits(z, 0.2, 0.5, generator=torch.Generator().manual_seed(42))
    b = losses.perturb_logits(z, 0.2, 0.5, generator=torch.Generator().manual_seed(42))
    c = losses.perturb_logits(z, 0.2, 0.5, generator=torch.Generator().manual_seed(43))
    assert torch.equal(a, b) and not torch.equal(a, c)


# ---- argument checks ------------------------------------------------------------------------

BAD_T = [0, 0.0, -1.0, float("nan"), float("inf"), -float("inf"), "2", None]


@pytest.mark.parametrize("T", BAD_T)
def test_bad_T(T):
    z, v, y = _logits(0), _logits(1), _labels(2)
    for call in (lambda: losses.softmax_t(z, T), lambda: losses.soft_target_loss(z, v, T),
                 lambda: losses.distillation_loss(z, v, y, T, 0.5)):
        with pytest.raises(ValueError, match=r"^T must"):
            call()


@pytest.mark.parametrize("alpha", [-0.1, 1.1, float("nan"), float("inf"), "0.5", None])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match=r"^alpha must"):
        losses.distillation_loss(_logits(0), _logits(1), _labels(2), 2.0, alpha)


@pytest.mark.parametrize("sigma", [-0.1, -1e-9, float("nan"), float("inf"), None])
def test_bad_sigma(sigma):
    with pytest.raises(ValueError, match=r"^sigma must"):
        losses.perturb_logits(_logits(0), sigma, 0.5)


@pytest.mark.parametrize("fraction", [-0.01, 1.01, float("nan"), None])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match=r"^fraction must"):
        losses.perturb_logits(_logits(0), 0.1, fraction)


@pytest.mark.parametrize("bad,name", [
    (torch.randn(N), "logits"), (torch.randn(2, N, C), "logits"),
    (torch.randint(0, 5, (N, C)), "logits"), ([[1.0, 2.0]], "logits")])
def test_perturb_bad_logits(bad, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        losses.perturb_logits(bad, 0.1, 0.5)


@pytest.mark.parametrize("fn", ["soft", "distill", "regress"])
def test_shape_checks_name_the_argument(fn):
    z, v, y = _logits(0), _logits(1), _labels(2)
    second = "target_logits" if fn == "regress" else "teacher_logits"

    def call(a, b):
        if fn == "soft":
            return losses.soft_target_loss(a, b, 2.0)
        if fn == "distill":
            return losses.distillation_loss(a, b, y, 2.0, 0.5)
        return losses.logit_regression_loss(a, b)

    with pytest.raises(ValueError, match=rf"student_logits and {second} must have the same shape"):
        call(z, v[:, :5])
    with pytest.raises(ValueError, match=rf"student_logits and {second} must have the same shape"):
        call(z, v[:3])
    with pytest.raises(ValueError, match=r"^student_logits must be .* N x C"):
        call(z[0], v)
    with pytest.raises(ValueError, match=r"^student_logits must be .* N x C"):
        call(z[None], v)
    with pytest.raises(ValueError, match=r"^student_logits must"):
        call(z.long(), v)
    with pytest.raises(ValueError, match=rf"^{second} must be .* N x C"):
        call(z, v[0])
    with pytest.raises(ValueError, match=rf"^{second} must"):
        call(z, v.numpy())


def test_softmax_t_rejects_non_float():
    with pytest.raises(ValueError, match=r"^logits must"):
        losses.softmax_t(torch.arange(10), 1.0)
    with pytest.raises(ValueError, match=r"^logits must"):
        losses.softmax_t(torch.tensor(1.0), 1.0)


@pytest.mark.parametrize("labels", [
    torch.zeros(N),                                # float
    torch.zeros(N, dtype=torch.bool),              # not an integer class index
    torch.zeros(N + 1, dtype=torch.long),          # wrong length
    torch.zeros(N, 1, dtype=torch.long),           # wrong shape
    [0] * N,                                       # not a tensor
])
def test_bad_labels_type_or_shape(labels):
    with pytest.raises(ValueError, match=r"^labels must be an integer tensor"):
        losses.distillation_loss(_logits(0), _logits(1), labels, 2.0, 0.5)


@pytest.mark.parametrize("bad", [-1, C, C + 5])
def test_labels_out_of_range(bad):
    y = _labels(2)
    y[3] = bad
    with pytest.raises(ValueError, match=rf"^labels must lie in \[0, {C}\)"):
        losses.distillation_loss(_logits(0), _logits(1), y, 2.0, 0.5)
    y[3] = C - 1  # the largest valid label is fine
    losses.distillation_loss(_logits(0), _logits(1), y, 2.0, 0.5)


# ---- large T (issue 26): the loss and its gradient against an exact reference -------------------

T_MAX = getattr(losses, "T_MAX", 1e8)  # getattr: the tests also run, and fail, before the fix

def _exact_soft(z, v, T):
    """T^2 KL(p || q) batch-averaged and its gradient T (q - p) / N in 60-digit decimal arithmetic
    from the exact values of the float inputs (the standard library's Decimal: exp, ln)."""
    from decimal import Decimal, localcontext
    with localcontext() as ctx:
        ctx.prec = 60
        T, loss, grad = Decimal(float(T)), Decimal(0), []
        for zr, vr in zip(z.tolist(), v.tolist()):
            ea, eb = [(Decimal(x) / T).exp() for x in vr], [(Decimal(x) / T).exp() for x in zr]
            p, q = [a / sum(ea) for a in ea], [b / sum(eb) for b in eb]
            loss += sum(pi * (pi.ln() - qi.ln()) for pi, qi in zip(p, q))
            grad.append([float(T * (qi - pi) / len(z)) for pi, qi in zip(p, q)])
        return float(loss / len(z) * T * T), torch.tensor(grad, dtype=torch.float64)


# Measured (seeds 0-1, 4 x 10 logits of scale 3): the float64 computation is within 1e-9 of the exact
# value at T = T_MAX = 1e8 (kl_div in float64 was 4% off there, 1e-5 at T = 1e6; in float32 it gave
# -3e4 at T = 1e6). Its rounding error grows like eps64 * T / |v - z| (each class's term ~ q l^2 / 2
# from l ~ (v - z) / T, rounded to eps64 relative to l): 2e-16 * 1e8 / 4 = 5e-9 at T_MAX.
# Tolerances: float64 inputs 2e-8 (4x that bound); float32 inputs 2e-7: the result rounded to float32
# (2^-24 = 6e-8) on top.
@pytest.mark.parametrize("T", [1.0, 300.0, 3000.0, 1e4, 1e6, T_MAX])
@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 2e-7), (torch.float64, 2e-8)])
def test_soft_target_loss_is_exact_at_large_T(T, dtype, rtol):
    z, v = _logits(0, n=4, dtype=dtype).requires_grad_(), _logits(1, n=4, dtype=dtype)
    loss = losses.soft_target_loss(z, v, T)
    loss.backward()
    ref, ref_grad = _exact_soft(z.detach(), v, T)
    assert loss.dtype == dtype and loss.item() == pytest.approx(ref, rel=rtol)
    assert (z.grad.double() - ref_grad).abs().max() <= rtol * ref_grad.abs().max()


def test_soft_target_loss_reaches_the_high_temperature_limit():
    """T -> inf: T^2 KL -> 1/(2C) sum_i (d_i - mean d)^2, d = z - v per row (Hinton section 2.1),
    with a relative error O(|d| / T): 1e-6 at T = 1e6 for logits of size 3."""
    z, v = _logits(0), _logits(1)
    d = z - v
    limit = ((d - d.mean(1, keepdim=True)) ** 2).sum(1).mean() / (2 * C)
    for dtype in (torch.float32, torch.float64):
        got = losses.soft_target_loss(z.to(dtype), v.to(dtype), 1e6)
        assert got.item() == pytest.approx(limit.item(), rel=1e-5)


@pytest.mark.parametrize("T", [T_MAX * 1.01, 1e200])
def test_T_beyond_T_MAX_is_refused_with_the_range(T):
    z, v, y = _logits(0), _logits(1), _labels(2)
    for call in (lambda: losses.soft_target_loss(z, v, T), lambda: losses.distillation_loss(z, v, y, T, 0.5)):
        with pytest.raises(ValueError, match=r"^T must be .*>= T_MIN = 0.0001 and <= T_MAX = 1e\+08"):
            call()


@pytest.mark.parametrize("fn", ["soft", "distill", "regress", "perturb"])
def test_logits_without_classes_are_refused(fn):
    z, y = torch.zeros(4, 0), torch.zeros(4, dtype=torch.long)
    call = {"soft": lambda: losses.soft_target_loss(z, z, 2.0),
            "distill": lambda: losses.distillation_loss(z, z, y, 2.0, 0.5),
            "regress": lambda: losses.logit_regression_loss(z, z),
            "perturb": lambda: losses.perturb_logits(z, 0.1, 0.5)}[fn]
    with pytest.raises(ValueError, match=r"logits must have at least one class \(C >= 1\)"):
        call()


# ---- moved from test_reliability_data_losses.py (issues 14 and 16) -----------------------------

T_MIN = losses.T_MIN


# ---- losses: empty batch ----------------------------------------------------------------------

@pytest.mark.parametrize("fn", ["soft", "distill", "regress"])
def test_empty_batch_is_rejected(fn):
    z, v, y = torch.zeros(0, 10), torch.zeros(0, 10), torch.zeros(0, dtype=torch.long)
    call = {"soft": lambda: losses.soft_target_loss(z, v, 2.0),
            "distill": lambda: losses.distillation_loss(z, v, y, 2.0, 0.5),
            "regress": lambda: losses.logit_regression_loss(z, v)}[fn]
    with pytest.raises(ValueError, match=r"^student_logits must have at least one row"):
        call()


# ---- losses: numbers of any numeric type ------------------------------------------------------

def _zvy():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(6, 10, generator=g, dtype=torch.float64) * 3,
            torch.randn(6, 10, generator=g, dtype=torch.float64) * 3,
            torch.randint(0, 10, (6,), generator=g))


@pytest.mark.parametrize("T", [np.float32(2.0), np.float64(2.0), np.int64(2), torch.tensor(2.0),
                               torch.tensor(2)])
def test_T_of_any_numeric_type(T):
    z, v, y = _zvy()
    assert torch.equal(losses.softmax_t(z, T), losses.softmax_t(z, 2.0))
    assert torch.equal(losses.soft_target_loss(z, v, T), losses.soft_target_loss(z, v, 2.0))
    assert torch.equal(losses.distillation_loss(z, v, y, T, 0.5), losses.distillation_loss(z, v, y, 2.0, 0.5))


@pytest.mark.parametrize("alpha", [np.float32(0.5), np.int64(1), torch.tensor(0.5)])
def test_alpha_of_any_numeric_type(alpha):
    z, v, y = _zvy()
    assert torch.equal(losses.distillation_loss(z, v, y, 2.0, alpha),
                       losses.distillation_loss(z, v, y, 2.0, float(alpha)))


@pytest.mark.parametrize("sigma, fraction", [(np.float32(0.5), np.float32(0.5)),
                                             (torch.tensor(0.5), torch.tensor(0.5)),
                                             (np.int64(0), np.int64(1))])
def test_sigma_and_fraction_of_any_numeric_type(sigma, fraction):
    z = _zvy()[0]
    got = losses.perturb_logits(z, sigma, fraction, generator=torch.Generator().manual_seed(1))
    ref = losses.perturb_logits(z, float(sigma), float(fraction), generator=torch.Generator().manual_seed(1))
    assert torch.equal(got, ref)


@pytest.mark.parametrize("arg, value", [("T", True), ("T", torch.tensor(True)), ("alpha", True),
                                        ("alpha", False), ("sigma", False), ("fraction", True),
                                        ("T", np.bool_(True)), ("T", torch.tensor([2.0]))])
def test_booleans_and_non_scalars_are_rejected(arg, value):
    z, v, y = _zvy()
    call = {"T": lambda: losses.distillation_loss(z, v, y, value, 0.5),
            "alpha": lambda: losses.distillation_loss(z, v, y, 2.0, value),
            "sigma": lambda: losses.perturb_logits(z, value, 0.5),
            "fraction": lambda: losses.perturb_logits(z, 0.1, value)}[arg]
    with pytest.raises(ValueError, match=rf"^{arg} must .*(>|\[0, 1\])"):
        call()


# ---- losses: zero probabilities and tiny T -------------------------------------------------------

@pytest.mark.parametrize("T", [0.5, 2.0])
def test_teacher_logit_minus_inf_is_probability_zero(T):
    z, v, _ = _zvy()
    v[:, 3] = -float("inf")
    v[0, 7] = -float("inf")
    z.requires_grad_()
    loss = losses.soft_target_loss(z, v, T)
    p, log_q = torch.softmax(v / T, 1), torch.log_softmax(z.detach() / T, 1)
    log_p = torch.where(p > 0, p.log(), 0)
    expected = T * T * (p * (log_p - log_q)).sum(1).mean()
    assert torch.isfinite(loss) and torch.allclose(loss, expected, rtol=1e-10)
    loss.backward()
    assert torch.allclose(z.grad, T * (log_q.exp() - p) / len(z), rtol=1e-10, atol=1e-14)  # Hinton eq. 2
    # the same targets by a finite logit far below the others
    v_far = torch.where(torch.isinf(v), -1e4, v)
    assert torch.allclose(loss, losses.soft_target_loss(z, v_far, T), rtol=1e-10)
    y = torch.zeros(len(z), dtype=torch.long)
    assert torch.isfinite(losses.distillation_loss(z, v, y, T, 0.5))


def test_teacher_minus_inf_gives_a_finite_teacher_gradient():
    z, v, _ = _zvy()
    v[:, 3] = -float("inf")
    v.requires_grad_()
    losses.soft_target_loss(z, v, 2.0).backward()
    assert torch.isfinite(v.grad).all()
    assert (v.grad[:, 3] == 0).all()


@pytest.mark.parametrize("T", [1e-39, 1e-300, 5e-324, T_MIN / 2])
def test_tiny_T_is_rejected(T):
    z, v, y = _zvy()
    for call in (lambda: losses.softmax_t(z, T), lambda: losses.soft_target_loss(z, v, T),
                 lambda: losses.distillation_loss(z, v, y, T, 0.5)):
        with pytest.raises(ValueError, match=r"^T must be .*>= "):
            call()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_smallest_T_is_finite(dtype):
    z, v, y = (t.to(dtype) if t.is_floating_point() else t for t in _zvy())
    z = (z * 100).requires_grad_()
    loss = losses.distillation_loss(z, v * 100, y, T_MIN, 0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
