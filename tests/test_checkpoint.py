"""kdlib.checkpoint: cached_model, and what happens when a checkpoint cannot be read or written."""
from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass

import pytest
import torch

from kdlib import checkpoint


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
