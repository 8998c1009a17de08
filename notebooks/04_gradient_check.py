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
# # 04 · Gradient derivation check (Hinton et al. 2015, section 2.1)
#
# Hinton, Vinyals & Dean (2015) justify distillation with two short derivations:
#
# 1. the gradient of the soft-target cross-entropy with respect to a student logit is
#    $\partial C/\partial z_i = (q_i - p_i)/T$ (their eq. 2);
# 2. at high temperature, with zero-meaned logits, it becomes $(z_i - v_i)/(K\,T^2)$: distillation
#    turns into matching the teacher's logits, and the gradient shrinks like $1/T^2$, which is why
#    the soft term is multiplied by $T^2$.
#
# This notebook checks both numerically, against autograd, on random logits and on the real logits of
# notebook 02's teacher and a small student. It then measures, each beside the correct loss, the
# mistakes that distillation code commonly makes (several of them in the seed experiment's variants).
#
# Notation: student logits $z$, teacher logits $v$ (both $N \times K$: batch size $N$, $K$ classes;
# Hinton et al. write $N$ for the number of classes), $q=\mathrm{softmax}(z/T)$,
# $p=\mathrm{softmax}(v/T)$. The correct loss is `kdlib.losses.soft_target_loss`:
# $T^2 \cdot \frac1N\sum_n \mathrm{KL}(p_n \,\|\, q_n)$, computed from `log_softmax`.
#
# Cells marked `# NBVAL_CHECK_OUTPUT` use seeded random logits (or, in one shape check, a result that does
# not depend on the draw), and their printed results
# are checked by the test suite (`make test`). Cells that use the teacher print numbers that depend on
# the trained model, so they are not checked.

# %%
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn

import kdlib
from kdlib.course import announce
from kdlib import losses, recipes, train

NOTEBOOK_START = time.perf_counter()
torch.set_printoptions(precision=4)
print(f"fast mode: {kdlib.fast_mode()}; PyTorch {torch.__version__}")
announce("04")  # how long this notebook takes, and which teachers it trains first


def rand_logits(seed, n=64, c=10, scale=3.0, shift=0.0, dtype=torch.float64):
    """Seeded Gaussian logits: the same numbers on every run and machine."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g, dtype=dtype) * scale + shift


def grad_of(loss_fn, z, *args):
    """d loss_fn(z, *args) / dz by autograd."""
    z = z.detach().clone().requires_grad_()
    (g,) = torch.autograd.grad(loss_fn(z, *args), z)
    return g


def rel_err(a, b):
    """||a - b|| / ||b|| over the whole batch."""
    return float((a - b).norm() / b.norm())


# %% [markdown]
# ## 1. The derivation
#
# For one example, the soft-target cross-entropy is $C = -\sum_j p_j \log q_j$ with
# $\log q_j = z_j/T - \log\sum_k e^{z_k/T}$. Differentiating,
#
# $$\frac{\partial \log q_j}{\partial z_i} = \frac{\delta_{ij} - q_i}{T},
# \qquad
# \frac{\partial C}{\partial z_i} = -\sum_j p_j\,\frac{\delta_{ij} - q_i}{T}
# = \frac{q_i \sum_j p_j - p_i}{T} = \frac{q_i - p_i}{T},$$
#
# using $\sum_j p_j = 1$. The KL divergence $\mathrm{KL}(p\,\|\,q) = C - H(p)$ differs from $C$ by the
# teacher's entropy, which does not depend on $z$, so it has the same gradient. Averaged over a
# batch of $N$ rows (`reduction="batchmean"`), each logit gets $(q_i - p_i)/(N\,T)$; kdlib's
# `soft_target_loss` also multiplies by $T^2$, so its gradient is $T\,(q_i - p_i)/N$.
#
# ### Check on random logits
#
# Autograd's gradient of `soft_target_loss / T**2` against the formula $(q-p)/(NT)$, in float64:

# %%
z_rand, v_rand = rand_logits(0), rand_logits(1, scale=6.0)
N_RAND = len(z_rand)
eq2_diffs = {}
for T in [0.5, 1.0, 2.0, 5.0, 20.0]:
    auto = grad_of(lambda z: losses.soft_target_loss(z, v_rand, T) / T**2, z_rand)
    formula = (losses.softmax_t(z_rand, T) - losses.softmax_t(v_rand, T)) / (N_RAND * T)
    eq2_diffs[T] = ((auto - formula).abs().max().item(), formula.abs().max().item())
    print(f"T = {T:>4}: largest |autograd - (q-p)/(NT)| = {eq2_diffs[T][0]:.2e}"
          f"   (largest gradient entry {eq2_diffs[T][1]:.2e})")

# %%
# NBVAL_CHECK_OUTPUT
for T, (diff, size) in eq2_diffs.items():
    print(f"T = {T:>4}: autograd equals (q - p)/(NT) to float64 precision "
          f"(difference < 1e-12 of the gradient's size): {diff < 1e-12 * size}")

# %% [markdown]
# ### Check on real logits
#
# The same check on the logits of notebook 02's teacher ($v$) and of a 784-16-10 student ($z$)
# trained for one epoch on the labels of the training split; both networks are then *evaluated* on
# MNIST test images, which neither was trained on. The logits are computed in float32
# by the networks and converted to float64 for the comparison.

# %%
teacher, tinfo = recipes.mnist_teacher(progress=False)
d = recipes.mnist_split(kdlib.pick(full=None, fast=3000))
(x_tr, y_tr), (x_va, y_va), (x_te, y_te) = d["train"], d["val"], d["test"]
print(f"teacher: {'loaded from' if tinfo['loaded'] else 'trained into'} {tinfo['path']}, "
      f"test accuracy {tinfo['test_acc']:.4f}")

student, shist = recipes.train_seed_student(train.cross_entropy, (x_tr, y_tr), (x_va, y_va), seed=0, max_epochs=1)
x_real, y_real = x_te[:1000], y_te[:1000]
v_real = train.predict_logits(teacher, x_real).double()
z_real = train.predict_logits(student, x_real).double()
acc = lambda logits: (logits.argmax(1) == y_real).double().mean().item()
print(f"{len(x_real)} test images: teacher accuracy {acc(v_real):.4f}, student accuracy {acc(z_real):.4f}")
print(f"logit ranges: teacher [{v_real.min():.1f}, {v_real.max():.1f}], "
      f"student [{z_real.min():.1f}, {z_real.max():.1f}]")

# %%
N_REAL = len(z_real)
for T in [1.0, 2.0, 4.0, 10.0]:
    auto = grad_of(lambda z: losses.soft_target_loss(z, v_real, T) / T**2, z_real)
    formula = (losses.softmax_t(z_real, T) - losses.softmax_t(v_real, T)) / (N_REAL * T)
    diff = (auto - formula).abs().max().item()
    print(f"T = {T:>4}: largest |autograd - (q-p)/(NT)| = {diff:.2e} "
          f"(largest gradient entry {formula.abs().max().item():.2e}); match: {diff < 1e-12 * formula.abs().max().item()}")

# %% [markdown]
# ## 2. The high-temperature limit
#
# For $T$ much larger than the logits, $e^{x} \approx 1 + x$ gives
#
# $$\frac{\partial C}{\partial z_i} \approx \frac1T\left(\frac{1 + z_i/T}{K + \sum_j z_j/T}
# - \frac{1 + v_i/T}{K + \sum_j v_j/T}\right),$$
#
# and if the logits of each row have zero mean ($\sum_j z_j = \sum_j v_j = 0$) this is
#
# $$\frac{\partial C}{\partial z_i} \approx \frac{z_i - v_i}{K\,T^2}:$$
#
# at high temperature distillation is **logit matching**, the gradient of
# $\frac{1}{2 K T^2}\sum_i (z_i - v_i)^2$ (kdlib's `logit_regression_loss`, scaled).
#
# How fast does the approximation become exact? One more term of the expansion gives
# $q_i \approx \frac1K\bigl(1 + \frac{z_i}{T} + \frac{z_i^2 - \overline{z^2}}{2T^2}\bigr)$ (zero-mean $z$),
# so the error is of order $1/T^3$ against a gradient of order $1/T^2$: the **relative** error should fall like $1/T$,
# a slope of $-1$ on log-log axes.
#
# Without zero-meaning, the exact gradient does not change (a softmax ignores a constant added to a
# row), but the approximation $(z_i - v_i)/(K T^2)$ does: it carries an extra
# $(\bar z - \bar v)/(K T^2)$ in every component, of the same order as the gradient itself. Its
# relative error tends to a constant: slope $0$. We measure both on random logits whose rows have
# different means for $z$ and $v$.

# %%
K = z_rand.shape[1]
z_off, v_off = rand_logits(2, shift=1.5), rand_logits(3, scale=4.0, shift=-1.0)  # rows not zero-mean
zero_mean = lambda x: x - x.mean(1, keepdim=True)
T_grid = np.logspace(0, 3, 31)


def exact_grad(z, v, T):
    """Per-example gradient dC/dz = (q - p)/T, by autograd (times N to undo the batch mean)."""
    return grad_of(lambda z: losses.soft_target_loss(z, v, T) / T**2, z) * len(z)


def high_T_error(z, v, center):
    errs = []
    for T in T_grid:
        exact = exact_grad(z, v, float(T))
        zz, vv = (zero_mean(z), zero_mean(v)) if center else (z, v)
        approx = (zz - vv) / (K * T**2)
        errs.append(rel_err(approx, exact))
    return np.array(errs)


err_centered = high_T_error(z_off, v_off, center=True)
err_raw = high_T_error(z_off, v_off, center=False)
fit_from = T_grid >= 30  # fit where T is well above the logits' size
slope_centered = np.polyfit(np.log(T_grid[fit_from]), np.log(err_centered[fit_from]), 1)[0]
slope_raw = np.polyfit(np.log(T_grid[fit_from]), np.log(err_raw[fit_from]), 1)[0]

fig, ax = plt.subplots(figsize=(6, 3.8))
ax.loglog(T_grid, err_centered, "o-", ms=3, label=f"zero-meaned logits (slope {slope_centered:.2f})")
ax.loglog(T_grid, err_raw, "s-", ms=3, label=f"raw logits (slope {round(slope_raw, 2) + 0:.2f})")
ax.axvspan(T_grid[fit_from][0], T_grid[-1], color="0.9", zorder=0, label="fitted range")
ax.set_xlabel("temperature T")
ax.set_ylabel(r"relative error of $(z-v)/(KT^2)$")
ax.set_title("High-temperature limit of dC/dz")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print(f"fitted log-log slope for T in [{T_grid[fit_from][0]:.0f}, {T_grid[-1]:.0f}]:")
print(f"  zero-meaned logits: {round(slope_centered, 2) + 0:.2f}   (relative error ~ 1/T: {abs(slope_centered + 1) < 0.05})")
print(f"  raw logits:         {round(slope_raw, 2) + 0:.2f}   (error does not vanish: {abs(slope_raw) < 0.05})")
# (round(x, 2) + 0 prints -0.00 as 0.00)
print(f"relative error at T = {T_grid[-1]:.0f}: zero-meaned {err_centered[-1]:.1e}, raw {err_raw[-1]:.2f}")
i100 = int(np.argmin(abs(T_grid - 100)))
print(f"relative error x T at T = 100 and T = 1000 (zero-meaned): "
      f"{err_centered[i100] * T_grid[i100]:.3f}, {err_centered[-1] * T_grid[-1]:.3f}")

# %% [markdown]
# The same on the real teacher and student logits (these rows have means far from zero, and the
# logits are larger, so the limit sets in at a higher $T$):

# %%
err_real_c, err_real_raw = high_T_error(z_real, v_real, True), high_T_error(z_real, v_real, False)
for T in [10, 100, 1000]:
    i = int(np.argmin(abs(T_grid - T)))
    print(f"T = {T:>4}: relative error zero-meaned {err_real_c[i]:.2e}, raw {err_real_raw[i]:.2e}")
print(f"fitted slopes (T >= {T_grid[fit_from][0]:.0f}): zero-meaned "
      f"{np.polyfit(np.log(T_grid[fit_from]), np.log(err_real_c[fit_from]), 1)[0]:.2f}, raw "
      f"{np.polyfit(np.log(T_grid[fit_from]), np.log(err_real_raw[fit_from]), 1)[0]:.2f}")

# %% [markdown]
# ## 3. The $T^2$ rule
#
# By eq. 2 and its limit, the gradient of the plain KL term is $(q - p)/T$, which falls like $1/T^2$
# once $T$ is large. The hard term (cross-entropy with the labels, at $T = 1$) does not depend on $T$.
# Hinton et al. therefore multiply the soft term by $T^2$, "this ensures that the relative
# contributions of the hard and soft targets remain roughly unchanged if the temperature used for
# distillation is changed". We measure the gradient norms on the batch of random logits, with random labels:

# %%
y_rand = torch.randint(0, K, (N_RAND,), generator=torch.Generator().manual_seed(4))
T_rule = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
ALPHA = recipes.STUDENT.alpha


def gradient_sizes(z, v, y, Ts):
    hard = grad_of(lambda z: F.cross_entropy(z, y), z).norm().item()
    rows = []
    for T in Ts:
        with_t2 = grad_of(lambda z: losses.soft_target_loss(z, v, T), z).norm().item()
        without = grad_of(lambda z: losses.soft_target_loss(z, v, T) / T**2, z).norm().item()
        rows.append((T, with_t2, without, hard))
    return rows


rule_rand = gradient_sizes(z_rand, v_rand, y_rand, T_rule)

# %%
# NBVAL_CHECK_OUTPUT
print(f"gradient norms (random logits); alpha = {ALPHA} weights the soft term")
print(f"{'T':>5} {'soft x T^2':>11} {'soft, no T^2':>13} {'hard':>7} {'ratio soft/hard':>16} "
      f"{'ratio, no T^2':>14} {'soft share*':>12} {'no T^2':>7}")
for T, with_t2, without, hard in rule_rand:
    share = lambda s: ALPHA * s / (ALPHA * s + (1 - ALPHA) * hard)
    print(f"{T:>5.0f} {with_t2:>11.4f} {without:>13.5f} {hard:>7.4f} {with_t2 / hard:>16.3f} "
          f"{without / hard:>14.4f} {share(with_t2):>12.2f} {share(without):>7.2f}")
print("* soft share = alpha |g_soft| / (alpha |g_soft| + (1 - alpha) |g_hard|)")

# %% [markdown]
# The same with the real teacher and student logits and the true labels, on a finer grid of $T$:

# %%
T_fine = list(np.logspace(0, 3, 31))
T_FIT = 100  # fit well above the size of the real logits (their range is printed in section 1)
rule_real = gradient_sizes(z_real, v_real, y_real, T_fine)
Ts, with_t2, without, hard = map(np.array, zip(*rule_real))

fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
axes[0].loglog(Ts, with_t2, "o-", ms=3, label=r"soft term $\times T^2$")
axes[0].loglog(Ts, without, "s-", ms=3, label=r"soft term without $T^2$")
axes[0].loglog(Ts, hard, "k--", label="hard term (CE, T = 1)")
axes[0].set_xlabel("temperature T")
axes[0].set_ylabel("gradient norm w.r.t. the student logits")
axes[0].set_title("Gradient size against T (teacher / student logits)")
share_t2 = ALPHA * with_t2 / (ALPHA * with_t2 + (1 - ALPHA) * hard)
share_no = ALPHA * without / (ALPHA * without + (1 - ALPHA) * hard)
axes[1].semilogx(Ts, share_t2, "o-", ms=3, label=r"with $T^2$")
axes[1].semilogx(Ts, share_no, "s-", ms=3, label=r"without $T^2$")
axes[1].set_ylim(0, 1)
axes[1].set_xlabel("temperature T")
axes[1].set_ylabel("soft term's share of the gradient")
axes[1].set_title(f"Balance with the hard term (alpha = {ALPHA})")
axes[2].loglog(Ts, with_t2 / hard, "o-", ms=3, label=r"with $T^2$")
axes[2].loglog(Ts, without / hard, "s-", ms=3, label=r"without $T^2$")
axes[2].set_xlabel("temperature T")
axes[2].set_ylabel("soft / hard gradient norm")
axes[2].set_title("Soft-to-hard gradient ratio (real logits)")
for ax in axes:
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
slope_t2 = np.polyfit(np.log(Ts[Ts >= T_FIT]), np.log(with_t2[Ts >= T_FIT]), 1)[0]
slope_no = np.polyfit(np.log(Ts[Ts >= T_FIT]), np.log(without[Ts >= T_FIT]), 1)[0]
print(f"log-log slope of the gradient norm for T >= {T_FIT}: with T^2 {round(slope_t2, 2) + 0:.2f}, "
      f"without {slope_no:.2f}")
for T in [1, 2, 4, 10, 100, 1000]:
    i = int(np.argmin(abs(Ts - T)))
    print(f"T = {Ts[i]:>6.1f}: soft/hard gradient ratio with T^2 {with_t2[i] / hard[i]:.3f}, "
          f"without {without[i] / hard[i]:.5f}; soft share {share_t2[i]:.2f} vs {share_no[i]:.2f}")
i2, i10 = int(np.argmin(abs(Ts - 2))), int(np.argmin(abs(Ts - 10)))
big = Ts >= T_FIT
display(Markdown(
    f"**What the run shows.** With $T^2$ the soft/hard ratio still changes {with_t2[i10] / hard[i10] / (with_t2[0] / hard[0]):.1f}-fold "
    f"between $T=1$ and $T=10$ ({with_t2[0] / hard[0]:.2f} to {with_t2[i10] / hard[i10]:.2f}); it levels off only for "
    f"$T \\geq {T_FIT}$, above the size of the real logits (between {(with_t2[big] / hard[big]).min():.2f} and "
    f"{(with_t2[big] / hard[big]).max():.2f} there). So $T^2$ steadies the balance at *large* T only. At the "
    f"seed's $T=2$, $\\alpha={ALPHA}$ does not mean \"{ALPHA:.0%} soft\": the soft term gives {share_t2[i2]:.0%} of "
    f"the gradient norm here, and the share moves with T and with how far the student is from the teacher."))

# %% [markdown]
# With $T^2$ the soft gradient levels off at high temperature (it tends to the logit-matching
# gradient $(z - v)/(NK)$ of the zero-meaned logits; the real logits are large, so this takes a $T$
# well above them). Without $T^2$ the soft term's gradient falls like $1/T^2$ and, at high $T$, the
# "distillation" is almost plain training on the labels, whatever `alpha` says. Hinton's $T^2$ rule
# is therefore about *changing* T without retuning alpha at high T; at the practical temperatures
# the ratio above is what alpha actually sets.
#
# **Logit matching or not?** Section 2 showed that distillation *becomes* logit matching as
# $T \to \infty$. At the temperatures used in practice ($T \leq 10$) it is far from it on real logits:
# the relative error of the logit-matching gradient printed there is large at $T = 10$. Hinton et al.
# (section 2) call ignoring the very negative logits "potentially advantageous": matching logits
# exactly forces the student to copy them too, and the teacher's training barely constrained them
# (they "could be much noisier"), while an intermediate $T$ gives them little weight. They add that
# those logits may also carry useful information, and that "which of these effects dominates is an
# empirical question". Notebook 05 uses plain
# logit regression (on raw logits; the $T \to \infty$ limit holds for zero-meaned ones) and compares
# it with KD at a $T$ chosen on validation.
#
# ## 4. Pitfalls, each beside the correct loss
#
# Every pitfall below is written as the buggy code would write it, and compared with
# `losses.soft_target_loss` on the same logits. Each prints a one-line verdict.
#
# ### 4a. `KLDivLoss` fed probabilities instead of log-probabilities
#
# `nn.KLDivLoss` expects its **input** as log-probabilities: it computes
# $\sum_i p_i(\log p_i - \text{input}_i)$. Seed 002's code passes `softmax(z/T)` as the input, so the
# loss becomes $\sum_i p_i \log p_i - \sum_i p_i q_i$: not a divergence, not zero when $q = p$, and
# minimised not at $q = p$ but by a one-hot $q$ (the lowest value on the teacher's top class; gradient
# descent stops at whichever corner it reaches), which throws the dark knowledge away. We check the value at $z = v$, the gradient, and where gradient descent on each loss
# takes a student's logits. (The seed blog's loss does exactly this: notebook 03 derives its gradient
# and measures, on the blog's own weak student, whether it explains the blog's reported gain.)

# %%
def kl_probs_as_input(z, v, T):
    """Seed 002's mistake: probabilities where KLDivLoss expects log-probabilities."""
    return nn.KLDivLoss(reduction="batchmean")(F.softmax(z / T, dim=1), F.softmax(v / T, dim=1)) * T * T


def descend(loss_fn, v, T, steps=500, lr=20.0, seed=5):
    """Plain gradient descent on the student logits from a random start; returns the final q."""
    z = rand_logits(seed, n=len(v)).requires_grad_()
    opt = torch.optim.SGD([z], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(z, v, T).backward()
        opt.step()
    return losses.softmax_t(z.detach(), T)


T = 2.0
v_small = rand_logits(6, n=8, scale=2.0)
p_small = losses.softmax_t(v_small, T)
val_right = losses.soft_target_loss(v_small, v_small, T).item()
val_wrong = kl_probs_as_input(v_small, v_small, T).item()
g_right = grad_of(losses.soft_target_loss, z_rand, v_rand, T)
g_wrong = grad_of(kl_probs_as_input, z_rand, v_rand, T)
cosine = F.cosine_similarity(g_right.flatten(), g_wrong.flatten(), dim=0).item()
q_right, q_wrong = descend(losses.soft_target_loss, v_small, T), descend(kl_probs_as_input, v_small, T)
kl_after = lambda q: (p_small * (p_small.log() - q.log())).sum(1).mean().item()

# %%
# NBVAL_CHECK_OUTPUT
print(f"loss at z = v (T = {T}): correct {val_right:.4f}, probabilities as input {val_wrong:.4f}")
print(f"cosine between the two gradients on random logits: {cosine:.3f}")
print(f"after 500 gradient steps from the same start: KL(p||q) correct {kl_after(q_right):.4f}, "
      f"probabilities as input {kl_after(q_wrong):.2f}")
print(f"  mean largest q: correct {q_right.max(1).values.mean():.3f} (teacher's mean largest p: "
      f"{p_small.max(1).values.mean():.3f}), probabilities as input {q_wrong.max(1).values.mean():.3f}")
top_same = (q_wrong.argmax(1) == p_small.argmax(1)).sum().item()
print(f"  probabilities as input: q's top class is the teacher's in {top_same} of {len(p_small)} rows")
print(f"verdict: probabilities as input is wrong (not 0 at q = p, drives q towards a one-hot): "
      f"{abs(val_wrong) > 1e-3 and kl_after(q_right) < 1e-6 and q_wrong.max(1).values.mean() > 0.95}")

# %% [markdown]
# ### 4b. `reduction="mean"` instead of `"batchmean"`
#
# `KLDivLoss`'s default `reduction="mean"` averages over **all elements**, batch and classes, so the
# soft term (and its gradient) comes out $K$ times too small. This is seed 000's code
# (`nn.KLDivLoss()`); PyTorch even warns that `'mean'` does not match the definition of the KL
# divergence. With $\alpha = 0.8$ and $K = 10$, the soft term's weight becomes 0.08 against the hard
# term's 0.2. What that does to the gradient depends on T: with the soft/hard gradient ratios of
# section 3 (real logits), the soft term still gives about half the gradient at T = 2 and more than
# the hard term at T = 4 and above.

# %%
def kl_mean_reduction(z, v, T):
    """Seed 000's mistake: nn.KLDivLoss() with its default reduction='mean'."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = nn.KLDivLoss()(F.log_softmax(z / T, dim=1), F.softmax(v / T, dim=1)) * T * T
    kl_mean_reduction.warned = [str(w.message) for w in caught]
    return loss


T = 2.0
right, wrong = losses.soft_target_loss(z_rand, v_rand, T).item(), kl_mean_reduction(z_rand, v_rand, T).item()
g_ratio = (grad_of(losses.soft_target_loss, z_rand, v_rand, T).norm()
           / grad_of(kl_mean_reduction, z_rand, v_rand, T).norm()).item()
print("PyTorch's warning:", kl_mean_reduction.warned[0] if kl_mean_reduction.warned else None)

# %%
# NBVAL_CHECK_OUTPUT
print(f"soft term (T = {T}): batchmean {right:.4f}, mean {wrong:.4f}")
print(f"ratio batchmean / mean: loss {right / wrong:.6f}, gradient {g_ratio:.6f} (number of classes K = {K})")
print(f"verdict: 'mean' shrinks the soft term by exactly K: {abs(right / wrong - K) < 1e-9 and abs(g_ratio - K) < 1e-9}")
eff = ALPHA / K
print(f"  with alpha = {ALPHA}, the soft term's effective weight becomes {ALPHA}/{K} = {eff:.2f}, "
      f"the hard term's {1 - ALPHA:.2f}")

# %% [markdown]
# ### 4c. No $T^2$
#
# Leaving out the $T^2$ factor divides the soft term and its gradient by exactly $T^2$ (section 3
# showed what that does to the balance with the hard term as $T$ grows).

# %%
# NBVAL_CHECK_OUTPUT
for T in [1.0, 2.0, 4.0, 8.0]:
    no_t2 = lambda z, v, T: nn.KLDivLoss(reduction="batchmean")(F.log_softmax(z / T, dim=1),
                                                                F.softmax(v / T, dim=1))
    ratio = (grad_of(losses.soft_target_loss, z_rand, v_rand, T).norm()
             / grad_of(no_t2, z_rand, v_rand, T).norm()).item()
    print(f"T = {T:.0f}: gradient with T^2 / without = {ratio:.6f}; "
          f"verdict: without T^2 the soft gradient is T^2 = {T * T:.0f} times too small: {abs(ratio - T * T) < 1e-9 * T * T}")

# %% [markdown]
# ### 4d. `log(softmax(z/T) + 1e-10)` instead of `log_softmax`
#
# Seed 003's code takes the log of the student's probabilities with a small constant to avoid
# $\log 0$. When the student gives a class a probability far below $10^{-10}$, i.e. its logit is more
# than about $\ln 10^{10} \approx 23$ (times $T$) below the largest one, $\log(q + 10^{-10})$ is stuck
# at $\log 10^{-10}$: the loss stops growing, and its gradient for that class, multiplied by
# $q/(q + 10^{-10})$, **vanishes**, exactly where the teacher most needs to correct the student.
# `log_softmax` computes $z_i/T - \mathrm{logsumexp}(z/T)$ and is exact at any gap. Without the
# constant, `log(softmax)` gives $-\infty$ once $q$ underflows to 0.
#
# Below, the student puts logit $g$ on class 0 and $0$ on the nine others; the teacher is uniform ($T = 1$).

# %%
def kl_log_eps(z, v, T):
    """Seed 003's mistake: log(softmax + 1e-10) as the student's log-probabilities."""
    log_q = torch.log(F.softmax(z / T, dim=1) + 1e-10)
    return nn.KLDivLoss(reduction="batchmean")(log_q, F.softmax(v / T, dim=1)) * T * T


gaps = [5.0, 10.0, 20.0, 25.0, 30.0, 50.0, 100.0]
v_flat = torch.zeros(1, K, dtype=torch.float64)
eps_rows = []
for g in gaps:
    z_gap = torch.zeros(1, K, dtype=torch.float64)
    z_gap[0, 0] = g
    l_right, l_eps = losses.soft_target_loss(z_gap, v_flat, 1.0).item(), kl_log_eps(z_gap, v_flat, 1.0).item()
    gr_right = grad_of(losses.soft_target_loss, z_gap, v_flat, 1.0)[0, 1].item()
    gr_eps = grad_of(kl_log_eps, z_gap, v_flat, 1.0)[0, 1].item()
    eps_rows.append((g, l_right, l_eps, gr_right, gr_eps))

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'gap':>5} {'loss, log_softmax':>18} {'loss, log(q+1e-10)':>19} {'dL/dz_1, log_softmax':>21} "
      f"{'dL/dz_1, log(q+1e-10)':>22}")
for g, l_right, l_eps, gr_right, gr_eps in eps_rows:
    print(f"{g:>5.0f} {l_right:>18.4f} {l_eps:>19.4f} {gr_right:>21.4f} {gr_eps:>22.3g}")
bad = [g for g, lr, le, grr, gre in eps_rows if abs(le - lr) > 0.01 * lr or abs(gre - grr) > 0.01 * abs(grr)]
print(f"verdict: log(q + 1e-10) gives wrong values or gradients from gap {bad[0]:.0f} on "
      f"(gaps checked: {', '.join(f'{g:.0f}' for g in gaps)}): {bool(bad)}")

# %% [markdown]
# The same in float32, the training dtype, beside `log(softmax)` without the constant:

# %%
v32 = torch.zeros(1, K)
for g in [20.0, 30.0, 50.0, 120.0]:
    z32 = torch.zeros(1, K)
    z32[0, 0] = g
    naive = lambda z, v, T: nn.KLDivLoss(reduction="batchmean")(torch.log(F.softmax(z / T, dim=1)),
                                                               F.softmax(v / T, dim=1)) * T * T
    print(f"float32, gap {g:>3.0f}: loss log_softmax {losses.soft_target_loss(z32, v32, 1.0).item():.4f}, "
          f"log(q + 1e-10) {kl_log_eps(z32, v32, 1.0).item():.4f}, log(q) {naive(z32, v32, 1.0).item():.4f}; "
          f"dL/dz_1: {grad_of(losses.soft_target_loss, z32, v32, 1.0)[0, 1].item():.4f}, "
          f"{grad_of(kl_log_eps, z32, v32, 1.0)[0, 1].item():.3g}, {grad_of(naive, z32, v32, 1.0)[0, 1].item():.3g}")

# %% [markdown]
# Such gaps are not rare: the logit ranges printed in section 1 after one epoch already span tens of
# units, and an over-confident student, or a low temperature (the gap counts in units of $T$), widens them.
#
# ### 4e. `log_softmax` without `dim`
#
# `F.log_softmax(x)` (and `nn.LogSoftmax()`) without `dim` still runs in current PyTorch, with a
# deprecation `UserWarning`, and picks the dimension from the number of dimensions: `dim=0` for
# 0-, 1- and 3-D inputs, `dim=1` otherwise. (`torch.log_softmax(x)` without `dim` raises a
# `TypeError`.) So for the usual $N \times K$ logits it silently does the right thing, also for a single row
# ($1 \times K$), and for one example's $K$ logits (1-D) too. But logits with one more dimension, for
# example $N \times M \times K$ (several predictions per example, or a stack of teachers), are
# normalised over **dim 0, the batch**: every "distribution" then runs across examples instead of
# classes, and the loss is wrong without any error.

# %%
def implicit_dim_log_softmax(x):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = F.log_softmax(x)
    return out, [w for w in caught]


x1, x2, x2_row = rand_logits(7, n=1, c=K)[0], rand_logits(7, n=N_RAND, c=K), rand_logits(7, n=1, c=K)
x3, x4 = torch.randn(4, 3, K, dtype=torch.float64), torch.randn(4, K, 5, 5, dtype=torch.float64)
# name: (logits, the dimension that holds the classes)
shapes = {"1-D (K)": (x1, 0), "2-D (N x K)": (x2, 1), "2-D (1 x K)": (x2_row, 1),
          "3-D (N x M x K)": (x3, 2), "4-D (N x K x H x W)": (x4, 1)}
implicit = {name: implicit_dim_log_softmax(x) for name, (x, _) in shapes.items()}
print("the warning:", implicit["2-D (N x K)"][1][0].category.__name__, "-", implicit["2-D (N x K)"][1][0].message)
try:
    torch.log_softmax(x2)
except TypeError as e:
    print("torch.log_softmax without dim:", type(e).__name__, "-", e)

# z3 = student logits N x M x K, v3 = teacher logits; the correct KL over the classes (last dim)
z3 = rand_logits(8, n=4 * 3, c=K).view(4, 3, K)
v3 = rand_logits(9, n=4 * 3, c=K, scale=6.0).view(4, 3, K)
T = 2.0
right3 = losses.soft_target_loss(z3.reshape(-1, K), v3.reshape(-1, K), T).item() * 3  # summed over M
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    wrong3 = (F.kl_div(F.log_softmax(z3 / T), F.log_softmax(v3 / T), reduction="batchmean",
                       log_target=True) * T * T).item()

# %%
# NBVAL_CHECK_OUTPUT
for name, (out, caught) in implicit.items():
    x, class_dim = shapes[name]
    picked = [dm for dm in range(x.ndim) if torch.allclose(out, F.log_softmax(x, dim=dm))]
    print(f"{name:<20} warns: {bool(caught) and caught[0].category is UserWarning}; "
          f"normalises over dim {picked}; the classes are dim {class_dim}: {picked == [class_dim]}")
print(f"N x M x K soft term (T = {T}): log_softmax(dim=-1) {right3:.4f}, implicit dim {wrong3:.4f}")
print(f"verdict: without dim, 3-D logits are normalised over the batch and the loss is wrong: "
      f"{abs(wrong3 - right3) > 0.01 * right3}")

# %% [markdown]
# ### 4f. A teacher left in train mode
#
# The teacher has dropout layers. Left in `train()` mode, it drops a random share of its units (the
# rates are printed below) on every call, so the "same" soft targets change from call to call, and they are not those of the
# trained network as it was evaluated (in `eval()` mode, with every unit). The seed experiment's code called the teacher like this on every batch (see
# notebook 03). We use the real
# teacher on 1,000 test images.

# %%
T = 2.0
drop = [m.p for m in teacher.modules() if isinstance(m, nn.Dropout)]
print(f"teacher dropout layers: p = {drop}")
torch.manual_seed(0)
x_dev = x_real.to(kdlib.config.device())  # where the teacher is (a GPU if there is one)
with torch.no_grad():
    teacher.train()
    p_train1, p_train2 = (losses.softmax_t(teacher(x_dev), T).cpu() for _ in range(2))
    teacher.eval()
    p_eval1, p_eval2 = (losses.softmax_t(teacher(x_dev), T).cpu() for _ in range(2))


def kl_rows(p, r):
    return (p * (p.log() - r.log())).sum(1).mean().item()


print(f"two calls in train mode: largest |p1 - p2| = {(p_train1 - p_train2).abs().max():.3f}, "
      f"mean KL(p1 || p2) = {kl_rows(p_train1, p_train2):.4f}, "
      f"top class differs on {(p_train1.argmax(1) != p_train2.argmax(1)).sum().item()} of {len(x_real)} images")
print(f"two calls in eval mode:  identical: {torch.equal(p_eval1, p_eval2)}")
print(f"train-mode targets against eval-mode targets: mean KL = {kl_rows(p_eval1, p_train1):.4f}; "
      f"accuracy train mode {acc(torch.log(p_train1)):.4f}, eval mode {acc(torch.log(p_eval1)):.4f}")
print(f"verdict: a teacher in train mode gives different soft targets on each call: "
      f"{not torch.equal(p_train1, p_train2) and torch.equal(p_eval1, p_eval2)}")
assert not teacher.training

# %% [markdown]
# kdlib avoids this by construction: `recipes.mnist_teacher()` returns the teacher in `eval()` mode with
# its parameters frozen, and `train.predict_logits` switches to `eval()` (and back) around its call.
#
# ## Summary

# %%
rows = ["| check | result |", "|---|---|",
        f"| eq. 2, autograd vs $(q-p)/(NT)$, random logits | largest difference "
        f"{max(d for d, _ in eq2_diffs.values()):.1e} |",
        f"| high-$T$ limit, relative error slope | zero-meaned {round(slope_centered, 2) + 0:.2f}, raw {round(slope_raw, 2) + 0:.2f} |",
        f"| $T^2$ rule, real logits, slope of the soft gradient for $T \\geq {T_FIT}$ | with $T^2$ {round(slope_t2, 2) + 0:.2f}, "
        f"without {slope_no:.2f} |",
        f"| probabilities into `KLDivLoss` | loss {val_wrong:.3f} at $q = p$; drives $q$ to one-hot |",
        f"| `reduction='mean'` | soft term {right / wrong:.1f} times too small ($K = {K}$) |",
        f"| no $T^2$ | soft gradient $T^2$ times too small |",
        f"| `log(q + 1e-10)` | wrong from a logit gap of {bad[0]:.0f} on |",
        f"| `log_softmax` without `dim` | 3-D logits normalised over the batch |",
        f"| teacher in train mode | two calls differ by KL {kl_rows(p_train1, p_train2):.4f} |"]
display(Markdown("\n".join(rows)))
print(f"notebook run time: {time.perf_counter() - NOTEBOOK_START:.0f} s")

# %% [markdown]
# ## Takeaways
#
# - The soft-target gradient is $(q - p)/T$ per logit (eq. 2), and autograd agrees with it to
#   rounding error: compute the loss from `log_softmax`, with `reduction="batchmean"`, and let autograd do the rest.
# - Distillation tends to logit matching only at temperatures well above the logits' size; at
#   $T \leq 10$ it is a different, softer objective that down-weights the teacher's very negative logits.
# - The $T^2$ factor keeps the soft term's size as T changes at high T; at small T, alpha does not set
#   the soft/hard balance by itself: measure it, as section 3 does.
# - The common bugs (probabilities into `KLDivLoss`, `'mean'` for `'batchmean'`, no $T^2$,
#   `log(softmax + eps)`, `log_softmax` without `dim`, a teacher left in train mode) all train without
#   an error. Two print a warning (`'mean'`, and `log_softmax` without `dim`, which for $N \times K$
#   logits even picks the right dimension); `log(softmax + eps)` is right until the logit gaps grow
#   large; the others change the loss without a word. A check like this notebook's finds each one.
#
# Now write these losses yourself: **homework 1** (`homework/release/hw1_soft_targets`) asks for
# softmax with temperature, the soft-target loss and the distillation loss, and its checks name
# several of these mistakes when they see them (homework 3 checks the teacher's mode).
# **Homework 5** (`homework/release/hw5_gradient_check`) then asks for this notebook's own checks:
# the gradient of the soft-target loss by hand, a central-difference gradient, and the high-temperature
# limit, each compared with autograd.
