"""Paths into loaded workflow data, and how messages show them."""

from __future__ import annotations

import re
from collections.abc import Sequence

Path = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")


def format_path(path: Sequence[str | int]) -> str:
    """Return ``path`` as users read it: ``steps.build.with.url``, ``on.schedule[0].cron``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += '["' + part.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out
