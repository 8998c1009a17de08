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
# # 03 · Three-way distillation: hard, soft, hard + soft
#
# The seed experiment trains the same small student, a 784-16-10 MLP (12,730 parameters), three ways:
#
# | student | loss |
# |---|---|
# | **hard** | cross-entropy with the true labels, $\mathrm{CE}(z, y)$ |
# | **soft** | only the teacher's soft targets, $T^2\,\mathrm{KL}(p\,\|\,q)$ with $p=\mathrm{softmax}(v/T)$, $q=\mathrm{softmax}(z/T)$ |
# | **hard+soft** | $\alpha\,T^2\,\mathrm{KL}(p\,\|\,q) + (1-\alpha)\,\mathrm{CE}(z, y)$ |
#
# with the seed's settings: $T=2$, $\alpha=0.8$ (**alpha weights the soft term**, as in Hinton et al.
# and the seed; torchdistill and Keras use the opposite convention), Adam with lr $10^{-3}$, batch 64,
# at most 10 epochs with early stopping on the validation loss (patience 2, min_delta $10^{-4}$, best
# weights kept), the 48,000 / 12,000 split with seed 42. The teacher is notebook 02's, in `eval()` mode,
# and its logits are computed **once** for the whole training set: each student epoch then reads
# them from a tensor instead of running the teacher on every batch.
#
# Each student is trained with several seeds, so that we can tell real differences from run-to-run noise.

# %%
import time

import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

import kdlib
from kdlib import losses, models, plots, recipes, train

NOTEBOOK_START = time.perf_counter()
SEEDS = kdlib.pick(full=[0, 1, 2, 3, 4], fast=[0, 1])
SUBSET = kdlib.pick(full=None, fast=3000)
print(f"fast mode: {kdlib.fast_mode()}; seeds {SEEDS}; settings {recipes.STUDENT}")

# %% [markdown]
# ## The teacher and its cached logits

# %%
teacher, tinfo = recipes.mnist_teacher()
d = recipes.mnist_split(SUBSET)
(x_tr, y_tr), (x_va, y_va), (x_te, y_te) = d["train"], d["val"], d["test"]
start = time.perf_counter()
tset = tinfo["settings"]
v_tr = train.predict_logits(teacher, x_tr)
v_va = train.predict_logits(teacher, x_va)
print(f"teacher logits for {len(x_tr) + len(x_va)} images in {time.perf_counter() - start:.1f} s "
      f"(once, eval mode, inference mode)")
teacher_acc = train.evaluate(teacher, x_te, y_te)[1]
print(f"teacher test accuracy {teacher_acc:.4f} ({'loaded' if tinfo['loaded'] else 'trained'} "
      f"{tinfo['path'].name})")

# %% [markdown]
# ## Train the three students over several seeds
# Each student's early stopping watches its own loss on the validation split (with the
# teacher's validation logits for the soft terms).

# %%
KINDS = ["hard", "soft", "hard+soft"]
results = {k: [] for k in KINDS}     # test accuracy per seed
histories = {k: [] for k in KINDS}
start = time.perf_counter()
for kind in KINDS:
    for seed in SEEDS:
        student, hist = recipes.train_mnist_student(recipes.student_loss(kind), (x_tr, y_tr, v_tr),
                                                    (x_va, y_va, v_va), seed=seed,
                                                    desc=f"{kind} seed {seed}")
        results[kind].append(train.evaluate(student, x_te, y_te)[1])
        histories[kind].append(hist)
        print(f"{kind:9s} seed {seed}: {len(hist['train_loss'])} epochs (best {hist['best_epoch'] + 1}), "
              f"test acc {results[kind][-1]:.4f}")
print(f"{len(KINDS) * len(SEEDS)} students in {time.perf_counter() - start:.0f} s")

# %% [markdown]
# ## Results beside the seed's

# %%
SEED_REPORT = {"hard": 0.94559, "soft": 0.94980, "hard+soft": 0.93910, "teacher": 0.99029}
rows = ["| | seed report | ours: mean ± std over seeds | ours: per seed |", "|---|---|---|---|"]
for kind in KINDS:
    a = np.array(results[kind])
    rows.append(f"| {kind} | {SEED_REPORT[kind]:.5f} | {a.mean():.5f} ± {a.std(ddof=1):.5f} "
                f"| {' '.join(f'{r:.4f}' for r in a)} |")
rows.append(f"| teacher | {SEED_REPORT['teacher']:.5f} | {teacher_acc:.5f} (one run) | |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# **Which differences are larger than the spread?** We compare each pair of students with a
# Welch t statistic: the difference of the means divided by its standard error. With 5 seeds,
# |t| above about 2.8 is a difference that run-to-run noise rarely produces (p < 0.05).

# %%
def welch_t(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return (a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))


for a, b in [("soft", "hard"), ("hard+soft", "hard"), ("hard+soft", "soft")]:
    diff = np.mean(results[a]) - np.mean(results[b])
    t = welch_t(results[a], results[b])
    verdict = "larger than the spread" if abs(t) > 2.8 else "within run-to-run noise"
    print(f"{a:9s} - {b:4s}: {diff * 100:+.2f} points, t = {t:+.1f} -> {verdict}")
for kind in KINDS:
    sd = np.std(results[kind], ddof=1)
    gap = np.mean(results[kind]) - SEED_REPORT[kind]
    print(f"{kind:9s}: ours - seed = {gap * 100:+.2f} points ({abs(gap) / sd:.1f} of our standard deviations)")

# %% [markdown]
# **What the full run above shows** (the committed outputs; fast mode trains on 3,000 images and
# prints other numbers): all three students land within a few hundredths of a point of one
# another, far inside the seed-to-seed spread (|t| well below 1). Our hard and soft students
# agree with the seed's numbers within about one of our standard deviations. Our hard+soft student
# is about one point above the seed's 0.93910, over four standard deviations: the seed's
# "hard + soft is worst" is not a property of distillation with these settings. With a
# 784-16-10 student and T=2, the soft targets of a 99% teacher carry little the labels don't, so
# no method wins on this task.
#
# ## Training and validation curves (the seed's figures)
# One seed per student (the first). Note that the three losses are on different scales:
# the soft loss is a KL divergence, which is 0 for a student that matches the teacher exactly.

# %%
plots.plot_history({k: histories[k][0] for k in KINDS}, keys=("loss",),
                   title="Loss per epoch (solid: train, dashed: validation)");
plots.plot_history({k: histories[k][0] for k in KINDS}, keys=("acc",),
                   title="Accuracy per epoch (solid: train, dashed: validation)");

# %% [markdown]
# ## The seed's own loss: why was "hard + soft" the worst?
#
# The seed report found hard+soft (0.93910) below both hard (0.94559) and soft (0.94980). Its code
# differed from ours in two ways:
#
# 1. `nn.KLDivLoss()` with its default reduction `'mean'`, which averages over the batch **and the
#    10 classes**: the soft term comes out 10 times smaller than the KL divergence (`'batchmean'`),
#    so with $\alpha=0.8$ the soft term's real weight is $0.08\,T^2$ against $0.2$ for the hard term.
# 2. The teacher left in `train()` mode: dropout stays on, so each batch gets different, noisier
#    soft targets (and the teacher runs on every batch).
#
# We rerun hard+soft with exactly that loss (keeping the $T^2$ factor) beside the correct one.

# %%
def seed_loss(teacher, T=recipes.STUDENT.T, alpha=recipes.STUDENT.alpha):
    """The seed's loss: KLDivLoss() ('mean' over batch x classes), teacher in train mode per batch."""
    kl_mean = torch.nn.KLDivLoss()  # reduction='mean'

    def loss_fn(z, y, x):
        teacher.train()  # the bug: dropout on
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=tset.bf16):
            v = teacher(x).float()
        soft = kl_mean(F.log_softmax(z / T, dim=1), F.softmax(v / T, dim=1)) * T * T
        return alpha * soft + (1 - alpha) * F.cross_entropy(z, y)
    return loss_fn


SEED_LOSS_SEEDS = SEEDS[:1]  # one extra run: the teacher forward on every batch makes it 15x slower
seed_results = []
start = time.perf_counter()
for seed in SEED_LOSS_SEEDS:
    student, hist = recipes.train_mnist_student(seed_loss(teacher), (x_tr, y_tr, x_tr), (x_va, y_va, x_va),
                                                seed=seed, desc=f"seed's loss, seed {seed}")
    seed_results.append(train.evaluate(student, x_te, y_te)[1])
    print(f"seed's loss, seed {seed}: {len(hist['train_loss'])} epochs, test acc {seed_results[-1]:.4f}")
teacher.eval()
print(f"{len(SEED_LOSS_SEEDS)} runs in {time.perf_counter() - start:.0f} s "
      f"(the teacher runs on every batch here)")

# %%
same = results["hard+soft"][: len(SEED_LOSS_SEEDS)]
a_seed, a_ours, a_hard = np.mean(seed_results), np.mean(same), np.mean(results["hard"][: len(SEED_LOSS_SEEDS)])
print(f"hard+soft with the seed's loss : {a_seed:.4f}  (seeds {SEED_LOSS_SEEDS})")
print(f"hard+soft with the correct loss: {a_ours:.4f}  (same seeds)")
print(f"hard only                      : {a_hard:.4f}  (same seeds)")
print(f"seed's loss - correct loss: {(a_seed - a_ours) * 100:+.2f} points; "
      f"standard deviation of hard+soft over seeds: {np.std(results['hard+soft'], ddof=1) * 100:.2f} points")

# %% [markdown]
# **Verdict of the full run:** the seed's loss does *not* reproduce the drop. With the same seed,
# hard+soft with the seed's loss scored within the spread of our correct hard+soft runs (the
# difference printed above is well under one standard deviation). The 'mean' reduction makes the
# soft term 10x smaller, but Adam rescales the gradient as a whole, so the student mostly sees a
# hard-label loss with a little noisy soft signal, which on this task trains about as well as the
# others. So the seed's lower hard+soft score is most likely run-to-run noise of a single run
# (its 0.939 is a few of our standard deviations below our mean) or a difference in code we don't
# have, not the loss. The loss is still wrong, and notebook 04 measures each of its faults.
#
# ## The seed blog's weak student
#
# The seed blog distils its conv teacher (Conv 64 - Conv 128 - FC 1024, trained with Adam 1e-4,
# batch 32, 5 epochs; notebook 02) into a very weak student: one `Conv2d(1, 1, kernel 7, stride 7)`,
# ReLU and `Linear(16, 10)`, 220 parameters. Without distillation it learns from the labels; with
# distillation from $0.3\,\mathrm{CE} + 0.7\,T^2\,\mathrm{KL}$ at $T=5$ (i.e. `alpha=0.7`). Both use
# the blog's Adam 1e-4, batch 32, 5 epochs on all 60,000 training images; we report test accuracy
# after each epoch, as the blog does.

# %%
blog_teacher, binfo = recipes.blog_teacher()
bd = recipes.mnist_full(SUBSET)
(bx, by), (bxt, byt) = bd["train"], bd["test"]
bv, bvt = (train.predict_logits(blog_teacher, x) for x in (bx, bxt))
print(f"blog teacher test accuracy {(bvt.argmax(1) == byt).float().mean():.4f}")
BLOG = {"no KD": 0.6584, "KD": 0.7286}
WEAK_SEEDS = SEEDS[:kdlib.pick(full=3, fast=1)]
weak = {"no KD": [], "KD": []}
for name, loss_fn in [("no KD", lambda z, y, v: F.cross_entropy(z, y)),
                      ("KD", lambda z, y, v: losses.distillation_loss(z, v, y, T=5.0, alpha=0.7))]:
    for seed in WEAK_SEEDS:
        gen = kdlib.seed_everything(seed)
        student = models.WeakStudentNet()
        opt = torch.optim.Adam(student.parameters(), lr=1e-4, fused=True)
        # the "val" slot holds the test set here: the blog reports test accuracy after every epoch
        hist = train.fit(student, opt, train.Batches(bx, by, bv, batch_size=32, generator=gen), (bxt, byt, bvt),
                         epochs=kdlib.pick(5, 1), loss_fn=loss_fn, desc=f"weak student, {name}, seed {seed}")
        weak[name].append(hist["val_acc"])
acc = {k: np.array(v) for k, v in weak.items()}  # seeds x epochs
rows = [f"| epoch | no KD (ours, mean ± std of {len(WEAK_SEEDS)} seeds) | KD (ours) |", "|---|---|---|"]
rows += [f"| {e + 1} | {acc['no KD'][:, e].mean():.4f} ± {acc['no KD'][:, e].std(ddof=min(1, len(WEAK_SEEDS) - 1)):.4f} "
         f"| {acc['KD'][:, e].mean():.4f} ± {acc['KD'][:, e].std(ddof=min(1, len(WEAK_SEEDS) - 1)):.4f} |"
         for e in range(acc["KD"].shape[1])]
rows.append(f"| blog, after 5 epochs | {BLOG['no KD']:.4f} | {BLOG['KD']:.4f} |")
display(Markdown("\n".join(rows)))
gain, blog_gain = acc["KD"][:, -1].mean() - acc["no KD"][:, -1].mean(), BLOG["KD"] - BLOG["no KD"]
print(f"gain from distillation after the last epoch: ours {gain * 100:+.2f} points "
      f"(per seed: {', '.join(f'{g * 100:+.2f}' for g in acc['KD'][:, -1] - acc['no KD'][:, -1])}), "
      f"blog {blog_gain * 100:+.2f} points")

# %% [markdown]
# **What the full run shows:** we do not reproduce the blog's gain. Without distillation our weak
# student ends near the blog's 0.6584 (a few points below, with a spread of about two points over
# seeds); with distillation at T=5 and alpha=0.7 it ends a few points *lower*, where the blog
# gained seven. The blog's post leaves details open that matter for a 220-parameter student after
# only 5 epochs at lr 1e-4 (far from converged, as the rising curve shows): whether its soft term
# was multiplied by $T^2$ (with $T^2=25$ and alpha 0.7 our soft term dominates the hard one),
# its input normalisation, and its initialisation. We keep Hinton's $T^2$ convention, and report
# the difference instead of tuning towards the blog's number.

# %%
print(f"notebook wall time {time.perf_counter() - NOTEBOOK_START:.0f} s")
