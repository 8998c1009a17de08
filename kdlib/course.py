"""What a notebook will cost before you run it: its measured time and the teachers it trains first.

``announce("05")`` prints the wall times ``make notebooks`` recorded in ``bench/notebook_times.json`` and the
teachers whose checkpoints (:func:`kdlib.checkpoint.path_for`, current mode's settings) are still missing.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import checkpoint, config

TIMES = config.PROJECT_ROOT / "bench" / "notebook_times.json"
NOTEBOOKS = ("01_softmax_temperature", "02_teacher", "03_three_way_distillation",
             "04_gradient_check", "05_noisy_teachers", "06_hinton_mnist", "07_when_distillation_helps")


def _key(teacher: str) -> tuple:
    """``(name, settings)`` of the checkpoint a notebook's ``cached_model`` looks for. ``teacher`` is "seed",
    "blog", "hinton", "quick", "quick-smoothed", "mnist" or "cifar10"; only its module is imported."""
    if teacher == "seed":
        from . import recipes
        return "teacher", recipes.teacher_settings()
    elif teacher == "blog":
        from . import recipes
        return "blog-teacher", recipes.blog_teacher_settings()
    elif teacher == "hinton":
        from . import hinton
        return "hinton-teacher", hinton.teacher_settings()
    elif teacher in ("quick", "quick-smoothed"):
        from . import when
        smoothing = when.LABEL_SMOOTHING if teacher == "quick-smoothed" else 0.0
        return "quick-teacher", when.quick_teacher_settings(smoothing)
    elif teacher in ("mnist", "cifar10"):
        from . import noisy
        size = "paper" if config.device().type == "cuda" else "cpu"  # as notebook 05 chooses
        return f"noisy-teacher-{teacher}", noisy._teacher_key(noisy.settings(teacher, size))
    else:
        raise ValueError(f"teacher must be one of seed, blog, hinton, quick, quick-smoothed, mnist, cifar10, "
                         f"got {teacher!r}")


# (what, its _key name, full-length seconds to train it on 2 cores of an
# AVX-512 bf16 Xeon, 2026-12-02/03; the MLP teacher, float32 anyway, on one without bf16, 2026-11-26: README,
# "The wait a student sees")
_SEED = ("notebook 02's seed teacher", "seed", 231)
_BLOG = ("notebook 02's blog teacher", "blog", 475)
_MLP = ("the 1200-1200 MLP teacher", "hinton", 535)
TEACHERS = {
    "01": [_SEED], "02": [_SEED, _BLOG], "03": [_SEED, _BLOG], "04": [_SEED],
    "05": [("the MNIST teacher", "mnist", 59), ("the CIFAR-10 teacher", "cifar10", 266)],
    "06": [_MLP, _SEED],
    "07": [_MLP, ("the quick MLP teacher", "quick", 56),
           ("the label-smoothed quick MLP teacher", "quick-smoothed", 65)],
}


def _number(notebook: str) -> str:
    key = Path(str(notebook)).stem[:2]
    if key not in TEACHERS:
        raise ValueError(f"notebook must be one of {', '.join(NOTEBOOKS)} (or its number), got {notebook!r}")
    return key


def missing_teachers(notebook: str) -> list[tuple[str, Path, int]]:
    """``(what, checkpoint path, full-length seconds)`` of each teacher ``notebook`` trains first (no checkpoint)."""
    out = []
    for what, teacher, seconds in TEACHERS[_number(notebook)]:
        path = checkpoint.path_for(*_key(teacher))
        if not path.exists():
            out.append((what, path, seconds))
    return out


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _recorded(times: dict, name: str, mode: str) -> str | None:
    t = times.get(f"{name}.ipynb", {}).get(mode)
    if not t:
        return None
    trained = t.get("teachers_trained")  # recorded by scripts/run_notebooks.py since 2026-12-03
    if trained is None or mode != "full":
        cached = ""
    elif not trained:
        cached = ", teachers cached"
    else:
        cached = f", including the training of {len(trained)} teacher{'s' if len(trained) > 1 else ''}"
    return (f"{_minutes(t['seconds'])} ({mode} mode, measured {t.get('date', '?')} on "
            f"{t.get('cpus', '?')} cores of {t.get('machine', 'an unnamed machine')}{cached})")


def summary(notebook: str, times_file: Path | None = None) -> str:
    """The text :func:`announce` prints; ``notebook`` is e.g. ``"05"`` or ``"05_noisy_teachers.ipynb"``."""
    key = _number(notebook)
    name = next(n for n in NOTEBOOKS if n.startswith(key))
    path = Path(times_file) if times_file is not None else TIMES
    try:
        times = json.loads(path.read_text())
    except (OSError, ValueError):  # an installed package has no bench/ folder
        times = {}
    fast = config.fast_mode()
    lines = [f"Notebook {name}, {'fast' if fast else 'full-length'} mode (KDLIB_FAST={'1' if fast else '0'})."]
    for mode in ("full", "fast"):
        rec = _recorded(times, name, mode)
        if rec:
            lines.append(f"Run time recorded before this run: {rec}.")
    if not _recorded(times, name, "full"):
        lines.append(f"No full-length time recorded for it here ({path} is missing or has none).")
    missing = missing_teachers(key)
    for what, p, seconds in missing:
        extra = "" if fast else f", about {_minutes(seconds)} at full length on a 2-core Intel Xeon"
        lines.append(f"First it trains {what} ({p.name} is not in {p.parent}{extra}).")
    if not missing:
        lines.append("Its teachers are cached: none will be trained.")
    if not fast:
        lines.append("For a quick run, put %env KDLIB_FAST=1 in a cell above this one and run all "
                     "(or start JupyterLab with KDLIB_FAST=1 make lab).")
    return "\n".join(lines)


def announce(notebook: str, times_file: Path | None = None) -> None:
    """Print how long ``notebook`` (e.g. ``"05"``) takes and which teachers it trains first (:func:`summary`)."""
    print(summary(notebook, times_file))
