"""pytest, as instructors type it (``pytest --nbval-lax`` in the project root): fast mode unless
``KDLIB_FAST`` is set, and the dataset folder beside the checkout when there is one. Set here, at
collection time, so the notebooks' kernels (started by nbval) inherit them."""
import os
from pathlib import Path

os.environ.setdefault("KDLIB_FAST", "1")
_SHARED = Path(__file__).resolve().parent.parent / "shared" / "data"
if "KDLIB_DATA" not in os.environ and (_SHARED / "mnist-train.npz").exists():
    os.environ["KDLIB_DATA"] = str(_SHARED)
