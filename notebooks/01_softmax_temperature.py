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
# # 01 · Softmax with temperature: soft targets and dark knowledge
#
# A classifier turns its logits $z$ into probabilities with a softmax. Hinton, Vinyals & Dean (2015,
# eq. 1) add a **temperature** $T$:
#
# $$q_i = \frac{\exp(z_i/T)}{\sum_j \exp(z_j/T)}$$
#
# $T=1$ is the ordinary softmax. A higher $T$ gives a softer distribution that shows how the network
# ranks the *wrong* classes: this is what a student learns from in distillation (the "soft targets").
# It is one line of code: divide by $T$, exponentiate, normalise. We write it first, then use
# `kdlib.losses.softmax_t`, which is the same function.

# %%
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

import kdlib
from kdlib.course import announce
from kdlib import plots, recipes, train
from kdlib.losses import softmax_t


def entropy(p):
    """Entropy in nats, -sum p log p, over the last dimension."""
    return torch.special.entr(p).sum(-1)


print(f"fast mode: {kdlib.fast_mode()}")
announce("01")  # how long this notebook takes, and which teachers it trains first


def my_softmax_t(z, T):
    """exp(z/T) / sum exp(z/T) over the last dimension. Subtracting the largest logit first changes
    nothing mathematically (it cancels in the ratio) and keeps exp from overflowing at small T."""
    e = torch.exp((z - z.max(-1, keepdim=True).values) / T)
    return e / e.sum(-1, keepdim=True)


zs = torch.randn(1000, 10, dtype=torch.float64) * 5
print("ours equals kdlib's softmax_t at T = 0.1, 1, 2, 20:",
      all(torch.allclose(my_softmax_t(zs, T), softmax_t(zs, T), rtol=1e-12, atol=1e-300) for T in (0.1, 1.0, 2.0, 20.0)))

# %% [markdown]
# ## The two limits, numerically
# As $T \to 0$ the softmax becomes the arg-max one-hot; as $T \to \infty$ it becomes uniform, $1/C$.

# %%
# NBVAL_CHECK_OUTPUT
z = torch.tensor([3.0, 1.0, 0.2, -1.0], dtype=torch.float64)
print(f"logits z = {z.tolist()}  (C = {len(z)} classes, 1/C = {1 / len(z)})")
for T in [0.01, 0.1, 0.5, 1, 2, 5, 20, 100, 10_000]:
    q = softmax_t(z, T)
    print(f"T = {T:>8}: q = {np.round(q.numpy(), 4)}  entropy = {entropy(q):.4f} nats")
print(f"maximum entropy log C = {np.log(len(z)):.4f} nats")
print("T -> 0 is one-hot:", torch.allclose(softmax_t(z, 1e-3), torch.eye(4, dtype=z.dtype)[0]))
print("T -> inf is uniform:", torch.allclose(softmax_t(z, 1e6), torch.full((4,), 0.25, dtype=z.dtype)))

# %% [markdown]
# ## Real soft targets: the MNIST teacher
# The teacher of notebook 02 (loaded from its checkpoint, or trained now if it is missing).
# We look for real test digits whose **second choice** is telling: the correctly classified 2 that
# gives the most probability to 3 (the seed experiment's example of a 2 that looks like a 3; the cell
# prints its p(3), and its second choice may still be another digit), then, among the digits the
# teacher classifies correctly, the ones where it gives the most probability to one other class.

# %%
teacher, info = recipes.mnist_teacher()
subset = kdlib.pick(full=None, fast=2000)
x_test, y_test = recipes.mnist_split(subset)["test"]
images = kdlib.data.load("mnist", "test")[0][: len(y_test)]
logits = train.predict_logits(teacher, x_test)
p1 = softmax_t(logits, 1.0)
pred = p1.argmax(1)
print(f"teacher: {info['path'].name}, test accuracy {(pred == y_test).float().mean():.4f} on {len(y_test)} images")

second_p, second = p1.topk(2, dim=1)
second_p, second = second_p[:, 1], second[:, 1]
ok = torch.nonzero(pred == y_test).flatten()
# the seed experiment's example first: the correctly classified 2 that gives most probability to 3
twos = ok[y_test[ok] == 2]
picked = [int(twos[p1[twos, 3].argmax()])]
print(f"the 2 most like a 3: test image {picked[0]}, p(3) = {p1[picked[0], 3]:.2e} at T = 1, "
      f"{softmax_t(logits[picked[0]], 5.0)[3]:.3f} at T = 5")
# then the most telling correctly classified digit of each other true class, best first
for i in ok[second_p[ok].argsort(descending=True)].tolist():
    if y_test[i] not in [y_test[j] for j in picked]:
        picked.append(i)
picked = picked[:6]
for i in picked:
    print(f"test image {i}: a {y_test[i]} (p = {p1[i, y_test[i]]:.3f}) whose second choice is "
          f"{second[i]} (p = {second_p[i]:.3f})")
plots.show_images(images[picked], [f"#{i}: {y_test[i]}, 2nd {second[i]}" for i in picked], ncols=6, size=1.8);

# %% [markdown]
# ## The same digits at T = 1, 2, 5, 20
# These digits were picked for being ambiguous (the first for its p(3)), so at $T=1$ most of the mass sits on the first
# one or two classes; raising $T$ lifts the third and later choices into view (log scale below:
# the small probabilities are the dark knowledge).

# %%
GRID = (1, 2, 5, 20)
fig, axes = plt.subplots(len(picked), len(GRID), figsize=(3 * len(GRID), 1.7 * len(picked)), sharey=True)
for r, i in enumerate(picked):
    for c, T in enumerate(GRID):
        q = softmax_t(logits[i], T)
        ax = axes[r, c]
        ax.bar(range(10), q.numpy(), color=["C3" if k == y_test[i] else "C0" for k in range(10)])
        ax.set_yscale("log")
        ax.set_ylim(1e-6, 1.5)
        ax.set_xticks(range(10))
        ax.set_title(f"#{i} (a {y_test[i]}), T={T}, H={entropy(q):.2f}", fontsize=8)
        if r == len(picked) - 1:
            ax.set_xlabel("class")
        if c == 0:
            ax.set_ylabel("probability (log)")
fig.tight_layout()

# %% [markdown]
# ## Try it: a temperature slider
# Move the slider (log scale, 0.1 to 50) and pick a digit: the bar chart of `softmax_t` and its
# entropy update live. The text line under the chart gives the exact numbers. The slider's chart has
# a **linear** probability axis (what a probability looks like); the grid above used a log axis (what
# the small ones are). Reading this without a kernel (on GitHub, in the course website)? The figure
# after the slider shows the first digit at a few temperatures; run the notebook to move the slider.

# %%
readout = widgets.HTML()
chart = widgets.Output()
t_slider = widgets.FloatLogSlider(value=1.0, base=10, min=-1, max=np.log10(50), step=0.01,
                                  description="T", readout_format=".2f", continuous_update=True)
digit = widgets.Dropdown(options=[(f"test image {i} (a {int(y_test[i])})", i) for i in picked],
                         value=picked[0], description="digit")


def update(*_):
    i, T = digit.value, t_slider.value
    q = softmax_t(logits[i], T)
    readout.value = (f"<span class='kd-readout'>test image {i} · T = {T:.4f} · entropy = {entropy(q):.4f} nats · "
                     f"p = [{', '.join(f'{v:.4f}' for v in q.tolist())}]</span>")
    with chart:
        chart.clear_output(wait=True)
        fig, ax = plt.subplots(figsize=(6, 2.6))
        ax.bar(range(10), q.numpy(), color=["C3" if k == y_test[i] else "C0" for k in range(10)])
        ax.set_ylim(0, 1)
        ax.set_xticks(range(10))
        ax.set_title(f"test image {i} (a {int(y_test[i])}) at T = {T:.2f}: entropy {entropy(q):.3f} nats")
        plt.show()


t_slider.observe(update, "value")
digit.observe(update, "value")
update()
display(widgets.VBox([widgets.HBox([t_slider, digit]), chart, readout]))

# %%
# The slider's chart at a few temperatures, as a static figure (shown where widgets are not)
STATIC_T = (0.5, 1, 2, 5, 20)
i = picked[0]
fig, axes = plt.subplots(1, len(STATIC_T), figsize=(2.6 * len(STATIC_T), 2.4), sharey=True)
for ax, T in zip(axes, STATIC_T):
    q = softmax_t(logits[i], T)
    ax.bar(range(10), q.numpy(), color=["C3" if k == y_test[i] else "C0" for k in range(10)])
    ax.set_ylim(0, 1)
    ax.set_xticks(range(10))
    ax.set_xlabel("class")
    ax.set_title(f"T = {T}: entropy {entropy(q):.2f}", fontsize=9)
axes[0].set_ylabel("probability")
fig.suptitle(f"test image {i} (a {int(y_test[i])}), as the slider shows it")
fig.tight_layout()

# %% [markdown]
# ## Entropy against temperature
# Every curve rises to $\log 10 \approx 2.30$ nats (uniform) at high $T$. At low $T$ a digit with
# one clear winner drops to 0 (a one-hot). A digit torn between two classes with *almost* equal
# logits (a gap of a few hundredths) stays near $\log 2 \approx 0.69$ nats down to the smallest T
# plotted (0.1); with a gap of a tenth or more it has already dropped there, and none stays for ever:
# any gap $\Delta$ between its two logits wins once $T \ll \Delta$. Cooling sharpens a distribution
# where the logits differ, as fast as their differences allow (the cell prints each digit's top-two gap).

# %%
Ts = torch.logspace(-1, 2, 200)
fig, ax = plt.subplots(figsize=(6.5, 3.5))
for i in picked:
    ax.plot(Ts, [entropy(softmax_t(logits[i], float(T))).item() for T in Ts], label=f"#{i} (a {y_test[i]})")
ax.axhline(np.log(10), color="gray", ls="--", label="log 10")
ax.set_xscale("log")
ax.set_xlabel("temperature T")
ax.set_ylabel("entropy (nats)")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
for i in picked:
    top2 = logits[i].topk(2).values
    print(f"#{i}: gap between its two largest logits {float(top2[0] - top2[1]):.2f}; "
          f"entropy at T = 0.1: {entropy(softmax_t(logits[i], 0.1)):.3f} nats")

# %% [markdown]
# ## Dark knowledge: which digits resemble which
# The teacher's average soft targets at $T=4$ over all test images of each true class: row = true
# digit, column = probability given to each digit. The diagonal is large; the off-diagonal cells
# are what the teacher knows about similarity, which the labels alone never tell the student.

# %%
T_DARK = 4.0
q = softmax_t(logits, T_DARK)
avg = torch.stack([q[y_test == c].mean(0) for c in range(10)])
fig, ax = plt.subplots(figsize=(5.5, 4.6))
im = ax.imshow(np.log10(avg.numpy()), cmap="viridis")
ax.set_xticks(range(10))
ax.set_yticks(range(10))
ax.set_xlabel("soft target for digit")
ax.set_ylabel("true digit")
ax.set_title(f"log10 mean soft target, T = {T_DARK:g}")
fig.colorbar(im, ax=ax)
off = avg.clone()
off.fill_diagonal_(0)
print(f"Most similar pairs in this run (mean soft target at T = {T_DARK:g}):")
for flat in off.flatten().argsort(descending=True)[:6].tolist():
    a, b = divmod(flat, 10)
    print(f"  a true {a} gives {b} on average {off[a, b]:.4f}")
