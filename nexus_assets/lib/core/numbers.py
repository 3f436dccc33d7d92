"""Numbers written by an operator (NEXUS_* variables): ASCII, finite, or an error naming the variable.

`int()` and `float()` accept more than a setting should: digits of other scripts ('１０', '٣'), underscores
('1_0'), and for floats `nan` and `inf`, which pass every `<` comparison as False (a NaN time limit is no limit,
an infinite retry delay a build that never ends). Every numeric setting is parsed here, once.
"""

from __future__ import annotations

import math


def parse_number(raw: str, variable: str, kind: type = float) -> float:
    """`raw` as `kind` (int or float): ASCII digits only, no underscores, finite; ValueError naming `variable`."""
    what = "an integer" if kind is int else "a number"
    text = raw.strip()
    try:
        if not text.isascii() or "_" in text:
            raise ValueError(text)
        value = kind(text)
    except ValueError:
        raise ValueError(f"{variable}={raw!r} is not {what} (ASCII digits)") from None
    if not math.isfinite(value):
        raise ValueError(f"{variable}={raw!r} must be a finite number")
    return value
