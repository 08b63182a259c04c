"""A step's ``if``: the GitHub Actions rule for status functions and implicit ``success()``.

Status functions, for a step whose dependencies ended as described by ``DependencyState``:

======================================  =========  =========  ===========  ========  ===========
dependencies                            success()  failure()  cancelled()  always()  no status fn
======================================  =========  =========  ===========  ========  ===========
all succeeded (or none)                 true       false      false        true      condition
one failed                              false      true       false        true      skipped
one skipped (its ``if`` was false)      false      false      false        true      skipped
one skipped because an ancestor failed  false      true       false        true      skipped
one cancelled                           false      false      true         true      skipped
the run is being cancelled              false      false      true         true      skipped
======================================  =========  =========  ===========  ========  ===========

"No status fn" is a condition that calls none of them: it means ``success() and (condition)``,
and the condition itself is not evaluated when ``success()`` is false (it would often read
outputs that a failed step never wrote). So a failed or skipped dependency skips the step
unless its ``if`` calls ``always()`` or ``failure()`` — or ``!cancelled()``, which GitHub
recommends over ``always()`` so that cancelling a run still stops it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.dsl.expressions.evaluation import evaluating, run_expression
from engine.dsl.expressions.syntax import OPEN, parse, scan, whole_expression
from engine.dsl.expressions.values import DEFAULT_LIMITS, Limits, truthy
from engine.errors import ExpressionError


@dataclass(frozen=True)
class DependencyState:
    """How the dependencies of a step ended, as the status functions of its ``if`` see them.

    ``any_failed``: a dependency failed, or was skipped because one of *its* ancestors failed
    (GitHub's ``failure()`` looks at all ancestors). A failure absorbed by ``continue_on_error``
    is a success here. ``any_skipped``: a direct dependency was skipped, for any reason.
    ``any_cancelled``: a dependency was cancelled. ``run_cancelled``: the run is being cancelled.
    """

    any_failed: bool = False
    any_skipped: bool = False
    any_cancelled: bool = False
    run_cancelled: bool = False

    @classmethod
    def from_statuses(
        cls, statuses: Iterable[str], *, run_cancelled: bool = False, ancestor_failed: bool = False
    ) -> DependencyState:
        """Build from the statuses of the direct dependencies (``failed``, ``skipped`` …)."""
        seen = set(statuses)
        return cls(
            any_failed=ancestor_failed or "failed" in seen,
            any_skipped="skipped" in seen,
            any_cancelled="cancelled" in seen,
            run_cancelled=run_cancelled,
        )

    @property
    def success(self) -> bool:
        """No dependency failed, was skipped or was cancelled, and the run is not cancelled."""
        return not (self.any_failed or self.any_skipped or self.any_cancelled or self.run_cancelled)

    @property
    def failure(self) -> bool:
        """A dependency or an ancestor failed (and the run is not being cancelled)."""
        return self.any_failed and not self.run_cancelled

    @property
    def cancelled(self) -> bool:
        """The run is being cancelled, or a dependency was cancelled."""
        return self.run_cancelled or self.any_cancelled

    @property
    def always(self) -> bool:
        return True


def condition_source(source: object) -> str:
    """The expression of an ``if``: written with or without ``${{ }}``; empty means success().

    Raises ExpressionError for text that mixes an expression with other text
    (``${{ a }} == b``), which GitHub would silently treat as an always-true string.
    """
    if source is None:
        return "success()"
    if isinstance(source, bool):
        return "true" if source else "false"
    if isinstance(source, (int, float)):
        return repr(source)
    if not isinstance(source, str):
        raise ExpressionError(f"a condition must be a string, not {type(source).__name__}")
    if not source.strip():
        return "success()"
    if OPEN not in source:
        return source.strip()
    whole = whole_expression(source)
    if whole is None:
        count = len(scan(source))
        raise ExpressionError(
            f"a condition must be one expression, written with or without ${{{{ }}}}; this one "
            f"has {'text around it' if count == 1 else f'{count} expressions'}: {source!r}",
            details={"condition": source},
        )
    return whole.source


def condition_expression(source: object) -> str:
    """The ``if`` as a ``${{ … }}`` string, for ``check_syntax`` and ``referenced_steps``."""
    return f"${{{{ {condition_source(source)} }}}}"


def check_condition(source: object) -> None:
    """Raise ExpressionError if an ``if`` does not parse (compile time; cached and fast)."""
    parse(condition_source(source))


def uses_status_function(source: object) -> bool:
    """Whether the condition calls ``always()``, ``success()``, ``failure()`` or ``cancelled()``."""
    return parse(condition_source(source)).uses_status_function


def evaluate_condition(
    source: str | None,
    context: Mapping[str, Any],
    *,
    deps: DependencyState,
    limits: Limits = DEFAULT_LIMITS,
) -> bool:
    """Whether a step with this ``if`` runs, following the GitHub Actions rule (module docstring).

    The value is judged by GitHub's truthiness: false, 0, NaN, '' and null are false; anything
    else (including ``'false'``, ``[]`` and ``{}``) is true. Raises ExpressionError.
    """
    expression = condition_source(source)
    if not parse(expression).uses_status_function and not deps.success:
        return False
    with evaluating(context, deps, limits):
        return truthy(run_expression(expression))
