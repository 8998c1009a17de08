"""Reliability of kdlib.data, kdlib.losses and kdlib.repro (issues 14 and 16): a download that
never ends, inputs changed behind the caller's back, empty batches, numbers of every numeric type,
zero probabilities, unreadable files and file modes."""
import os
import socket
import threading

import numpy as np
import pytest
import torch
import torchvision

from kdlib import data, losses, repro

T_MIN = getattr(losses, "T_MIN", 1e-4)  # getattr: the tests also run, and fail, before the fix

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


# ---- losses: empty batch ----------------------------------------------------------------------

@pytest.mark.parametrize("fn", ["soft", "distill", "regress"])
def test_empty_batch_is_rejected(fn):
    z, v, y = torch.zeros(0, 10), torch.zeros(0, 10), torch.zeros(0, dtype=torch.long)
    call = {"soft": lambda: losses.soft_target_loss(z, v, 2.0),
            "distill": lambda: losses.distillation_loss(z, v, y, 2.0, 0.5),
            "regress": lambda: losses.logit_regression_loss(z, v)}[fn]
    with pytest.raises(ValueError, match=r"^student_logits must have at least one row"):
        call()


# ---- losses: numbers of any numeric type ------------------------------------------------------

def _zvy():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(6, 10, generator=g, dtype=torch.float64) * 3,
            torch.randn(6, 10, generator=g, dtype=torch.float64) * 3,
            torch.randint(0, 10, (6,), generator=g))


@pytest.mark.parametrize("T", [np.float32(2.0), np.float64(2.0), np.int64(2), torch.tensor(2.0),
                               torch.tensor(2)])
def test_T_of_any_numeric_type(T):
    z, v, y = _zvy()
    assert torch.equal(losses.softmax_t(z, T), losses.softmax_t(z, 2.0))
    assert torch.equal(losses.soft_target_loss(z, v, T), losses.soft_target_loss(z, v, 2.0))
    assert torch.equal(losses.distillation_loss(z, v, y, T, 0.5), losses.distillation_loss(z, v, y, 2.0, 0.5))


@pytest.mark.parametrize("alpha", [np.float32(0.5), np.int64(1), torch.tensor(0.5)])
def test_alpha_of_any_numeric_type(alpha):
    z, v, y = _zvy()
    assert torch.equal(losses.distillation_loss(z, v, y, 2.0, alpha),
                       losses.distillation_loss(z, v, y, 2.0, float(alpha)))


@pytest.mark.parametrize("sigma, fraction", [(np.float32(0.5), np.float32(0.5)),
                                             (torch.tensor(0.5), torch.tensor(0.5)),
                                             (np.int64(0), np.int64(1))])
def test_sigma_and_fraction_of_any_numeric_type(sigma, fraction):
    z = _zvy()[0]
    got = losses.perturb_logits(z, sigma, fraction, generator=torch.Generator().manual_seed(1))
    ref = losses.perturb_logits(z, float(sigma), float(fraction), generator=torch.Generator().manual_seed(1))
    assert torch.equal(got, ref)


@pytest.mark.parametrize("arg, value", [("T", True), ("T", torch.tensor(True)), ("alpha", True),
                                        ("alpha", False), ("sigma", False), ("fraction", True),
                                        ("T", np.bool_(True)), ("T", torch.tensor([2.0]))])
def test_booleans_and_non_scalars_are_rejected(arg, value):
    z, v, y = _zvy()
    call = {"T": lambda: losses.distillation_loss(z, v, y, value, 0.5),
            "alpha": lambda: losses.distillation_loss(z, v, y, 2.0, value),
            "sigma": lambda: losses.perturb_logits(z, value, 0.5),
            "fraction": lambda: losses.perturb_logits(z, 0.1, value)}[arg]
    with pytest.raises(ValueError, match=rf"^{arg} must .*(>|\[0, 1\])"):
        call()


@pytest.mark.parametrize("seed", [np.int64(3), np.uint32(3), torch.tensor(3)])
def test_seed_of_any_integer_type(seed):
    assert torch.equal(repro.seed_everything(seed).get_state(), repro.seed_everything(3).get_state())


@pytest.mark.parametrize("seed", [True, False, 3.0, np.float64(3.0), torch.tensor(3.0), -1,
                                  np.int64(-1), 2 ** 64, "3", None, torch.tensor([3])])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match=r"^seed must"):
        repro.seed_everything(seed)


# ---- losses: zero probabilities and tiny T -------------------------------------------------------

@pytest.mark.parametrize("T", [0.5, 2.0])
def test_teacher_logit_minus_inf_is_probability_zero(T):
    z, v, _ = _zvy()
    v[:, 3] = -float("inf")
    v[0, 7] = -float("inf")
    z.requires_grad_()
    loss = losses.soft_target_loss(z, v, T)
    p, log_q = torch.softmax(v / T, 1), torch.log_softmax(z.detach() / T, 1)
    log_p = torch.where(p > 0, p.log(), 0)
    expected = T * T * (p * (log_p - log_q)).sum(1).mean()
    assert torch.isfinite(loss) and torch.allclose(loss, expected, rtol=1e-10)
    loss.backward()
    assert torch.allclose(z.grad, T * (log_q.exp() - p) / len(z), rtol=1e-10, atol=1e-14)  # Hinton eq. 2
    # the same targets by a finite logit far below the others
    v_far = torch.where(torch.isinf(v), -1e4, v)
    assert torch.allclose(loss, losses.soft_target_loss(z, v_far, T), rtol=1e-10)
    y = torch.zeros(len(z), dtype=torch.long)
    assert torch.isfinite(losses.distillation_loss(z, v, y, T, 0.5))


def test_teacher_minus_inf_gives_a_finite_teacher_gradient():
    z, v, _ = _zvy()
    v[:, 3] = -float("inf")
    v.requires_grad_()
    losses.soft_target_loss(z, v, 2.0).backward()
    assert torch.isfinite(v.grad).all()
    assert (v.grad[:, 3] == 0).all()


@pytest.mark.parametrize("T", [1e-39, 1e-300, 5e-324, T_MIN / 2])
def test_tiny_T_is_rejected(T):
    z, v, y = _zvy()
    for call in (lambda: losses.softmax_t(z, T), lambda: losses.soft_target_loss(z, v, T),
                 lambda: losses.distillation_loss(z, v, y, T, 0.5)):
        with pytest.raises(ValueError, match=r"^T must be .*>= "):
            call()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_smallest_T_is_finite(dtype):
    z, v, y = (t.to(dtype) if t.is_floating_point() else t for t in _zvy())
    z = (z * 100).requires_grad_()
    loss = losses.distillation_loss(z, v * 100, y, T_MIN, 0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
