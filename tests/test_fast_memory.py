"""kdlib.fast.memory: the allocator setting is applied only when asked, and changes no number."""
import ctypes
import os
import subprocess
import sys

import pytest

from kdlib.fast import memory


def _glibc() -> bool:
    try:
        ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return sys.platform.startswith("linux")


def test_reuse_if_asked_follows_kdlib_malloc(monkeypatch):
    monkeypatch.delenv("KDLIB_MALLOC", raising=False)
    assert memory.reuse_if_asked() is False          # not asked: nothing set
    monkeypatch.setenv("KDLIB_MALLOC", "0")
    assert memory.reuse_if_asked() is False
    monkeypatch.setenv("KDLIB_MALLOC", "1")
    assert memory.reuse_if_asked() is _glibc()       # asked: set where glibc is
    monkeypatch.setenv("KDLIB_MALLOC", "maybe")
    with pytest.raises(ValueError, match="KDLIB_MALLOC"):
        memory.reuse_if_asked()


ALLOCATOR_RUN = """
import torch
import kdlib
from kdlib import models, train
torch.manual_seed(0)
teacher = models.TeacherNet().to(memory_format=torch.channels_last)
x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
opt = torch.optim.Adadelta(teacher.parameters(), lr=1.0)
losses = [train.train_epoch(teacher, opt, train.Batches(x, y, batch_size=64, generator=torch.Generator().manual_seed(1)))[0]
          for _ in range(2)]
out = train.predict_logits(teacher, torch.randn(1000, 1, 28, 28))  # a batch of 1000: 86 MB blocks
print(kdlib.MALLOC_TUNED, *losses, out.double().sum().item())
"""


def test_allocator_setting_changes_no_number():
    """The same training steps and predictions, to the last bit, with the allocator setting (it was
    applied: MALLOC_TUNED is True where glibc is) and without (two fresh processes)."""
    runs = [subprocess.run([sys.executable, "-c", ALLOCATOR_RUN], capture_output=True, text=True, check=True,
                           env=os.environ | {"KDLIB_MALLOC": flag}).stdout.split() for flag in ("1", "0")]
    assert runs[0][0] == str(_glibc()) and runs[1][0] == "False"
    if not _glibc():
        pytest.skip("no glibc here: the tuned run could not be tuned, so the comparison says nothing")
    assert runs[0][1:] == runs[1][1:]
