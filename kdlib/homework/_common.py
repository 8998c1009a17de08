"""What every homework check shares: the error it raises, how it calls the student's function
(time limit, refusal of kdlib's own implementation, errors turned into messages), and how it
validates what that function returned.

Every call of the student's function goes through :class:`Student`, so every call is validated the
same way: the first and the last, the gradient check and the large-logits check alike.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import os
import signal
import sys
import threading
import time

import torch

from .. import losses, train
from ..train import torch_threads


class CheckFailed(AssertionError):
    """Your function gave a wrong answer; the message says what and, where it can tell, why."""


# ---- the check's frame ---------------------------------------------------------------------------

def graded(check):
    """Decorator of every public check: one intra-op thread (its tensors are tiny; see
    kdlib.train.auto_threads) and a short traceback that ends at the check's message."""
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        __tracebackhide__ = True  # noqa: F841 (IPython and pytest leave this frame out)
        try:
            with torch_threads(1):
                return check(*args, **kwargs)
        except CheckFailed as e:
            # The same message without the check's insides in the traceback; the cause (an error
            # raised in the student's own function) keeps its traceback.
            short = CheckFailed(*e.args)
            short.__suppress_context__ = True
            raise short from e.__cause__  # your function failed this check: see the message below
    return wrapper


def fail(msg: str):
    raise CheckFailed(msg)


def ok(msg: str) -> None:
    print(f"✓ {msg}")


# ---- the time limit ------------------------------------------------------------------------------

TIME_LIMIT = 10.0
"""Seconds one call of the student's function may take (the environment variable
``KDLIB_CHECK_TIME_LIMIT`` overrides it; 0 means no limit). A right answer takes milliseconds."""


def time_limit() -> float:
    value = os.environ.get("KDLIB_CHECK_TIME_LIMIT", "").strip()
    try:
        return float(value) if value else TIME_LIMIT
    except ValueError:
        raise ValueError(f"KDLIB_CHECK_TIME_LIMIT must be a number of seconds, got {value!r}") from None


class _TimeUp(BaseException):
    """Raised inside the student's function when its time is up. A BaseException, so that an
    ``except Exception:`` in the student's loop cannot swallow it."""


def _can_time_out() -> bool:
    """SIGALRM exists (POSIX: Linux, macOS) and this is the main thread, the only one that receives
    signals. A Jupyter kernel runs its cells on the main thread."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _limited(seconds: float):
    """Raise :class:`_TimeUp` in the block if it runs longer than ``seconds`` (a real-time timer,
    SIGALRM). Without SIGALRM (Windows) or off the main thread, the block runs without a limit.

    A timer that was already running (e.g. pytest-timeout's) keeps its deadline: if it comes first,
    its handler gets the signal; afterwards it is re-armed with the time it had left."""
    if not seconds or seconds <= 0 or not _can_time_out():
        yield
        return
    start = time.monotonic()
    state = {"armed": True, "outer_fired": False}
    old_handler = signal.getsignal(signal.SIGALRM)
    if old_handler is None:  # installed outside Python: treat it as the default
        old_handler = signal.SIG_DFL

    def on_alarm(signum, frame):
        if not state["armed"]:
            return
        if time.monotonic() - start >= seconds - 0.01:
            state["armed"] = False
            raise _TimeUp()
        # The outer timer's time is up before ours: give the signal to its handler.
        state["armed"] = False
        state["outer_fired"] = True
        signal.signal(signal.SIGALRM, old_handler)
        signal.raise_signal(signal.SIGALRM)

    signal.signal(signal.SIGALRM, on_alarm)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    if outer_delay and outer_delay < seconds:
        signal.setitimer(signal.ITIMER_REAL, outer_delay)
    try:
        yield
    finally:
        state["armed"] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        if not state["outer_fired"]:
            signal.signal(signal.SIGALRM, old_handler)
            if outer_delay:
                left = outer_delay - (time.monotonic() - start)
                signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), outer_interval)
        elif outer_interval:
            signal.setitimer(signal.ITIMER_REAL, outer_interval, outer_interval)


# ---- refusing kdlib's own implementation -----------------------------------------------------------

def _public_functions(module) -> tuple:
    return tuple(f for n, f in vars(module).items()
                 if inspect.isfunction(f) and f.__module__ == module.__name__ and not n.startswith("_"))


KDLIB_LOSSES = _public_functions(losses)
"""The reference implementations the checks compare with: a student's function may not call them."""
KDLIB_TRAINING = tuple(getattr(train, n) for n in ("train_epoch", "fit") if hasattr(train, n))
"""kdlib's training loops: one batch through them is a whole training step."""

# torch's softmax under its names: torch.softmax, F.softmax (which calls Tensor.softmax),
# Tensor.softmax, torch.special.softmax, torch._softmax, and the log_softmax family.
_SOFTMAX_NAMES = frozenset({"softmax", "log_softmax", "_softmax", "_log_softmax", "special_softmax",
                            "special_log_softmax"})
TORCH_SOFTMAX = "torch's softmax"


def _label(f) -> str:
    return f"{f.__module__}.{f.__qualname__}"


def _is_torch_softmax(builtin) -> bool:
    if getattr(builtin, "__name__", None) not in _SOFTMAX_NAMES:
        return False
    owner = getattr(builtin, "__self__", None)
    return isinstance(owner, torch.Tensor) or (getattr(builtin, "__module__", None) or "").startswith("torch")


@contextlib.contextmanager
def _watch(forbid: tuple, allow: tuple, found: list):
    """Record in ``found`` the first forbidden function the block calls, however it reaches it (a
    module attribute, an alias from ``from kdlib.losses import ...``, a partial, a kdlib helper
    that calls it). A profile function (sys.setprofile) sees every Python call by its code object
    and every call of a built-in, so renaming a function cannot hide it. Calls made inside an
    allowed function (e.g. kdlib's distillation_loss in the training step) are not counted."""
    codes = {f.__code__: _label(f) for f in forbid if f is not TORCH_SOFTMAX}
    softmax = TORCH_SOFTMAX in forbid
    allowed = {f.__code__ for f in allow}
    inside = []  # frames of allowed functions now running

    def profile(frame, event, arg):
        if event == "call":
            if frame.f_code in allowed:
                inside.append(frame)
            elif not inside and not found and frame.f_code in codes:
                found.append(codes[frame.f_code])
        elif event == "return":
            if inside and inside[-1] is frame:
                inside.pop()
        elif event == "c_call" and softmax and not inside and not found and _is_torch_softmax(arg):
            found.append(TORCH_SOFTMAX)

    old = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(old)


# ---- calling the student's function --------------------------------------------------------------

class Student:
    """The student's function ``fn``, called the way every check calls it.

    ``forbid``: functions it may not call (kdlib's reference implementations; ``TORCH_SOFTMAX`` for
    torch's softmax); ``allow``: kdlib functions the exercise tells it to use."""

    def __init__(self, fn, name: str, *, forbid: tuple = KDLIB_LOSSES, allow: tuple = ()):
        self.fn, self.name = fn, name
        self.forbid = tuple(f for f in forbid if f not in allow)
        self.allow = tuple(allow)

    def __call__(self, *args, protect: tuple = (), **kwargs):
        """Call the function under the time limit, watching what it calls; turn its exceptions
        into a message about it. ``protect`` names the positional tensor arguments it must leave
        unchanged (None for the others)."""
        before = [(a, a.detach().clone(), n) for a, n in zip(args, protect)
                  if n and isinstance(a, torch.Tensor)]
        found, seconds = [], time_limit()
        try:
            with _limited(seconds), _watch(self.forbid, self.allow, found):
                out = self.fn(*args, **kwargs)
        except _TimeUp:
            fail(f"{self.name} took longer than {seconds:g} second{'' if seconds == 1 else 's'} "
                 f"and was stopped: probably an endless loop (a `while` loop whose condition "
                 f"never becomes false?). A right answer takes a fraction of a second.")
        except NotImplementedError:
            if not found:
                fail(f"{self.name} is not written yet: replace `raise NotImplementedError()` "
                     f"with your code, run that cell, then run this check again.")
            out = None
        except CheckFailed:
            raise
        except Exception as e:
            if not found:
                raise CheckFailed(f"{self.name} raised {type(e).__name__}: {e}") from e
            out = None
        if found:
            self._refuse(found[0])
        for arg, copy, n in before:
            unchanged(copy, arg, self.name, n)
        return out

    def _refuse(self, what: str):
        if what == TORCH_SOFTMAX:
            fail(f"your {self.name} calls torch's softmax (torch.softmax, F.softmax, .softmax() or a "
                 f"log_softmax): write it yourself, with torch.exp and a sum, as the exercise asks.")
        allowed = " and ".join(f"`{_label(f)}`" for f in self.allow)
        fail(f"your {self.name} calls {what}: write it yourself. The check compares your function "
             f"with kdlib's, so calling kdlib's own implementation proves nothing"
             + (f" (here you may use only {allowed} from kdlib)." if allowed else "."))

    def tensor(self, *args, shape=None, protect: tuple = (), **kwargs) -> torch.Tensor:
        """Call; the output must be a tensor (of ``shape``)."""
        return tensor(self(*args, protect=protect, **kwargs), self.name, shape)

    def loss(self, *args, N: int, C: int, protect: tuple = (), nan: str | None = "",
             hint: str = "", **kwargs) -> torch.Tensor:
        """Call; the output must be one number (a 0-dimensional tensor), finite unless ``nan`` is
        None. ``nan``: where the call was (e.g. "at T=2"); ``hint``: the likely causes of a nan."""
        out = scalar(self(*args, protect=protect, **kwargs), self.name, N, C)
        if nan is not None:
            finite(out, self.name, nan, hint)
        return out


# ---- validating what it returned -----------------------------------------------------------------

def tensor(out, name: str, shape: tuple | None = None) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        what = "nothing (None)" if out is None else f"a {type(out).__name__}"
        fail(f"{name} returned {what}; it must return a torch.Tensor"
             + (f" of shape {tuple(shape)}" if shape is not None else "") + "."
             + (" Did you forget `return`?" if out is None else ""))
    if shape is not None and tuple(out.shape) != tuple(shape):
        fail(f"{name} returned a tensor of shape {tuple(out.shape)}; it must have shape {tuple(shape)}.")
    return out


def scalar(out, name: str, N: int, C: int) -> torch.Tensor:
    """A loss: one number, as a 0-dimensional tensor."""
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        fail(f"{name} returned a Python {type(out).__name__}; it must return a 0-dimensional "
             f"torch.Tensor that carries the gradient (did you call .item()?).")
    out = tensor(out, name)
    if out.ndim == 0:
        return out
    if tuple(out.shape) == (N,):
        fail(f"{name} returned one value per example (shape ({N},)); it must return one number: "
             f"sum over the classes and average over the batch (reduction='batchmean').")
    if tuple(out.shape) == (N, C):
        fail(f"{name} returned the N x C terms (reduction='none'?); it must return one number: "
             f"use reduction='batchmean'.")
    fail(f"{name} returned a tensor of shape {tuple(out.shape)}; it must return one number "
         f"(a 0-dimensional tensor).")


NAN_CAUSES = "0 / 0, inf - inf, or the log of 0 or of a negative number"


def finite(out: torch.Tensor, name: str, where: str = "", hint: str = "") -> None:
    """Fail on nan or inf, saying so (rather than matching nan with some mistaken formula)."""
    values = out.detach()
    if torch.isfinite(values).all():
        return
    what = "nan (not a number)" if torch.isnan(values).any() else "inf (infinity)"
    if values.ndim:
        bad = int((~torch.isfinite(values)).sum())
        what = f"{what} in {bad} of its {values.numel()} values"
    fail(f"{where + ' ' if where else ''}your {name} returned {what}. "
         + (hint or f"Look for {NAN_CAUSES} in your code."))


def listing(values) -> str:
    """1, 2 and 4."""
    words = [f"{v:g}" for v in values]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """Same shape and values (nan matching nan: a mistaken formula may give nan too)."""
    a, b = torch.as_tensor(a).detach().double(), torch.as_tensor(b).detach().double()
    return a.shape == b.shape and torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


_IN_PLACE = {"x": "`x /= 255`", "y": "`y -= 1`", "labels": "`labels -= 1`"}


def unchanged(before: torch.Tensor, after: torch.Tensor, name: str, arg: str) -> None:
    if before.shape != after.shape or not torch.equal(before, after.detach()):
        example = _IN_PLACE.get(arg, f"`{arg} /= T`")
        fail(f"{name} changed the {arg} it was given (an in-place operation such as {example} "
             f"or `{arg}.mul_(...)`?). Compute a new tensor and leave the input as it was.")


def diagnose(values, refs, args, mistakes, name, describe):
    """Fail naming the first mistake whose formula reproduces all the student's values, else the
    first input where the student's value is wrong."""
    for msg, formula in mistakes:
        if all(close(val, formula(*a)) for val, a in zip(values, args)):
            fail(msg)
    for val, ref, a in zip(values, refs, args):
        if not close(val, ref):
            fail(f"{describe(*a)}: your {name} gives {float(val):.6g}, the right value is "
                 f"{float(ref):.6g}.")
