"""The control actions: noop, fail, sleep, approval, workflow.

The last three never hold a worker thread: they return a ``Suspend``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from engine.errors import InputsInvalid, StepFailed

if TYPE_CHECKING:
    from engine.runtime.execute import StepCall
    from engine.runtime.outcomes import Suspend


def seconds_of(value: Any, *, what: str) -> float:
    """A duration given as seconds (a number) or as text such as ``90s``, ``5m``, ``1h30m``."""
    if isinstance(value, bool):
        raise StepFailed(f"{what}: not a duration: {value!r}", permanent=True)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        from engine.dsl.durations import parse_duration

        try:
            seconds = parse_duration(str(value))
        except Exception as exc:
            raise StepFailed(f"{what}: {exc}", permanent=True) from None
    if seconds < 0:
        raise StepFailed(f"{what}: a duration cannot be negative", permanent=True)
    return seconds


def noop(call: StepCall) -> dict[str, Any]:
    """Does nothing; its outputs are its evaluated `with`."""
    return dict(call.with_)


def fail(call: StepCall) -> None:
    """Fails the step with `message` (permanently: retrying a deliberate failure is pointless)."""
    raise StepFailed(str(call.with_.get("message") or "failed by a `fail` step"), permanent=True)


def sleep(call: StepCall) -> Suspend:
    """Waits `duration` without holding a worker thread (a delayed message wakes the step)."""
    from engine.runtime.outcomes import Suspend

    seconds = seconds_of(call.with_.get("duration", 0), what="duration")
    return Suspend(
        kind="sleep",
        wake_at=call.started_at + timedelta(seconds=seconds),
        outputs={"slept": seconds},
    )


def approval(call: StepCall) -> Suspend:
    """Waits until someone approves or rejects the step (``step_approve``), or `timeout`."""
    from engine.runtime.outcomes import Suspend

    timeout = call.with_.get("timeout", call.step.timeout)
    deadline = None
    if timeout is not None:
        deadline = call.started_at + timedelta(seconds=seconds_of(timeout, what="timeout"))
    data = {"message": str(call.with_.get("message", "")), "approvers": call.with_.get("approvers")}
    return Suspend(kind="approval", deadline_at=deadline, data=data)


def workflow(call: StepCall) -> Suspend | dict[str, Any]:
    """Starts a run of the latest version of another workflow and waits for its end.

    The child's outputs become the step's outputs; its failure fails the step. The child run
    is created with the step's suspension, in the same transaction. With `wait: false` the step
    succeeds at once with the child's ``run_id``.
    """
    from engine.models import Workflow
    from engine.runtime.outcomes import Suspend
    from engine.runtime.plans import run_plan
    from engine.runtime.start import inputs_validate

    name = call.with_.get("workflow") or call.with_.get("name")
    inputs = call.with_.get("inputs") or {}
    found = Workflow.objects.filter(name=name).first()
    version = found.latest_version if found is not None else None
    if version is None:
        raise StepFailed(f"no workflow named {name!r} (or it has no version)", permanent=True)
    try:
        values = inputs_validate(run_plan(version.pk, version.plan).plan, inputs)
    except InputsInvalid as exc:
        raise StepFailed(f"inputs of '{name}': {exc.message}", permanent=True) from None
    if call.with_.get("wait") is False:  # fire and forget: the child runs on its own
        from engine.runtime.start import run_create

        child = run_create(version=version, inputs=values, trigger="workflow")
        return {"run_id": child.pk, "workflow": name, "version": version.number}
    deadline = None
    if call.step.timeout:
        deadline = call.started_at + timedelta(seconds=call.step.timeout)
    return Suspend(
        kind="workflow",
        deadline_at=deadline,
        data={"workflow": name, "version": version.number},
        child=(version.pk, values),
    )
