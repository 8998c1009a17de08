"""kdlib: the shared code of the kd-notebooks course on knowledge distillation."""
from . import (as_written, augment, checkpoint, config, data, fast, files, hinton, losses, models, noisy, playground,
               plots, recipes, report, stats, train)
from .config import fast_mode, pick
from .repro import seed_everything

__version__ = "0.1.0"
MALLOC_TUNED = fast.memory.reuse_if_asked()  # only with KDLIB_MALLOC=1 (kdlib.fast.memory)
__all__ = ["as_written", "augment", "checkpoint", "config", "data", "fast", "files", "hinton", "losses", "models", "noisy",
           "playground", "plots", "recipes", "report", "stats", "train", "fast_mode", "pick", "seed_everything"]
