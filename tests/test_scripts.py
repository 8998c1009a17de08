"""scripts/: run_notebooks reads KDLIB_FAST with kdlib's parser; clean_notebook turns progress
widgets into their final text."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load(name: str):
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


@pytest.mark.parametrize("value, fast", [("false", False), ("0", False), ("off", False), ("", False),
                                         ("1", True), ("yes", True)])
def test_run_notebooks_reads_kdlib_fast_like_kdlib(value, fast, monkeypatch, tmp_path):
    rn = _load("run_notebooks")
    seen = []
    monkeypatch.setattr(rn, "run", lambda path, f: seen.append(f) or 1.0)
    monkeypatch.setattr(rn, "TIMES", tmp_path / "times.json")
    monkeypatch.setenv("KDLIB_FAST", value)
    (tmp_path / "x.ipynb").write_text("{}")  # run() is replaced: the file is only looked at
    rn.main([str(tmp_path / "x.ipynb")])
    assert seen == [fast]
    assert ("fast" if fast else "full") in (tmp_path / "times.json").read_text()


def test_run_notebooks_records_the_teachers_a_run_trained(monkeypatch, tmp_path):
    """A notebook whose run wrote a checkpoint has that teacher's training in its time: the record says so."""
    rn = _load("run_notebooks")
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "old-teacher.pt").write_bytes(b"")
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(ckpt))
    monkeypatch.setenv("KDLIB_FAST", "0")
    monkeypatch.setattr(rn, "TIMES", tmp_path / "times.json")
    runs = iter([lambda: (ckpt / "new-teacher.pt").write_bytes(b""), lambda: None])
    monkeypatch.setattr(rn, "run", lambda path, f: next(runs)() or 1.0)
    for name in ("a.ipynb", "b.ipynb"):
        (tmp_path / name).write_text("{}")
    rn.main([str(tmp_path / "a.ipynb"), str(tmp_path / "b.ipynb")])
    times = json.loads((tmp_path / "times.json").read_text())
    assert times["a.ipynb"]["full"]["teachers_trained"] == ["new-teacher.pt"]
    assert times["b.ipynb"]["full"]["teachers_trained"] == []


def test_run_notebooks_refuses_an_unknown_value(monkeypatch, tmp_path):
    rn = _load("run_notebooks")
    monkeypatch.setattr(rn, "run", lambda path, f: pytest.fail("ran despite a bad KDLIB_FAST"))
    monkeypatch.setenv("KDLIB_FAST", "maybe")
    with pytest.raises(ValueError, match="KDLIB_FAST"):
        rn.main([str(tmp_path / "x.ipynb")])


def _bar_state(box: str, left: str, right: str, value: float, hidden: bool = False) -> dict:
    ids = {k: f"{box}-{k}" for k in ("l", "bar", "r", "layout")}
    return {
        box: {"model_name": "HBoxModel", "state": {
            "children": [f"IPY_MODEL_{ids['l']}", f"IPY_MODEL_{ids['bar']}", f"IPY_MODEL_{ids['r']}"],
            "layout": f"IPY_MODEL_{ids['layout']}"}},
        ids["l"]: {"model_name": "HTMLModel", "state": {"value": left}},
        ids["bar"]: {"model_name": "FloatProgressModel", "state": {"value": value, "max": 10}},
        ids["r"]: {"model_name": "HTMLModel", "state": {"value": right}},
        ids["layout"]: {"model_name": "LayoutModel", "state": {"visibility": "hidden" if hidden else None}},
    }


def test_clean_notebook_keeps_each_bars_final_text():
    cn = _load("clean_notebook")
    view = "application/vnd.jupyter.widget-view+json"
    state = {**_bar_state("a", "teacher:&nbsp;100%", "&nbsp;10/10&nbsp;[00:05&lt;00:00]", 10),
             **_bar_state("b", "batches:", "3/10", 3, hidden=True)}
    out = [nbformat.v4.new_output("display_data", data={view: {"model_id": m}, "text/plain": "0%"})
           for m in ("a", "b", "gone")]
    out.append(nbformat.v4.new_output("stream", text="kept\n"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("fit()", outputs=out)])
    nb.metadata["widgets"] = {cn.STATE: {"state": state}}
    assert cn.text_progress(nb) == 3
    outs = nb.cells[0].outputs
    assert [o.output_type for o in outs] == ["display_data", "stream"]  # hidden and unknown bars dropped
    assert outs[0].data == {"text/plain": "teacher: 100%|██████████| 10/10 [00:05<00:00]"}
    assert "widgets" not in nb.metadata


def test_run_notebooks_checks_every_name_before_running_any(monkeypatch, tmp_path):
    """Issue 26: a typo in the second name was found only after the first notebook had run."""
    rn = _load("run_notebooks")
    good = tmp_path / "a.ipynb"
    good.write_text("{}")
    monkeypatch.setattr(rn, "run", lambda path, f: pytest.fail(f"ran {path.name} before checking every name"))
    monkeypatch.setattr(rn, "TIMES", tmp_path / "times.json")
    monkeypatch.setenv("KDLIB_FAST", "0")
    with pytest.raises(FileNotFoundError, match=r"notebook: \S*/typo\.ipynb, \S*/notes\.py \(nothing was run\)$"):
        rn.main([str(good), str(tmp_path / "typo.ipynb"), str(tmp_path / "notes.py")])
    assert not (tmp_path / "times.json").exists()


def _widget_state(model_id: str, model_name: str, **state) -> dict:
    return {model_id: {"model_name": model_name, "state": state}}


def test_clean_notebook_keeps_other_widgets_as_their_text():
    """Issue 26: only tqdm bars (HBox of HTML, progress, HTML) become their final text; a slider or
    an HBox of controls keeps its text fallback (the widget view goes with the widget state)."""
    cn = _load("clean_notebook")
    view = "application/vnd.jupyter.widget-view+json"
    state = {**_widget_state("s", "IntSliderModel", value=3),
             **_widget_state("t", "FloatSliderModel", value=0.5),
             **_widget_state("p", "IntProgressModel", value=2, max=4),
             **_widget_state("controls", "HBoxModel", children=["IPY_MODEL_t", "IPY_MODEL_p"]),
             **_bar_state("bar", "fit:", "10/10", 10)}
    fallback = {"s": "IntSlider(value=3)", "controls": "HBox(children=(FloatSlider(value=0.5), IntProgress(value=2, max=4)))",
                "bar": "0%"}
    out = [nbformat.v4.new_output("display_data", data={view: {"model_id": m}, "text/plain": fallback[m]})
           for m in ("s", "controls", "bar")]
    out.append(nbformat.v4.new_output("display_data", data={view: {"model_id": "t"}}))  # no fallback: nothing to show
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("show()", outputs=out)])
    nb.metadata["widgets"] = {cn.STATE: {"state": state}}
    cn.text_progress(nb)
    assert [o.data for o in nb.cells[0].outputs] == [
        {"text/plain": fallback["s"]}, {"text/plain": fallback["controls"]}, {"text/plain": "fit:|██████████|10/10"}]
    assert "widgets" not in nb.metadata
