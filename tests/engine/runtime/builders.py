"""Build Plans directly from the dataclasses, as the compiler would, for runtime tests."""

from __future__ import annotations

from typing import Any

from engine.dsl.plan import Plan, RetryPolicy, StepPlan


def step(
    id: str, uses: str = "noop", *, needs: tuple[str, ...] | list[str] = (), **options: Any
) -> StepPlan:
    """A StepPlan with the actor/queue the registry gives ``uses``."""
    if "retry" in options and isinstance(options["retry"], dict):
        options["retry"] = RetryPolicy(**options["retry"])
    if "with_" not in options and "with" in options:
        options["with_"] = options.pop("with")
    return StepPlan(
        id=id,
        uses=uses,
        actor="flowyard_" + uses.replace(".", "_").replace("-", "_"),
        queue="flowyard.default",
        time_limit_ms=options.pop("time_limit_ms", 60_000),
        needs=tuple(sorted(needs)),
        **options,
    )


def plan(
    name: str, *steps: StepPlan, finally_steps: tuple[StepPlan, ...] = (), **options: Any
) -> Plan:
    final = {s.id: StepPlan(**{**s.__dict__, "is_finally": True}) for s in finally_steps}
    return Plan(name=name, steps={s.id: s for s in steps}, finally_steps=final, **options)
