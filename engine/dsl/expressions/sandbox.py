"""The sandboxed Jinja environment that evaluates expressions.

Security rests on layers: names are checked at parse time (unknown names such as ``self``,
``config``, ``cycler`` and any ``__dunder__`` attribute never compile); Jinja's
``ImmutableSandboxedEnvironment``; an allow-list of the attributes each data type exposes
(everything else reads as missing, ``_``-names raise); and globals and filters chosen one by one
(``functions``). No expression can reach a Python class, function internals or a module.

Bounds: sizes are checked before any growing operation runs (``guards``). Time is checked against
a deadline in every hook (attribute, item, call, operator, filter, ``range`` iteration), which
every loop an expression can express passes through: expressions have no loops of their own,
only filters such as ``map`` walking a (bounded) list.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from jinja2 import Undefined
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.dsl.expressions.functions import FILTERS as OWN_FILTERS
from engine.dsl.expressions.functions import GLOBALS
from engine.dsl.expressions.guards import guard_binop, guard_call, guard_format
from engine.dsl.expressions.values import Missing, a_type, current, remember, type_name, words
from engine.errors import ExpressionError

_STR_METHODS = words(
    "capitalize casefold count endswith find format index isalnum isalpha isascii isdecimal "
    "isdigit islower isnumeric isspace istitle isupper join lower lstrip partition removeprefix "
    "removesuffix replace rfind rindex rpartition rsplit rstrip split splitlines startswith "
    "strip swapcase title upper"
)
_DATE_ATTRIBUTES = words("year month day weekday isoweekday isoformat strftime replace")
# Only what reads data: everything else on these types (and all attributes of other types,
# functions included) behaves as missing. Mapping keys are looked up before any of this.
_ALLOWED_ATTRIBUTES: dict[type, frozenset[str]] = {
    str: _STR_METHODS,
    bool: frozenset(),
    int: frozenset({"bit_length"}),
    float: frozenset({"is_integer"}),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
    datetime: _DATE_ATTRIBUTES | words("hour minute second microsecond timestamp date astimezone"),
    date: _DATE_ATTRIBUTES,
    timedelta: frozenset({"days", "seconds", "microseconds", "total_seconds"}),
}
_MAPPING_ATTRIBUTES = frozenset({"get", "items", "keys", "values"})


def _allowed_attribute(obj: Any, name: str) -> bool:
    if isinstance(obj, Mapping):
        return name in _MAPPING_ATTRIBUTES
    if isinstance(obj, tuple) and name in getattr(obj, "_fields", ()):
        return True  # a named tuple's fields, e.g. groupby's `grouper` and `list`
    allowed = _ALLOWED_ATTRIBUTES.get(type(obj))
    if allowed is None:
        allowed = next(
            (a for t, a in _ALLOWED_ATTRIBUTES.items() if isinstance(obj, t)), frozenset()
        )
    return name in allowed


def _refuse_private(name: str) -> None:
    raise ExpressionError(
        f"{name!r} is not accessible: names starting with '_' are private to Python"
    )


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with an attribute allow-list, limits and strict missing values."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        current().tick()
        if isinstance(obj, Undefined):
            return obj
        if isinstance(obj, Mapping):
            # A key wins over a method, so an output named `items` or `keys` reads as data.
            try:
                return remember(obj, attribute, obj[attribute])
            except (LookupError, TypeError):
                pass
        return self._attribute(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        current().tick()
        if isinstance(obj, Undefined):
            return obj
        if isinstance(argument, str) and not isinstance(obj, Mapping):
            return self._attribute(obj, argument)
        try:
            return remember(obj, argument, obj[argument])
        except (LookupError, TypeError):
            return self.undefined(obj=obj, name=argument)

    def _attribute(self, obj: Any, name: str) -> Any:
        if name.startswith("_"):
            _refuse_private(name)
        if not _allowed_attribute(obj, name):
            if hasattr(obj, name):
                hint = f"{name!r} of {a_type(obj)} is not available in expressions"
                return self.undefined(hint, obj=obj, name=name)
            return self.undefined(obj=obj, name=name)
        try:
            value = getattr(obj, name)
        except AttributeError:
            return self.undefined(obj=obj, name=name)
        if not self.is_safe_attribute(obj, name, value):
            return self.unsafe_undefined(obj, name)
        formatter = self.wrap_str_format(value)
        if formatter is not None:
            template = obj

            def guarded_format(*args: Any, **kwargs: Any) -> str:
                guard_format(template, args, kwargs)
                return formatter(*args, **kwargs)

            return guarded_format
        return value

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return _allowed_attribute(obj, attr) and super().is_safe_attribute(obj, attr, value)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise ExpressionError(f"{attribute!r} of {a_type(obj)} is not accessible")

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        evaluation = current()
        evaluation.tick()
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()
        if not self.is_safe_callable(obj):
            raise ExpressionError(f"{type_name(obj)} is not callable from an expression")
        args = guard_call(obj, args, kwargs)
        result = context.call(obj, *args, **kwargs)
        if isinstance(result, str) and len(result) > 64:
            evaluation.charge(len(result), "the string")
        return result

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        current().tick()
        guard_binop(operator, left, right)
        return self.binop_table[operator](left, right)


def _make_environment() -> Sandbox:
    environment = Sandbox(
        undefined=Missing,
        autoescape=False,
        # The optimizer folds constant sub-expressions by *running* them at compile time,
        # outside any deadline; compile must never execute workflow code.
        optimized=False,
        cache_size=0,
        extensions=(),
    )
    environment.globals.clear()
    environment.globals.update(GLOBALS)
    environment.filters.clear()
    environment.filters.update(OWN_FILTERS)
    return environment


ENVIRONMENT = _make_environment()
