"""Values as expressions see them: the evaluation in progress, missing values, sizes, text.

An ``Evaluation`` (context, limits, deadline, size budget) is current for the duration of one
``evaluate`` call, through a context variable, so the sandbox hooks and functions can reach it
without threading it through Jinja.
"""

from __future__ import annotations

import contextvars
import difflib
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from jinja2 import ChainableUndefined, Undefined
from jinja2.utils import missing

from engine.errors import ExpressionError

if TYPE_CHECKING:
    from engine.dsl.expressions.conditions import DependencyState

# The names a workflow's expressions can read (DESIGN.md, "Expressions").
CONTEXT_NAMES = frozenset(
    {"inputs", "env", "steps", "item", "index", "matrix", "run", "secrets", "result"}
)
STATUS_FUNCTIONS = frozenset({"always", "success", "failure", "cancelled"})


def words(text: str) -> frozenset[str]:
    """A set of names written as one string, for the allow-lists."""
    return frozenset(text.split())


@dataclass(frozen=True)
class Limits:
    """What one ``evaluate`` call may spend; the defaults suit every workflow we know of."""

    max_size: int = 1 << 20  # characters of a string, ~bytes of JSON of a result or created value
    max_created: int = 16 << 20  # characters all string/list operations may create in total
    max_range: int = 10_000  # items in range()
    max_seconds: float = 1.0  # wall-clock time of one evaluate() / evaluate_condition() call
    max_depth: int = 64  # nesting of lists and objects in a result


DEFAULT_LIMITS = Limits()


@dataclass
class Evaluation:
    """The state of one evaluation, visible to the sandbox hooks through a context variable."""

    context: Mapping[str, Any]
    limits: Limits
    deps: DependencyState | None
    deadline: float
    created: int = 0
    names: dict[str, Any] | None = None  # globals and context, merged once per evaluation
    # id(container) -> (container, "steps.build.outputs"), so a missing key can name its parent.
    # The container is kept so an id cannot be reused by another object during the evaluation.
    paths: dict[int, tuple[Any, str]] = field(default_factory=dict)

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise ExpressionError(
                f"expression took longer than the limit of {self.limits.max_seconds:g} s"
            )

    def charge(self, size: int, what: str) -> None:
        if size > self.limits.max_size:
            raise ExpressionError(
                f"{what} would be {amount(size)}, over the limit of {amount(self.limits.max_size)}"
            )
        self.created += size
        if self.created > self.limits.max_created:
            raise ExpressionError(
                f"expression created more than {amount(self.limits.max_created)} of text"
            )


_CURRENT: contextvars.ContextVar[Evaluation | None] = contextvars.ContextVar(
    "flowyard_expression_evaluation", default=None
)
_NO_EVALUATION = Evaluation(context={}, limits=DEFAULT_LIMITS, deps=None, deadline=math.inf)


def current() -> Evaluation:
    """The evaluation in progress (a limitless stand-in outside one, e.g. in unit tests)."""
    return _CURRENT.get() or _NO_EVALUATION


def start(evaluation: Evaluation) -> contextvars.Token[Evaluation | None]:
    evaluation.paths.update((id(v), (v, k)) for k, v in evaluation.context.items())
    return _CURRENT.set(evaluation)


def finish(token: contextvars.Token[Evaluation | None]) -> None:
    _CURRENT.reset(token)


def amount(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):,.{0 if size >= 100 << 20 else 2}f} MiB".replace(".00 ", " ")
    if size >= 1 << 10:
        return f"{size / (1 << 10):,.0f} KiB"
    return f"{size} characters"


# ---------------------------------------------------------------- describing values for errors


def type_name(value: Any) -> str:
    """The JSON-ish name of a value's type, as a workflow author thinks of it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, Sequence):
        return "array"
    if callable(value):
        return "function"
    return type(value).__name__


def a_type(value: Any) -> str:
    """``a string``, ``an array`` …"""
    name = type_name(value)
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def path_of(value: Any) -> str | None:
    """``steps.build.outputs`` when the evaluation knows where the value was read from."""
    entry = current().paths.get(id(value))
    if entry is not None and entry[0] is value:
        return entry[1]
    return None


def where(value: Any) -> str:
    """``'steps.build.outputs'`` when the path of the value is known, else ``the object``."""
    path = path_of(value)
    return repr(path) if path is not None else f"the {type_name(value)}"


def remember(parent: Any, key: Any, value: Any) -> Any:
    """Record the path of a container read from ``parent``, for later error messages."""
    if isinstance(value, (Mapping, list, tuple)):
        paths = current().paths
        entry = paths.get(id(parent))
        if entry is not None and entry[0] is parent:
            step = f".{key}" if isinstance(key, str) and key.isidentifier() else f"[{key!r}]"
            paths[id(value)] = (value, entry[1] + step)
    return value


def did_you_mean(name: object, candidates: Iterable[object]) -> str:
    names = [c for c in candidates if isinstance(c, str) and not c.startswith("_")]
    if isinstance(name, str):
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        if close:
            return f" (did you mean {close[0]!r}?)"
    if not names:
        return " (it is empty)"
    if len(names) <= 10:
        return f" (it has {', '.join(repr(n) for n in sorted(names))})"
    return ""


def describe_missing(obj: Any, name: Any) -> str:
    if obj is missing:
        # Unknown names are refused at parse time; this is a context name this run lacks,
        # e.g. `item` outside a for_each step or `result` outside a step's own outputs.
        available = ", ".join(sorted(current().context)) or "nothing"
        return f"{name!r} is not available here (the context has {available})"
    if isinstance(obj, Mapping):
        return f"{where(obj)} has no key {name!r}{did_you_mean(name, obj)}"
    if isinstance(obj, (list, tuple, str)) and isinstance(name, int):
        return f"{where(obj)} has no item {name} (it has {len(obj)})"
    path = path_of(obj)
    if obj is None:
        return f"{repr(path) if path else 'the value'} is null, so it has no {name!r}"
    if path is None:
        return f"{a_type(obj)} has no attribute {name!r}"
    return f"{path!r} ({a_type(obj)}) has no attribute {name!r}"


class Missing(ChainableUndefined):
    """A missing name or key: ``.x``/``[x]`` chain so ``default`` can catch it; any use raises."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        raise ExpressionError(
            self._undefined_hint or describe_missing(self._undefined_obj, self._undefined_name)
        )

    # Jinja's Undefined binds its operators to its own method when the class is created, so
    # they are rebound here; only `.x` and `[x]` chain (ChainableUndefined).
    __iter__ = __str__ = __len__ = __bool__ = __hash__ = __contains__ = _fail_with_undefined_error
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _fail_with_undefined_error
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail_with_undefined_error
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _fail_with_undefined_error
    __mod__ = __rmod__ = __pow__ = __rpow__ = __pos__ = __neg__ = _fail_with_undefined_error
    __call__ = __int__ = __float__ = __complex__ = __aiter__ = _fail_with_undefined_error


# ---------------------------------------------------------------- sizes


def weight(value: Any, limit: int) -> int:
    """Roughly the JSON size of ``value``; stops counting once past ``limit``."""
    total = 0
    stack = [value]
    evaluation = current()
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item) + 2
        elif isinstance(item, Mapping):
            total += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, Sequence):  # range()
            total += 2 + 8 * len(item)
        else:
            total += 8
        if total > limit:
            return total
        if len(stack) > 4096:
            evaluation.tick()
    return total


def check_input_size(value: Any, what: str) -> None:
    """Refuse to turn a value bigger than the limit into text (``str`` of a list is unbounded)."""
    evaluation = current()
    size = value.__len__() if isinstance(value, str) else weight(value, evaluation.limits.max_size)
    if size > evaluation.limits.max_size:
        raise ExpressionError(
            f"{what}: the value is over the limit of {amount(evaluation.limits.max_size)}"
        )


# ---------------------------------------------------------------- conversions


def to_plain(value: Any) -> Any:
    """``value`` as JSON-compatible data; raises on missing values and on what is not data."""
    evaluation = current()
    budget = [evaluation.limits.max_size]
    return _plain(value, 0, budget, evaluation)


def _plain(value: Any, depth: int, budget: list[int], evaluation: Evaluation) -> Any:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if value is None or isinstance(value, (bool, int, float)):
        budget[0] -= 8
        plain: Any = value
    elif isinstance(value, str):
        budget[0] -= len(value) + 2
        plain = str(value)
    elif isinstance(value, datetime | date):
        budget[0] -= 34
        plain = value.isoformat()
    elif isinstance(value, timedelta):
        budget[0] -= 8
        plain = value.total_seconds()
    elif isinstance(value, UUID):
        budget[0] -= 38
        plain = str(value)
    elif isinstance(value, Decimal):
        budget[0] -= 8
        plain = int(value) if value == value.to_integral_value() else float(value)
    else:
        if depth >= evaluation.limits.max_depth:
            depth_limit = evaluation.limits.max_depth
            raise ExpressionError(f"value is nested deeper than {depth_limit} levels")
        evaluation.tick()
        if isinstance(value, Mapping):
            plain = {}
            for key, item in value.items():
                budget[0] -= 4
                plain[_plain_key(key)] = _plain(item, depth + 1, budget, evaluation)
                if budget[0] < 0:
                    break
        elif isinstance(value, Iterable) and not isinstance(value, (bytes, bytearray)):
            plain = []
            for item in value:
                budget[0] -= 2
                plain.append(_plain(item, depth + 1, budget, evaluation))
                if budget[0] < 0:
                    break
        elif callable(value):
            raise ExpressionError("a function is not a value (did you forget the ()?)")
        else:
            raise ExpressionError(f"a {type(value).__name__} cannot be used as a value")
    if budget[0] < 0:
        raise ExpressionError(
            f"result is over the size limit of {amount(evaluation.limits.max_size)}"
        )
    return plain


def _plain_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return to_text(key)
    raise ExpressionError(f"an object key must be a string, not a {type_name(key)}")


def to_text(value: Any) -> str:
    """How a value reads inside a longer string (like GitHub Actions: ``true``, ``''`` for null)."""
    if isinstance(value, str):
        return str(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    plain = to_plain(value)
    if isinstance(plain, (dict, list)):
        return json.dumps(plain, ensure_ascii=False)
    return to_text(plain)


def truthy(value: Any) -> bool:
    """GitHub Actions truthiness: false, 0, -0, NaN, '' and null are false; all else is true."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if value is None or value is False or value == "":
        return False
    if isinstance(value, (int, float)):
        return value != 0 and not math.isnan(value)
    return True
