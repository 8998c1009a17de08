"""The speed engine: code that exists only to make the course's trainings fast on a laptop CPU.

The modules a student reads (``kdlib.losses``, ``models``, ``train``, ...) hold plain PyTorch. Each
piece here computes what a plain piece computes, faster, and a test compares the two:

| piece | what it buys (measured: README, Speed; ``make bench``) | tested equal to |
|---|---|---|
| :mod:`~kdlib.fast.stacked` ``fit_stacked`` | K seeds of a tiny model as one run: 2.4-3x (784-16-10 student), 3.3-4.9x (the weak student) | K separate ``train.fit`` runs, in float64 (tests/test_fast_stacked.py) |
| :mod:`~kdlib.fast.dropout` ``ByteDropout``, ``fast_dropout`` | dropout masks from random bytes: 9x on a teacher head's 9,216 features | ``nn.Dropout``'s distribution (tests/test_fast_dropout.py) |
| :mod:`~kdlib.fast.conv` ``WindowConv2d``, ``window_convs`` | the weak student's 7x7 stride-7 convolution as one matrix product (and stackable) | ``nn.Conv2d``, in float64 (tests/test_fast_conv.py) |
| :mod:`~kdlib.fast.threads` ``threads_for`` | one thread for a tiny model: up to 50x on a busy 2-core machine | the same steps on the default thread count (tests/test_fast_threads.py) |

The recipes (:mod:`kdlib.recipes`, :mod:`kdlib.hinton`, :mod:`kdlib.noisy`) swap these in; a
checkpoint's weights load into the plain models and the fast ones alike.

| :mod:`~kdlib.fast.memory` ``reuse_freed_memory`` | glibc reuses freed tensors' memory: 1.6-2.6x on the teacher trunks | the same training steps bit for bit (tests/test_fast_memory.py) |

The allocator setting changes the whole process, so it is an opt-in: ``KDLIB_MALLOC=1`` (set by the
Makefile's ``lab``, ``notebooks`` and ``bench`` targets) makes ``import kdlib`` apply it. Otherwise
``import kdlib`` changes no process-wide state (tests/test_kdlib.py).
"""
from . import conv, dropout, memory, stacked, threads
from .conv import WindowConv2d, window_convs
from .dropout import ByteDropout, fast_dropout
from .stacked import fit_stacked
from .threads import threads_for, torch_threads

__all__ = ["conv", "dropout", "memory", "stacked", "threads", "WindowConv2d", "window_convs", "ByteDropout", "fast_dropout",
           "fit_stacked", "threads_for", "torch_threads"]
