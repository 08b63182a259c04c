"""Compile workflow YAML into a Plan: load, validate against the schema, check the meaning.

Every problem is collected and reported at once, each at its file:line:column. Beyond what the
schema checks, the compiler checks:

- `needs` and ``${{ steps.<id> }}`` name steps that exist (with a "did you mean");
- no step depends on itself, and the dependencies have no cycle (the cycle is named);
- expressions parse, and read only names that are set where they are (``item`` needs a
  for_each or matrix, ``result`` is only set in a step's `outputs`);
- cron lines, time zones and input defaults (``engine.dsl.inputs``);
- timeouts are longer than zero; `for_each` and `matrix` are not combined; `max_parallel` is
  only given to a fanned-out step; `runs_on` names a device or labels, not both.

Dependencies of a step are its `needs` plus every step read by its expressions (`with`, `if`,
`for_each`, `matrix`, `runs_on`, `env`, `outputs`).

`finally` steps run after the main graph, whatever happened. So:

- a main step may not depend on (or read) a finally step: finally steps have not run yet;
- a finally step may depend on other finally steps (they run in that order) and may read the
  outputs of main steps. Main steps have always finished when finally steps start, so they
  are not part of a finally step's ``needs`` in the Plan: a main step's failure must not skip
  the clean-up that follows it. Naming a main step in a finally step's `needs` is allowed
  and changes nothing.
- a step id is unique across `steps` and `finally`.

``engine.dsl.planning`` says how defaults apply when the Plan is built.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from engine.actions.registry import ActionRegistry
from engine.actions.registry import registry as default_registry
from engine.dsl.graph import find_cycles
from engine.dsl.inputs import input_problems, trigger_problems
from engine.dsl.loader import Document, load_yaml
from engine.dsl.plan import Plan
from engine.dsl.planning import SECTIONS, build_plan, mapping_of, seconds_of
from engine.dsl.references import (
    Reads,
    condition_reads,
    expression_strings,
    reads,
    unavailable_names,
)
from engine.dsl.schema import STEP_ID_PATTERN
from engine.dsl.validation import did_you_mean, schema_problems
from engine.errors import ExpressionError, Problem, WorkflowInvalid

_STEP_ID = re.compile(STEP_ID_PATTERN)
# Step keys whose values are evaluated at run time, in the order they are checked.
EXPRESSION_FIELDS = ("with", "for_each", "matrix", "runs_on", "env", "outputs")


def compile_workflow(
    text: str | bytes,
    *,
    filename: str = "workflow.yaml",
    registry: ActionRegistry | None = None,
) -> Plan:
    """Compile workflow YAML into a Plan.

    Raises ``WorkflowInvalid`` carrying every problem found (sorted by position), when the file
    does not load, does not match the schema, or does not make sense (see the module docstring).
    """
    plan, problems = _compile(text, filename, registry)
    if problems or plan is None:
        raise WorkflowInvalid(problems)
    return plan


def validate_workflow(
    text: str | bytes,
    *,
    filename: str = "workflow.yaml",
    registry: ActionRegistry | None = None,
) -> list[Problem]:
    """Every problem in workflow YAML, sorted by position; an empty list means it compiles."""
    return _compile(text, filename, registry)[1]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector, restoring it after.

    Compiling allocates a few objects per YAML value (200,000 for 5,000 steps) and frees
    none, so the collector would walk the growing heap again and again for nothing: pausing
    it makes a large compile ~15% faster. Reference counting still frees memory meanwhile.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _compile(
    text: str | bytes, filename: str, registry: ActionRegistry | None
) -> tuple[Plan | None, list[Problem]]:
    with _collector_paused():
        return _compile_all(text, filename, registry)


def _compile_all(
    text: str | bytes, filename: str, registry: ActionRegistry | None
) -> tuple[Plan | None, list[Problem]]:
    registry = default_registry if registry is None else registry
    try:
        document = load_yaml(text, filename=filename, strict=False)
    except WorkflowInvalid as invalid:
        return None, invalid.problems
    compilation = _Compilation(document, registry)
    problems = [
        *document.problems,
        *schema_problems(document, registry),
        *compilation.check(),
        *input_problems(document),
        *trigger_problems(document),
    ]
    if problems:
        return None, sorted(set(problems), key=_position)
    return build_plan(document, registry, compilation.needs), []


def _position(problem: Problem) -> tuple[str, int, int, str, str]:
    # The order WorkflowInvalid sorts in, so validate_workflow lists them the same way.
    return (problem.file, problem.line, problem.column, problem.path, problem.message)


class _Compilation:
    """The checks beyond the schema, for one loaded document.

    ``check`` fills ``needs`` (each step's dependencies), which the Plan is built from.
    """

    def __init__(self, document: Document, registry: ActionRegistry) -> None:
        self.document = document
        self.data = document.data
        self.registry = registry
        self.sections = {name: mapping_of(self.data.get(name)) for name in SECTIONS}
        self.main_ids = [k for k, v in self.sections["steps"].items() if isinstance(v, dict)]
        self.finally_ids = [k for k, v in self.sections["finally"].items() if isinstance(v, dict)]
        self.all_ids = set(self.main_ids) | set(self.finally_ids)
        # (section, step id) -> dependencies, in the order found
        self.needs: dict[tuple[str, str], list[str]] = {}
        self.problems: list[Problem] = []

    def problem(self, path: tuple, message: str, *, at_key: bool = False) -> None:
        self.problems.append(self.document.problem(path, message, at_key=at_key))

    def check(self) -> list[Problem]:
        main = set(self.main_ids)
        for step_id in self.finally_ids:
            if step_id in main:
                line = self.document.key_position(("steps", step_id))[0]
                self.problem(
                    ("finally", step_id),
                    f"the step id {step_id!r} is already used in steps (line {line})",
                    at_key=True,
                )
        for section in SECTIONS:
            for step_id, step in self.sections[section].items():
                if isinstance(step, dict):
                    self._check_step(section, step_id, step)
        self._check_workflow_expressions()
        self._check_durations()
        for section, ids in (("steps", self.main_ids), ("finally", self.finally_ids)):
            edges = {step_id: self.needs.get((section, step_id), []) for step_id in ids}
            for cycle in find_cycles(ids, edges):
                self.problem(
                    (section, cycle[0]), "dependency cycle: " + " → ".join(cycle), at_key=True
                )
        return self.problems

    def _check_step(self, section: str, step_id: str, step: dict[str, Any]) -> None:
        path = (section, step_id)
        found: dict[str, None] = {}
        needs = step.get("needs")
        # A need that is not even a step id is the schema's to report.
        if isinstance(needs, str) and _STEP_ID.match(needs):
            self._dependency(section, step_id, needs, (*path, "needs"), found, explicit=True)
        elif isinstance(needs, list):
            for index, need in enumerate(needs):
                if isinstance(need, str) and _STEP_ID.match(need):
                    where = (*path, "needs", index)
                    self._dependency(section, step_id, need, where, found, explicit=True)

        fan_out = "for_each" if "for_each" in step else "matrix" if "matrix" in step else None
        if isinstance(step.get("if"), (str, bool)):
            try:
                used = condition_reads(step["if"])
            except ExpressionError as error:
                self.problem((*path, "if"), error.message)
            else:
                self._reads(section, step_id, used, (*path, "if"), found, fan_out, False)
        for field in EXPRESSION_FIELDS:
            if field not in step:
                continue
            # The list to fan out over is evaluated before there is an item.
            context = None if field in ("for_each", "matrix") else fan_out
            for where, text in expression_strings(step[field], (*path, field)):
                try:
                    used = reads(text)
                except ExpressionError as error:
                    self.problem(where, error.message)
                    continue
                in_outputs = field == "outputs"
                self._reads(section, step_id, used, where, found, context, in_outputs)
        self.needs[section, step_id] = list(found)
        self._check_step_shape(path, step)

    def _reads(
        self,
        section: str,
        step_id: str,
        used: Reads,
        where: tuple,
        found: dict[str, None],
        fan_out: str | None,
        in_outputs: bool,
    ) -> None:
        for other in sorted(used.steps):
            if other == step_id and in_outputs:
                self.problem(where, "a step's outputs read its own result as `result`")
            else:
                self._dependency(section, step_id, other, where, found, explicit=False)
        for message in unavailable_names(used.names, fan_out=fan_out, in_outputs=in_outputs):
            self.problem(where, message)

    def _dependency(
        self,
        section: str,
        step_id: str,
        other: str,
        where: tuple,
        found: dict[str, None],
        *,
        explicit: bool,
    ) -> None:
        how = "needs" if explicit else "an expression reads"
        if other == step_id:
            self.problem(where, f"step {step_id!r} depends on itself ({how} it)")
        elif other not in self.all_ids:
            place = "in needs" if explicit else "in expression"
            hint = did_you_mean(other, [*self.main_ids, *self.finally_ids])
            self.problem(where, f"unknown step {other!r} {place}{hint}")
        elif section == "steps" and other in self.finally_ids and other not in self.main_ids:
            self.problem(
                where,
                f"{other!r} is a finally step: it runs after every step, so steps cannot "
                "depend on it",
            )
        elif section == "steps" or other in self.finally_ids:
            found[other] = None

    def _check_step_shape(self, path: tuple, step: dict[str, Any]) -> None:
        if "for_each" in step and "matrix" in step:
            self.problem((*path, "matrix"), "use for_each or matrix, not both", at_key=True)
        if "max_parallel" in step and "for_each" not in step and "matrix" not in step:
            self.problem(
                (*path, "max_parallel"),
                "max_parallel only applies to a step with for_each or matrix",
                at_key=True,
            )
        runs_on = step.get("runs_on")
        if isinstance(runs_on, dict) and "device" in runs_on and "labels" in runs_on:
            self.problem((*path, "runs_on"), "runs_on takes a device or labels, not both")

    def _check_workflow_expressions(self) -> None:
        """The expressions outside steps: env, defaults.runs_on and outputs."""
        places = (
            (("env",), self.data.get("env"), "the workflow's env is set before any step runs"),
            (
                ("defaults", "runs_on"),
                mapping_of(self.data.get("defaults")).get("runs_on"),
                "defaults apply to every step",
            ),
            (("outputs",), self.data.get("outputs"), None),
        )
        for path, value, no_steps in places:
            for where, text in expression_strings(value, path):
                try:
                    used = reads(text)
                except ExpressionError as error:
                    self.problem(where, error.message)
                    continue
                for other in sorted(used.steps):
                    if no_steps is not None:
                        self.problem(where, f"{no_steps}; it cannot read steps.{other}")
                    elif other not in self.all_ids:
                        hint = did_you_mean(other, [*self.main_ids, *self.finally_ids])
                        self.problem(where, f"unknown step {other!r} in expression{hint}")
                fan_out = "matrix" if path == ("defaults", "runs_on") else None
                for message in unavailable_names(used.names, fan_out=fan_out, in_outputs=False):
                    self.problem(where, message)

    def _check_durations(self) -> None:
        """Timeouts must be longer than zero (the schema accepts any duration ≥ 0)."""
        places = [("timeout",), ("defaults", "timeout")]
        for section in SECTIONS:
            places += [(section, step_id, "timeout") for step_id in self.sections[section]]
        for path in places:
            value: Any = self.data
            for part in path:
                value = mapping_of(value).get(part)
            if seconds_of(value) == 0:
                self.problem(path, "a timeout must be longer than 0")
