"""The one error hierarchy of Flowyard.

Pure Python (no Django), so the language core in ``engine/dsl`` can raise these too.
The API turns every ``FlowyardError`` into ``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


class FlowyardError(Exception):
    """Base of every error Flowyard raises on purpose."""

    code = "flowyard_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in a workflow file, located by line and column (both 1-based)."""

    line: int
    column: int
    path: str  # dotted location in the document, e.g. "steps.build.with.url"; "" for the root
    message: str
    file: str = "workflow.yaml"

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: {where}{self.message}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class WorkflowInvalid(FlowyardError):
    """A workflow file did not load, validate or compile. Carries every problem found."""

    code = "workflow_invalid"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(
            problems, key=lambda p: (p.file, p.line, p.column, p.path, p.message)
        )
        super().__init__(
            "\n".join(str(p) for p in self.problems),
            details=[p.as_dict() for p in self.problems],
        )


class ExpressionError(FlowyardError):
    """An expression failed to parse or to evaluate (sandbox violation, limit, bad reference)."""

    code = "expression_error"


class InputsInvalid(FlowyardError):
    """The inputs given to a run do not match the workflow's declared inputs."""

    code = "inputs_invalid"


class NotFound(FlowyardError):
    code = "not_found"


class Conflict(FlowyardError):
    """The operation is not allowed in the object's current state (e.g. cancel a finished run)."""

    code = "conflict"


class StepFailed(FlowyardError):
    """An action failed. Permanent failures are not retried; transient ones follow retry rules."""

    code = "step_failed"

    def __init__(self, message: str, *, permanent: bool = False, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.permanent = permanent
