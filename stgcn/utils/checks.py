"""Small value checks shared by every config, reader and option: one rule each.

``bool`` is a subclass of ``int`` in Python; every check here refuses it where a number is expected, so
``true`` in a YAML file or JSON clip never becomes 1 silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from stgcn.errors import ConfigError

__all__ = ["is_int", "is_number", "check_int", "check_number", "state_dict_mismatch"]


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number (int or float, Python or NumPy), not a bool."""
    return (is_int(value) or isinstance(value, float | np.floating)) and math.isfinite(float(value))


def check_int(value: Any, name: str, *, minimum: int | None = 1, maximum: int | None = None,
              error: type[Exception] = ConfigError) -> int:
    """``value`` as an ``int`` when it is an integer in ``[minimum, maximum]``, else ``error`` naming ``name``."""
    ok = is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        bounds = " and ".join(s for s in (f">= {minimum}" if minimum is not None else "",
                                          f"<= {maximum}" if maximum is not None else "") if s)
        raise error(f"{name} must be an integer{' ' + bounds if bounds else ''}, got {value!r}")
    return int(value)


def check_number(value: Any, name: str, *, minimum: float | None = None, maximum: float | None = None,
                 below: float | None = None, error: type[Exception] = ConfigError) -> float:
    """``value`` as a ``float`` when it is a finite number in range (``below`` is an open upper bound)."""
    ok = (is_number(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
          and (below is None or value < below))
    if not ok:
        parts = [f">= {minimum}" if minimum is not None else "", f"<= {maximum}" if maximum is not None else "",
                 f"< {below}" if below is not None else ""]
        bounds = " and ".join(p for p in parts if p)
        raise error(f"{name} must be a finite number{' ' + bounds if bounds else ''}, got {value!r}")
    return float(value)


def state_dict_mismatch(given: Mapping[str, Any], expected: Mapping[str, Any]
                        ) -> tuple[list[str], list[str], tuple[str, tuple, tuple] | None]:
    """How a state dict differs from the one a model expects, for the caller's own error message.

    Returns:
        The keys of ``expected`` missing from ``given`` (sorted), the keys of ``given`` that ``expected`` lacks
        (sorted), and the first key of ``given`` (in its order) whose tensor shape differs from the expected
        one, as (key, given shape, expected shape), else ``None``.
    """
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    shape = next(((k, tuple(v.shape), tuple(expected[k].shape)) for k, v in given.items()
                  if k in expected and tuple(v.shape) != tuple(expected[k].shape)), None)
    return missing, extra, shape
