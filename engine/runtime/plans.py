"""Compiled plans with their reverse graph, cached per version (versions never change)."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from engine.dsl.plan import Plan, StepPlan


@dataclass(frozen=True)
class RunPlan:
    """A Plan plus what the advance logic asks of it on every completion."""

    plan: Plan
    dependents: dict[str, tuple[str, ...]] = field(default_factory=dict)

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

    def descendants(self, step_id: str) -> set[str]:
        seen: set[str] = set()
        todo = [step_id]
        while todo:
            for dep in self.dependents.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen


_cache: dict[int, RunPlan] = {}
_lock = threading.Lock()


def run_plan(version_id: int, plan_data: dict | None = None) -> RunPlan:
    """The RunPlan of a WorkflowVersion, loading the version only on a cache miss."""
    cached = _cache.get(version_id)
    if cached is not None:
        return cached
    if plan_data is None:
        from engine.models import WorkflowVersion

        plan_data = WorkflowVersion.objects.values_list("plan", flat=True).get(pk=version_id)
    built = RunPlan.build(Plan.from_dict(plan_data))
    with _lock:
        if len(_cache) > 512:  # a long-lived worker sees many versions; keep memory bounded
            _cache.clear()
        _cache[version_id] = built
    return built
