# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Homework 5 · The gradient of the soft targets, checked
#
# After notebook `04_gradient_check`. Hinton, Vinyals & Dean (2015, section 2.1) justify distillation
# with two short derivations: the gradient of the soft-target loss with respect to a student logit, and
# its limit at high temperature, where distillation becomes matching the teacher's logits. You write
# both as formulas, write the tool that checks any gradient numerically (central differences), and
# then check the formulas with it.
#
# **How to work.** As in the other homeworks: write your code where it says `# YOUR CODE HERE`
# (delete the `raise NotImplementedError()` line), run the cell, then run the check cell below it.
# A check prints a line starting with ✓ when your function is right, and otherwise stops with a
# message that says what is wrong (for the common mistakes, also why). The check cells are graded:
# do not change them. Write the gradients yourself: the checks compare your functions with autograd,
# so they refuse a function that calls autograd (`backward`, `torch.autograd`, `torch.func`) or the
# course's losses (`kdlib.losses.soft_target_loss` and the like). `torch.softmax` is allowed, and so
# is `losses.softmax_t`, which is `torch.softmax(z / T)`.
#
# Notation (as in homework 1): `z` are the student's logits and `v` the teacher's, both N x C (N
# examples, C classes; notebook 04 writes K for the classes); $q = \mathrm{softmax}(z/T)$ and
# $p = \mathrm{softmax}(v/T)$ over the classes. The loss is homework 1's soft-target loss,
#
# $$L = T^2 \cdot \frac{1}{N} \sum_{n=1}^{N} \sum_{i=1}^{C} p_{n,i} \log \frac{p_{n,i}}{q_{n,i}}
# \qquad (\texttt{kdlib.losses.soft\_target\_loss}).$$

# %%
import torch

from kdlib import homework as checks
from kdlib import losses

# %% [markdown]
# ## 1. The gradient by hand (4 points)
#
# For one example, $\mathrm{KL}(p\,\|\,q) = \sum_j p_j \log p_j - \sum_j p_j \log q_j$, and only the
# second sum depends on $z$. With $\log q_j = z_j/T - \log\sum_k e^{z_k/T}$,
# $\partial \log q_j / \partial z_i = (\delta_{ij} - q_i)/T$, and since $\sum_j p_j = 1$,
#
# $$\frac{\partial}{\partial z_i}\,\mathrm{KL}(p\,\|\,q) = -\sum_j p_j\,\frac{\delta_{ij} - q_i}{T}
# = \frac{q_i - p_i}{T}$$
#
# (Hinton et al.'s eq. 2, written for the cross-entropy $-\sum_j p_j \log q_j$: the KL differs from it by
# the teacher's entropy, which does not depend on $z$).
#
# Now take the loss $L$ above: what do the factor $T^2$ and the average over the batch do to it?
# Write `soft_target_grad(z, v, T)`, the N x C tensor $\partial L / \partial z$, as a formula in
# `q` and `p` (no autograd). The check compares it with autograd's gradient of
# `kdlib.losses.soft_target_loss`, in float64, at several T and at student and teacher logits in the
# thousands, where a softmax written with a bare `exp` overflows.

# %% nbgrader={"grade": false, "grade_id": "soft_target_grad", "locked": false, "schema_version": 3, "solution": true}
def soft_target_grad(z: torch.Tensor, v: torch.Tensor, T: float) -> torch.Tensor:
    """dL/dz for L = T^2 * KL(softmax(v / T) || softmax(z / T)), averaged over the N rows: N x C."""
    ### BEGIN SOLUTION
    q, p = torch.softmax(z / T, dim=1), torch.softmax(v / T, dim=1)
    return T * (q - p) / len(z)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_soft_target_grad", "locked": true, "points": 4, "schema_version": 3, "solution": false}
checks.check_soft_target_grad(soft_target_grad)
### BEGIN HIDDEN TESTS
# Graded only: other batch and class sizes (a batch size written into the code fails), other T.
checks.check_soft_target_grad(soft_target_grad, N=3, C=4, temperatures=(0.5, 100.0), seed=10)
checks.check_soft_target_grad(soft_target_grad, N=32, C=100, temperatures=(3.0,), seed=11)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. A numerical gradient: central differences (3 points)
#
# Autograd can be wrong too (a `.detach()` in the wrong place, a custom backward), and so can a
# derivation. The independent check is numerical: move one element of the input a little and watch
# the function. The **central** difference
#
# $$\frac{\partial f}{\partial z_i} \approx \frac{f(z + \epsilon e_i) - f(z - \epsilon e_i)}{2\epsilon},$$
#
# where $e_i$ is 1 at element $i$ and 0 elsewhere, is off by a term in $\epsilon^2$; the forward
# difference $(f(z + \epsilon e_i) - f(z))/\epsilon$ by a term in $\epsilon$. Both also carry a rounding
# error of about (the float's precision) $\times\,|f| / \epsilon$, which is why $\epsilon$ cannot be made
# as small as you like. Write
# `central_difference(f, z, eps)` for a function `f` that takes a tensor shaped like `z` (any shape)
# and returns one number (a 0-dimensional tensor):
#
# - one element at a time; leave `z` itself unchanged (work on a copy: `z.double()` is `z` itself when
#   `z` is already float64, so add the step to a new tensor, `z + step`, or `clone()` first);
# - **in float64**, whatever the dtype of `z`: float32 keeps about 7 significant digits, and
#   $f(z + \epsilon e_i) - f(z - \epsilon e_i)$ with $\epsilon = 10^{-6}$ loses nearly all of
#   them (this is why `torch.autograd.gradcheck` asks for float64). Return the float64 result.

# %% nbgrader={"grade": false, "grade_id": "central_difference", "locked": false, "schema_version": 3, "solution": true}
def central_difference(f, z: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(f(z + eps e_i) - f(z - eps e_i)) / (2 eps) for every element i of z, in float64, shaped like z."""
    ### BEGIN SOLUTION
    z = z.detach().to(torch.float64)
    grad = torch.empty_like(z)
    for i in range(z.numel()):
        step = torch.zeros_like(z)
        step.view(-1)[i] = eps
        grad.view(-1)[i] = (f(z + step) - f(z - step)) / (2 * eps)
    return grad
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_central_difference", "locked": true, "points": 3, "schema_version": 3, "solution": false}
checks.check_central_difference(central_difference)
### BEGIN HIDDEN TESTS
# Graded only: a vector and a 3-D tensor (a solution written for matrices only fails), another eps.
checks.check_central_difference(central_difference, shape=(5,), seed=12)
checks.check_central_difference(central_difference, shape=(2, 3, 2), eps=0.05, seed=13)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The high-temperature limit (3 points)
#
# When $T$ is much larger than the logits of a row, $e^{x} \approx 1 + x$ gives
# $q_i \approx (1 + z_i/T) / (C + \sum_j z_j / T)$. If each row of logits has zero mean
# ($\sum_j z_j = \sum_j v_j = 0$), then $q_i - p_i \approx (z_i - v_i)/(C\,T)$: the soft targets'
# gradient becomes that of matching the teacher's logits, $\tfrac{1}{2}\lVert z - v\rVert^2$ for
# zero-mean rows, up to a factor, and with the $T^2$ of the loss it no longer depends on $T$ at all. The softmax does not
# change when a row of logits is shifted by a constant, so neither does the loss: for any logits,
# use each row minus its mean over the classes (then "T much larger" means: larger than the spread of
# each row around its mean).
#
# Write `logit_matching_grad(z, v)`, the limit of `soft_target_grad(z, v, T)` as $T \to \infty$:
# an N x C tensor without T. Where do the $N$ of the batch average and the $C$ above end up?

# %% nbgrader={"grade": false, "grade_id": "logit_matching_grad", "locked": false, "schema_version": 3, "solution": true}
def logit_matching_grad(z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The T -> infinity limit of soft_target_grad(z, v, T): N x C."""
    ### BEGIN SOLUTION
    n, c = z.shape
    zc, vc = z - z.mean(dim=1, keepdim=True), v - v.mean(dim=1, keepdim=True)
    return (zc - vc) / (n * c)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_logit_matching_grad", "locked": true, "points": 3, "schema_version": 3, "solution": false}
checks.check_logit_matching_grad(logit_matching_grad)
### BEGIN HIDDEN TESTS
# Graded only: other batch and class sizes.
checks.check_logit_matching_grad(logit_matching_grad, N=3, C=4, seed=14)
checks.check_logit_matching_grad(logit_matching_grad, N=20, C=7, seed=15)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. The experiment (2 points)
#
# Your three functions together, on seeded random logits: your formula against your numerical
# gradient of the course's loss, and against its limit, at temperatures from 1 to 10,000. Nothing to
# write: run the cell (it is graded on the gap to the limit only). Then answer for yourself: how fast
# does the gap to the limit close as T grows, once T is well above the spread of the logits (compare
# the rows T = 1,000 and T = 10,000)? From which T on is the formula within 1% of its limit for these
# logits? The first column grows with T too: that is rounding in the numerical gradient (the loss at
# high T is a small difference of nearly equal numbers, and eps = 1e-6 divides its rounding error), not
# an error of the formula.

# %% nbgrader={"grade": true, "grade_id": "experiment", "locked": true, "points": 2, "schema_version": 3, "solution": false}
g = torch.Generator().manual_seed(0)
z = torch.randn(8, 10, generator=g, dtype=torch.float64) * 2  # float64: see exercise 2
v = torch.randn(8, 10, generator=g, dtype=torch.float64) * 4
limit = logit_matching_grad(z, v)
print("      T   |formula - numerical| / |formula|   |formula - limit| / |limit|")
gaps = []
for T in (1.0, 10.0, 100.0, 1000.0, 10000.0):
    formula = soft_target_grad(z, v, T)
    numerical = central_difference(lambda x: losses.soft_target_loss(x, v, T), z)
    gaps.append(float((formula - limit).norm() / limit.norm()))
    print(f"{T:7g}   {float((formula - numerical).norm() / formula.norm()):33.2e}   {gaps[-1]:27.2e}")
assert all(a > b for a, b in zip(gaps, gaps[1:])), "the gap to the limit should close as T grows"
assert gaps[-1] < 1e-3, "at T = 10,000 the formula should be within 0.1% of its limit"
