"""The functions and filters expressions can call: each one chosen, none reaches Python."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import wraps
from typing import Any, overload

from jinja2 import Environment, Undefined, pass_environment
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.filters import make_attrgetter

from engine.dsl.expressions.guards import guard_call, guard_printf
from engine.dsl.expressions.values import (
    STATUS_FUNCTIONS,
    Evaluation,
    check_input_size,
    current,
    to_plain,
    to_text,
    type_name,
    words,
)
from engine.errors import ExpressionError


def _status(name: str) -> Callable[[], bool]:
    def status() -> bool:
        deps = current().deps
        if deps is None:
            raise ExpressionError(f"{name}() can only be used in a condition (`if`)")
        return bool(getattr(deps, name))

    status.__name__ = name
    status.__doc__ = f"The GitHub Actions status function {name}()."
    return status


def bounded_range(*args: int) -> BoundedRange:
    """``range`` limited to ``Limits.max_range`` items and checked against the deadline."""
    evaluation = current()
    numbers = range(*args)
    if len(numbers) > evaluation.limits.max_range:
        raise ExpressionError(
            f"range() of {len(numbers)} items is over the limit of {evaluation.limits.max_range}"
        )
    return BoundedRange(numbers, evaluation)


class BoundedRange(Sequence[int]):
    """A range that checks the deadline as it is walked."""

    def __init__(self, items: range, evaluation: Evaluation) -> None:
        self.items = items
        self.evaluation = evaluation

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[int]: ...

    def __getitem__(self, index: int | slice) -> int | Sequence[int]:
        return self.items[index]

    def __iter__(self) -> Iterator[int]:
        for number in self.items:
            if number % 256 == 0:
                self.evaluation.tick()
            yield number

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, value: object) -> bool:
        return value in self.items


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def fromjson(value: Any) -> Any:
    """Parse a JSON string."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if not isinstance(value, str):
        raise ExpressionError(f"fromjson() needs a string, got a {type_name(value)}")
    check_input_size(value, "fromjson()")
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ExpressionError(f"fromjson(): not valid JSON: {exc}") from None
    except RecursionError:
        raise ExpressionError("fromjson(): the JSON is nested too deeply") from None


def tojson(value: Any, indent: int | None = None) -> str:
    """Serialize a value as JSON (plain JSON: not HTML-escaped like Jinja's own ``tojson``)."""
    if indent is not None and not 0 <= indent <= 8:
        raise ExpressionError("tojson(): indent must be between 0 and 8")
    return json.dumps(to_plain(value), ensure_ascii=False, indent=indent)


def _fold(value: Any) -> Any:
    return to_text(value).casefold() if isinstance(value, str) else value


def contains(search: Any, item: Any) -> bool:
    """GitHub's ``contains``: substring for strings, element for arrays; strings ignore case."""
    if isinstance(search, str):
        return to_text(item).casefold() in search.casefold()
    if isinstance(search, Iterable):
        wanted = _fold(item)
        return any(_fold(element) == wanted for element in search)
    raise ExpressionError(f"contains() searches a string or an array, not a {type_name(search)}")


def startswith(text: Any, prefix: Any) -> bool:
    """GitHub's ``startsWith``, ignoring case."""
    return to_text(text).casefold().startswith(to_text(prefix).casefold())


def endswith(text: Any, suffix: Any) -> bool:
    """GitHub's ``endsWith``, ignoring case."""
    return to_text(text).casefold().endswith(to_text(suffix).casefold())


_GITHUB_FIELD = re.compile(r"\{\{|\}\}|\{(\d+)\}|[{}]")


def format_(template: Any, *args: Any) -> str:
    """GitHub's ``format('{0} and {1}', a, b)``; ``{{`` and ``}}`` are literal braces."""
    if not isinstance(template, str):
        raise ExpressionError(f"format() needs a string template, got a {type_name(template)}")
    texts = [to_text(a) for a in args]
    pieces: list[str] = []
    position = 0
    for match in _GITHUB_FIELD.finditer(template):
        pieces.append(template[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            pieces.append(token[0])
        elif match.group(1) is None:
            raise ExpressionError(f"format(): unmatched {token!r} in {template!r}")
        elif int(match.group(1)) >= len(texts):
            raise ExpressionError(
                f"format(): {token} needs argument {match.group(1)}, but only {len(texts)} given"
            )
        else:
            pieces.append(texts[int(match.group(1))])
    pieces.append(template[position:])
    current().charge(sum(len(p) for p in pieces), "formatted string")
    return "".join(pieces)


def join(value: Any, separator: Any = ",") -> str:
    """Join items as text (GitHub's ``join``; the filter form defaults to no separator)."""
    return _join(value, separator)


def _join(value: Any, separator: Any, items: Iterable[Any] | None = None) -> str:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, str):
        return value
    evaluation = current()
    if items is None:
        items = value
    texts = []
    size = 0
    sep = to_text(separator)
    for item in items:
        text = to_text(item)
        size += len(text) + len(sep)
        if size > evaluation.limits.max_size:
            evaluation.charge(size, "joined string")
        texts.append(text)
    evaluation.charge(size, "joined string")
    return sep.join(texts)


GLOBALS: dict[str, Any] = {
    **{name: _status(name) for name in sorted(STATUS_FUNCTIONS)},
    "range": bounded_range,
    "now": now,
    "null": None,
    "fromjson": fromjson,
    "tojson": tojson,
    "contains": contains,
    "startswith": startswith,
    "endswith": endswith,
    "format": format_,
    "join": join,
    # GitHub Actions spellings, so expressions copied from a workflow there keep working.
    "fromJSON": fromjson,
    "toJSON": tojson,
    "startsWith": startswith,
    "endsWith": endswith,
}


# ---------------------------------------------------------------- filters


@pass_environment
def _filter_join(
    environment: Environment, value: Any, d: Any = "", attribute: str | int | None = None
) -> str:
    if attribute is None:
        return _join(value, d)
    return _join(value, d, map(make_attrgetter(environment, attribute), value))


def _filter_string(value: Any) -> str:
    return to_text(value)


@pass_environment
def _filter_sum(
    environment: Environment,
    value: Iterable[Any],
    attribute: str | int | None = None,
    start: Any = 0,
) -> Any:
    # Python's sum() of lists or strings is quadratic and cannot be interrupted: numbers only.
    if not isinstance(start, (int, float)):
        raise ExpressionError("sum adds numbers; to join lists or strings use `join`")
    items: Iterable[Any] = value
    if attribute is not None:
        items = map(make_attrgetter(environment, attribute), items)
    total = start
    for item in items:
        if not isinstance(item, (int, float)):
            raise ExpressionError(f"sum adds numbers, not a {type_name(item)}")
        total += item
    return total


def _filter_replace(value: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old, new = to_text(value), to_text(old), to_text(new)
    guard_call(text.replace, (old, new, -1 if count is None else count), {})
    return text.replace(old, new, -1 if count is None else count)


def _filter_format(value: Any, *args: Any, **kwargs: Any) -> str:
    if args and kwargs:
        raise ExpressionError("format: give positional or keyword arguments, not both")
    template = to_text(value)
    arguments = kwargs or args
    guard_printf(template, arguments)
    return template % arguments


def _b64encode(value: Any) -> str:
    return base64.b64encode(to_text(value).encode()).decode("ascii")


def _b64decode(value: Any) -> str:
    try:
        return base64.b64decode(to_text(value), validate=True).decode()
    except ValueError as exc:
        raise ExpressionError(f"b64decode: {exc}") from None


# Filters that turn their whole input into one string: checked for size before they run.
def _concat(parts: list[Any]) -> str:
    texts = [to_text(p) for p in parts]
    current().charge(sum(len(t) for t in texts), "joined string")
    return "".join(texts)


_STRINGIFYING = frozenset(
    {"capitalize", "lower", "upper", "title", "trim", "truncate", "wordcount", "urlencode"}
)
# Jinja's own filters that are safe as they are. Left out: batch, slice, center, indent and
# wordwrap (their arguments size the result), pprint, random, urlize, xmlattr, the HTML ones.
_JINJA_FILTERS = _STRINGIFYING | words(
    "abs attr count d default dictsort first float filesizeformat groupby int items last "
    "length list map max min reject rejectattr reverse round select selectattr sort unique"
)
_OWN_FILTERS: dict[str, Callable[..., Any]] = {
    "join": _filter_join,
    "string": _filter_string,
    "sum": _filter_sum,
    "replace": _filter_replace,
    "format": _filter_format,
    "tojson": tojson,
    "fromjson": fromjson,
    "b64encode": _b64encode,
    "b64decode": _b64decode,
    # `a ~ b`, rewritten at parse time so it renders like text does (true, '' for null).
    "_concat": _concat,
}


def _guarded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    passes_environment = getattr(function, "jinja_pass_arg", None) is not None
    stringifies = name in _STRINGIFYING

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        evaluation = current()
        evaluation.tick()
        value = args[1] if passes_environment else args[0]
        if isinstance(value, Undefined) and name not in ("d", "default"):
            value._fail_with_undefined_error()
        if stringifies:
            check_input_size(value, name)
        result = function(*args, **kwargs)
        if isinstance(result, str) and result is not value and len(result) > 64:
            evaluation.charge(len(result), name)
        return result

    return guarded


FILTERS: dict[str, Callable[..., Any]] = {
    name: _guarded_filter(name, function)
    for name, function in {
        **{name: JINJA_FILTERS[name] for name in _JINJA_FILTERS},
        **_OWN_FILTERS,
    }.items()
}
