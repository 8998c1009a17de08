import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def real_data_dir() -> Path | None:
    """Folder with the real MNIST/CIFAR-10 npz files, if this machine has one."""
    env = os.environ.get("KDLIB_DATA")
    for d in ([Path(env)] if env else []) + [SHARED]:
        if (d / "mnist-train.npz").exists():
            return d
    return None


@pytest.fixture
def real_data(monkeypatch):
    d = real_data_dir()
    if d is None:
        pytest.skip("real MNIST not found (set KDLIB_DATA to the folder of mnist-train.npz)")
    monkeypatch.setenv("KDLIB_DATA", str(d))
    return d


@pytest.fixture
def empty_data(tmp_path, monkeypatch):
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("KDLIB_DATA", str(d))
    return d


@pytest.fixture
def offline(monkeypatch):
    """Make every torchvision download fail as it does without a network."""
    import urllib.request

    import torchvision.datasets as tvd

    def no_network(*a, **k):
        raise OSError("network is unreachable (test)")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    for module in (tvd.utils, tvd.mnist, tvd.cifar, tvd.svhn):
        for name in ("download_url", "download_and_extract_archive"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, no_network)
