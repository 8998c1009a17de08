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
# # Homework 4 · The mythical digit
#
# After notebook `06_hinton_mnist`, section 4. Hinton, Vinyals & Dean (2015) distil a teacher into
# a student that **never sees a 3**: its transfer set holds no image of a 3 and no label says 3.
# It learns about 3s only from the teacher's soft targets on the other digits (a 5 or an 8 that
# looks a bit like a 3 gets some probability of 3). It still recognises most test 3s once the
# output bias of class 3 is raised. You build that transfer set, train the student, measure its
# accuracy on the test 3s, and choose the bias shift on the **validation** split before reading
# the test set once.
#
# **How to work.** As in the other homeworks: write your code where it says `# YOUR CODE HERE`
# (delete the `raise NotImplementedError()` line), run the cell, then run the check cell below it.
# A check prints a line starting with ✓ when your function is right, and otherwise stops with a
# message that says what is wrong. The check cells are graded: do not change them. You may use
# kdlib's `distillation_loss`, `data.batches`, `seed_everything` and `models.MLP`; the checks
# refuse `kdlib.hinton` (the notebook's own transfer set, training, error count and bias choice)
# and `models.shift_bias`.
#
# The data: the first 4,000 training, 2,000 validation and 2,000 test images of MNIST (the seed's
# split) with the logits of a teacher that trains in seconds (a 784-512-10 MLP with dropout,
# trained on all ten digits; the first run trains it and saves a checkpoint), computed once.

# %%
import copy

import torch

from kdlib import data, models, train
from kdlib import homework as checks
from kdlib.losses import distillation_loss
from kdlib.repro import seed_everything

# %%
task = checks.mnist_task()
x_train, y_train, v_train = task["train"]
x_val, y_val, _ = task["val"]
x_test, y_test, _ = task["test"]
print(f"{len(y_train)} training images ({int((y_train == 3).sum())} of them 3s), {len(y_val)} "
      f"validation, {len(y_test)} test ({int((y_test == 3).sum())} 3s); teacher "
      f"{'loaded' if task['loaded'] else 'trained now'}, test accuracy {task['teacher_acc']:.2%}")

# %% [markdown]
# ## 1. The transfer set without 3s (2 points)
#
# Write `transfer_set(x, y, teacher_logits)`: the rows whose label is not 3, as `(x, y,
# teacher_logits)`, in their order. Filter the teacher's logits **with the same rows** (each image
# keeps its own soft targets), and keep **all ten** of each row's logits: the logit of class 3 on
# a 5 or an 8 is all the student will ever learn about 3s.

# %% nbgrader={"grade": false, "grade_id": "transfer_set", "locked": false, "schema_version": 3, "solution": true}
def transfer_set(x: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor) -> tuple:
    """The rows of (x, y, teacher_logits) whose label is not 3."""
    ### BEGIN SOLUTION
    keep = y != 3
    return x[keep], y[keep], teacher_logits[keep]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_transfer_set", "locked": true, "points": 2, "schema_version": 3, "solution": false}
checks.check_transfer_set(transfer_set)
### BEGIN HIDDEN TESTS
# Graded only (not in the students' copy): other rows.
checks.check_transfer_set(transfer_set, n=37, seed=31)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. The student, distilled without 3s (2 points)
#
# The short settings: a 784-100-10 MLP without dropout (`models.MLP(checks.hw4.HIDDEN)`), Adam
# with lr 1e-3, batches of 64, soft targets at T = 8 with alpha = 0.9 on the soft term. Write
# `train_student(transfer, T, alpha, seed, epochs)`:
#
# 1. `gen = seed_everything(seed)`, then `model = models.MLP((100,))`;
# 2. `optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)`;
# 3. `epochs` times: for each batch of `data.batches(x, y, v, batch_size=64, shuffle=True,
#    generator=gen)` (it shuffles the three tensors together), one step on
#    `distillation_loss(model(xb), vb, yb, T, alpha)`: `zero_grad`, `backward`, `step`;
#
# and return the model.

# %% nbgrader={"grade": false, "grade_id": "train_student", "locked": false, "schema_version": 3, "solution": true}
def train_student(transfer: tuple, T: float, alpha: float, seed: int, epochs: int) -> torch.nn.Module:
    """A 784-100-10 MLP distilled on transfer = (x, y, teacher_logits)."""
    ### BEGIN SOLUTION
    x, y, v = transfer
    gen = seed_everything(seed)
    model = models.MLP((100,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for xb, yb, vb in data.batches(x, y, v, batch_size=64, shuffle=True, generator=gen):
            loss = distillation_loss(model(xb), vb, yb, T, alpha)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_train_student", "locked": true, "points": 2, "schema_version": 3, "solution": false}
checks.check_train_without_3s(train_student)
### BEGIN HIDDEN TESTS
# Graded only: other settings and seeds.
checks.check_train_without_3s(train_student, n=90, T=20.0, alpha=0.7, seeds=(1, 2), epochs=1)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The accuracy on the test 3s (2 points)
#
# Write `accuracy_on_3s(logits, y)`: of the images whose label is 3, the share whose largest logit
# is class 3 (a number between 0 and 1). Not the accuracy over the whole set: the other digits are
# not the question.

# %% nbgrader={"grade": false, "grade_id": "accuracy_on_3s", "locked": false, "schema_version": 3, "solution": true}
def accuracy_on_3s(logits: torch.Tensor, y: torch.Tensor) -> float:
    """The share of the images labelled 3 that are predicted 3."""
    ### BEGIN SOLUTION
    threes = y == 3
    return float((logits[threes].argmax(1) == 3).float().mean())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_accuracy_on_3s", "locked": true, "points": 2, "schema_version": 3, "solution": false}
checks.check_accuracy_on_3s(accuracy_on_3s)
### BEGIN HIDDEN TESTS
# Graded only: other predictions.
checks.check_accuracy_on_3s(accuracy_on_3s, n=1000, seed=33)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. The bias of class 3 (2 points)
#
# The student's output bias of class 3 is too low: every label it saw pushed class 3 down. Adding
# $\delta$ to that bias adds $\delta$ to the 3-logit of every image and changes no other logit.
# Write `shift_bias(model, delta)`: a **copy** of the model (`copy.deepcopy`) whose last layer's
# `bias[3]` is raised by `delta` (under `torch.no_grad()`); the model given stays as it was. The
# last layer of `models.MLP` is `model[-1]`, an `nn.Linear`.

# %% nbgrader={"grade": false, "grade_id": "shift_bias", "locked": false, "schema_version": 3, "solution": true}
def shift_bias(model: torch.nn.Module, delta: float) -> torch.nn.Module:
    """A copy of model with delta added to the output bias of class 3."""
    ### BEGIN SOLUTION
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        shifted[-1].bias[3] += delta
    return shifted
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_shift_bias", "locked": true, "points": 2, "schema_version": 3, "solution": false}
checks.check_shift_bias(shift_bias)
### BEGIN HIDDEN TESTS
# Graded only: another network and shifts.
checks.check_shift_bias(shift_bias, deltas=(0.5, 7.5), hidden=(30, 30), seed=34)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. The shift, chosen on validation (2 points)
#
# The paper chose its shift on the test set; we choose it on the **validation** split and read the
# test set **once**, for the chosen shift only. Write `choose_bias(deltas, val_errors,
# test_errors)`: `val_errors(delta)` and `test_errors(delta)` return the errors of the student
# shifted by delta on each split. Score every delta on validation, take the one with the fewest
# errors (the first of equal ones), and only then call `test_errors` once; return
# `(best_delta, test_errors(best_delta))`.

# %% nbgrader={"grade": false, "grade_id": "choose_bias", "locked": false, "schema_version": 3, "solution": true}
def choose_bias(deltas, val_errors, test_errors) -> tuple:
    """The shift with the fewest validation errors (the first on a tie) and its test errors,
    read once after the choice."""
    ### BEGIN SOLUTION
    errors = [val_errors(d) for d in deltas]
    best = deltas[errors.index(min(errors))]
    return best, test_errors(best)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_choose_bias", "locked": true, "points": 2, "schema_version": 3, "solution": false}
checks.check_choose_bias(choose_bias)
### BEGIN HIDDEN TESTS
# Graded only: another grid and other errors.
checks.check_choose_bias(choose_bias, deltas=(-1.0, 0.5, 2.5, 3.5, 5.0, 8.0), seed=35)
### END HIDDEN TESTS

# %% [markdown]
# ## 6. The experiment (2 points)
#
# Your functions together: the student distilled without 3s (T = 8, alpha = 0.9, 8 epochs), its
# accuracy on the test 3s, the bias shift chosen on validation among 0, 0.5, ..., 8, and the test
# set read once. Nothing to write: run the cell.

# %% nbgrader={"grade": true, "grade_id": "experiment", "locked": true, "points": 2, "schema_version": 3, "solution": false}
torch.set_num_threads(1)  # a small network: one thread is fastest
x3, y3, v3 = transfer_set(x_train, y_train, v_train)
student = train_student((x3, y3, v3), T=8.0, alpha=0.9, seed=0, epochs=8)
logits_val, logits_test = train.predict_logits(student, x_val), train.predict_logits(student, x_test)
before = accuracy_on_3s(logits_test, y_test)


def errors(model, x, y):
    return int((train.predict_logits(model, x).argmax(1) != y).sum())


deltas = [d / 2 for d in range(17)]
best, test_errors = choose_bias(deltas, lambda d: errors(shift_bias(student, d), x_val, y_val),
                                lambda d: errors(shift_bias(student, d), x_test, y_test))
after = accuracy_on_3s(train.predict_logits(shift_bias(student, best), x_test), y_test)
print(f"{len(y3)} transfer images, {int((y3 == 3).sum())} of them 3s")
print(f"before the shift: {errors(student, x_test, y_test)} test errors; {before:.1%} of the "
      f"{int((y_test == 3).sum())} test 3s right")
print(f"bias of class 3 raised by {best:g} (chosen on validation): {test_errors} test errors; "
      f"{after:.1%} of the test 3s right")
assert int((y3 == 3).sum()) == 0 and len(y3) == len(v3)
assert after > before and after > 0.5, "the shift did not help the 3s"
