"""What the expressions of a workflow read: which steps, which context names, and where.

The compiler asks this module, for each place an expression may appear, which steps it reads
(dependencies) and whether it reads a name that is not set there (``item`` outside a fan-out,
``result`` outside a step's outputs).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engine.dsl.expressions import condition_expression
from engine.dsl.expressions.syntax import OPEN, parse, scan

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Reads:
    """The steps and context names read by the expressions of one string."""

    steps: frozenset[str]
    names: frozenset[str]


_NOTHING = Reads(frozenset(), frozenset())
_cache: dict[str, Reads] = {}


def reads(text: str) -> Reads:
    """What the ``${{ }}`` expressions in ``text`` read. Raises ExpressionError."""
    if OPEN not in text:
        return _NOTHING
    found = _cache.get(text)
    if found is None:
        steps: set[str] = set()
        names: set[str] = set()
        for expression in scan(text):
            parsed = parse(expression.source)
            steps |= parsed.steps
            names |= parsed.names
        found = Reads(frozenset(steps), frozenset(names))
        if len(_cache) > 65536:  # bound memory in a long-lived process
            _cache.clear()
        _cache[text] = found
    return found


def condition_reads(value: Any) -> Reads:
    """What an ``if`` reads (written with or without ``${{ }}``). Raises ExpressionError."""
    return reads(condition_expression(value))


def expression_strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """Every string holding ``${{`` in a nested structure, with its path."""
    if isinstance(value, str):
        if OPEN in value:
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from expression_strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from expression_strings(item, (*path, index))


def unavailable_names(names: frozenset[str], *, fan_out: str | None, in_outputs: bool) -> list[str]:
    """Messages for context names that an expression reads where they are never set.

    ``fan_out`` is "for_each", "matrix" or None for the step the expression belongs to.
    """
    messages = []
    if fan_out is None:
        messages += [
            f"{name!r} is only set in a step with for_each or matrix"
            for name in ("item", "index")
            if name in names
        ]
    if "matrix" in names and fan_out != "matrix":
        messages.append("'matrix' is only set in a step with a matrix")
    if "result" in names and not in_outputs:
        messages.append("'result' is only set in a step's outputs")
    return messages
