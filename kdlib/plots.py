"""Plots shared by the notebooks: training curves and digit grids."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator


def plot_history(histories: dict, keys=("loss", "acc"), title: str = ""):
    """Train (solid) and validation (dashed) curves per epoch, one panel per key,
    one colour per named history: ``histories = {"hard": hist, "soft": hist2}``."""
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for i, (name, h) in enumerate(histories.items()):
            epochs = range(1, len(h[f"train_{key}"]) + 1)
            ax.plot(epochs, h[f"train_{key}"], "-", color=f"C{i}", label=f"{name} train")
            if h.get(f"val_{key}"):
                ax.plot(epochs, h[f"val_{key}"], "--", color=f"C{i}", label=f"{name} val")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_images(images: torch.Tensor, titles, ncols: int = 8, size: float = 1.4):
    """A grid of uint8 images (N x H x W or N x H x W x 3) with a title each."""
    n = len(images)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * 1.25 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, t in zip(axes.flat, images, titles):
        ax.imshow(img.numpy(), cmap="gray" if img.ndim == 2 else None)
        ax.set_title(t, fontsize=8)
    fig.tight_layout()
    return fig


def plot_bias_curve(shifts, errors, n_images: int, chosen: float, paper: float, classes: str):
    """Validation error rate (%) against the shift added to the output bias of ``classes``, with the
    shift chosen on validation and the paper's (chosen on test) marked. Returns the figure (its
    title is the caller's: ``fig.axes[0].set_title(...)``)."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(shifts, [100 * e / n_images for e in errors], "-", label="validation")
    ax.axvline(chosen, color="k", lw=0.8, label=f"chosen: {chosen:+g}")
    ax.axvline(paper, color="C2", ls="--", label=f"paper (chosen on test): {paper:+g}")
    ax.set_xlabel(f"shift added to the bias of {classes}")
    ax.set_ylabel("validation error rate (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
