"""Evaluating values that contain expressions, against a run's context."""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import Template, nodes
from jinja2.exceptions import SecurityError, TemplateError

from engine.dsl.expressions import values
from engine.dsl.expressions.sandbox import ENVIRONMENT
from engine.dsl.expressions.syntax import OPEN, executable_tree, scan, show, whole_expression
from engine.dsl.expressions.values import DEFAULT_LIMITS, Evaluation, Limits
from engine.errors import ExpressionError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from engine.dsl.expressions.conditions import DependencyState


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Template:
    """The compiled form of one expression, cached: 10,000 for_each items compile it once."""
    body = [nodes.Assign(nodes.Name("result", "store"), executable_tree(source), lineno=1)]
    try:
        return ENVIRONMENT.from_string(nodes.Template(body, lineno=1))
    except (TemplateError, SyntaxError, RecursionError, MemoryError) as exc:
        # Python's own compiler has limits (e.g. on nested brackets) that the parser does not.
        raise ExpressionError(
            f"expression cannot be compiled: {exc} in {show(source)}",
            details={"expression": source},
        ) from None


@contextmanager
def evaluating(
    context: Mapping[str, Any], deps: DependencyState | None, limits: Limits
) -> Iterator[Evaluation]:
    """Make an evaluation current for the sandbox hooks; one deadline covers the whole block."""
    evaluation = Evaluation(
        context=context,
        limits=limits,
        deps=deps,
        deadline=time.monotonic() + limits.max_seconds,
    )
    token = values.start(evaluation)
    try:
        yield evaluation
    finally:
        values.finish(token)


def run_expression(source: str) -> Any:
    """Evaluate one expression in the current evaluation; the result is plain JSON-ish data."""
    template = compile_expression(source)
    evaluation = values.current()
    try:
        # Template.new_context would copy the globals out of a ChainMap on every call, which
        # dominated the cost of 10,000 for_each instances; the names are resolved once instead.
        if evaluation.names is None:
            evaluation.names = {**ENVIRONMENT.globals, **evaluation.context}
        context = ENVIRONMENT.context_class(ENVIRONMENT, evaluation.names, None, {})
        for _ in template.root_render_func(context):
            pass
        return values.to_plain(context.vars["result"])
    except ExpressionError as exc:
        raise _located(exc.message, source) from None
    except SecurityError as exc:
        raise _located(f"not allowed: {exc}", source) from None
    except TemplateError as exc:
        raise _located(exc.message or type(exc).__name__, source) from None
    except RecursionError:
        raise _located("the value is nested too deeply", source) from None
    except MemoryError:
        raise _located("the expression ran out of memory", source) from None
    except Exception as exc:
        raise _located(f"{type(exc).__name__}: {exc}", source) from None


def _located(reason: str, source: str) -> ExpressionError:
    return ExpressionError(
        f"{reason} in {show(source)}", details={"expression": source, "reason": reason}
    )


def _evaluate_text(text: str, evaluation: Evaluation) -> Any:
    if OPEN not in text:
        return text
    whole = whole_expression(text)
    if whole is not None:
        return run_expression(whole.source)
    pieces = []
    position = 0
    size = 0
    for expression in scan(text):
        pieces.append(text[position : expression.start])
        pieces.append(values.to_text(run_expression(expression.source)))
        position = expression.end
        size += len(pieces[-1]) + len(pieces[-2])
        if size > evaluation.limits.max_size:
            break
    pieces.append(text[position:])
    rendered = "".join(pieces)
    if len(rendered) > evaluation.limits.max_size:
        raise ExpressionError(
            f"rendered text is over the size limit of {evaluation.limits.max_size} characters",
            details={"text": text[:1000]},
        )
    return rendered


def _evaluate_value(value: Any, evaluation: Evaluation) -> Any:
    if isinstance(value, str):
        return _evaluate_text(value, evaluation)
    if isinstance(value, Mapping):
        return {key: _evaluate_value(item, evaluation) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_evaluate_value(item, evaluation) for item in value]
    return value


def evaluate(
    value: Any,
    context: Mapping[str, Any],
    *,
    deps: DependencyState | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Any:
    """Evaluate every expression in ``value`` (a string, or dicts and lists of them).

    A string that is one whole expression becomes the expression's value (number, bool, None,
    list, dict — always JSON-compatible: datetimes become ISO strings); expressions inside
    longer text render as text (``true``/``false``, ``''`` for null, JSON for lists and objects).
    Dict keys are not evaluated. Raises ExpressionError naming the expression on any failure.
    ``deps`` makes the status functions (``success()`` …) available, as in a condition.
    """
    with evaluating(context, deps, limits) as evaluation:
        return _evaluate_value(value, evaluation)
