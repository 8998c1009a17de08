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
import math
import os
import signal
import sys
import textwrap
import threading
import time

import torch

from .. import losses, train
from ..fast import torch_threads


class CheckFailed(AssertionError):
    """Your function gave a wrong answer; the message says what and, where it can tell, why."""


# ---- the check's frame ---------------------------------------------------------------------------

WIDTH = 100
"""Columns of a check's messages: longer lines are wrapped (nbgrader's feedback HTML does not)."""


def wrap(text: str, first: int = 0) -> str:
    """``text`` with every line longer than :data:`WIDTH` broken between words; the first line is
    ``first`` columns shorter (the ``CheckFailed: `` or ``✓ `` printed before it)."""
    lines = []
    for i, line in enumerate(text.split("\n")):
        pad = " " * (first if i == 0 else 0)
        indent = line[:len(line) - len(line.lstrip())]
        lines.append(textwrap.fill(line, WIDTH, initial_indent=pad, subsequent_indent=indent,
                                   break_long_words=False, break_on_hyphens=False)[len(pad):]
                     if len(pad + line) > WIDTH else line)
    return "\n".join(lines)


def graded(check):
    """Decorator of every public check: one intra-op thread (its tensors are tiny), messages
    wrapped at :data:`WIDTH` columns, and a short traceback that ends at the check's message."""
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        __tracebackhide__ = True  # noqa: F841 (IPython and pytest leave this frame out)
        try:
            with torch_threads(1):  # a check's tensors are tiny
                return check(*args, **kwargs)
        except CheckFailed as e:
            # The same message without the check's insides in the traceback; the cause (an error
            # raised in the student's own function) keeps its traceback.
            short = CheckFailed(*(wrap(a, len("CheckFailed: ")) if isinstance(a, str) else a
                                  for a in e.args))
            short.__suppress_context__ = True
            raise short from e.__cause__  # your function failed this check: see the message below
    return wrapper


def fail(msg: str):
    raise CheckFailed(msg)


def ok(msg: str) -> None:
    print("\n".join(textwrap.fill(line, WIDTH, initial_indent="  " if i else "✓ ",
                                   subsequent_indent="  ", break_long_words=False,
                                   break_on_hyphens=False)
                     for i, line in enumerate(msg.split("\n"))))


# ---- the time limit ------------------------------------------------------------------------------

TIME_LIMIT = 10.0
"""Seconds one call of the student's function may take (the environment variable
``KDLIB_CHECK_TIME_LIMIT`` overrides it; 0 means no limit). A right answer takes milliseconds."""
LIMIT_RANGE = (0.001, 86400.0)
"""The time limits ``KDLIB_CHECK_TIME_LIMIT`` may set (besides 0, no limit): a millisecond to a day."""
TICK = 0.05
"""Once the time is up, the student's function is stopped again every TICK seconds until it returns:
an ``except:`` or ``except BaseException:`` in its loop swallows one stop, not all of them."""


def time_limit() -> float:
    """The time limit in seconds (0: none), from ``KDLIB_CHECK_TIME_LIMIT`` or :data:`TIME_LIMIT`."""
    raw = os.environ.get("KDLIB_CHECK_TIME_LIMIT", "")
    if not raw.strip():
        return TIME_LIMIT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if value == 0 or LIMIT_RANGE[0] <= value <= LIMIT_RANGE[1]:  # False for nan
        return value
    raise ValueError(f"KDLIB_CHECK_TIME_LIMIT must be 0 (no time limit) or a number of seconds from "
                     f"{LIMIT_RANGE[0]:g} to {LIMIT_RANGE[1]:g}, got {raw!r}")


class _TimeUp(BaseException):
    """Raised inside the student's function when its time is up. A BaseException, so that an
    ``except Exception:`` in the student's loop cannot swallow it."""


def _can_time_out() -> bool:
    """SIGALRM exists (POSIX: Linux, macOS) and this is the main thread, the only one that receives
    signals. A Jupyter kernel runs its cells on the main thread."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _call(fn, args, kwargs):
    """The one frame under which the time limit stops code: the student's function, called here."""
    return fn(*args, **kwargs)


def _inside_call(frame) -> bool:
    """``frame`` runs below :func:`_call` (the student's code, or what it calls), not in ``_call``
    itself nor in the check's own code around it (entering, leaving the time limit and the watch)."""
    f = frame
    while f is not None:
        if f.f_code is _call.__code__:
            return f is not frame
        f = f.f_back
    return False


def _raise_on_line(frame, event, arg):
    """Trace function of the student's frames once the time is up: stop at the next line, also the
    first line of an ``except:`` clause, where nothing catches the stop."""
    if event == "line":
        raise _TimeUp()  # (this also switches tracing off: the next tick switches it on again)
    return _raise_on_line


def _trace_calls(frame, event, arg):
    return _raise_on_line if _inside_call(frame) else None


class _Limited:
    """The time limit of one call (:func:`_limited`); ``expired`` tells afterwards whether it ran out."""

    def __init__(self, seconds: float):
        self.seconds, self.expired, self.armed = seconds, False, False
        self.outer_fired, self.traced, self.old_trace = False, False, None

    def __enter__(self):
        if not self.seconds or not _can_time_out():
            return self
        self.start = time.monotonic()
        self.old_handler = signal.getsignal(signal.SIGALRM)
        if self.old_handler is None:  # installed outside Python: treat it as the default
            self.old_handler = signal.SIG_DFL
        signal.signal(signal.SIGALRM, self._on_alarm)
        self.armed = True
        self.outer = signal.setitimer(signal.ITIMER_REAL, self.seconds, TICK)
        if self.outer[0] and self.outer[0] < self.seconds:  # an earlier timer (pytest-timeout's)
            signal.setitimer(signal.ITIMER_REAL, self.outer[0], TICK)
        return self

    def _on_alarm(self, signum, frame):
        if not self.armed:
            return
        if time.monotonic() - self.start >= self.seconds - 0.01:
            self.expired = True
            if _inside_call(frame):  # never in the check's own code: it must clean up
                self._trace(frame)
                raise _TimeUp()
            return  # not yet inside the function, or already back: the next tick (or the exit)
        # The outer timer's time is up before ours: give the signal to its handler.
        self.armed, self.outer_fired = False, True
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.old_handler)
        signal.raise_signal(signal.SIGALRM)

    def _trace(self, frame):
        """Make the student's frames (``frame`` and its callers up to :func:`_call`) raise
        :class:`_TimeUp` at their next line: a stop raised in a ``try:`` block and caught by a bare
        ``except:`` (a signal that comes during a call, e.g. ``time.sleep``, always lands there)
        is raised again in the except clause."""
        if not self.traced:
            self.traced, self.old_trace = True, sys.gettrace()
        sys.settrace(_trace_calls)
        while frame is not None and frame.f_code is not _call.__code__:
            frame.f_trace, frame.f_trace_lines = _raise_on_line, True
            frame = frame.f_back

    def __exit__(self, *exc):
        if not self.armed and not self.outer_fired:
            return False
        self.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        if self.traced:
            sys.settrace(self.old_trace)
        outer_delay, outer_interval = self.outer
        if not self.outer_fired:
            signal.signal(signal.SIGALRM, self.old_handler)
            if outer_delay:
                left = outer_delay - (time.monotonic() - self.start)
                signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), outer_interval)
        elif outer_interval:
            signal.setitimer(signal.ITIMER_REAL, outer_interval, outer_interval)
        return False


def _limited(seconds: float) -> _Limited:
    """A context manager that stops the code run by :func:`_call` inside it, raising
    :class:`_TimeUp` there, once ``seconds`` have passed, and again every :data:`TICK` seconds
    until the call returns (a real-time interval timer, SIGALRM), so that a loop that catches
    every exception is stopped too. It never raises in the check's own code. Without SIGALRM
    (Windows) or off the main thread, or with ``seconds`` 0, there is no limit.

    A timer that was already running (e.g. pytest-timeout's) keeps its deadline: if it comes first,
    its handler gets the signal; afterwards it is re-armed with the time it had left."""
    return _Limited(seconds)


# ---- refusing kdlib's own implementation -----------------------------------------------------------

def _public_functions(module) -> tuple:
    return tuple(f for n, f in vars(module).items()
                 if inspect.isfunction(f) and f.__module__ == module.__name__ and not n.startswith("_"))


KDLIB_LOSSES = _public_functions(losses)
"""The reference implementations the checks compare with: a student's function may not call them."""
KDLIB_TRAINING = tuple(getattr(train, n) for n in ("train_epoch", "fit") if hasattr(train, n))
"""kdlib's training loops: one batch through them is a whole training step."""

TORCH_SOFTMAX = "torch's softmax"


def _label(f) -> str:
    return f"{f.__module__}.{f.__qualname__}"


def _is_torch_softmax(builtin, frame) -> bool:
    """``builtin``, called from ``frame``, is one of torch's softmax functions: torch.softmax,
    Tensor.softmax, torch.special.softmax, torch._softmax, torch.sparse.softmax, the log_softmax
    family, or an ATen softmax operator called through ``torch.ops.aten`` (whose OpOverload object,
    the caller's ``self``, holds the operator's name)."""
    name = getattr(builtin, "__name__", None) or ""
    module = getattr(builtin, "__module__", None) or ""
    if module.startswith("torch._ops"):
        name = str(frame.f_locals.get("self", ""))
    owner = getattr(builtin, "__self__", None)
    return "softmax" in name and (isinstance(owner, torch.Tensor) or module.startswith("torch"))


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
        elif event == "c_call" and softmax and not inside and not found and _is_torch_softmax(arg, frame):
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
        limit = _limited(seconds)
        try:
            with limit, _watch(self.forbid, self.allow, found):
                out = _call(self.fn, args, kwargs)
        except _TimeUp:
            limit.expired = True
        except NotImplementedError:
            if not found and not limit.expired:
                fail(f"{self.name} is not written yet: replace `raise NotImplementedError()` "
                     f"with your code, run that cell, then run this check again.")
            out = None
        except CheckFailed:
            raise
        except Exception as e:
            if not found and not limit.expired:
                raise CheckFailed(f"{self.name} raised {type(e).__name__}: {e}") from e
            out = None
        if limit.expired:  # also when the function caught every stop and returned at last
            fail(f"{self.name} took longer than {seconds:g} second{'' if seconds == 1 else 's'} "
                 f"and was stopped: probably an endless loop (a `while` loop whose condition "
                 f"never becomes false?). A right answer takes a fraction of a second.")
        if found:
            self._refuse(found[0])
        for arg, copy, n in before:
            unchanged(copy, arg, self.name, n)
        return out

    def _refuse(self, what: str):
        if what == TORCH_SOFTMAX:
            fail(f"your {self.name} calls torch's softmax (torch.softmax, F.softmax, .softmax(), a "
                 f"log_softmax, torch.sparse.softmax or the aten operator): write it yourself, "
                 f"with torch.exp and a sum, as the exercise asks.")
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


_IN_PLACE = {"x": "`x /= 255`", "y": "`y -= 1`", "labels": "`labels -= 1`",
             "z": "`z /= T`, or `x = z.double()` (z itself when z is already float64) then `x[i] += eps`"}


def unchanged(before: torch.Tensor, after: torch.Tensor, name: str, arg: str) -> None:
    if before.shape != after.shape or not torch.equal(before, after.detach()):
        example = _IN_PLACE.get(arg, f"`{arg} /= T`")
        fail(f"{name} changed the {arg} it was given (an in-place operation such as {example} "
             f"or `{arg}.mul_(...)`?). Compute a new tensor and leave the input as it was.")


def first_mistake(values, args, mistakes, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """Fail with the message of the first mistake ``(message, formula)`` whose formula, on each input of
    ``args``, reproduces the student's value for it (within ``rtol``, ``atol``: :func:`close`)."""
    for msg, formula in mistakes:
        if all(close(val, formula(*a), rtol=rtol, atol=atol) for val, a in zip(values, args)):
            fail(msg)


def diagnose(values, refs, args, mistakes, name, describe):
    """Fail naming the first mistake whose formula reproduces all the student's values, else the
    first input where the student's value is wrong."""
    first_mistake(values, args, mistakes)
    for val, ref, a in zip(values, refs, args):
        if not close(val, ref):
            fail(f"{describe(*a)}: your {name} gives {float(val):.6g}, the right value is "
                 f"{float(ref):.6g}.")
