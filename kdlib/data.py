"""Datasets as whole tensors: load, split, normalise, and slice into batches.

A dataset is ``<data dir>/<name>-<split>.npz`` with ``images`` (uint8, N x 28 x 28 or N x 32 x 32 x 3) and
``labels`` (int64, 0..9), built once with torchvision's downloaders when missing. The data dir is ``$KDLIB_DATA``,
else ``~/.cache/kdlib/data`` (:func:`kdlib.config.data_dir`).
"""
from __future__ import annotations

import socket
import threading
import zipfile
from pathlib import Path

import numpy as np
import torch

from . import config
from .files import atomic_write

NAMES = ("mnist", "cifar10", "svhn")
SPLITS = ("train", "test")
IMAGE_SHAPE = {"mnist": (28, 28), "cifar10": (32, 32, 3), "svhn": (32, 32, 3)}
NUM_CLASSES = 10

# Per-channel mean and std of the training images after /255.
MEAN = {"mnist": (0.1307,), "cifar10": (0.4914, 0.4822, 0.4465), "svhn": (0.4377, 0.4438, 0.4728)}
STD = {"mnist": (0.3081,), "cifar10": (0.2470, 0.2435, 0.2616), "svhn": (0.1980, 0.2010, 0.1970)}

DOWNLOAD_TIMEOUT = 60.0  # seconds per network operation (connect, each read): a silent server must not hang load()
DOWNLOAD_DEADLINE = 600.0  # seconds for a whole download (a trickling server); gets CIFAR-10's 170 MB at 0.3 MB/s


class DatasetError(ValueError):
    """A dataset file exists but does not hold what it should."""


def path_of(name: str, split: str) -> Path:
    """Where ``load(name, split)`` looks: ``<data dir>/<name>-<split>.npz``."""
    if name not in NAMES:
        raise ValueError(f"name must be one of {NAMES}, got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return config.data_dir() / f"{name}-{split}.npz"


def validate(images: np.ndarray, labels: np.ndarray, name: str, where: str = "") -> None:
    """Raise :class:`DatasetError` unless the arrays are a well-formed ``name`` dataset."""
    at = f" in {where}" if where else ""
    if images.dtype != np.uint8:
        raise DatasetError(f"images{at} must be uint8, got {images.dtype}")
    if images.ndim < 1 or images.shape[1:] != IMAGE_SHAPE[name]:
        raise DatasetError(f"images{at} must have shape N x {' x '.join(map(str, IMAGE_SHAPE[name]))}"
                           f" for {name}, got {images.shape}")
    if labels.dtype != np.int64 or labels.ndim != 1:
        raise DatasetError(f"labels{at} must be a 1-D int64 array, got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise DatasetError(f"{where or 'dataset'} has {len(images)} images but {len(labels)} labels")
    if len(labels) == 0:
        raise DatasetError(f"{where or 'dataset'} is empty")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DatasetError(f"labels{at} must lie in [0, {NUM_CLASSES}), got [{labels.min()}, {labels.max()}]")


def save_npz(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write a dataset file atomically, with the mode of any file the user writes."""
    atomic_write(path, lambda f: np.savez_compressed(f, images=images, labels=labels))


def _read_npz(path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    rebuild = "Delete it and run again to rebuild it, or copy a good one."
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise DatasetError(f"{path} holds a single .npy array, not an .npz archive with "
                               f"'images' and 'labels'. {rebuild}")
        with f:
            missing = {"images", "labels"} - set(f.files)
            if missing:
                raise DatasetError(f"{path} lacks the array(s) {sorted(missing)}; it must hold 'images' and 'labels'")
            images, labels = f["images"], f["labels"]
    except DatasetError:
        raise
    except PermissionError as e:
        raise PermissionError(f"{path} cannot be read: permission denied. Make it readable (chmod u+r {path}, or "
                              f"ask its owner), or point KDLIB_DATA at a folder whose files you can read.") from e
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise DatasetError(f"{path} is not a readable .npz dataset file ({type(e).__name__}: {e}). {rebuild}") from e
    except MemoryError as e:  # a header that declares an array larger than memory
        raise DatasetError(f"{path} declares an array too large for this machine's memory "
                           f"({e}); a dataset file is at most a few hundred MB. {rebuild}") from e
    validate(images, labels, name, str(path))
    return images, labels


def _from_torchvision(name: str, split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Download with torchvision and return (images, labels) in our layout."""
    import torchvision.datasets as tvd

    train = split == "train"
    if name == "mnist":
        ds = tvd.MNIST(root, train=train, download=True)
        return ds.data.numpy().astype(np.uint8), ds.targets.numpy().astype(np.int64)
    if name == "cifar10":
        ds = tvd.CIFAR10(root, train=train, download=True)
        return np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64)
    ds = tvd.SVHN(root, split=split, download=True)
    return svhn_arrays(ds.data, ds.labels)


def svhn_arrays(data: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """torchvision's SVHN arrays (N x 3 x 32 x 32, labels 0..9) to ours (N x 32 x 32 x 3); a stray label 10
    (the .mat files' digit 0, which torchvision already maps) becomes 0."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1).copy()
    labels[labels == 10] = 0
    return np.ascontiguousarray(np.transpose(data, (0, 2, 3, 1)), dtype=np.uint8), labels


_HOW_TO = ("Either connect to the internet and call kdlib.data.load again (it downloads with torchvision), or copy the "
           "file there, or point KDLIB_DATA at a folder that holds it (in this project: KDLIB_DATA=../shared/data).")


def _folders(top: Path) -> set[Path]:
    """``top`` and every folder inside it (none if ``top`` is not a folder)."""
    if not top.is_dir():
        return set()
    return {top, *(p for p in top.rglob("*") if p.is_dir())}


def _remove_empty(folders: set[Path]) -> None:
    """Remove those of ``folders`` that are empty, deepest first; a folder that is not empty stays."""
    for d in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        try:
            d.rmdir()  # only ever removes an empty folder
        except OSError:
            pass


def _download(name: str, split: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_from_torchvision` into ``folder/torchvision`` in a daemon thread, given up after DOWNLOAD_TIMEOUT s
    per network operation or DOWNLOAD_DEADLINE s in all (TimeoutError); on failure its empty folders are removed."""
    before, outcome = _folders(folder), {}

    def work():
        try:
            outcome["arrays"] = _from_torchvision(name, split, folder / "torchvision")
        except BaseException as e:  # handed to the caller
            outcome["error"] = e
    worker = threading.Thread(target=work, name=f"kdlib download {name}", daemon=True)
    old_timeout = socket.getdefaulttimeout()  # torchvision's urlopen() calls take this default
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
    try:
        worker.start()
        worker.join(DOWNLOAD_DEADLINE)
        if worker.is_alive():
            raise TimeoutError(f"the download took longer than DOWNLOAD_DEADLINE = {DOWNLOAD_DEADLINE:g} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["arrays"]
    except BaseException:
        _remove_empty(_folders(folder) - before)
        raise
    finally:
        socket.setdefaulttimeout(old_timeout)


def load(name: str, split: str, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)`` of ``name`` (``"mnist"``, ``"cifar10"``, ``"svhn"``) and ``split`` (``"train"``,
    ``"test"``): a uint8 tensor (N x 28 x 28 or N x 32 x 32 x 3) and an int64 tensor."""
    path = path_of(name, split)
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(f"The data folder {path.parent} (KDLIB_DATA) is a file, not a folder: "
                                 f"point KDLIB_DATA at the folder that holds {path.name}.")
    if not path.exists():
        if not download:
            raise FileNotFoundError(f"Missing dataset file {path.name} ({name} {split}) in {path.parent}. {_HOW_TO}")
        try:
            images, labels = _download(name, split, path.parent)
        except Exception as e:  # offline, no answer in time, or a broken download
            raise FileNotFoundError(
                f"Missing dataset file {path.name} ({name} {split}) in {path.parent}, and torchvision could not "
                f"download {name} ({type(e).__name__}: {e}; it gives up when the server does not answer within "
                f"{DOWNLOAD_TIMEOUT:g} s, or after {DOWNLOAD_DEADLINE:g} s in all). {_HOW_TO}") from e
        validate(images, labels, name, f"torchvision's {name} {split}")
        save_npz(path, images, labels)
    images, labels = _read_npz(path, name)
    return torch.from_numpy(images), torch.from_numpy(labels)


def train_val_split(n: int, n_val: int, seed: int = 42) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a deterministic train/validation split of ``n`` items: the permutation of
    ``torch.utils.data.random_split(range(n), [n - n_val, n_val], generator=torch.Generator().manual_seed(seed))``.
    MNIST's 60,000 images with ``n_val=12000`` and seed 42 give the seed experiment's 48,000 / 12,000 split."""
    if not 0 < n_val < n:
        raise ValueError(f"n_val must lie in (0, {n}), got {n_val}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n - n_val], perm[n - n_val:]


def to_float(images: torch.Tensor, name: str) -> torch.Tensor:
    """uint8 images in :func:`load`'s layout for ``name`` (MNIST also N x 1 x 28 x 28) to normalised
    float32, N x C x H x W: ``(x / 255 - mean) / std``."""
    if name not in NAMES:
        raise ValueError(f"name must be one of {NAMES}, got {name!r}")
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a torch tensor, got {type(images).__name__} "
                         f"(torch.from_numpy turns a NumPy array into one)")
    shapes = [IMAGE_SHAPE[name]] + ([(1, 28, 28)] if name == "mnist" else [])
    if tuple(images.shape[1:]) not in shapes:
        allowed = " or ".join("N x " + " x ".join(map(str, s)) for s in shapes)
        raise ValueError(f"images for {name} must have shape {allowed}, got {tuple(images.shape)}")
    x = images.float() / 255  # never in place: .float() of a float32 tensor is that tensor
    if x.ndim == 3:  # MNIST, N x 28 x 28
        x = x.unsqueeze(1)
    elif name != "mnist":  # N x 32 x 32 x 3
        x = x.permute(0, 3, 1, 2)
    mean = torch.tensor(MEAN[name]).view(1, -1, 1, 1)
    std = torch.tensor(STD[name]).view(1, -1, 1, 1)
    return ((x - mean) / std).contiguous()


def load_split(name: str, n_val: int, seed: int = 42, subset: int | None = None):
    """Normalised float tensors: a dict of ``train``, ``val`` and ``test`` ``(x, y)`` pairs; ``subset`` keeps
    the first ``subset`` items of each part (fast mode)."""
    images, labels = load(name, "train")
    tr, va = train_val_split(len(labels), n_val, seed)
    test_images, test_labels = load(name, "test")
    x, xt = to_float(images, name), to_float(test_images, name)
    parts = {"train": (x[tr], labels[tr]), "val": (x[va], labels[va]), "test": (xt, test_labels)}
    if subset is not None:
        parts = {k: (a[:subset], b[:subset]) for k, (a, b) in parts.items()}
    return parts


def batches(*tensors: torch.Tensor, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None):
    """Yield tuples of aligned slices of ``tensors``, ``batch_size`` rows at a time (the last one may be
    shorter); with ``shuffle`` the rows are permuted once per call with ``generator``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"tensors must have the same length, got {[len(t) for t in tensors]}")
    if shuffle:
        perm = torch.randperm(n, generator=generator)
        tensors = tuple(t[perm] for t in tensors)
    for start in range(0, n, batch_size):
        yield tuple(t[start:start + batch_size] for t in tensors)
