"""The run timeout: end a run that outlived its `timeout` as failed."""

from __future__ import annotations

import contextlib

from django.db import transaction

from engine.models import EventKind, RunStatus
from engine.runtime.advance import Advance
from engine.runtime.dispatch import Work
from engine.runtime.outcomes import lock_run
from engine.runtime.terminate import run_terminate


def run_timeout(*, run_id: int, skip_locked: bool = False) -> bool:
    """Fail the run if its deadline has passed and it is still going; True if this call did.

    Idempotent (the timer message and the reconciler may both call it). Unfinished steps are
    cancelled, running shell steps killed; finally steps do not run.
    """
    children: list[int] = []
    with transaction.atomic():
        run = lock_run(run_id, skip_locked=skip_locked)
        work = Work()
        if run is None or run.is_finished or run.deadline_at is None or run.deadline_at > work.now:
            return False
        advance = Advance(run, work)
        seconds = advance.rp.plan.timeout or 0
        children = run_terminate(
            advance,
            status=RunStatus.FAILED,
            error=f"run timed out after {seconds:g}s",
            kind=EventKind.RUN_TIMED_OUT,
        )
        advance.save()
        work.on_commit(lambda: cancel_children(children, "the parent run timed out"))
        work.commit()
    return True


def cancel_children(run_ids: list[int], reason: str) -> None:
    """Cancel child runs (after the parent's commit; each in its own transaction)."""
    from engine.errors import Conflict
    from engine.models import Run
    from engine.services.runs import run_cancel

    for run in Run.objects.filter(pk__in=run_ids):
        with contextlib.suppress(Conflict):
            run_cancel(run=run, reason=reason)
