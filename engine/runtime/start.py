"""Creating a run: validate its inputs, write it and its steps, queue what is ready."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from jsonschema import Draft202012Validator, FormatChecker

from engine.dsl.plan import Plan
from engine.errors import InputsInvalid
from engine.models import EventKind, Run, StepRun, Trigger, WorkflowVersion
from engine.runtime.advance import Advance
from engine.runtime.dispatch import RUN_TIMEOUT_ACTOR, Work
from engine.runtime.plans import run_plan


def inputs_validate(plan: Plan, inputs: dict[str, Any]) -> dict[str, Any]:
    """The run's inputs with defaults applied. Raises InputsInvalid listing every problem."""
    if not isinstance(inputs, dict):
        raise InputsInvalid("inputs must be an object")
    problems: list[str] = []
    for name in sorted(set(inputs) - set(plan.inputs)):
        known = ", ".join(sorted(plan.inputs)) or "none"
        problems.append(f"{name}: unknown input (declared: {known})")
    values: dict[str, Any] = {}
    for name, spec in plan.inputs.items():
        if name in inputs:
            value = inputs[name]
        elif not spec.required:
            if spec.default is None:
                continue
            value = spec.default
        else:
            problems.append(f"{name}: required")
            continue
        validator = Draft202012Validator(spec.schema, format_checker=FormatChecker())
        for error in validator.iter_errors(value):
            problems.append(f"{name}: {error.message}")
        values[name] = value
    if problems:
        raise InputsInvalid("; ".join(problems), details=problems)
    return values


def run_create(
    *,
    version: WorkflowVersion | None = None,
    version_id: int | None = None,
    inputs: dict[str, Any],
    trigger: str = Trigger.MANUAL,
    user: AbstractBaseUser | None = None,
    parent_step: StepRun | None = None,
    rerun_of: Run | None = None,
    work: Work | None = None,
    reuse: dict[str, StepRun] | None = None,
) -> Run:
    """Create a run of a version and queue its first steps (messages leave on commit).

    Raises InputsInvalid before writing anything. ``work`` joins an enclosing unit of work
    (the caller commits it); ``reuse`` maps step ids to finished steps of an earlier run whose
    results the new run copies instead of running them (see ``run_rerun``).
    """
    if version is None:
        version = WorkflowVersion.objects.get(pk=version_id)
    rp = run_plan(version.pk, version.plan)
    values = inputs_validate(rp.plan, inputs)
    own_work = work is None
    work = work or Work()
    with transaction.atomic():
        run = Run.objects.create(
            workflow_id=version.workflow_id,
            version=version,
            inputs=values,
            trigger=Trigger.WORKFLOW if parent_step is not None else trigger,
            created_by=user if user is not None and user.is_authenticated else None,
            parent_step=parent_step,
            rerun_of=rerun_of,
            deadline_at=work.now + timedelta(seconds=rp.plan.timeout) if rp.plan.timeout else None,
        )
        work.event(run.pk, EventKind.RUN_QUEUED, data={"trigger": run.trigger})
        advance = Advance(run, work)
        if reuse:
            advance.reused = reuse
        advance.create_steps()
        advance.save()
        if rp.plan.timeout:
            work.send(RUN_TIMEOUT_ACTOR, run.pk, delay=rp.plan.timeout)
        if own_work:
            work.commit()
    return run
