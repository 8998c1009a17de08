"""Execute notebooks at full length and save their outputs in place (for maintainers).

    python scripts/run_notebooks.py [notebooks/02_teacher.ipynb ...]   (default: all, in order)

Each .py (jupytext) source is synced into its .ipynb first; progress bars are saved as their final
text, without widget state (``clean_notebook.py``); the wall time of each run is recorded in
bench/notebook_times.json (read by bench/bench.py). ``KDLIB_FAST`` is read by kdlib's own parser
(``kdlib.config.fast_mode``): in fast mode the run is timed but its outputs are not saved.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from kdlib.config import checkpoint_dir, cpu_name, fast_mode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clean_notebook import text_progress  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TIMES = ROOT / "bench" / "notebook_times.json"


def run(path: Path, fast: bool) -> float:
    subprocess.run([sys.executable, "-m", "jupytext", "--sync", "--quiet", str(path)], check=True)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=None, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if not fast:  # only full-length outputs are committed
        text_progress(nb)
        nbformat.write(nb, path)
        subprocess.run([sys.executable, "-m", "jupytext", "--sync", "--quiet", str(path)], check=True)
    return seconds


def checkpoints() -> set[str]:
    """The checkpoint files there are now (a notebook that trains a teacher adds one)."""
    folder = checkpoint_dir()
    return {p.name for p in folder.glob("*.pt")} if folder.is_dir() else set()


def main(argv: list[str]) -> None:
    fast = fast_mode()  # the same parser as the kernels': an unknown value is an error
    paths = [Path(a).resolve() for a in argv] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    wrong = [a for a, p in zip(argv, paths) if p.suffix != ".ipynb" or not p.is_file()]
    if wrong:  # before anything runs: a typo found after an hour of notebooks costs that hour
        raise FileNotFoundError(f"not an existing .ipynb notebook: {', '.join(wrong)} (nothing was run)")
    mode = "fast" if fast else "full"
    for path in paths:
        print(f"running {path.name} ({mode} mode)...", flush=True)
        before = checkpoints()
        seconds = run(path, fast)
        trained = sorted(checkpoints() - before)  # the teachers this run trained (its time includes them)
        print(f"  {seconds:.0f} s", flush=True)
        times = json.loads(TIMES.read_text()) if TIMES.exists() else {}  # read late: runs may overlap
        times.setdefault(path.name, {})[mode] = {
            "seconds": round(seconds, 1), "cpus": os.cpu_count(), "machine": cpu_name(),
            "load_average": round(os.getloadavg()[0], 1), "date": time.strftime("%Y-%m-%d"),
            "teachers_trained": trained}
        TIMES.parent.mkdir(exist_ok=True)
        TIMES.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
