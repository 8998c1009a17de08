"""kdlib.course: a notebook's recorded time and the teachers it will train first."""
import json

import pytest

from kdlib import checkpoint, course, hinton, noisy, recipes, when
from kdlib.config import PROJECT_ROOT


class _Stop(Exception):
    pass


def _paths_asked_for(monkeypatch, calls):
    """The checkpoint files the real kdlib functions look up (training replaced by a stop)."""
    asked = []

    def fake_cached_model(name, settings, build, train_fn):
        asked.append(checkpoint.path_for(name, settings))
        raise _Stop

    monkeypatch.setattr(checkpoint, "cached_model", fake_cached_model)
    for call in calls:
        with pytest.raises(_Stop):
            call()
    return asked


@pytest.mark.parametrize("fast", ["0", "1"])
def test_teacher_files_are_the_ones_the_notebooks_load(monkeypatch, tmp_path, fast):
    monkeypatch.setenv("KDLIB_FAST", fast)
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(tmp_path))
    calls = {
        "01": [recipes.mnist_teacher],
        "02": [recipes.mnist_teacher, recipes.blog_teacher],
        "03": [recipes.mnist_teacher, recipes.blog_teacher],
        "04": [recipes.mnist_teacher],
        "05": [lambda: noisy.dataset_teacher(noisy.settings("mnist", "cpu")),
               lambda: noisy.dataset_teacher(noisy.settings("cifar10", "cpu"))],
        "06": [hinton.hinton_teacher, recipes.mnist_teacher],
        "07": [hinton.hinton_teacher, lambda: when.quick_teacher(when.quick_teacher_settings(0.0)),
               lambda: when.quick_teacher(when.quick_teacher_settings(when.LABEL_SMOOTHING))],
    }
    monkeypatch.setattr(course.config, "device", lambda *a, **k: __import__("torch").device("cpu"))
    for nb, fns in calls.items():
        with monkeypatch.context() as m:
            expected = _paths_asked_for(m, fns)
        assert [p for _, p, _ in course.missing_teachers(nb)] == expected, nb


def test_the_summary_names_the_teachers_still_to_train(monkeypatch, tmp_path):
    monkeypatch.setenv("KDLIB_FAST", "0")
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(tmp_path))
    text = course.summary("03")
    assert "seed teacher" in text and "blog teacher" in text and f"about {course._minutes(course._SEED[2])}" in text
    seed = checkpoint.path_for("teacher", recipes.teacher_settings())
    seed.write_bytes(b"")  # only existence is looked at
    text = course.summary("03_three_way_distillation.ipynb")
    assert "seed teacher" not in text and "blog teacher" in text
    assert "none will be trained" in course.summary("01")
    # fast mode looks for the fast teacher's file, which is another one
    monkeypatch.setenv("KDLIB_FAST", "1")
    assert "seed teacher" in course.summary("01")


def test_the_recorded_times_are_printed_with_their_machine(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KDLIB_FAST", "0")
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(tmp_path))
    times = tmp_path / "times.json"
    times.write_text(json.dumps({"05_noisy_teachers.ipynb": {
        "full": {"seconds": 2198.5, "cpus": 2, "date": "2026-11-27", "machine": "Some CPU", "teachers_trained": []},
        "fast": {"seconds": 71.2, "cpus": 2, "date": "2026-11-23", "machine": "x86_64"}}}))
    course.announce("05", times)
    out = capsys.readouterr().out
    assert "37 min (full mode, measured 2026-11-27 on 2 cores of Some CPU, teachers cached)" in out
    assert "71 s (fast mode" in out
    rec = json.loads(times.read_text())
    rec["05_noisy_teachers.ipynb"]["full"]["teachers_trained"] = ["a.pt", "b.pt"]
    times.write_text(json.dumps(rec))
    assert "(full mode, measured 2026-11-27 on 2 cores of Some CPU, including the training of 2 teachers)" in \
        course.summary("05", times)
    del rec["05_noisy_teachers.ipynb"]["full"]["teachers_trained"]  # an older record: it did not say
    times.write_text(json.dumps(rec))
    assert "on 2 cores of Some CPU)" in course.summary("05", times)
    assert "MNIST teacher" in out and "CIFAR-10 teacher" in out
    assert "%env KDLIB_FAST=1" in out


def test_no_times_file_is_said_not_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("KDLIB_FAST", "1")
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(tmp_path))
    text = course.summary("04", tmp_path / "absent.json")
    assert "No full-length time recorded" in text and "fast mode" in text
    assert "%env" not in text  # already in fast mode


def test_the_project_times_file_has_every_notebook():
    times = json.loads(course.TIMES.read_text())
    assert all(times[f"{n}.ipynb"]["full"]["seconds"] > 0 for n in course.NOTEBOOKS)


def test_notebook_list_matches_the_folder():
    found = sorted(p.stem for p in (PROJECT_ROOT / "notebooks").glob("[0-9]*.ipynb"))
    assert tuple(found) == course.NOTEBOOKS


@pytest.mark.parametrize("bad", ["08", "softmax", ""])
def test_unknown_notebook_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="notebook must be one of 01_softmax_temperature"):
        course.summary(bad)
