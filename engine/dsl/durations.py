"""Durations as workflows write them: ``30s``, ``10m``, ``1h30m``, ``500ms`` or plain seconds."""

from __future__ import annotations

import math
import re
from functools import lru_cache

_N = r"[0-9]+(?:\.[0-9]+)?"

# One grammar shared by the parser and the JSON Schema, so an editor flags exactly what the
# compiler would: a plain number of seconds, or parts with units d, h, m, s, ms, each at most
# once and largest first, optionally separated by spaces ("1h30m", "1h 30m").
DURATION_PATTERN = (
    rf"^\s*(?:{_N}|(?=[0-9])(?:{_N}d)?\s*(?:{_N}h)?\s*(?:{_N}m(?!s))?\s*(?:{_N}s)?\s*(?:{_N}ms)?)"
    r"\s*$"
)
_DURATION = re.compile(DURATION_PATTERN)
_PART = re.compile(rf"({_N})(ms|d|h|m|s)")
_PARTS_IN_ANY_ORDER = re.compile(rf"^\s*(?:{_N}(?:ms|d|h|m|s)\s*)+$")
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}

EXAMPLES = "30s, 10m, 1h30m, 1d, 500ms or a number of seconds"


class DurationError(ValueError):
    """A value is not a duration; the message says what is accepted."""


def duration_error(value: object) -> str:
    """Return the message explaining why ``value`` is not a duration ("" if it is one)."""
    try:
        parse_duration(value)
    except DurationError as error:
        return str(error)
    return ""


def parse_duration(value: object) -> float:
    """Return the duration ``value`` in seconds.

    Accepts a non-negative number of seconds (int or float) or a string such as ``"90"``,
    ``"30s"``, ``"1h30m"`` or ``"500ms"``: units d, h, m, s and ms, each at most once, largest
    first. Raises ``DurationError`` otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        kind = "null" if value is None else type(value).__name__
        raise DurationError(f"expected a duration ({EXAMPLES}), got {kind}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise DurationError(f"a duration must be a number of seconds ≥ 0, got {value!r}")
        return float(value)
    return _parse_text(value)


@lru_cache(maxsize=1024)
def _parse_text(value: str) -> float:
    # Workflows repeat the same few durations ("5s", "10m") thousands of times.
    if not _DURATION.match(value):
        if _PARTS_IN_ANY_ORDER.match(value):
            raise DurationError(
                f"invalid duration {value!r}: give each unit once, largest first (e.g. 1h30m)"
            )
        raise DurationError(f"invalid duration {value!r}: use {EXAMPLES}")
    text = value.strip()
    if not text[-1].isalpha():
        return float(text)
    return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """Return ``seconds`` the way a workflow would write it (``5400`` -> ``"1h30m"``)."""
    if seconds == 0:
        return "0s"
    parts = []
    millis = round(seconds * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts)
