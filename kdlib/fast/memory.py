"""Let the C allocator reuse freed tensors' memory (Linux with glibc), as an explicit opt-in.

By default glibc maps every block above 32 MiB (above 128 KiB until its threshold adapts) fresh
from the system and unmaps it when freed, so a loop that makes a new 10-100 MB tensor per batch (a
convolution's output for 1,000 images, a batch of dropout masks) pays a page fault per 4 KiB on
every batch: on a 2-core Xeon VM that halved the speed of notebook 03's teacher trunks (``make bench``
measures it). :func:`reuse_freed_memory` sets ``mallopt`` so that blocks under ``MMAP_THRESHOLD`` come
from the heap, which keeps up to ``TRIM_THRESHOLD`` of freed memory for the next batch. The numbers
computed are the same (tests/test_fast_memory.py compares training steps bit for bit).

It changes the whole process, so ``import kdlib`` does it only when asked: ``KDLIB_MALLOC=1`` in the
environment (the Makefile's ``lab``, ``notebooks`` and ``bench`` targets set it), or a call of
:func:`reuse_freed_memory`.
"""
from __future__ import annotations

import ctypes
import sys

from ..config import flag

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 256 * 2 ** 20  # blocks below this come from the heap and are reused when freed
TRIM_THRESHOLD = 512 * 2 ** 20  # free memory the heap keeps before giving it back to the system


def reuse_freed_memory() -> bool:
    """Set glibc's thresholds (see the module's docstring); True if it was set, False where there
    is no glibc (another OS, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl)
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def reuse_if_asked() -> bool:
    """:func:`reuse_freed_memory` when ``KDLIB_MALLOC`` is 1/true/yes/on; else nothing. True if set."""
    return reuse_freed_memory() if flag("KDLIB_MALLOC", default=False) else False
