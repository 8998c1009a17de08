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
# # Homework 1 · Soft targets and the distillation loss
#
# You write the three formulas at the heart of knowledge distillation (Hinton, Vinyals & Dean 2015,
# *Distilling the Knowledge in a Neural Network*): the softmax with temperature, the soft-target
# loss and the distillation loss. Notebooks `01_softmax_temperature`, `03_three_way_distillation`
# and `04_gradient_check` show them at work.
#
# **How to work.** Write your code where it says `# YOUR CODE HERE` (delete the
# `raise NotImplementedError()` line), run the cell, then run the check cell below it. A check
# compares your function with the course's own (`kdlib.losses`) on several inputs: it prints a line
# starting with ✓ when yours is right, and otherwise stops with a message that says what is wrong
# (for the common mistakes, also why). The check cells are graded: do not change them. Write the
# formulas yourself: a check refuses a function that calls the course's own (`kdlib.losses`), and
# in exercise 1 one that calls torch's softmax.
#
# Notation: `z` are the student's logits and `v` the teacher's, both of shape N x C (N examples,
# C classes); `T` is the temperature.

# %%
import torch
import torch.nn.functional as F

from kdlib import homework as checks

# %% [markdown]
# ## 1. Softmax with temperature (2 points)
#
# $$q_i = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)}$$
#
# over the classes, i.e. the **last** dimension of the N x C logits. T = 1 is the ordinary softmax;
# a larger T gives a softer distribution that shows how the model ranks the wrong classes (the
# "dark knowledge").
#
# Write it with `torch.exp` and a sum: the check refuses torch's softmax in all its forms
# (`torch.softmax`, `F.softmax`, `logits.softmax(...)`, `log_softmax`, `torch.sparse.softmax`,
# `torch.ops.aten`...). Keep it a torch computation (no `.detach()`, `.numpy()`, NumPy or SciPy):
# training backpropagates through it, and the check compares its gradient too. Mind large
# logits: `exp(89)` is already too large for float32. Subtracting each row's maximum from the
# logits first does not change the result (why?) and keeps every exponent at or below 0.

# %% nbgrader={"grade": false, "grade_id": "softmax_t", "locked": false, "schema_version": 3, "solution": true}
def softmax_t(logits: torch.Tensor, T: float) -> torch.Tensor:
    """Softmax of logits / T over the last dimension (the classes)."""
    ### BEGIN SOLUTION
    z = logits / T
    z = z - z.max(dim=-1, keepdim=True).values  # every exponent <= 0: no overflow
    e = torch.exp(z)
    return e / e.sum(dim=-1, keepdim=True)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_softmax_t", "locked": true, "points": 2, "schema_version": 3, "solution": false}
checks.check_softmax_t(softmax_t)
### BEGIN HIDDEN TESTS
# Graded only (not in the students' copy): other batch and class sizes, other temperatures.
checks.check_softmax_t(softmax_t, shape=(1, 2), temperatures=(0.1, 3.0), seed=10)
checks.check_softmax_t(softmax_t, shape=(64, 100), temperatures=(0.25, 10.0, 100.0), seed=11)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. The soft-target loss (3 points)
#
# The student learns from the teacher's soft targets $p = \mathrm{softmax}(v / T)$ by minimising the
# KL divergence from them to its own soft output $q = \mathrm{softmax}(z / T)$, multiplied by $T^2$:
#
# $$L_\text{soft} = T^2 \cdot \frac{1}{N} \sum_{n=1}^{N} \sum_{i=1}^{C} p_{n,i} \log \frac{p_{n,i}}{q_{n,i}}$$
#
# - Sum over the classes, average over the batch: that is `reduction="batchmean"` in
#   `F.kl_div` (`reduction="mean"` would also divide by C).
# - `F.kl_div(input, target)` wants the **student's log-probabilities** as `input` and computes
#   KL(target ‖ input). Give the target as probabilities, or as log-probabilities with
#   `log_target=True`.
# - Compute log-probabilities with `F.log_softmax`, not `torch.log(softmax(...))`, which gives
#   `log(0) = -inf` when a probability underflows at large logits.
# - Why $T^2$? The gradient of the KL term with respect to $z_i$ is $(q_i - p_i)/T$, and $q - p$
#   itself shrinks like $1/T$ at high temperature; $T^2$ keeps the soft term's gradients the same
#   size whatever T (Hinton et al. 2015, section 2; notebook 04 checks it numerically).

# %% nbgrader={"grade": false, "grade_id": "soft_target_loss", "locked": false, "schema_version": 3, "solution": true}
def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     T: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher_logits / T) || softmax(student_logits / T)), batchmean."""
    ### BEGIN SOLUTION
    log_q = F.log_softmax(student_logits / T, dim=1)
    log_p = F.log_softmax(teacher_logits / T, dim=1)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True) * T * T
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_soft_target_loss", "locked": true, "points": 3, "schema_version": 3, "solution": false}
checks.check_soft_target_loss(soft_target_loss)
### BEGIN HIDDEN TESTS
# Graded only: other batch and class sizes (a batch size written into the code fails), other T.
checks.check_soft_target_loss(soft_target_loss, N=5, C=3, temperatures=(0.5, 8.0), seed=12)
checks.check_soft_target_loss(soft_target_loss, N=64, C=100, temperatures=(3.0,), seed=13)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The distillation loss (3 points)
#
# The student usually learns from the teacher and from the true labels $y$ at once:
#
# $$L = \alpha \, L_\text{soft}(z, v, T) + (1 - \alpha) \, \mathrm{CE}(z, y)$$
#
# In this course **alpha weights the soft term**, as in Hinton et al. 2015 and in the seed experiment
# (T = 2, alpha = 0.8); torchdistill and the Keras example use the opposite convention, so read
# alpha carefully wherever you meet it. The cross-entropy uses the student's plain logits (T = 1);
# `F.cross_entropy` takes logits, not probabilities. You may call your `soft_target_loss`: while
# its check runs, the course's soft-target loss stands in for yours, so this exercise earns its
# points on its own, whether or not exercise 2 does.

# %% nbgrader={"grade": false, "grade_id": "distillation_loss", "locked": false, "schema_version": 3, "solution": true}
def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """alpha * soft_target_loss(student, teacher, T) + (1 - alpha) * cross_entropy(student, labels)."""
    ### BEGIN SOLUTION
    soft = soft_target_loss(student_logits, teacher_logits, T)
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft + (1 - alpha) * hard
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_distillation_loss", "locked": true, "points": 3, "schema_version": 3, "solution": false}
checks.check_distillation_loss(distillation_loss)
### BEGIN HIDDEN TESTS
# Graded only: other sizes, other (T, alpha).
checks.check_distillation_loss(distillation_loss, N=16, C=3, settings=((0.5, 0.9), (8.0, 0.1)),
                               seed=14)
### END HIDDEN TESTS

# %% [markdown]
# ## Done
#
# Your three functions now agree with `kdlib.losses.softmax_t`, `soft_target_loss` and
# `distillation_loss`, which the notebooks use. Homework 2 perturbs the teacher's logits (noisy
# teachers) and writes one training step with this loss.
