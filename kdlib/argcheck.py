"""Argument checks: bad input gets a ``ValueError`` that names the argument and what it allows."""
from __future__ import annotations

import numbers


def _value(x):
    """A 0-d tensor or array as the Python number it holds; anything else as it is."""
    return x.item() if getattr(x, "ndim", None) == 0 and hasattr(x, "item") else x


def number(name: str, x, allowed: str, ok=lambda v: True) -> float:
    """``float(x)`` if ``x`` is a real number (Python, NumPy, a 0-d tensor or array; not a bool) for which
    ``ok`` holds, else ``ValueError("<name> must be <allowed>, got <x>")``."""
    v = _value(x)
    try:
        good = isinstance(v, numbers.Real) and not isinstance(v, bool) and ok(float(v))
    except OverflowError:  # an int too large for a float
        good = False
    if not good:
        raise ValueError(f"{name} must be {allowed}, got {x!r}")
    return float(v)


def integer(name: str, x, allowed: str, ok=lambda v: True) -> int:
    """``int(x)`` if ``x`` is an integer (Python, NumPy, a 0-d tensor or array; not a bool) for which ``ok``
    holds, else ``ValueError("<name> must be <allowed>, got <x>")``."""
    v = _value(x)
    if not (isinstance(v, numbers.Integral) and not isinstance(v, bool) and ok(int(v))):
        raise ValueError(f"{name} must be {allowed}, got {x!r}")
    return int(v)
