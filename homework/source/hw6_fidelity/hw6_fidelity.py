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
# # Homework 6 · Fidelity: how closely does a student match its teacher?
#
# After notebook `07_when_distillation_helps`, section 4. Stanton et al. (2021, *Does Knowledge
# Distillation Really Work?*) separate **fidelity**, how closely a student matches its teacher, from
# **generalisation**, how well it does on new data. You write three fidelity measures, then use them
# on two students of the same size and seed, one trained on the labels alone and one distilled, and
# see which matches its teacher more closely and which makes fewer test errors.
#
# **How to work.** As in the other homeworks: write your code where it says `# YOUR CODE HERE`
# (delete the `raise NotImplementedError()` line), run the cell, then run the check cell below it.
# A check prints a line starting with ✓ when your function is right, and otherwise stops with a
# message that says what is wrong. The check cells are graded: do not change them. The checks refuse
# notebook 07's own measures (`kdlib.when.agreement`, `teacher_student_kl` and `fidelity`) and
# `kdlib.losses` inside your functions; `torch.softmax`, `F.log_softmax` and `F.kl_div` are allowed.
#
# The data: the first 4,000 images of the training part of the course's fixed 48,000 / 12,000 split of
# MNIST's training set (seed 42, the split the notebooks use) and the first 2,000 of MNIST's test set, with the
# logits of a teacher that trains in seconds (a 784-512-10 MLP with dropout, about 91.5% test accuracy;
# the first run trains it and saves a checkpoint), computed once: the teacher of homeworks 3 and 4.

# %%
import torch
import torch.nn.functional as F

from kdlib import hinton, train
from kdlib import homework as checks

# %%
task = checks.mnist_task()
x_train, y_train, v_train = task["train"]
x_test, y_test, v_test = task["test"]
print(f"{len(y_train)} training and {len(y_test)} test images; teacher "
      f"{'loaded' if task['loaded'] else 'trained now'}, test accuracy {task['teacher_acc']:.2%}")

# %% [markdown]
# ## 1. Top-1 agreement (2 points)
#
# The share of images on which the student's top class (its arg-max over the classes) is the
# teacher's. `student_logits` and `teacher_logits` are N x C; return one number between 0 and 1.

# %% nbgrader={"grade": false, "grade_id": "agreement", "locked": false, "schema_version": 3, "solution": true}
def agreement(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> float:
    """The share of rows where the student's top class is the teacher's (a float between 0 and 1)."""
    ### BEGIN SOLUTION
    return float((student_logits.argmax(dim=1) == teacher_logits.argmax(dim=1)).double().mean())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_agreement", "locked": true, "points": 2, "schema_version": 3, "solution": false}
checks.check_agreement(agreement)
### BEGIN HIDDEN TESTS
# Graded only: other sizes (a number of rows written into the code fails).
checks.check_agreement(agreement, N=7, C=3, seed=10)
checks.check_agreement(agreement, N=500, C=100, seed=11)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. KL(teacher ‖ student) at T = 1 (3 points)
#
# With $v$ the teacher's logits, $z$ the student's, $p = \mathrm{softmax}(v)$ and $q = \mathrm{softmax}(z)$
# their predictive distributions (T = 1: the models as they are used),
#
# $$\mathrm{KL}(p\,\|\,q) = \frac{1}{N} \sum_{n=1}^{N} \sum_{k=1}^{C} p_{n,k}\,(\log p_{n,k} - \log q_{n,k}).$$
#
# Mind the argument order, `teacher_student_kl(teacher_logits, student_logits)` (the teacher first, as
# in `kdlib.when`, unlike the two other functions), and that `F.kl_div(input, target)` computes
# KL(target ‖ input) with `input` as log-probabilities and `target` as probabilities, or as
# log-probabilities if you pass `log_target=True`. Use `F.log_softmax` for the log-probabilities: the
# check also tries logits in the thousands, where a probability rounds to 0 and `log(softmax(...))`
# gives `-inf`, and an `exp` of its own overflows.

# %% nbgrader={"grade": false, "grade_id": "teacher_student_kl", "locked": false, "schema_version": 3, "solution": true}
def teacher_student_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> float:
    """KL(softmax(teacher_logits) || softmax(student_logits)), summed over the classes, averaged over the rows.
    The teacher's logits come first."""
    ### BEGIN SOLUTION
    log_p = F.log_softmax(teacher_logits, dim=1)
    log_q = F.log_softmax(student_logits, dim=1)
    return float(F.kl_div(log_q, log_p, reduction="batchmean", log_target=True))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_teacher_student_kl", "locked": true, "points": 3, "schema_version": 3, "solution": false}
checks.check_teacher_student_kl(teacher_student_kl)
### BEGIN HIDDEN TESTS
# Graded only: other sizes.
checks.check_teacher_student_kl(teacher_student_kl, N=3, C=4, seed=12)
checks.check_teacher_student_kl(teacher_student_kl, N=64, C=100, seed=13)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The teacher's mistakes the student copies (3 points)
#
# On MNIST most of the agreement between a student and a teacher that are both right on most images is
# the images both get right, so across students agreement moves with accuracy (notebook 07, section 4);
# what is left for fidelity is a few percent of disagreements. The images the teacher gets **wrong**
# isolate that part: of those, what share does the student get wrong *in the same way*, picking the
# teacher's wrong class? Write `copied_mistakes`: over the rows where
# the teacher's top class is not the label, the share where the student's top class is the
# teacher's. When the teacher makes no mistake the share is undefined: return `float("nan")`.

# %% nbgrader={"grade": false, "grade_id": "copied_mistakes", "locked": false, "schema_version": 3, "solution": true}
def copied_mistakes(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Of the rows the teacher gets wrong, the share where the student picks the teacher's class (nan if none)."""
    ### BEGIN SOLUTION
    said, says = teacher_logits.argmax(dim=1), student_logits.argmax(dim=1)
    wrong = said != labels
    if not wrong.any():
        return float("nan")
    return float((says[wrong] == said[wrong]).double().mean())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_copied_mistakes", "locked": true, "points": 3, "schema_version": 3, "solution": false}
checks.check_copied_mistakes(copied_mistakes)
### BEGIN HIDDEN TESTS
# Graded only: other sizes.
checks.check_copied_mistakes(copied_mistakes, N=40, C=3, seed=14)
checks.check_copied_mistakes(copied_mistakes, N=2000, C=10, seed=15)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. The experiment (2 points)
#
# For three seeds, two 784-100-10 students of the same seed (the same initial weights and batch
# order): one trained on the labels alone, one distilled from the teacher's logits (T = 2, alpha = 0.9
# on the soft term), 20 epochs each on the 4,000 training images (`kdlib.hinton.train_mlp_student`:
# notebook 06's training loop, Adam with a cosine schedule, batches of 256; T = 2 here, not 06's 20).
# Your three measures on the 2,000 test images, beside each student's test errors, split into those on
# the images the teacher gets wrong and those elsewhere. Nothing to write: run the cell (about 10
# seconds); its points need exercises 2 and 3 right. Then answer for yourself, seed by seed: which
# student matches its teacher more closely, by each of the three measures? Which makes fewer test
# errors? The teacher makes fewer errors than either student: where do the distilled student's extra
# errors come from, the teacher's mistakes or elsewhere?

# %% nbgrader={"grade": true, "grade_id": "experiment", "locked": true, "points": 2, "schema_version": 3, "solution": false}
torch.set_num_threads(1)  # a small network: one thread is fastest
rows = []
for seed in (0, 1, 2):
    for kind, loss_fn, data in (("labels alone", train.cross_entropy, (x_train, y_train)),
                                ("distilled", hinton.kd_loss(2.0, 0.9), (x_train, y_train, v_train))):
        student, _ = hinton.train_mlp_student((100,), loss_fn, data, seed, epochs=20)
        z = train.predict_logits(student, x_test)
        wrong, teacher_wrong = z.argmax(1) != y_test, v_test.argmax(1) != y_test
        rows.append(dict(seed=seed, kind=kind, errors=int(wrong.sum()), on_teachers=int((wrong & teacher_wrong).sum()),
                         agreement=float(agreement(z, v_test)), kl=float(teacher_student_kl(v_test, z)),
                         copied=float(copied_mistakes(z, v_test, y_test))))
teacher_errors = int((v_test.argmax(1) != y_test).sum())
print(f"teacher: {teacher_errors} test errors of {len(y_test)}")
print("test errors: on the teacher's mistakes + elsewhere")
print("seed  student        test errors       agreement  KL(teacher || student)  teacher's mistakes copied")
for r in rows:
    print(f"{r['seed']:4}  {r['kind']:13} {r['errors']:4} ({r['on_teachers']:3} + {r['errors'] - r['on_teachers']:3})"
          f"  {r['agreement']:9.2%}  {r['kl']:22.4f}  {r['copied']:25.1%}")
alone, distilled = rows[0::2], rows[1::2]
assert all(d["kl"] < a["kl"] for a, d in zip(alone, distilled)), \
    "distilling should bring the student's KL down (if the check of teacher_student_kl failed, fix it first)"
assert sum(d["copied"] for d in distilled) > sum(a["copied"] for a in alone), \
    "a distilled student copies more of its teacher's mistakes (if the check of copied_mistakes failed, fix it first)"
