"""kdlib.homework.hw5 (homework 5, after notebook 04): each check accepts right answers written in other
ways and names the typical mistake; the generic tests of every assignment (solutions pass, stubs
fail, release up to date, hidden tests) are in tests/test_homework.py."""
import pytest
import torch
import torch.nn.functional as F
from test_homework import accepts_on_two_inputs, autograde_scores, names_the_mistake

from kdlib import homework as checks
from kdlib import losses
from kdlib.homework import hw5


def _grad(z, v, T):
    return T * (torch.softmax(z / T, 1) - torch.softmax(v / T, 1)) / len(z)


def _limit(z, v):
    return ((z - z.mean(1, keepdim=True)) - (v - v.mean(1, keepdim=True))) / z.numel()


def _forward(f, z, eps=1e-6):
    z = z.detach().double()
    return torch.stack([(f(z + hw5._unit(z, i, eps)) - f(z)) / eps for i in range(z.numel())]).view(z.shape)


def _in_place(f, z, eps=1e-6):
    """Moves z's own elements and puts them back: z + eps - 2 eps + eps is not always z again."""
    out = torch.empty(z.shape, dtype=torch.float64)
    flat = z.view(-1)
    for i in range(z.numel()):
        flat[i] += eps
        up = f(z.double())
        flat[i] -= 2 * eps
        down = f(z.double())
        flat[i] += eps
        out.view(-1)[i] = (up - down) / (2 * eps)
    return out


def _double_in_place(f, z, eps=1e-6):
    """Believes z.double() is a copy: it is z itself when z is already float64."""
    x = z.double()
    out = torch.empty(z.shape, dtype=torch.float64)
    for i in range(x.numel()):
        x.view(-1)[i] += eps
        up = f(x)
        x.view(-1)[i] -= 2 * eps
        out.view(-1)[i] = (up - f(x)) / (2 * eps)
    return out


def _forward_mode(z, v, T):
    """Starts a forward-mode derivative (torch.autograd.forward_ad), then answers with the formula."""
    import torch.autograd.forward_ad as fwAD

    with fwAD.dual_level():
        fwAD.make_dual(z, torch.ones_like(z))
    return _grad(z, v, T)


def _naive_softmax(x):
    return x.exp() / x.exp().sum(1, keepdim=True)


def _with_backward(z, v, T):
    z = z.clone().requires_grad_()
    (F.kl_div(F.log_softmax(z / T, 1), F.softmax(v / T, 1), reduction="batchmean") * T * T).backward()
    return z.grad


GRAD, DIFF, LIMIT = checks.check_soft_target_grad, checks.check_central_difference, checks.check_logit_matching_grad
WRONG = {  # case: (check, the student's function, a phrase of the message that names the mistake)
    "no T^2": (GRAD, lambda z, v, T: _grad(z, v, T) / T ** 2, "the gradient of the KL term alone"),
    "T^2 but no 1/T": (GRAD, lambda z, v, T: _grad(z, v, T) * T, "not the 1/T of the chain rule"),
    "no T at all": (GRAD, lambda z, v, T: _grad(z, v, T) / T, "does not depend on T the way"),
    "wrong sign": (GRAD, lambda z, v, T: -_grad(z, v, T), "wrong sign"),
    "sum over the batch": (GRAD, lambda z, v, T: _grad(z, v, T) * len(z), "batch size"),
    "mean over the classes": (GRAD, lambda z, v, T: _grad(z, v, T) / z.shape[1], "not by N * C"),
    "softmax at T = 1": (GRAD, lambda z, v, T: T * (torch.softmax(z, 1) - torch.softmax(v, 1)) / len(z),
                         "softmax at T = 1"),
    "softmax over the batch": (GRAD, lambda z, v, T: T * (torch.softmax(z / T, 0) - torch.softmax(v / T, 0)) / len(z),
                               "over the batch dimension"),
    "bare exp overflows": (GRAD, lambda z, v, T: T * (_naive_softmax(z / T) - torch.softmax(v / T, 1)) / len(z),
                           "at large logits"),
    "divided by C": (GRAD, lambda z, v, T: _grad(z, v, T) * len(z) / z.shape[1], "not by N"),
    "1/T^2 as in the KL's size": (GRAD, lambda z, v, T: _grad(z, v, T) / T ** 3, "(q - p) / (N T^2)"),
    "only q softened": (GRAD, lambda z, v, T: T * (torch.softmax(z / T, 1) - torch.softmax(v, 1)) / len(z),
                        "only q is softened"),
    "only p softened": (GRAD, lambda z, v, T: T * (torch.softmax(z, 1) - torch.softmax(v / T, 1)) / len(z),
                        "only p is softened"),
    "bare exp for p": (GRAD, lambda z, v, T: T * (torch.softmax(z / T, 1) - _naive_softmax(v / T)) / len(z),
                       "at large logits"),
    "autograd": (GRAD, _with_backward, "computes the gradient for you"),
    "forward-mode autograd": (GRAD, _forward_mode, "computes the gradient for you"),
    "kdlib's loss": (GRAD, lambda z, v, T: hw5.autograd_grad(lambda x: losses.soft_target_loss(x, v, T), z),
                     "kdlib.losses.soft_target_loss"),
    "forward difference": (DIFF, _forward, "forward difference"),
    "divided by eps": (DIFF, lambda f, z, eps=1e-6: 2 * hw5.central(f, z, eps), "not by 2 eps"),
    "all elements at once": (DIFF, lambda f, z, eps=1e-6: ((f(z.double() + eps) - f(z.double() - eps)) / (2 * eps))
                             .expand(z.shape), "every element of z at once"),
    "own eps": (DIFF, lambda f, z, eps=1e-6: hw5.central(f, z, 1e-6), "does not depend on eps"),
    "float32": (DIFF, lambda f, z, eps=1e-6: hw5.central(lambda x: f(x.float()).double(), z, eps), "in float32"),
    "float32 result": (DIFF, lambda f, z, eps=1e-6: hw5.central(f, z, eps).to(z.dtype), "returned torch.float32"),
    "z changed": (DIFF, _in_place, "changed the z it was given"),
    "z changed through .double()": (DIFF, _double_in_place, "z itself when z is already float64"),
    "float32 buffer": (DIFF, lambda f, z, eps=1e-6: hw5.central(f, z, eps).float().double().float(),
                       "returned torch.float32"),
    "only z centred": (LIMIT, lambda z, v: ((z - z.mean(1, keepdim=True)) - v) / z.numel(), "centred z but not v"),
    "not centred": (LIMIT, lambda z, v: (z - v) / z.numel(), "raw logits"),
    "centred over the batch": (LIMIT, lambda z, v: ((z - z.mean(0)) - (v - v.mean(0))) / z.numel(), "dim=1"),
    "no 1/C": (LIMIT, lambda z, v: _limit(z, v) * z.shape[1], "10x too large"),
    "no 1/N": (LIMIT, lambda z, v: _limit(z, v) * len(z), "8x too large"),
    "limit's sign": (LIMIT, lambda z, v: -_limit(z, v), "wrong sign"),
}


@pytest.mark.parametrize("case", sorted(WRONG))
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")  # torch's own, from forward-mode autograd
def test_check_names_the_mistake(case):
    names_the_mistake(*WRONG[case])


RIGHT = {  # right answers written in other ways than the solutions
    "grad with kdlib's softmax_t (notebook 04's formula)": (GRAD, lambda z, v, T: T / len(z) * (
        losses.softmax_t(z, T) - losses.softmax_t(v, T))),
    "grad from log_softmax": (GRAD, lambda z, v, T: T / len(z) * (F.log_softmax(z / T, 1).exp() - F.softmax(v / T, 1))),
    "difference, one vector at a time": (DIFF, lambda f, z, eps=1e-6: torch.stack(
        [(f(z.double() + e.view(z.shape)) - f(z.double() - e.view(z.shape))) / (2 * eps)
         for e in torch.eye(z.numel(), dtype=torch.float64) * eps]).view(z.shape)),
    "limit with explicit sums": (LIMIT, lambda z, v: (z - v - (z.sum(1, keepdim=True) - v.sum(1, keepdim=True))
                                                      / z.shape[1]) / (len(z) * z.shape[1])),
}


@pytest.mark.parametrize("case", sorted(RIGHT))
def test_check_accepts_right_answers(case, capsys):
    accepts_on_two_inputs(*RIGHT[case], capsys)


def test_the_limit_is_the_gradient_at_high_temperature():
    """What exercise 3 and the experiment rely on: autograd's gradient of kdlib's loss approaches the limit
    like 1/T (measured: 10x closer for 10x the temperature, from T = 100 on)."""
    g = torch.Generator().manual_seed(0)
    z, v = (torch.randn(8, 10, generator=g, dtype=torch.float64) * s for s in (2, 4))
    limit = _limit(z, v)
    gaps = [float((hw5.autograd_grad(lambda x: losses.soft_target_loss(x, v, T), z) - limit).norm() / limit.norm())
            for T in (1e2, 1e3, 1e4)]
    assert all(8 < a / b < 12 for a, b in zip(gaps, gaps[1:])) and gaps[-1] < 1e-3


# (student): (edits to the solution, expected score of 12); a right one and a typical wrong one (each autograded
# submission costs a kernel: the suite's time)
SUBMISSIONS = {
    "alice": ((), 12),
    # no T^2 in the gradient: its 4 points, and the experiment's 2 (the gap to the limit grows with T)
    "bob": ((("return T * (q - p) / len(z)", "return (q - p) / (len(z) * T)"),), 6),
}


def test_autograde_grades_right_and_wrong_submissions(tmp_path):
    """nbgrader autograde + export, hidden tests included, on students' notebooks made from the exercise: each
    wrong submission loses exactly the points of the cells its mistake breaks."""
    scores = autograde_scores(tmp_path, "hw5_gradient_check", {s: edits for s, (edits, _) in SUBMISSIONS.items()})
    assert scores == {s: (score, 12) for s, (_, score) in SUBMISSIONS.items()}
