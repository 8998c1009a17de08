"""kdlib: the shared code of the kd-notebooks course on knowledge distillation."""
from . import (as_written, augment, checkpoint, config, data, files, hinton, losses, models, noisy, playground, plots,
               recipes, stacked, stats, train)
from .config import fast_mode, pick
from .repro import seed_everything

__version__ = "0.1.0"
__all__ = ["as_written", "augment", "checkpoint", "config", "data", "files", "hinton", "losses", "models", "noisy", "playground",
           "plots", "recipes", "stacked", "stats", "train", "fast_mode", "pick", "seed_everything"]
