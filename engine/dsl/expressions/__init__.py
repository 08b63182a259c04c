"""``${{ … }}`` expressions: finding and checking them at compile time, evaluating them at run time.

Compile time (cached, no code generated): ``find_expressions``, ``is_expression``,
``check_syntax``, ``referenced_steps``, ``condition_expression``, ``check_condition``,
``uses_status_function``. Run time: ``evaluate``, ``evaluate_condition``, ``mask_secrets``.
Expressions are Jinja2 expressions run in a sandbox; ``sandbox`` explains the security and the
limits, ``conditions`` the status-function rule.
"""

from __future__ import annotations

from engine.dsl.expressions.conditions import (
    DependencyState,
    check_condition,
    condition_expression,
    condition_source,
    evaluate_condition,
    uses_status_function,
)
from engine.dsl.expressions.evaluation import evaluate
from engine.dsl.expressions.masking import MASK, mask_secrets, mask_secrets_in
from engine.dsl.expressions.syntax import (
    MAX_SOURCE_LENGTH,
    check_syntax,
    contains_expression,
    find_expressions,
    is_expression,
    iter_strings,
    referenced_steps,
)
from engine.dsl.expressions.values import (
    CONTEXT_NAMES,
    DEFAULT_LIMITS,
    STATUS_FUNCTIONS,
    Limits,
    truthy,
)

__all__ = [
    "CONTEXT_NAMES",
    "DEFAULT_LIMITS",
    "MASK",
    "MAX_SOURCE_LENGTH",
    "STATUS_FUNCTIONS",
    "DependencyState",
    "Limits",
    "check_condition",
    "check_syntax",
    "condition_expression",
    "condition_source",
    "contains_expression",
    "evaluate",
    "evaluate_condition",
    "find_expressions",
    "is_expression",
    "iter_strings",
    "mask_secrets",
    "mask_secrets_in",
    "referenced_steps",
    "truthy",
    "uses_status_function",
]
