"""What a notebook will cost before you run it: its measured time and the teachers it trains first.

``announce("05")`` prints the notebook's wall time at full length as recorded by ``make notebooks``
in ``bench/notebook_times.json`` (with the machine it was measured on), the fast-mode time when
one is recorded, and which teachers are not in the checkpoint folder yet and so will be trained
first (a teacher's file is ``kdlib.checkpoint.path_for(name, settings)`` for the current mode's
settings, the file the notebook's ``cached_model`` call looks for).
"""
from __future__ import annotations

import json
from pathlib import Path

from . import checkpoint, config

TIMES = config.PROJECT_ROOT / "bench" / "notebook_times.json"
NOTEBOOKS = ("01_softmax_temperature", "02_teacher", "03_three_way_distillation",
             "04_gradient_check", "05_noisy_teachers", "06_hinton_mnist", "07_when_distillation_helps")


def _seed():
    from . import recipes
    return "teacher", recipes.teacher_settings()


def _blog():
    from . import recipes
    return "blog-teacher", recipes.blog_teacher_settings()


def _hinton():
    from . import hinton
    return "hinton-teacher", hinton.teacher_settings()


def _quick(smoothed: bool):
    def key():
        from . import when
        return "quick-teacher", when.quick_teacher_settings(when.LABEL_SMOOTHING if smoothed else 0.0)
    return key


def _noisy(dataset):
    def key():
        from . import noisy
        size = "paper" if config.device().type == "cuda" else "cpu"  # as notebook 05 chooses
        return f"noisy-teacher-{dataset}", noisy._teacher_key(noisy.settings(dataset, size))
    return key


# (what, its checkpoint's name and settings, seconds to train it at full length on 2 cores of an
# Intel Xeon with AVX-512 and bf16, measured in the runs of 2026-12-02/03: 02's two teachers, 05's
# two, 07's quick ones; the MLP teacher on the Xeon without bf16 of 2026-11-26, quiet, as it trains in
# float32 anyway: README, "The wait a student sees")
_SEED = ("notebook 02's seed teacher", _seed, 231)
_BLOG = ("notebook 02's blog teacher", _blog, 475)
_MLP = ("the 1200-1200 MLP teacher", _hinton, 535)
TEACHERS = {
    "01": [_SEED], "02": [_SEED, _BLOG], "03": [_SEED, _BLOG], "04": [_SEED],
    "05": [("the MNIST teacher", _noisy("mnist"), 59), ("the CIFAR-10 teacher", _noisy("cifar10"), 266)],
    "06": [_MLP, _SEED],
    "07": [_MLP, ("the quick MLP teacher", _quick(False), 56),
           ("the label-smoothed quick MLP teacher", _quick(True), 65)],
}


def _number(notebook: str) -> str:
    key = Path(str(notebook)).stem[:2]
    if key not in TEACHERS:
        raise ValueError(f"notebook must be one of {', '.join(NOTEBOOKS)} (or its number), got {notebook!r}")
    return key


def missing_teachers(notebook: str) -> list[tuple[str, Path, int]]:
    """The teachers ``notebook`` will train first: ``(what, checkpoint path, full-length seconds)``
    for each whose checkpoint (for the current mode's settings) is not in the checkpoint folder."""
    out = []
    for what, key, seconds in TEACHERS[_number(notebook)]:
        path = checkpoint.path_for(*key())
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
    cached = ("" if trained is None or mode != "full" else ", teachers cached" if not trained else
              f", including the training of {len(trained)} teacher{'s' if len(trained) > 1 else ''}")
    return (f"{_minutes(t['seconds'])} ({mode} mode, measured {t.get('date', '?')} on "
            f"{t.get('cpus', '?')} cores of {t.get('machine', 'an unnamed machine')}{cached})")


def summary(notebook: str, times_file: Path | None = None) -> str:
    """The text :func:`announce` prints."""
    key = _number(notebook)
    name = next(n for n in NOTEBOOKS if n.startswith(key))
    path = Path(times_file) if times_file is not None else TIMES
    try:
        times = json.loads(path.read_text())
    except (OSError, ValueError):  # an installed package has no bench/ folder
        times = {}
    fast = config.fast_mode()
    lines = [f"Notebook {name}, {'fast' if fast else 'full-length'} mode (KDLIB_FAST="
             f"{'1' if fast else '0'})."]
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
    """Print how long ``notebook`` (e.g. ``"05"`` or ``"05_noisy_teachers.ipynb"``) takes and
    which teachers it will train first (see :func:`summary`)."""
    print(summary(notebook, times_file))
