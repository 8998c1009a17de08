import os
import socket
import threading
import time

import numpy as np
import pytest
import scipy.io
import torch
import torchvision

from kdlib import data


def test_real_mnist_counts(real_data):
    images, labels = data.load("mnist", "train")
    assert images.shape == (60000, 28, 28) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64
    assert torch.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_real_cifar10_test(real_data):
    images, labels = data.load("cifar10", "test")
    assert images.shape == (10000, 32, 32, 3) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [1000] * 10


def test_missing_file_offline_names_the_file(empty_data, offline):
    with pytest.raises(FileNotFoundError) as e:
        data.load("mnist", "train")
    msg = str(e.value)
    assert "mnist-train.npz" in msg and "KDLIB_DATA" in msg and "mnist" in msg
    assert not (empty_data / "mnist-train.npz").exists()


def test_missing_file_without_download(empty_data):
    with pytest.raises(FileNotFoundError, match="cifar10-test.npz"):
        data.load("cifar10", "test", download=False)


def test_bad_name_and_split():
    with pytest.raises(ValueError, match="name"):
        data.load("fashion", "train")
    with pytest.raises(ValueError, match="split"):
        data.load("mnist", "val")


def _write(path, images, labels):
    np.savez_compressed(path, images=images, labels=labels)


def test_truncated_file(empty_data):
    good = empty_data / "good.npz"
    _write(good, np.zeros((10, 28, 28), np.uint8), np.arange(10, dtype=np.int64))
    raw = good.read_bytes()
    (empty_data / "mnist-test.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.DatasetError, match="mnist-test.npz"):
        data.load("mnist", "test")


@pytest.mark.parametrize("images, labels, match", [
    (np.zeros((10, 28, 28), np.float32), np.zeros(10, np.int64), "uint8"),
    (np.zeros((10, 32, 32), np.uint8), np.zeros(10, np.int64), "shape"),
    (np.zeros((10, 28, 28), np.uint8), np.zeros(9, np.int64), "10 images but 9 labels"),
    (np.zeros((10, 28, 28), np.uint8), np.full(10, 10, np.int64), r"\[0, 10\)"),
    (np.zeros((10, 28, 28), np.uint8), np.zeros(10, np.int32), "int64"),
])
def test_wrong_content_is_rejected(empty_data, images, labels, match):
    _write(empty_data / "mnist-train.npz", images, labels)
    with pytest.raises(data.DatasetError, match=match):
        data.load("mnist", "train")


def test_missing_array(empty_data):
    np.savez_compressed(empty_data / "mnist-train.npz", images=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(data.DatasetError, match="labels"):
        data.load("mnist", "train")


def test_svhn_mat_conversion(empty_data, monkeypatch):
    """torchvision's SVHN reads a .mat file (X: 32x32x3xN, y: Nx1 with 10 meaning digit 0)."""
    rng = np.random.default_rng(0)
    n = 7
    X = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = np.array([[10], [1], [2], [10], [9], [5], [3]], dtype=np.uint8)
    root = empty_data / "torchvision"
    root.mkdir()
    scipy.io.savemat(root / "test_32x32.mat", {"X": X, "y": y})
    # The file is ours, not the real one: skip torchvision's MD5 check and download.
    monkeypatch.setattr(torchvision.datasets.SVHN, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.SVHN, "download", lambda self: None)
    images, labels = data.load("svhn", "test")
    assert images.shape == (n, 32, 32, 3) and images.dtype == torch.uint8
    assert labels.tolist() == [0, 1, 2, 0, 9, 5, 3]
    assert torch.equal(images[4], torch.from_numpy(X[:, :, :, 4]))
    assert (empty_data / "svhn-test.npz").exists()
    # Second load reads the npz, not the .mat.
    (root / "test_32x32.mat").unlink()
    assert torch.equal(data.load("svhn", "test")[1], labels)


def test_split_is_deterministic_and_matches_random_split():
    tr, va = data.train_val_split(60000, 12000, seed=42)
    assert len(tr) == 48000 and len(va) == 12000
    assert len(torch.unique(torch.cat([tr, va]))) == 60000
    tr2, va2 = data.train_val_split(60000, 12000, seed=42)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)
    a, b = torch.utils.data.random_split(range(60000), [48000, 12000],
                                         generator=torch.Generator().manual_seed(42))
    assert tr.tolist() == list(a.indices) and va.tolist() == list(b.indices)
    assert not torch.equal(data.train_val_split(60000, 12000, seed=1)[1], va)


def test_split_bad_size():
    with pytest.raises(ValueError, match="n_val"):
        data.train_val_split(10, 10)


def test_to_float_normalises_with_the_constants():
    x = torch.full((2, 28, 28), 255, dtype=torch.uint8)
    out = data.to_float(x, "mnist")
    assert out.shape == (2, 1, 28, 28)
    assert torch.allclose(out, torch.tensor((1 - 0.1307) / 0.3081))
    c = torch.zeros((1, 32, 32, 3), dtype=torch.uint8)
    c[..., 2] = 255
    out = data.to_float(c, "cifar10")
    assert out.shape == (1, 3, 32, 32)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor(
        [-0.4914 / 0.2470, -0.4822 / 0.2435, (1 - 0.4465) / 0.2616]))


def test_real_data_normalised_mean_std(real_data):
    x = data.to_float(data.load("mnist", "train")[0], "mnist")
    assert abs(x.mean().item()) < 1e-3 and abs(x.std().item() - 1) < 1e-3


def test_batches_cover_everything_and_keep_last_partial():
    x, y = torch.arange(10).float(), torch.arange(10)
    bs = list(data.batches(x, y, batch_size=4))
    assert [len(b[1]) for b in bs] == [4, 4, 2]
    assert torch.equal(torch.cat([b[1] for b in bs]), y)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    s1 = torch.cat([b[1] for b in data.batches(x, y, batch_size=4, shuffle=True, generator=g1)])
    s2 = torch.cat([b[1] for b in data.batches(x, y, batch_size=4, shuffle=True, generator=g2)])
    assert torch.equal(s1, s2) and not torch.equal(s1, y)
    assert sorted(s1.tolist()) == list(range(10))
    for xb, yb in data.batches(x, y, batch_size=3, shuffle=True, generator=g1):
        assert torch.equal(xb.long(), yb)  # rows stay aligned


def test_batches_bad_input():
    with pytest.raises(ValueError, match="batch_size"):
        list(data.batches(torch.zeros(3), batch_size=0))
    with pytest.raises(ValueError, match="same length"):
        list(data.batches(torch.zeros(3), torch.zeros(4), batch_size=2))


# ---- issue 26 ---------------------------------------------------------------------------------

@pytest.fixture
def trickle_server():
    """Port of a TCP server on 127.0.0.1 that answers every connection one byte each 0.2 s, forever."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.1)
    stop = threading.Event()

    def trickle(conn):
        with conn:
            while not stop.wait(0.2):
                try:
                    conn.sendall(b"H")
                except OSError:  # the client went
                    return

    def serve():
        while not stop.is_set():
            try:
                threading.Thread(target=trickle, args=(srv.accept()[0],), daemon=True).start()
            except OSError:  # accept timed out: look at stop again
                pass
    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1]
    stop.set()
    srv.close()


def test_download_from_a_trickling_server_stops_at_the_deadline(empty_data, trickle_server, monkeypatch):
    """Each read gets a byte well within DOWNLOAD_TIMEOUT, so only the overall deadline stops it."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [f"http://127.0.0.1:{trickle_server}/"])
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT", 5.0)
    monkeypatch.setattr(data, "DOWNLOAD_DEADLINE", 2.0, raising=False)
    outcome = {}

    def call():
        start = time.monotonic()
        try:
            data.load("mnist", "train")
        except Exception as e:
            outcome["error"] = e
        outcome["seconds"] = time.monotonic() - start
    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(30)  # the test ends even if load never does
    assert not worker.is_alive(), "data.load still reads from a server that trickles a byte at a time"
    assert isinstance(outcome["error"], FileNotFoundError) and outcome["seconds"] < 10, outcome
    msg = str(outcome["error"])
    assert "mnist-train.npz" in msg and "DOWNLOAD_DEADLINE = 2 s" in msg
    assert not (empty_data / "mnist-train.npz").exists()


def test_data_folder_that_is_a_file_says_so(tmp_path, monkeypatch):
    f = tmp_path / "data.npz"
    f.write_bytes(b"not a folder")
    monkeypatch.setenv("KDLIB_DATA", str(f))
    with pytest.raises(NotADirectoryError, match=r"is a file, not a folder.*KDLIB_DATA"):
        data.load("mnist", "train")
    assert f.read_bytes() == b"not a folder"


def test_npz_whose_header_declares_a_huge_array_names_the_file(empty_data):
    """A 1 TiB array declared in 100 bytes: an error naming the file, not a bare MemoryError."""
    import io
    import zipfile
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (2 ** 40 // 784, 28, 28)})
    with zipfile.ZipFile(empty_data / "mnist-train.npz", "w") as z:
        z.writestr("images.npy", header.getvalue() + b"\0" * 100)
        z.writestr("labels.npy", header.getvalue())
    with pytest.raises(data.DatasetError, match="mnist-train.npz"):
        data.load("mnist", "train")


def test_offline_download_leaves_no_empty_folders(empty_data, offline):
    kept = empty_data / "torchvision" / "mine"  # a folder that was there before stays
    kept.mkdir(parents=True)
    with pytest.raises(FileNotFoundError):
        data.load("mnist", "train")
    assert sorted(p.relative_to(empty_data).as_posix() for p in empty_data.rglob("*")) == [
        "torchvision", "torchvision/mine"]
    kept.rmdir()
    (empty_data / "torchvision").rmdir()
    with pytest.raises(FileNotFoundError):
        data.load("cifar10", "test")
    assert list(empty_data.iterdir()) == []


@pytest.mark.parametrize("images, name, match", [
    (torch.zeros(2, 28, 28, dtype=torch.uint8), "cifar10", r"N x 32 x 32 x 3"),
    (torch.zeros(2, 32, 32, 3, dtype=torch.uint8), "mnist", r"N x 28 x 28 or N x 1 x 28 x 28"),
    (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), "cifar10", r"got \(2, 3, 32, 32\)"),
    (torch.zeros(2, 784, dtype=torch.uint8), "mnist", r"got \(2, 784\)"),
    (np.zeros((2, 28, 28), np.uint8), "mnist", r"torch tensor, got ndarray"),
])
def test_to_float_checks_the_images_against_the_name(images, name, match):
    with pytest.raises(ValueError, match=match):
        data.to_float(images, name)


def test_to_float_takes_mnist_with_a_channel():
    x = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(data.to_float(x[:, None], "mnist"), data.to_float(x, "mnist"))


# ---- moved from test_reliability_data_losses.py (issues 14 and 16) -----------------------------

# ---- data.load: a server that accepts and never answers -------------------------------------


@pytest.fixture
def silent_server():
    """Port of a TCP server on 127.0.0.1 that accepts connections and never sends a byte."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.1)
    conns, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:  # accept timed out: look at stop again
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    stop.set()
    thread.join(5)
    for c in conns:  # a client still waiting gets end-of-file and returns
        c.close()
    srv.close()


def test_download_from_a_silent_server_times_out(empty_data, silent_server, monkeypatch):
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [f"http://127.0.0.1:{silent_server}/"])
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT", 0.5, raising=False)
    before = socket.getdefaulttimeout()
    outcome = {}

    def call():
        try:
            data.load("mnist", "train")
        except Exception as e:
            outcome["error"] = e

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(20)  # the test ends even if load never does
    assert not worker.is_alive(), "data.load still waits for a server that never answers"
    error = outcome.get("error")
    assert isinstance(error, FileNotFoundError), error
    msg = str(error)
    assert "mnist-train.npz" in msg and "KDLIB_DATA" in msg and "0.5 s" in msg
    assert socket.getdefaulttimeout() == before
    assert not (empty_data / "mnist-train.npz").exists()


# ---- data.to_float ----------------------------------------------------------------------------

def test_to_float_never_changes_its_input():
    u = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    u_copy = u.clone()
    f = u.float()
    f_copy = f.clone()
    from_float = data.to_float(f, "mnist")
    assert torch.equal(f, f_copy)
    from_uint8 = data.to_float(u, "mnist")
    assert torch.equal(u, u_copy)
    assert torch.equal(from_float, from_uint8)


# ---- data files -------------------------------------------------------------------------------

def test_npy_under_an_npz_name_is_a_dataset_error(empty_data):
    with open(empty_data / "mnist-test.npz", "wb") as f:
        np.save(f, np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(data.DatasetError, match="mnist-test.npz"):
        data.load("mnist", "test")


def test_unreadable_file_says_permissions_not_delete(empty_data, monkeypatch):
    path = empty_data / "mnist-test.npz"
    np.savez_compressed(path, images=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(3, np.int64))

    def denied(file, *a, **k):  # what chmod 000 gives a user who is not root
        raise PermissionError(13, "Permission denied", str(file))
    monkeypatch.setattr(np, "load", denied)
    with pytest.raises(PermissionError) as e:
        data.load("mnist", "test")
    msg = str(e.value)
    assert "mnist-test.npz" in msg and "chmod" in msg and "Delete" not in msg


def test_corrupt_file_still_says_delete(empty_data):
    (empty_data / "mnist-test.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(data.DatasetError, match="Delete it"):
        data.load("mnist", "test")


def test_saved_dataset_is_readable_by_the_group(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "mnist-test.npz"
        data.save_npz(path, np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.int64))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.glob("*.tmp"))


def test_no_dead_classes_constant():
    assert not hasattr(data, "CLASSES")
