"""kdlib.checkpoint: cached_model, and what happens when a checkpoint cannot be read or written."""
from __future__ import annotations

import math
import os
import stat
import struct
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from kdlib import checkpoint, files


@dataclass(frozen=True)
class Settings:
    lr: float = 0.1
    epochs: int = 2
    seed: int = 5


def _build():
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2))


@pytest.fixture
def ckdir(tmp_path, monkeypatch):
    d = tmp_path / "ck"
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(d))
    return d


def _trainer(calls):
    def train_fn(model):
        calls.append(1)
        with torch.no_grad():
            model[0].weight.add_(1.0)
        return {"history": {"loss": [0.5, 0.25]}, "test_acc": 0.75}
    return train_fn


def test_cached_model_trains_once_then_loads(ckdir):
    calls = []
    m1, info1 = checkpoint.cached_model("toy", Settings(), _build, _trainer(calls))
    assert not info1["loaded"] and info1["path"].exists() and calls == [1]
    m2, info2 = checkpoint.cached_model("toy", Settings(), _build, _trainer(calls))
    assert info2["loaded"] and calls == [1] and info2["history"] == {"loss": [0.5, 0.25]}
    assert info2["settings"] == Settings() and info2["test_acc"] == 0.75
    for m in (m1, m2):  # frozen: eval mode, no gradients
        assert not m.training and not any(p.requires_grad for p in m.parameters())
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


def test_cached_model_initial_weights_depend_on_the_seed_only(ckdir):
    seen = []

    def keep(model):
        seen.append(model[0].weight.detach().clone())
        return {}
    torch.manual_seed(123)
    checkpoint.cached_model("a", Settings(seed=7), _build, keep)
    torch.manual_seed(999)
    checkpoint.cached_model("b", Settings(seed=7), _build, keep)
    checkpoint.cached_model("c", Settings(seed=8), _build, keep)
    assert torch.equal(seen[0], seen[1]) and not torch.equal(seen[0], seen[2])


def test_cached_model_refuses_other_settings(ckdir):
    calls = []
    _, info = checkpoint.cached_model("toy", Settings(), _build, _trainer(calls))
    with pytest.raises(checkpoint.CheckpointMismatch, match="lr"):
        checkpoint.load(info["path"], _build(), Settings(lr=0.2))
    _, info2 = checkpoint.cached_model("toy", Settings(lr=0.2), _build, _trainer(calls))
    assert calls == [1, 1] and info2["path"] != info["path"] and info["path"].exists()


@pytest.mark.parametrize("content", [b"", b"this is a text file\n", os.urandom(300), "truncated"])
def test_corrupt_checkpoint_names_the_file_and_the_way_out(ckdir, content):
    calls = []
    _, info = checkpoint.cached_model("toy", Settings(), _build, _trainer(calls))
    path = info["path"]
    if content == "truncated":
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    with pytest.raises(checkpoint.CheckpointUnreadable) as e:
        checkpoint.cached_model("toy", Settings(), _build, _trainer(calls))
    msg = str(e.value)
    assert str(path) in msg and "unreadable" in msg and "set_aside" in msg
    assert path.read_bytes() == content  # never deleted or changed
    moved = checkpoint.set_aside(path)
    assert moved.exists() and moved.read_bytes() == content and not path.exists()
    _, info2 = checkpoint.cached_model("toy", Settings(), _build, _trainer(calls))
    assert not info2["loaded"] and calls == [1, 1] and moved.exists()


def test_checkpoints_load_with_weights_only(ckdir):
    _, info = checkpoint.cached_model("toy", Settings(), _build, _trainer([]))
    payload = torch.load(info["path"], weights_only=True)
    assert payload["settings"] == {"lr": 0.1, "epochs": 2, "seed": 5}


def test_unwritable_folder_fails_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(blocker))
    calls = []
    with pytest.raises(PermissionError, match="KDLIB_CHECKPOINTS") as e:
        checkpoint.cached_model("toy", Settings(), _build, _trainer(calls))
    assert calls == [] and str(blocker) in str(e.value) and blocker.read_text() == "not a folder"


def test_failed_save_returns_the_trained_model(ckdir, monkeypatch):
    def broken_save(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(checkpoint, "save", broken_save)
    calls = []
    with pytest.warns(UserWarning, match="could not be saved"):
        model, info = checkpoint.cached_model("toy", Settings(), _build, _trainer(calls))
    assert calls == [1] and info["path"] is None and not info["loaded"]
    assert info["history"] == {"loss": [0.5, 0.25]}
    fresh = _build()
    assert not torch.equal(model[0].weight, fresh[0].weight)  # the trained weights came back


def test_settings_must_serialise_exactly(ckdir):
    with pytest.raises(ValueError, match="finite"):
        checkpoint.path_for("m", {"lr": math.nan, "seed": 1})
    with pytest.raises(ValueError, match="Tensor"):
        checkpoint.path_for("m", {"w": torch.zeros(2000), "seed": 1})
    # two large tensors that str() prints alike must not share a checkpoint: they are refused
    a, b = torch.zeros(2000), torch.zeros(2000)
    b[1000] = 1
    assert str(a) == str(b)
    assert checkpoint.path_for("m", {"w": a.tolist()}) != checkpoint.path_for("m", {"w": b.tolist()})


def test_dataclass_and_dict_settings_name_the_same_file(ckdir):
    assert checkpoint.path_for("m", Settings()) == checkpoint.path_for("m", {"seed": 5, "lr": 0.1, "epochs": 2})


def test_checkpoint_files_are_group_readable(ckdir):
    old = os.umask(0o022)
    try:
        _, info = checkpoint.cached_model("toy", Settings(), _build, _trainer([]))
    finally:
        os.umask(old)
    mode = stat.S_IMODE(info["path"].stat().st_mode)
    assert mode & stat.S_IRGRP and mode & stat.S_IROTH
    assert not list(ckdir.glob("*.tmp")) and not list(ckdir.glob(".*.tmp"))


# ---- issue #26: what train_fn returns, extras that could never load, corruption, names, umask ----

def test_train_fn_returning_none_is_saved_with_no_extras(ckdir):
    calls = []

    def train_fn(model):
        calls.append(1)
        with torch.no_grad():
            model[0].weight.fill_(0.5)
    m1, info1 = checkpoint.cached_model("toy", Settings(), _build, train_fn)
    assert info1["path"].exists() and not info1["loaded"]
    m2, info2 = checkpoint.cached_model("toy", Settings(), _build, train_fn)
    assert info2["loaded"] and calls == [1] and torch.all(m2[0].weight == 0.5)


@pytest.mark.parametrize("returned, named", [
    ({"history": [1.0], "schedule": lambda e: 0.1}, "schedule"),   # cannot be pickled
    ({"settings": {"lr": 0.3}}, "settings"),                       # a key kdlib uses itself
    ({"state_dict": {}}, "state_dict"),
    ({"loaded": True}, "loaded"),
    ({"history": {"where": __import__("pathlib").Path("/tmp")}}, "history"),
    (([0.5, 0.25], 0.75), "tuple"),                                # not a dict
])
def test_a_trained_model_is_never_lost_to_what_train_fn_returned(ckdir, returned, named):
    calls = []

    def train_fn(model):
        calls.append(1)
        with torch.no_grad():
            model[0].weight.fill_(0.5)
        return returned
    with pytest.warns(UserWarning, match="could not be saved") as w:
        model, info = checkpoint.cached_model("toy", Settings(), _build, train_fn)
    assert named in str(w[0].message) and "returned unsaved" in str(w[0].message)
    assert calls == [1] and info["path"] is None and not info["loaded"]
    assert torch.all(model[0].weight == 0.5)               # the trained weights came back
    assert not list(ckdir.iterdir())                        # nothing half-written, nothing left behind


@pytest.mark.parametrize("extra, named", [
    ({"when": __import__("pathlib").Path("/tmp/x")}, "when"),
    ({"scores": np.array([0.9, 0.8])}, "scores"),
    ({"history": {"val_acc": [0.5, np.array(0.9)]}}, "history.val_acc[1]"),
    ({"history": {1: "a", (2, 3): "b"}}, "history"),      # a key weights_only can load, but not JSON-like
    ({"model": object()}, "model"),
])
def test_extras_that_weights_only_cannot_load_are_refused_before_saving(ckdir, extra, named):
    path = checkpoint.path_for("toy", Settings())
    with pytest.raises(ValueError, match="weights_only") as e:
        checkpoint.save(path, _build(), Settings(), **extra)
    assert named in str(e.value)
    assert not path.exists() and not list(ckdir.glob("*"))


def test_numpy_scalars_in_extras_are_stored_as_the_python_numbers_they_hold(ckdir):
    def train_fn(model):
        return {"test_acc": np.float64(0.98), "errors": np.int64(12), "best": np.bool_(True),
                "history": {"loss": [np.float32(0.25), 0.125]}}
    _, info1 = checkpoint.cached_model("toy", Settings(), _build, train_fn)
    _, info2 = checkpoint.cached_model("toy", Settings(), _build, train_fn)
    assert info2["loaded"]
    for info in (info1, info2):  # the same values, as plain Python numbers, trained or loaded
        assert info["test_acc"] == 0.98 and type(info["test_acc"]) is float
        assert info["errors"] == 12 and type(info["errors"]) is int
        assert info["best"] is True and info["history"] == {"loss": [0.25, 0.125]}


def test_a_state_dict_that_would_not_load_back_is_not_written(ckdir):
    class WithState(torch.nn.Linear):
        def get_extra_state(self):
            return {"made_in": __import__("pathlib").Path("/tmp")}

        def set_extra_state(self, state):
            pass
    path = checkpoint.path_for("toy", Settings())
    with pytest.raises(ValueError, match="weights_only"):
        checkpoint.save(path, WithState(2, 2), Settings())
    assert not list(ckdir.glob("*"))


def test_flipped_bytes_inside_tensor_data_raise_unreadable(ckdir):
    def train_fn(model):
        with torch.no_grad():
            model[0].weight.fill_(1.26)
        return {}
    _, info = checkpoint.cached_model("toy", Settings(), _build, train_fn)
    path = info["path"]
    raw = bytearray(path.read_bytes())
    i = raw.find(struct.pack("<f", 1.26))
    assert i > 0
    raw[i:i + 4] = struct.pack("<f", -3.48)
    path.write_bytes(raw)
    with pytest.raises(checkpoint.CheckpointUnreadable) as e:
        checkpoint.load(path, _build(), Settings())
    assert str(path) in str(e.value) and "set_aside" in str(e.value)


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "..", "a..b", "", "/abs", "a\\b"])
def test_checkpoint_names_with_a_path_separator_are_refused(ckdir, name):
    calls = []
    with pytest.raises(ValueError, match="name") as e:
        checkpoint.cached_model(name, Settings(), _build, _trainer(calls))
    assert repr(name) in str(e.value) and calls == []
    assert not ckdir.exists() or not list(ckdir.rglob("*"))
    assert not list(ckdir.parent.rglob("escaped*"))


def test_set_aside_twice_in_one_second_keeps_both_files(ckdir):
    ckdir.mkdir()
    path = ckdir / "toy-0123456789.pt"
    path.write_bytes(b"first")
    first = checkpoint.set_aside(path)
    path.write_bytes(b"second")
    second = checkpoint.set_aside(path)
    assert first != second and first.read_bytes() == b"first" and second.read_bytes() == b"second"
    assert not path.exists()


def test_mismatch_names_the_file_and_the_way_out(ckdir):
    _, info = checkpoint.cached_model("toy", Settings(), _build, _trainer([]))
    with pytest.raises(checkpoint.CheckpointMismatch) as e:
        checkpoint.load(info["path"], _build(), Settings(lr=0.2))
    assert str(info["path"]) in str(e.value) and "set_aside" in str(e.value)


def test_a_changed_build_with_the_same_settings_names_the_file_and_the_way_out(ckdir):
    calls = []
    _, info = checkpoint.cached_model("toy", Settings(), _build, _trainer(calls))
    wider = lambda: torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Dropout(0.5),  # noqa: E731
                                        torch.nn.Linear(5, 2))
    with pytest.raises(checkpoint.CheckpointMismatch) as e:
        checkpoint.cached_model("toy", Settings(), wider, _trainer(calls))
    msg = str(e.value)
    assert str(info["path"]) in msg and "set_aside" in msg and "build" in msg
    assert calls == [1] and info["path"].exists()


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_atomic_write_gives_the_users_mode_without_touching_the_umask(tmp_path, monkeypatch, mask):
    old = os.umask(mask)
    try:
        def no_umask(*a):
            raise AssertionError("atomic_write changed the process umask")
        monkeypatch.setattr(os, "umask", no_umask)
        path = files.atomic_write(tmp_path / "f.bin", lambda f: f.write(b"data"))
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert path.read_bytes() == b"data" and stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
