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
