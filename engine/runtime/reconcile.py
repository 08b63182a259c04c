"""The reconciler: find work the broker or a worker lost, and recover it.

``reconcile()`` is safe to run in several processes at once: candidates are re-checked under
``SELECT … FOR UPDATE SKIP LOCKED`` (a row another reconciler holds is left to it), and every
change is a conditional update, so the loser of a race changes nothing. On SQLite the locks
are no-ops and writes serialize, which is enough for the single-process embedded mode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.utils import timezone

from engine.models import EventKind, Run, RunStatus, StepRun, StepStatus, WorkerHeartbeat
from engine.runtime.dispatch import Work
from engine.runtime.outcomes import Outcome, attempt_finish
from engine.runtime.plans import run_plan
from engine.runtime.settle import settle
from engine.runtime.timeouts import run_timeout
from engine.runtime.waits import step_resume

logger = logging.getLogger("flowyard.runtime")


def _setting(name: str, default: float) -> float:
    return float(settings.FLOWYARD.get(name, default))


@dataclass
class Reconciled:
    """What one pass did, by kind of repair."""

    resent: int = 0  # queued / retrying steps whose message was lost, sent again
    lost: int = 0  # attempts on dead workers or past their deadline, failed (maybe retried)
    resumed: int = 0  # waiting steps whose wake-up or deadline passed, or whose child ended
    timed_out: int = 0  # runs past their timeout
    settled: int = 0  # runs whose last completion committed but did not settle (a crash)
    details: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.resent + self.lost + self.resumed + self.timed_out + self.settled


def reconcile(*, limit: int = 500) -> Reconciled:
    """One recovery pass. Handles at most ``limit`` rows of each kind; call it periodically.

    Settings (FLOWYARD): RECONCILE_QUEUED_SECONDS (300) before a queued step's message is
    sent again (the same attempt: a step that never ran does not use up an attempt);
    WORKER_STALE_SECONDS (30) without a heartbeat before a worker's running attempts are
    failed as lost (a new attempt if the retry policy allows); RECONCILE_GRACE_SECONDS (10)
    of lateness tolerated for timers before the reconciler fires them itself.
    """
    result = Reconciled()
    now = timezone.now()
    grace = timedelta(seconds=_setting("RECONCILE_GRACE_SECONDS", 10))
    _resend(result, now, grace, limit)
    _recover_running(result, now, grace, limit)
    _resume_waiting(result, now, grace, limit)
    for run_id in Run.objects.filter(
        status__in=(RunStatus.QUEUED, RunStatus.RUNNING), deadline_at__lt=now - grace
    ).values_list("id", flat=True)[:limit]:
        if run_timeout(run_id=run_id, skip_locked=True):
            result.timed_out += 1
    # A worker that died between a completion's commit and its settle check (see
    # engine.runtime.settle) leaves a run with nothing left that nobody ends: settle it.
    for run_id in Run.objects.filter(status__in=(RunStatus.QUEUED, RunStatus.RUNNING)).values_list(
        "id", flat=True
    )[:limit]:
        if settle(run_id, skip_locked=True):
            result.settled += 1
    if result.total:
        logger.info("reconciler: %s", result)
    return result


def _resend(result: Reconciled, now, grace: timedelta, limit: int) -> None:
    queued_after = timedelta(seconds=_setting("RECONCILE_QUEUED_SECONDS", 300))
    due = StepRun.objects.filter(
        Q(status=StepStatus.QUEUED, queued_at__lt=now - queued_after)
        | Q(status=StepStatus.RETRYING, wake_at__lt=now - grace)
    )
    with transaction.atomic():
        rows = list(
            due.select_for_update(skip_locked=True)
            .select_related("run")
            .only("id", "run_id", "step_id", "attempt", "status", "run__version_id")[:limit]
        )
        if not rows:
            return
        work = Work()
        StepRun.objects.filter(pk__in=[r.pk for r in rows]).update(queued_at=work.now)
        for row in rows:
            step = run_plan(row.run.version_id).step(row.step_id)
            work.send_step(row.pk, row.attempt, step)
            work.event(
                row.run_id,
                EventKind.MESSAGE_RESENT,
                step_id=row.pk,
                attempt=row.attempt,
                message=f"no worker claimed it; sent again ({row.status})",
            )
        work.commit()
    result.resent += len(rows)


def _recover_running(result: Reconciled, now, grace: timedelta, limit: int) -> None:
    stale = timedelta(seconds=_setting("WORKER_STALE_SECONDS", 30))
    live = WorkerHeartbeat.objects.filter(last_seen_at__gte=now - stale).values("worker_id")
    deadline = ExpressionWrapper(F("started_at") + F("timeout"), output_field=DateTimeField())
    lost = (
        StepRun.objects.filter(status=StepStatus.RUNNING)
        .alias(deadline=deadline)
        .filter(Q(deadline__lt=now - grace) | (Q(started_at__lt=now - stale) & ~Q(worker__in=live)))
    )
    for row in lost[:limit]:
        if row.timeout is not None and row.started_at + row.timeout < now - grace:
            seconds = (row.timeout or timedelta()).total_seconds()
            error = f"timed out after {seconds:g}s (the worker did not report back)"
        else:
            error = f"worker {row.worker or '?'} stopped sending heartbeats (attempt lost)"
        if attempt_finish(
            row=row,
            attempt=row.attempt,
            outcome=Outcome(ok=False, error=error),
            skip_locked=True,
            note=(EventKind.ATTEMPT_LOST, error),
        ):
            result.lost += 1


def _resume_waiting(result: Reconciled, now, grace: timedelta, limit: int) -> None:
    finished_children = Run.objects.filter(
        parent_step__isnull=False, status__in=RunStatus.finished()
    ).values("parent_step_id")
    due = StepRun.objects.filter(status=StepStatus.WAITING).filter(
        Q(wake_at__lt=now - grace) | Q(deadline_at__lt=now - grace) | Q(pk__in=finished_children)
    )
    for pk, attempt in due.values_list("id", "attempt")[:limit]:
        if step_resume(step_run_id=pk, attempt=attempt, skip_locked=True):
            result.resumed += 1
