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
# # Homework 2 · A noisy teacher and one training step
#
# You write the noisy-teacher perturbation of Sau & Balasubramanian 2016 (*Deep Model Compression:
# Distilling Knowledge from Noisy Teachers*; notebook `05_noisy_teachers`) and one distillation
# training step, then train a small student on real MNIST images with both.
#
# **How to work.** As in homework 1: write your code where it says `# YOUR CODE HERE` (delete the
# `raise NotImplementedError()` line), run the cell, then run the check cell below it. A check
# prints a line starting with ✓ when your function is right, and otherwise stops with a message
# that says what is wrong. The check cells are graded: do not change them. Write
# `perturb_logits` yourself: its check refuses a function that calls `kdlib.losses`. The training
# step uses kdlib's `distillation_loss` (the only kdlib loss allowed there).

# %%
import torch

from kdlib import data, fast, models, recipes, train
from kdlib import homework as checks
from kdlib.losses import distillation_loss
from kdlib.repro import seed_everything

# %% [markdown]
# ## 1. The noisy teacher (3 points)
#
# Sau & Balasubramanian perturb the teacher's logits $z$ (eq. 2 of the paper): each row (one
# example) is **chosen** with probability `fraction`; a chosen row becomes
#
# $$z' = z \odot (1 + \xi), \qquad \xi \sim \mathcal N(0, \sigma^2) \text{ drawn for every logit,}$$
#
# and the rows that were not chosen stay exactly as they were. The noise is *multiplied*, not
# added: it scales each logit by a random factor near 1.
#
# - One uniform random number per row decides whether the row is chosen (`torch.rand(N) < fraction`).
# - $\mathcal N(0, \sigma^2)$ has standard deviation $\sigma$: `torch.randn(N, C) * sigma`.
# - Draw every random number from `generator` (`torch.rand(..., generator=generator)`), so that a
#   seeded generator repeats the noise. `torch.where` helps to keep the rows that were not chosen.
# - Return a new tensor; do not change `logits` in place.

# %% nbgrader={"grade": false, "grade_id": "perturb_logits", "locked": false, "schema_version": 3, "solution": true}
def perturb_logits(logits: torch.Tensor, sigma: float, fraction: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Each row chosen with probability `fraction` becomes logits * (1 + xi), xi ~ N(0, sigma^2)
    per logit; the other rows are returned unchanged."""
    ### BEGIN SOLUTION
    n, c = logits.shape
    chosen = torch.rand(n, generator=generator) < fraction
    xi = torch.randn(n, c, generator=generator, dtype=logits.dtype) * sigma
    return torch.where(chosen[:, None], logits * (1 + xi), logits)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_perturb_logits", "locked": true, "points": 3, "schema_version": 3, "solution": false}
checks.check_perturb_logits(perturb_logits)
### BEGIN HIDDEN TESTS
# Graded only (not in the students' copy): another sigma and fraction.
checks.check_perturb_logits(perturb_logits, sigma=0.5, fraction=0.7, seed=15)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. One distillation training step (3 points)
#
# The teacher is frozen, so its logits are computed once and cached (`teacher_logits`); each step
# only runs the student. Write one step:
#
# 1. forward: the student's logits `model(x)`;
# 2. the loss: `distillation_loss(student_logits, teacher_logits, y, T, alpha)` (kdlib's version of
#    your homework 1 function; alpha weights the soft term);
# 3. `optimizer.zero_grad()`: `backward()` *adds* to the gradients already stored, so clear the
#    previous step's first;
# 4. `loss.backward()`;
# 5. `optimizer.step()`;
#
# and return the loss as a number (`loss.item()`).

# %% nbgrader={"grade": false, "grade_id": "distillation_step", "locked": false, "schema_version": 3, "solution": true}
def distillation_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                      y: torch.Tensor, teacher_logits: torch.Tensor, T: float = 2.0,
                      alpha: float = 0.8) -> float:
    """One optimizer step of `model` on distillation_loss; returns the loss before the step."""
    ### BEGIN SOLUTION
    student_logits = model(x)
    loss = distillation_loss(student_logits, teacher_logits, y, T, alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %% [markdown]
# A small real batch: MNIST training images and the logits of the course's teacher (the CNN of
# notebook `02_teacher`, loaded from its checkpoint; if you have not run notebook 02 yet, this cell
# trains it first, which takes a few minutes on a laptop).

# %%
seed_everything(0)
mnist = recipes.mnist_split(subset=2000)
x, y = mnist["train"]
x_val, y_val = mnist["val"]
teacher, teacher_info = recipes.mnist_teacher(progress=False)
teacher_logits = train.predict_logits(teacher, x)  # cached once: the teacher is frozen
print(f"{len(y)} training images; teacher test accuracy {teacher_info['test_acc']:.2%}, "
      f"its accuracy on these images {(teacher_logits.argmax(1) == y).float().mean():.2%}")

# %% [markdown]
# The check runs your step on 64 of these images (and on a random batch) and compares the weights
# after it with one step of the reference.

# %% nbgrader={"grade": true, "grade_id": "check_distillation_step", "locked": true, "points": 3, "schema_version": 3, "solution": false}
checks.check_training_step(distillation_step, x[:64], y[:64], teacher_logits[:64])
checks.check_training_step(distillation_step)
### BEGIN HIDDEN TESTS
# Graded only: another batch, T and alpha.
checks.check_training_step(distillation_step, x[64:96], y[64:96], teacher_logits[64:96], T=4.0,
                           alpha=0.3)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Train a student with a noisy teacher (2 points)
#
# Your two functions together: five epochs of the 784-16-10 student (`kdlib.models.StudentNet`) on
# the 2,000 images, each batch distilled from freshly perturbed teacher logits (sigma = 0.2, half of
# the rows chosen). Nothing to write: run the cell. The loss must fall and the student must
# classify most of 2,000 validation images it has never seen. These points need both of your
# functions right (exercises 1 and 2 are each graded on their own).

# %% nbgrader={"grade": true, "grade_id": "train_noisy_student", "locked": true, "points": 2, "schema_version": 3, "solution": false}
gen = seed_everything(0)
student = models.StudentNet()
optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
step_losses = []
with fast.torch_threads(1):  # a tiny network: one thread is fastest
    for epoch in range(5):
        for xb, yb, vb in data.batches(x, y, teacher_logits, batch_size=64, shuffle=True,
                                       generator=gen):
            noisy = perturb_logits(vb, sigma=0.2, fraction=0.5, generator=gen)
            step_losses.append(distillation_step(student, optimizer, xb, yb, noisy, T=2.0, alpha=0.8))
val_loss, val_acc = train.evaluate(student, x_val, y_val)
first, last = sum(step_losses[:10]) / 10, sum(step_losses[-10:]) / 10
print(f"{len(step_losses)} steps: loss {first:.3f} (first 10 steps) -> {last:.3f} (last 10); "
      f"validation accuracy {val_acc:.2%}")
assert last < 0.7 * first, "the distillation loss did not fall"
assert val_acc > 0.7, f"validation accuracy {val_acc:.2%} is too low"
