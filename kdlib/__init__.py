"""kdlib: the shared code of the kd-notebooks course on knowledge distillation."""
from . import config, data, losses, models
from .config import fast_mode, pick
from .repro import seed_everything

__version__ = "0.1.0"
__all__ = ["config", "data", "losses", "models", "fast_mode", "pick", "seed_everything"]
