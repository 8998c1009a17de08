"""kdlib: the shared code of the kd-notebooks course on knowledge distillation."""
from . import checkpoint, config, data, losses, models, noisy, plots, recipes, train
from .config import fast_mode, pick
from .repro import seed_everything

__version__ = "0.1.0"
__all__ = ["checkpoint", "config", "data", "losses", "models", "noisy", "plots", "recipes", "train", "fast_mode", "pick", "seed_everything"]
