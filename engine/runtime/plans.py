"""Compiled plans with their reverse graph, cached per version (versions never change)."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from engine.dsl.expressions.syntax import iter_strings
from engine.dsl.plan import Plan, StepPlan
from engine.dsl.references import condition_reads, reads
from engine.errors import ExpressionError


@dataclass(frozen=True)
class RunPlan:
    """A Plan plus what the advance logic asks of it on every completion."""

    plan: Plan
    dependents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Memoised answers about steps (bounded by the plan's size).
    _reads_steps: dict[str, bool] = field(default_factory=dict, repr=False, compare=False)
    _released: dict[str, tuple] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, plan: Plan) -> RunPlan:
        dependents: dict[str, list[str]] = defaultdict(list)
        for step in (*plan.steps.values(), *plan.finally_steps.values()):
            for need in step.needs:
                dependents[need].append(step.id)
        return cls(plan=plan, dependents={k: tuple(v) for k, v in dependents.items()})

    @cached_property
    def all_steps(self) -> dict[str, StepPlan]:
        return {**self.plan.steps, **self.plan.finally_steps}

    @cached_property
    def plain_roots(self) -> frozenset[str]:
        """Main steps that are queued as they are inserted: no needs, no `if`, no fan-out."""
        return frozenset(
            s.id
            for s in self.plan.steps.values()
            if not s.needs and s.if_ is None and not s.fans_out
        )

    def step(self, step_id: str) -> StepPlan:
        return self.all_steps[step_id]

    def deps_left(self, step: StepPlan) -> int:
        """How many dependencies hold the step back at the start of a run.

        A finally step only counts its finally dependencies (main steps are finished by the
        time it may run) plus one for the barrier "the main graph is finished".
        """
        if step.is_finally:
            return sum(1 for n in step.needs if n in self.plan.finally_steps) + 1
        return len(step.needs)

    def visible(self, step: StepPlan) -> tuple[str, ...]:
        """The steps whose views ``steps.<id>`` shows to a step's expressions.

        A main step sees its dependencies. A finally step runs after the whole main graph, so
        it sees every main step, plus the finally steps it depends on.
        """
        if step.is_finally:
            return (*self.plan.steps, *step.needs)
        return step.needs

    def reads_steps(self, step: StepPlan) -> bool:
        """Whether any expression of the step (or the workflow's env) reads ``steps``."""
        found = self._reads_steps.get(step.id)
        if found is None:
            values = (step.with_, step.env, step.outputs, self.plan.env)
            found = any("steps" in _names(text) for text in iter_strings(values))
            if step.if_ is not None:
                found = found or "steps" in _names(step.if_, condition=True)
            self._reads_steps[step.id] = found
        return found

    def item_condition(self, step: StepPlan) -> bool:
        """Whether a fan-out step's ``if`` reads ``item``/``index``/``matrix``: it is then
        evaluated per instance, by the worker, instead of once for the group."""
        if not step.fans_out or step.if_ is None:
            return False
        try:
            names = condition_reads(step.if_).names
        except ExpressionError:
            return False  # the group-level evaluation reports it
        return bool(names & {"item", "index", "matrix"})

    def released(self, step_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(dependents, plain dependents) of a step in its own section. A plain dependent (no
        `if`, no fan-out, a main step) is queued in SQL once its dependencies all succeeded."""
        found = self._released.get(step_id)
        if found is None:
            finally_ = self.step(step_id).is_finally
            deps = tuple(
                d for d in self.dependents.get(step_id, ()) if self.step(d).is_finally == finally_
            )
            plain = tuple(
                d
                for d in deps
                if not self.step(d).is_finally
                and self.step(d).if_ is None
                and not self.step(d).fans_out
            )
            found = self._released[step_id] = (deps, plain)
        return found

    def descendants(self, step_id: str) -> set[str]:
        seen: set[str] = set()
        todo = [step_id]
        while todo:
            for dep in self.dependents.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen


def _names(text: str, *, condition: bool = False) -> frozenset[str]:
    try:
        return (condition_reads(text) if condition else reads(text)).names
    except ExpressionError:
        return frozenset({"steps"})  # unknown: load the views, the evaluation reports the error


_cache: dict[int, RunPlan] = {}
_lock = threading.Lock()


def run_plan(version_id: int, plan_data: dict | None = None) -> RunPlan:
    """The RunPlan of a WorkflowVersion, loading the version only on a cache miss."""
    cached = _cache.get(version_id)
    if cached is not None:
        return cached
    with _lock:  # the worker's threads all miss a new version at once: build it once
        cached = _cache.get(version_id)
        if cached is not None:
            return cached
        if plan_data is None:
            from engine.models import WorkflowVersion

            plan_data = WorkflowVersion.objects.values_list("plan", flat=True).get(pk=version_id)
        built = RunPlan.build(Plan.from_dict(plan_data))
        if len(_cache) > 512:  # a long-lived worker sees many versions; keep memory bounded
            _cache.clear()
        _cache[version_id] = built
    return built
