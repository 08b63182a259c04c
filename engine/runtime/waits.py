"""Resuming waiting steps: sleep's wake-up, approval's timeout, a child run's end."""

from __future__ import annotations

import contextlib

from django.utils import timezone

from engine.models import Run, RunStatus, StepRun, StepStatus
from engine.runtime.outcomes import Outcome, attempt_finish


def step_resume(*, step_run_id: int, attempt: int, skip_locked: bool = False) -> bool:
    """Finish a waiting attempt whose wait is over; do nothing if it is not over yet.

    Safe to call any number of times (the resume actor, the reconciler): the step must still
    be ``waiting`` at ``attempt``. Returns True when this call finished the attempt.
    """
    row = StepRun.objects.filter(pk=step_run_id, attempt=attempt, status=StepStatus.WAITING).first()
    if row is None:
        return False
    wait = row.wait or {}
    kind = wait.get("kind")
    now = timezone.now()
    child = None
    if kind == "sleep":
        if row.wake_at is not None and row.wake_at > now:
            return False  # early: a duplicate; the delayed message is still on its way
        outcome = Outcome(ok=True, outputs=wait.get("outputs") or {})
        return _finish(row, attempt, outcome, skip_locked)
    if kind == "workflow":
        child = Run.objects.filter(pk=wait.get("child_run")).select_related("workflow").first()
        if child is not None and child.is_finished:
            if child.status == RunStatus.SUCCEEDED:
                outcome = Outcome(ok=True, outputs=child.outputs or {})
            else:
                detail = f": {child.error}" if child.error else ""
                outcome = Outcome(
                    ok=False,
                    error=f"child run {child.pk} of '{child.workflow.name}' {child.status}{detail}",
                    permanent=True,
                )
            return _finish(row, attempt, outcome, skip_locked)
    if row.deadline_at is not None and row.deadline_at <= now:
        seconds = (row.deadline_at - (row.started_at or row.deadline_at)).total_seconds()
        what = "approval" if kind == "approval" else "waiting for the child run"
        outcome = Outcome(ok=False, error=f"{what} timed out after {seconds:g}s", permanent=True)
        finished = _finish(row, attempt, outcome, skip_locked)
        if finished and child is not None and not child.is_finished:
            from engine.errors import Conflict
            from engine.services.runs import run_cancel

            with contextlib.suppress(Conflict):
                run_cancel(run=child, reason="the parent step timed out")
        return finished
    return False


def _finish(row: StepRun, attempt: int, outcome: Outcome, skip_locked: bool) -> bool:
    return attempt_finish(
        row=row,
        attempt=attempt,
        outcome=outcome,
        from_status=StepStatus.WAITING,
        skip_locked=skip_locked,
    )
