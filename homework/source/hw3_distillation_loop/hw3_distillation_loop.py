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
# # Homework 3 · The distillation loop and a fair comparison
#
# After notebook `03_three_way_distillation`. You write the loop that notebook 03 is made of (one
# epoch of distillation from **cached** teacher logits), train a student alone and a distilled
# student as a **pair** (the same seed), compare them over a few seeds with a **paired**
# confidence interval, and choose the temperature on the **validation** split before reading the
# test set once.
#
# **How to work.** As in homeworks 1 and 2: write your code where it says `# YOUR CODE HERE`
# (delete the `raise NotImplementedError()` line), run the cell, then run the check cell below it.
# A check prints a line starting with ✓ when your function is right, and otherwise stops with a
# message that says what is wrong. The check cells are graded: do not change them. You may use
# kdlib's `distillation_loss` (the loss is not this homework's subject), `seed_everything` and
# `models.StudentNet`; the checks refuse kdlib's training loops, its batching (`data.batches`,
# `train.Batches`), `train.predict_logits` and `kdlib.stats`: here you write those yourself.
#
# The data: the first 4,000 training, 2,000 validation and 2,000 test images of MNIST (the seed's
# split), and a teacher that trains in seconds (a 784-512-10 MLP with dropout; the first run
# trains it and saves a checkpoint, later runs load it).

# %%
import functools

import numpy as np
import torch
from scipy import stats

from kdlib import models, train
from kdlib import homework as checks
from kdlib.losses import distillation_loss
from kdlib.repro import seed_everything

# %%
task = checks.mnist_task()
x_train, y_train, v_train = task["train"]
x_val, y_val, v_val = task["val"]
x_test, y_test, _ = task["test"]
teacher = task["teacher"]
print(f"{len(y_train)} training, {len(y_val)} validation, {len(y_test)} test images; teacher "
      f"{'loaded' if task['loaded'] else 'trained now'}, test accuracy {task['teacher_acc']:.2%}")

# %% [markdown]
# ## 1. The teacher's logits, once (1 point)
#
# The teacher is frozen: its logits for the training images never change, so they are computed
# **once** and each student epoch reads them from a tensor. Two things make them right:
#
# - the teacher in **eval mode** (`teacher.eval()`): in train mode its dropout is on and every call
#   gives other, random logits;
# - **no gradients** (`with torch.no_grad():`): nothing trains the teacher, and a graph over the
#   whole training set would only fill the memory.
#
# Write `teacher_logits(teacher, x)` returning the teacher's logits for every row of `x` (one
# forward pass over all of `x` is fine here).

# %% nbgrader={"grade": false, "grade_id": "teacher_logits", "locked": false, "schema_version": 3, "solution": true}
def teacher_logits(teacher: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The frozen teacher's logits for every row of x: eval mode, no gradients."""
    ### BEGIN SOLUTION
    teacher.eval()
    with torch.no_grad():
        return teacher(x)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_teacher_logits", "locked": true, "points": 1, "schema_version": 3, "solution": false}
checks.check_teacher_logits(teacher_logits)
### BEGIN HIDDEN TESTS
# Graded only (not in the students' copy): another teacher and batch.
checks.check_teacher_logits(teacher_logits, n=7, seed=21)
### END HIDDEN TESTS

# %% [markdown]
# `task["train"]` holds logits computed this way (`v_train`); from here on we use those.
#
# ## 2. One epoch of distillation (3 points)
#
# Write one epoch over `data = (x, y, teacher_logits)`, in batches of 64:
#
# 1. a new order of the rows, drawn from `generator`: `order = torch.randperm(n, generator=generator)`;
# 2. for each batch, `idx = order[start:start + 64]`, and the images, labels **and teacher logits of
#    the same images**: `x[idx]`, `y[idx]`, `teacher_logits[idx]`;
# 3. forward `model(xb)`, the loss `distillation_loss(student_logits, vb, yb, T, alpha)`,
#    `optimizer.zero_grad()`, `loss.backward()`, `optimizer.step()`.
#
# The classic bug: shuffle the images but read the logits in their stored order
# (`teacher_logits[start:start + 64]`). Each image then learns another image's soft targets.

# %% nbgrader={"grade": false, "grade_id": "distill_epoch", "locked": false, "schema_version": 3, "solution": true}
BATCH = 64


def distill_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data: tuple,
                  T: float, alpha: float, generator: torch.Generator) -> None:
    """One epoch: a shuffled pass over data = (x, y, teacher_logits) in batches of 64, one
    optimizer step on distillation_loss per batch."""
    ### BEGIN SOLUTION
    x, y, v = data
    order = torch.randperm(len(y), generator=generator)
    for start in range(0, len(order), BATCH):
        idx = order[start:start + BATCH]
        loss = distillation_loss(model(x[idx]), v[idx], y[idx], T, alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ### END SOLUTION


# %% [markdown]
# The check runs your epoch on 200 of the training images: it records the order your loop drew
# and compares the weights after it with the right steps in that order.

# %% nbgrader={"grade": true, "grade_id": "check_distill_epoch", "locked": true, "points": 3, "schema_version": 3, "solution": false}
checks.check_distill_epoch(distill_epoch, (x_train[:200], y_train[:200], v_train[:200]))
### BEGIN HIDDEN TESTS
# Graded only: another number of images (a last batch of 2), T and alpha.
checks.check_distill_epoch(distill_epoch, 130, T=5.0, alpha=0.3, seed=22)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. A pair of students (2 points)
#
# To compare the student alone (hard labels only, `alpha = 0`) with the distilled one
# (`alpha = 0.8`), train both with the **same seed**: the same initial weights and the same
# batches, so that they differ in their loss only. Write `train_student(data, T, alpha, seed,
# epochs)`:
#
# 1. `gen = seed_everything(seed)` (it seeds PyTorch and returns a generator seeded the same way);
# 2. `model = models.StudentNet()` (the 784-16-10 student), **after** seeding;
# 3. `optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)`;
# 4. `epochs` times `distill_epoch(model, optimizer, data, T, alpha, gen)`;
#
# and return the model. With `epochs=0` it returns the untrained student.

# %% nbgrader={"grade": false, "grade_id": "train_student", "locked": false, "schema_version": 3, "solution": true}
def train_student(data: tuple, T: float, alpha: float, seed: int, epochs: int = 3) -> torch.nn.Module:
    """A StudentNet trained `epochs` epochs with distill_epoch; the same seed gives the same
    initial weights and batches whatever alpha."""
    ### BEGIN SOLUTION
    gen = seed_everything(seed)
    model = models.StudentNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        distill_epoch(model, optimizer, data, T, alpha, gen)
    return model
    ### END SOLUTION


# %% [markdown]
# The check runs your `train_student` with your own `distill_epoch`: its points are about the
# pairing, whatever your epoch's.

# %% nbgrader={"grade": true, "grade_id": "check_train_student", "locked": true, "points": 2, "schema_version": 3, "solution": false}
checks.check_train_student(train_student, distill_epoch)
### BEGIN HIDDEN TESTS
# Graded only: other seeds, alphas and sizes.
checks.check_train_student(train_student, distill_epoch, n=70, settings=((0.5, 3), (0.0, 3)), T=2.0,
                           epochs=1)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. The paired comparison (3 points)
#
# Over a few seeds, `a[i]` and `b[i]` are the test accuracies of two students trained with seed
# `i`. Because they share their seed, compare them **seed by seed**: the differences
# $d_i = a_i - b_i$, their mean $\bar d$ and the 95% interval
#
# $$\bar d \pm t_{0.975,\,n-1}\,\frac{s_d}{\sqrt n}, \qquad s_d = \text{the standard deviation of the } d_i \text{ (ddof = 1)},$$
#
# with Student's $t$ quantile for $n - 1$ degrees of freedom, `stats.t.ppf(0.975, n - 1)` (scipy),
# not the normal 1.96: with 3 seeds it is 4.30. Write `paired_ci(a, b)` returning a dict with
# `diffs` (the $d_i$), `mean`, `low` and `high`.
#
# Then `verdict(ci)`: a sentence that says **positive** when the interval lies above 0,
# **negative** when it lies below 0, and **underpowered** when it holds 0 (these seeds cannot tell
# the sign, whatever the sign of the mean).

# %% nbgrader={"grade": false, "grade_id": "paired_ci", "locked": false, "schema_version": 3, "solution": true}
def paired_ci(a, b) -> dict:
    """Per-seed differences a - b, their mean and the paired 95% t interval."""
    ### BEGIN SOLUTION
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n)
    return {"diffs": d.tolist(), "mean": float(d.mean()), "low": float(d.mean() - half),
            "high": float(d.mean() + half)}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_paired_ci", "locked": true, "points": 2, "schema_version": 3, "solution": false}
checks.check_paired_ci(paired_ci)
### BEGIN HIDDEN TESTS
# Graded only: other numbers of seeds.
checks.check_paired_ci(paired_ci, sizes=(2, 4, 12), seed=23)
### END HIDDEN TESTS

# %% nbgrader={"grade": false, "grade_id": "verdict", "locked": false, "schema_version": 3, "solution": true}
def verdict(ci: dict) -> str:
    """'positive' above 0, 'negative' below 0, 'underpowered' when the interval holds 0."""
    ### BEGIN SOLUTION
    if ci["low"] > 0:
        return "the difference is positive (95% interval above 0)"
    if ci["high"] < 0:
        return "the difference is negative (95% interval below 0)"
    return (f"underpowered: the 95% interval [{ci['low']:+.3g}, {ci['high']:+.3g}] holds 0, so "
            f"these seeds cannot tell the sign")
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_verdict", "locked": true, "points": 1, "schema_version": 3, "solution": false}
checks.check_verdict(verdict)
### BEGIN HIDDEN TESTS
# Graded only: intervals that just touch 0 and narrow ones.
checks.check_verdict(verdict, cases=(("touches 0", 0.4, 0.0, 0.8), ("narrow", 0.01, 0.002, 0.018),
                                     ("narrow below", -0.01, -0.018, -0.002)))
### END HIDDEN TESTS

# %% [markdown]
# ## 5. The temperature, chosen on validation (2 points)
#
# Which T? Choose it on the **validation** split, and read the test set **once**, for the chosen T
# only: a test score that took part in the choice is no longer a fair estimate. Write
# `choose_temperature(temperatures, val_accuracy, test_accuracy)`: `val_accuracy(T)` and
# `test_accuracy(T)` return the accuracy of the student distilled at T on each split. Score every
# T on validation, take the one with the highest accuracy (the first of equal ones), and only then
# call `test_accuracy` once; return `(best_T, test_accuracy(best_T))`.

# %% nbgrader={"grade": false, "grade_id": "choose_temperature", "locked": false, "schema_version": 3, "solution": true}
def choose_temperature(temperatures, val_accuracy, test_accuracy) -> tuple:
    """The T with the best validation accuracy (the first on a tie) and its test accuracy,
    read once after the choice."""
    ### BEGIN SOLUTION
    scores = [val_accuracy(T) for T in temperatures]
    best = temperatures[scores.index(max(scores))]
    return best, test_accuracy(best)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_choose_temperature", "locked": true, "points": 2, "schema_version": 3, "solution": false}
checks.check_choose_temperature(choose_temperature)
### BEGIN HIDDEN TESTS
# Graded only: another grid and other scores.
checks.check_choose_temperature(choose_temperature, temperatures=(0.5, 1.5, 3.0, 6.0, 12.0, 20.0), seed=24)
### END HIDDEN TESTS

# %% [markdown]
# ## 6. The experiment (3 points)
#
# Your functions together, on the 4,000 training images: for each of five seeds, the student
# alone (`alpha = 0`) and the distilled one (`alpha = 0.8`, T = 4), three epochs each; the paired
# comparison of their test accuracies; then T chosen on validation among 1, 2, 4 and 8 (one
# student per T, seed 0). Nothing to write: run the cell.

# %% nbgrader={"grade": true, "grade_id": "experiment", "locked": true, "points": 3, "schema_version": 3, "solution": false}
SEEDS = [0, 1, 2, 3, 4]
data = (x_train, y_train, v_train)


def accuracy(model, x, y):
    return train.evaluate(model, x, y)[1]


torch.set_num_threads(1)  # a tiny network: one thread is fastest
alone = [accuracy(train_student(data, 4.0, 0.0, seed), x_test, y_test) for seed in SEEDS]
distilled = [accuracy(train_student(data, 4.0, 0.8, seed), x_test, y_test) for seed in SEEDS]
ci = paired_ci(distilled, alone)
print("test accuracy, alone:    ", " ".join(f"{a:.4f}" for a in alone))
print("test accuracy, distilled:", " ".join(f"{a:.4f}" for a in distilled))
print(f"distilled - alone: mean {ci['mean']:+.4f}, 95% interval [{ci['low']:+.4f}, "
      f"{ci['high']:+.4f}]: {verdict(ci)}")


@functools.cache
def student_at(T):
    return train_student(data, T, 0.8, seed=0)


best_T, test_acc = choose_temperature([1.0, 2.0, 4.0, 8.0],
                                      lambda T: accuracy(student_at(T), x_val, y_val),
                                      lambda T: accuracy(student_at(T), x_test, y_test))
print(f"T chosen on validation: {best_T:g}; its test accuracy, read once: {test_acc:.4f}")
assert min(alone + distilled) > 0.7, "a student did not learn: check distill_epoch"
assert ci["low"] <= ci["mean"] <= ci["high"] and isinstance(verdict(ci), str)
assert best_T in (1.0, 2.0, 4.0, 8.0)
