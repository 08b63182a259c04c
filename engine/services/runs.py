"""Runs: start, cancel, retry failed, re-run, approve. Messages leave only on commit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F

from engine.errors import Conflict, NotFound
from engine.models import (
    EventKind,
    Run,
    RunStatus,
    SkipReason,
    StepKind,
    StepRun,
    StepStatus,
    Trigger,
    WorkflowVersion,
)
from engine.runtime.advance import Advance
from engine.runtime.dispatch import RUN_TIMEOUT_ACTOR, Work
from engine.runtime.outcomes import Outcome, attempt_finish, lock_run
from engine.runtime.plans import run_plan
from engine.runtime.start import run_create
from engine.runtime.terminate import run_terminate
from engine.runtime.timeouts import cancel_children


def run_start(
    *,
    version: WorkflowVersion,
    inputs: dict[str, Any] | None = None,
    trigger: str = Trigger.MANUAL,
    user: AbstractBaseUser | None = None,
) -> Run:
    """Start a run of ``version``: validate inputs, write the run and its steps, queue the roots.

    Raises InputsInvalid (nothing written). The first messages leave when the transaction
    commits; call it inside your own ``atomic()`` to make the start part of a larger change.
    """
    return run_create(version=version, inputs=inputs or {}, trigger=trigger, user=user)


def run_cancel(*, run: Run, user: AbstractBaseUser | None = None, reason: str = "") -> Run:
    """Cancel a run: nothing new is dispatched, unfinished steps end ``cancelled``.

    Running shell steps are killed by their worker, which polls the step's status. Child runs
    are cancelled after the commit. Finally steps do not run. Raises Conflict if the run has
    finished already.
    """
    who = f" by {user.get_username()}" if user is not None and user.is_authenticated else ""
    error = f"cancelled{who}" + (f": {reason}" if reason else "")
    with transaction.atomic():
        locked = lock_run(run.pk)
        if locked is None:
            raise NotFound(f"no run {run.pk}")
        if locked.is_finished:
            raise Conflict(f"run {run.pk} has already {locked.status}")
        work = Work()
        advance = Advance(locked, work)
        children = run_terminate(
            advance, status=RunStatus.CANCELLED, error=error, kind=EventKind.RUN_CANCELLED
        )
        advance.save()
        if children:
            work.on_commit(lambda: cancel_children(children, "the parent run was cancelled"))
        work.commit()
    return locked


def run_retry(*, run: Run, user: AbstractBaseUser | None = None) -> Run:
    """ "Retry failed": run failed, cancelled and skipped-because-of-failure steps again.

    Same run: succeeded steps (and instances) keep their outputs; a fanned-out step re-runs
    only its unsuccessful instances; finally steps run again. The run's timeout starts over.
    Raises Conflict unless the run failed or was cancelled.
    """
    with transaction.atomic():
        locked = lock_run(run.pk)
        if locked is None:
            raise NotFound(f"no run {run.pk}")
        if locked.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
            raise Conflict(
                f"run {run.pk} is {locked.status}: only a failed or cancelled run can be retried"
            )
        work = Work()
        advance = Advance(locked, work)
        rp = advance.rp
        tops = {r.step_id: r for r in StepRun.objects.filter(run=locked, index__isnull=True)}
        reset = {
            sid
            for sid, r in tops.items()
            if r.is_finally
            or r.status in (StepStatus.FAILED, StepStatus.CANCELLED)
            or (r.status == StepStatus.SKIPPED and r.skip_reason == SkipReason.FAILURE)
        }
        rows = []
        for sid in reset:
            row, step = tops[sid], rp.step(sid)
            if row.kind == StepKind.GROUP and row.fanout_total is not None:
                redo = StepRun.objects.filter(parent=row).exclude(status=StepStatus.SUCCEEDED)
                redo.update(
                    status=StepStatus.PENDING,
                    error="",
                    outputs=None,
                    started_at=None,
                    finished_at=None,
                    max_attempts=F("attempt") + step.retry.max_attempts,
                )
                row.fanout_done = StepRun.objects.filter(
                    parent=row, status=StepStatus.SUCCEEDED
                ).count()
                row.fanout_failed = 0
                row.fanout_active = 0
            row.status = StepStatus.PENDING
            row.skip_reason = SkipReason.NONE
            row.error = ""
            row.outputs = None
            row.finished_at = None
            row.max_attempts = row.attempt + step.retry.max_attempts
            own = [n for n in step.needs if n in reset and rp.step(n).is_finally == step.is_finally]
            row.deps_left = len(own) + (1 if step.is_finally else 0)
            row.deps_blocked = sum(
                1
                for n in step.needs
                if n not in reset
                and rp.step(n).is_finally == step.is_finally
                and not _succeeded(tops[n], rp.step(n))
            )
            rows.append(row)
        StepRun.objects.bulk_update(
            rows,
            ["status", "skip_reason", "error", "outputs", "finished_at", "max_attempts",
             "deps_left", "deps_blocked", "fanout_done", "fanout_failed", "fanout_active"],
        )  # fmt: skip
        deadline = work.now + timedelta(seconds=rp.plan.timeout) if rp.plan.timeout else None
        advance._set_run(
            status=RunStatus.RUNNING,
            error="",
            outputs=None,
            finished_at=None,
            deadline_at=deadline,
            main_left=1,  # every finally step was reset behind the barrier
        )
        who = user.get_username() if user is not None and user.is_authenticated else ""
        work.event(
            locked.pk,
            EventKind.RUN_RETRIED,
            message=f"retried by {who}" if who else "",
            data={"steps": sorted(reset)},
        )
        if rp.plan.timeout:
            work.send(RUN_TIMEOUT_ACTOR, locked.pk, delay=rp.plan.timeout)
        advance.restart(rows)
        advance.save()
        work.commit()
    return locked


def _succeeded(row: StepRun, step: Any) -> bool:
    """Whether dependents count the finished ``row`` as a success (continue_on_error)."""
    return row.status == StepStatus.SUCCEEDED or (
        row.status == StepStatus.FAILED and step.continue_on_error
    )


def run_rerun(
    *, run: Run, from_step: str | None = None, user: AbstractBaseUser | None = None
) -> Run:
    """A new run of the same version with the same inputs, optionally from ``from_step``.

    With ``from_step``, that step and everything downstream of it run; every other main step
    is copied, finished, from ``run`` (its status and outputs), so the new run does not repeat
    it. Finally steps always run. Raises NotFound for an unknown step, Conflict if ``run`` is
    still going and steps would be copied.
    """
    reuse: dict[str, StepRun] = {}
    if from_step is not None:
        rp = run_plan(run.version_id)
        if from_step not in rp.plan.steps:
            raise NotFound(f"the workflow has no step '{from_step}'")
        if not run.is_finished:
            raise Conflict(f"run {run.pk} is {run.status}: re-run from a step once it finished")
        again = {from_step} | rp.descendants(from_step)
        old = StepRun.objects.filter(run=run, index__isnull=True, is_finally=False)
        reuse = {r.step_id: r for r in old if r.step_id not in again}
    return run_create(
        version_id=run.version_id,
        inputs=run.inputs,
        trigger=Trigger.RERUN,
        user=user,
        rerun_of=run,
        reuse=reuse,
    )


def step_approve(
    *, step_run: StepRun, user: AbstractBaseUser, approved: bool, comment: str = ""
) -> StepRun:
    """Approve or reject a step waiting for an approval; the run moves on at once.

    Approval succeeds the step (outputs: approved, approver, comment); rejection fails it
    (permanently, naming who rejected). Raises Conflict if the step is not waiting for an
    approval (already decided, timed out, cancelled).
    """
    row = StepRun.objects.filter(pk=step_run.pk).first()
    if row is None:
        raise NotFound(f"no step {step_run.pk}")
    if row.status != StepStatus.WAITING or (row.wait or {}).get("kind") != "approval":
        raise Conflict(f"step '{row.label}' is {row.status}, not waiting for an approval")
    who = user.get_username()
    detail = f": {comment}" if comment else ""
    if approved:
        outcome = Outcome(ok=True, outputs={"approved": True, "approver": who, "comment": comment})
        note = (EventKind.STEP_APPROVED, f"approved by {who}{detail}")
    else:
        outcome = Outcome(ok=False, error=f"rejected by {who}{detail}", permanent=True)
        note = (EventKind.STEP_REJECTED, f"rejected by {who}{detail}")
    if not attempt_finish(
        row=row, attempt=row.attempt, outcome=outcome, from_status=StepStatus.WAITING, note=note
    ):
        raise Conflict(f"step '{row.label}' is no longer waiting for an approval")
    row.refresh_from_db()
    return row
