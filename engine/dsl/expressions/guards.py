"""Checks that run *before* an operation that can make a value bigger than its inputs.

A deadline cannot interrupt a single C-level operation such as ``'x' * 10**9``, so ``*``, ``**``,
``+``, ``%``, ``str.format``, ``str.replace``, ``str.join`` and ``strftime`` estimate their
result first and refuse (ExpressionError) what would pass ``Limits.max_size``.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from engine.dsl.expressions.values import a_type, current, type_name, weight
from engine.errors import ExpressionError

MAX_WIDTH = 10_000  # a width or precision in a format spec
MAX_INT_BITS = 4096  # `**` on integers; Python refuses to print ints past ~14,000 bits anyway

_PRINTF_SPEC = re.compile(
    r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[diouxXeEfFgGcrsa%]"
)
_STRFTIME_WIDTH = re.compile(r"%[-_0^#]*(\d+)")


def _width(value: str | None, what: str) -> int:
    if not value:
        return 0
    if value == "*":
        raise ExpressionError(f"{what}: a '*' width is not supported")
    if int(value) > MAX_WIDTH:
        raise ExpressionError(f"{what}: width {value} is over the limit of {MAX_WIDTH}")
    return int(value)


def _largest_argument(arguments: Iterable[Any]) -> int:
    limit = current().limits.max_size
    return max((weight(a, limit) for a in arguments), default=0)


def guard_printf(template: str, arguments: Any) -> None:
    """Check ``template % arguments`` will stay within the size limit before running it."""
    specs = _PRINTF_SPEC.findall(template)
    widths = sum(_width(w, "%-format") + _width(p, "%-format") for w, p in specs)
    if isinstance(arguments, Mapping):
        values: Iterable[Any] = arguments.values()
    elif isinstance(arguments, tuple):
        values = arguments
    else:
        values = (arguments,)
    size = len(template) + widths + len(specs) * _largest_argument(values)
    current().charge(size, "formatted string")


def guard_format(template: str, args: Iterable[Any], kwargs: Mapping[str, Any]) -> None:
    """Check ``template.format(...)`` will stay within the size limit before running it."""
    try:
        parsed = string.Formatter().parse(template)
        fields = [spec for _, name, spec, _ in parsed if name is not None]
    except ValueError as exc:
        raise ExpressionError(f"format string does not parse: {exc}") from None
    widths = 0
    for spec in fields:
        if spec and "{" in spec:
            raise ExpressionError(
                "format: a replacement field inside a format spec is not supported"
            )
        widths += max((_width(n, "format") for n in re.findall(r"\d+", spec or "")), default=0)
    size = len(template) + widths + len(fields) * _largest_argument([*args, *kwargs.values()])
    current().charge(size, "formatted string")


def guard_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Size checks for the few allowed methods whose result can outgrow their input."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    evaluation = current()
    if isinstance(owner, str) and name == "join" and args:
        items = list(args[0])
        size = sum(len(i) if isinstance(i, str) else 0 for i in items) + len(owner) * len(items)
        evaluation.charge(size, "joined string")
        return (items, *args[1:])
    if isinstance(owner, str) and name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str) and isinstance(new, str):
            count = owner.count(old) if old else len(owner) + 1
            if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
                count = min(count, args[2])
            evaluation.charge(len(owner) + count * max(len(new) - len(old), 0), "replaced string")
    if isinstance(owner, date) and name == "strftime" and args and isinstance(args[0], str):
        for width in _STRFTIME_WIDTH.findall(args[0]):
            if int(width) > 100:
                raise ExpressionError(f"strftime: width {width} is over the limit of 100")
    return args


def guard_binop(operator: str, left: Any, right: Any) -> None:
    evaluation = current()
    if operator == "**":
        integers = isinstance(left, int) and isinstance(right, int)
        if integers and right > 0 and abs(left) > 1 and right * math.log2(abs(left)) > MAX_INT_BITS:
            raise ExpressionError(
                f"{left} ** {right} is too large (the limit is {MAX_INT_BITS}-bit integers)"
            )
    elif operator == "*":
        sequence, times = (left, right) if isinstance(left, (str, list, tuple)) else (right, left)
        if isinstance(sequence, (str, list, tuple)) and isinstance(times, int) and times > 1:
            if isinstance(sequence, str):
                unit = len(sequence)
            else:
                unit = weight(sequence, evaluation.limits.max_size)
            evaluation.charge(unit * times, f"repeating {a_type(sequence)} {times} times")
    elif operator == "+":
        if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            evaluation.charge(len(left) + len(right), f"joined {type_name(left)}")
    elif operator == "%" and isinstance(left, str):
        guard_printf(left, right)
