"""Recording the end of an attempt (or its suspension) and advancing the run, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction

from engine.models import EventKind, Run, SkipReason, StepAttempt, StepKind, StepRun, StepStatus
from engine.runtime import fastpath, sql
from engine.runtime.advance import RESUME_ACTOR, Advance
from engine.runtime.context import step_view
from engine.runtime.dispatch import Work
from engine.runtime.plans import run_plan


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended. A failure that is not ``permanent`` follows the retry policy."""

    ok: bool
    outputs: Any = None
    error: str = ""
    permanent: bool = False
    skipped: bool = False  # an instance whose per-item `if` was false (ok is True)


@dataclass(frozen=True)
class Suspend:
    """Returned by a wait action: park the step without holding a worker thread.

    ``kind`` says what resumes it: "sleep" (``wake_at``), "approval" (``step_approve`` or the
    ``deadline_at``), "workflow" (the end of the child run started from ``child``).
    """

    kind: str
    wake_at: datetime | None = None
    deadline_at: datetime | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    child: tuple[int, dict[str, Any]] | None = None  # (WorkflowVersion id, validated inputs)


def lock_run(run_id: int, *, skip_locked: bool = False) -> Run | None:
    """The Run row, locked until the transaction ends (None if missing, or locked elsewhere
    with ``skip_locked``). See ``sql.lock_run``."""
    return sql.lock_run(run_id, skip_locked=skip_locked)


def _run_cached(row: StepRun) -> bool:
    return StepRun._meta.get_field("run").is_cached(row)


def attempt_finish(
    *,
    row: StepRun,
    attempt: int,
    outcome: Outcome,
    from_status: str = StepStatus.RUNNING,
    skip_locked: bool = False,
    note: tuple[str, str] | None = None,
) -> bool:
    """Record ``outcome`` for ``attempt`` of ``row`` and advance the run.

    One transaction: conditionally update the step (it must still be in ``from_status`` at
    ``attempt``) and write its attempt row, lock the run, then retry the step or release its
    dependents, and write the events. Returns False, changing nothing, when the attempt had
    lost its claim (cancelled run, reconciler took over, duplicate) or the run was locked
    elsewhere with ``skip_locked``.
    ``note`` is an extra (EventKind, message) to record, e.g. an approval.
    """
    rp = run_plan(row.run.version_id) if _run_cached(row) else None
    if rp is not None and not connection.in_atomic_block:
        done = _finish_alone(row, attempt, outcome, from_status, note, rp)
        if done is not None:
            return done
    with transaction.atomic():
        work = Work()
        now = work.now
        if rp is None:
            rp = run_plan(Run.objects.values_list("version_id", flat=True).get(pk=row.run_id))
        step = rp.step(row.step_id)
        retry_delay: float | None = None
        if outcome.skipped:
            fields: dict[str, Any] = {
                "status": StepStatus.SKIPPED,
                "skip_reason": SkipReason.CONDITION,
                "error": outcome.error,
                "finished_at": now,
            }
        elif outcome.ok:
            fields = {
                "status": StepStatus.SUCCEEDED,
                "outputs": outcome.outputs,
                "error": "",
                "finished_at": now,
            }
        elif not outcome.permanent and attempt < row.max_attempts:
            retry_delay = step.retry.delay_after(attempt)
            fields = {
                "status": StepStatus.RETRYING if retry_delay > 0 else StepStatus.QUEUED,
                "attempt": attempt + 1,
                "error": outcome.error,
                "queued_at": now,
                "wake_at": now + timedelta(seconds=retry_delay),
            }
        else:
            fields = {"status": StepStatus.FAILED, "error": outcome.error, "finished_at": now}
        if fastpath.applies(row, from_status, retry_delay is not None, note):
            return _finish_fast(row, attempt, fields, rp, step, work)
        # The step's own row first (its lock is ours while we own the attempt), the run's lock
        # second: the critical section every completion of the run waits for stays short.
        # Whoever holds the run lock never waits for a running step's row (see terminate).
        claimed = StepRun.objects.filter(pk=row.pk, status=from_status, attempt=attempt)
        if not claimed.update(**fields):
            return False
        sql.insert_rows(
            StepAttempt,
            [
                {
                    "step_id": row.pk,
                    "number": attempt,
                    "status": fields["status"] if outcome.ok else StepStatus.FAILED,
                    "error": outcome.error,
                    "worker": row.worker,
                    "device": "",
                    "started_at": row.started_at,
                    "finished_at": now,
                }
            ],
        )
        run = lock_run(row.run_id, skip_locked=skip_locked)
        if run is None or run.is_finished:
            # Cancelled or timed out meanwhile (its sweep cancels this step once we roll back),
            # or locked by another reconciler: change nothing.
            transaction.set_rollback(True)
            return False
        advance = Advance(run, work)
        for name, value in fields.items():
            setattr(row, name, value)
        if from_status == StepStatus.RUNNING and row.started_at:
            work.event(
                run.pk,
                EventKind.STEP_STARTED,
                step_id=row.pk,
                attempt=attempt,
                at=row.started_at,
                data={"worker": row.worker} if row.worker else None,
            )
        if note:
            work.event(run.pk, note[0], step_id=row.pk, attempt=attempt, message=note[1])
        if retry_delay is not None:
            work.event(
                run.pk,
                EventKind.STEP_RETRYING,
                step_id=row.pk,
                attempt=attempt,
                message=f"attempt {attempt} failed: {outcome.error}; "
                f"attempt {attempt + 1} in {retry_delay:.3g}s",
            )
            work.send_step(row.pk, attempt + 1, step, delay=retry_delay)
        else:
            kind = EventKind.STEP_SUCCEEDED if outcome.ok else EventKind.STEP_FAILED
            if outcome.skipped:
                kind = EventKind.STEP_SKIPPED
            work.event(run.pk, kind, step_id=row.pk, attempt=attempt, message=outcome.error)
            if row.kind == StepKind.INSTANCE:
                advance.instance_finished(row)
            else:
                advance.finished(row)
        advance.save()
        work.commit()
    return True


def _finish_alone(
    row: StepRun, attempt: int, outcome: Outcome, from_status: str, note: Any, rp: Any
) -> bool | None:
    """The common completion as one autocommitted statement (``fastpath.finish_alone``);
    None when it needs the transaction below (a retry, a follow-up, a finished run)."""
    if outcome.ok or outcome.permanent or attempt >= row.max_attempts:
        work = Work()
        if outcome.skipped:
            fields: dict[str, Any] = {"status": StepStatus.SKIPPED, "error": outcome.error,
                                      "skip_reason": SkipReason.CONDITION}  # fmt: skip
        elif outcome.ok:
            fields = {"status": StepStatus.SUCCEEDED, "outputs": outcome.outputs}
        else:
            fields = {"status": StepStatus.FAILED, "error": outcome.error}
        if fastpath.applies(row, from_status, False, note):
            try:
                return fastpath.finish_alone(
                    row=row, attempt=attempt, fields=fields, rp=rp, step=rp.step(row.step_id),
                    work=work,
                )  # fmt: skip
            except fastpath.NeedsTransaction:
                return None
    return None


def _finish_fast(
    row: StepRun, attempt: int, fields: dict[str, Any], rp: Any, step: Any, work: Work
) -> bool:
    """``attempt_finish`` through ``fastpath`` (inside its transaction)."""
    claimed, follow_up = fastpath.finish(
        row=row, attempt=attempt, fields=fields, rp=rp, step=step, work=work
    )
    if not claimed:
        transaction.set_rollback(True)
        return False
    if follow_up is not None:
        run = lock_run(row.run_id)  # the statement locked it already: no wait
        assert run is not None
        for name, value in fields.items():
            setattr(row, name, value)
        advance = Advance(run, work)
        advance.views[row.step_id] = step_view(
            {"status": row.status, "outputs": row.outputs, "error": row.error,
             "attempt": attempt, "skip_reason": row.skip_reason}
        )  # fmt: skip
        follow_up(advance)
        advance.save()
    work.commit()
    return True


def attempt_suspend(*, row: StepRun, attempt: int, suspend: Suspend) -> bool:
    """Park a running attempt as ``waiting`` (see ``Suspend``), in one transaction.

    A child run is created in the same transaction, so its end can never be missed. Returns
    False when the attempt had lost its claim.
    """
    from engine.runtime.start import run_create

    with transaction.atomic():
        work = Work()
        wait = {"kind": suspend.kind, "outputs": suspend.outputs, **suspend.data}
        claimed = StepRun.objects.filter(pk=row.pk, status=StepStatus.RUNNING, attempt=attempt)
        if not claimed.update(
            status=StepStatus.WAITING,
            wait=wait,
            wake_at=suspend.wake_at,
            deadline_at=suspend.deadline_at,
        ):
            return False
        run = lock_run(row.run_id)  # after the step's row: see attempt_finish
        if run is None or run.is_finished:
            transaction.set_rollback(True)
            return False
        row.status = StepStatus.WAITING
        if suspend.child is not None:
            version_id, inputs = suspend.child
            child = run_create(version_id=version_id, inputs=inputs, parent_step=row, work=work)
            wait["child_run"] = child.pk
            StepRun.objects.filter(pk=row.pk).update(wait=wait)
        work.event(
            run.pk, EventKind.STEP_STARTED, step_id=row.pk, attempt=attempt, at=row.started_at
        )
        work.event(
            run.pk,
            EventKind.STEP_WAITING,
            step_id=row.pk,
            attempt=attempt,
            message=suspend.kind,
            data=wait,
        )
        due = suspend.wake_at or suspend.deadline_at
        if due is not None:
            work.send(RESUME_ACTOR, row.pk, attempt, delay=(due - work.now).total_seconds())
        work.commit()
    return True
