"""Make an executed notebook small and readable anywhere: progress-bar widgets become their final text.

    python scripts/clean_notebook.py notebooks/03_three_way_distillation.ipynb [...]

nbclient saves the state of every ipywidget (each tqdm bar is about ten widget models) in the
notebook's metadata, and GitHub or nbviewer show a bar's first frame ("0%"). Here each bar's
output becomes plain text with its final state ("teacher: 100%|██████████| 3750/3750 [...]"),
bars that were closed (tqdm's ``leave=False``) are dropped, and the widget state is removed.
A bar is what tqdm draws: an HBox of exactly HTML, progress bar, HTML. Any other widget (a slider,
an HBox of controls) keeps its output's text fallback, which is what a notebook shows without the
widget state. Other outputs are left as they are. ``run_notebooks.py`` calls :func:`text_progress`
on every run.
"""
from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import nbformat

VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
PROGRESS = ("FloatProgressModel", "IntProgressModel")


def _is_bar(model_id: str, state: dict) -> bool:
    """True for a tqdm bar: an HBox of HTML, progress bar, HTML."""
    box = state.get(model_id, {})
    names = [state.get(ref.removeprefix("IPY_MODEL_"), {}).get("model_name")
             for ref in box.get("state", {}).get("children", [])]
    return (box.get("model_name") == "HBoxModel" and len(names) == 3 and names[0] == names[2] == "HTMLModel"
            and names[1] in PROGRESS)


def _bar_text(model_id: str, state: dict) -> str | None:
    """The final text of the tqdm bar whose HBox is ``model_id``; None if it was hidden."""
    box = state[model_id]
    layout = state.get(box["state"].get("layout", "").removeprefix("IPY_MODEL_"), {}).get("state", {})
    if layout.get("visibility") == "hidden" or layout.get("display") == "none":
        return None
    parts = []
    for ref in box["state"].get("children", []):
        child = state.get(ref.removeprefix("IPY_MODEL_"), {})
        s = child.get("state", {})
        if child.get("model_name") == "HTMLModel":
            parts.append(html.unescape(re.sub(r"<[^>]+>", "", s.get("value", ""))))
        elif child.get("model_name") in PROGRESS:
            frac = (s.get("value") or 0) / s["max"] if s.get("max") else 0
            parts.append("|" + "█" * round(10 * frac) + " " * (10 - round(10 * frac)) + "|")
    return re.sub(r"[\xa0\u2007]", " ", "".join(parts)).strip() or None


def text_progress(nb) -> int:
    """Replace progress-bar widgets by their final text in ``nb`` (in place), drop closed ones
    (no state left), keep other widgets' text fallback; returns how many widget outputs changed."""
    state = nb.metadata.get("widgets", {}).get(STATE, {}).get("state", {})
    n = 0
    for cell in nb.cells:
        outputs = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(VIEW) if out.get("output_type") == "display_data" else None
            if view is None:
                outputs.append(out)
                continue
            n += 1
            model_id = view.get("model_id")
            if model_id in state and not _is_bar(model_id, state):  # a slider, an HBox of controls
                out.data.pop(VIEW)
                outputs += [out] if out.data else []
                continue
            text = _bar_text(model_id, state) if model_id in state else None
            if text is not None:
                outputs.append(nbformat.v4.new_output("display_data", data={"text/plain": text}))
        if cell.cell_type == "code":
            cell.outputs = outputs
    nb.metadata.pop("widgets", None)
    return n


def main(paths: list[str]) -> None:
    for p in map(Path, paths):
        nb = nbformat.read(p, as_version=4)
        n = text_progress(nb)
        nbformat.write(nb, p)
        print(f"{p}: {n} widget outputs -> text, {p.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(sys.argv[1:])
