"""Ending a run early (cancel, run timeout): stop dispatching, cancel what is in flight."""

from __future__ import annotations

import time

from django.db import transaction
from django.utils import timezone

from engine.models import (
    EventKind,
    Run,
    RunStatus,
    StepAttempt,
    StepKind,
    StepRun,
    StepStatus,
)
from engine.runtime.advance import Advance


def run_terminate(advance: Advance, *, status: str, error: str, kind: str) -> list[int]:
    """End the locked run now with ``status``; every unfinished step becomes ``cancelled``.

    Running attempts get an attempt row saying why; their workers notice the status change
    (the shell action polls it and kills its process group) and their results are discarded.
    Returns the ids of child runs the caller must cancel after the commit.
    """
    run, work = advance.run, advance.work
    now = work.now
    # A completion holds its step's row while it waits for the run's lock: skip such rows
    # (never wait for them while holding the run), and sweep them after the commit, when that
    # completion has seen the finished run and rolled back.
    ids = list(
        StepRun.objects.select_for_update(skip_locked=True)
        .filter(run=run, status__in=StepStatus.active())
        .values_list("id", flat=True)
    )
    active = StepRun.objects.filter(pk__in=ids, status__in=StepStatus.active())
    work.on_commit(lambda: step_sweep(run_id=run.pk, error=error))
    in_flight = list(
        active.filter(status__in=(StepStatus.RUNNING, StepStatus.WAITING)).values(
            "id", "attempt", "worker", "started_at"
        )
    )
    StepAttempt.objects.bulk_create(
        [
            StepAttempt(
                step_id=r["id"],
                number=r["attempt"],
                status=StepStatus.CANCELLED,
                error=error,
                worker=r["worker"],
                started_at=r["started_at"],
                finished_at=now,
            )
            for r in in_flight
        ],
        ignore_conflicts=True,
    )
    # Pending instances are many and never started: one event for their group is enough.
    noted = active.exclude(kind=StepKind.INSTANCE, status=StepStatus.PENDING)
    for pk, attempt in noted.values_list("id", "attempt"):
        work.event(
            run.pk, EventKind.STEP_CANCELLED, step_id=pk, attempt=attempt or None, message=error
        )
    active.update(status=StepStatus.CANCELLED, error=error, finished_at=now)
    children = list(
        Run.objects.filter(
            parent_step__run=run, status__in=(RunStatus.QUEUED, RunStatus.RUNNING)
        ).values_list("id", flat=True)
    )
    if kind != EventKind.RUN_CANCELLED:  # finish_run records that one itself
        work.event(run.pk, kind, message=error)
    advance.finish_run(status=status, error=error)
    return children


def step_sweep(*, run_id: int, error: str) -> int:
    """Cancel what is still unfinished in a finished run. Returns how many steps it cancelled.

    No run lock, and it never waits for a row lock: the one-statement completions do not lock
    the run, so one that read the run as active just before it ended may hold its step and the
    dependents it queues; waiting for them while holding rows they want could deadlock. So it
    cancels with ``SKIP LOCKED`` and goes again until nothing is unfinished (those completions
    last one statement; a step queued in the race is cancelled here and its message loses the
    claim, which refuses finished runs)."""
    rows = StepRun.objects.filter(
        run_id=run_id, run__status__in=RunStatus.finished(), status__in=StepStatus.active()
    )
    total = 0
    for _ in range(SWEEP_ROUNDS):
        ids = rows.select_for_update(skip_locked=True, of=("self",)).values("id")
        with transaction.atomic():
            total += StepRun.objects.filter(pk__in=ids, status__in=StepStatus.active()).update(
                status=StepStatus.CANCELLED, error=error, finished_at=timezone.now()
            )
        if not rows.exists():
            return total
        time.sleep(0.01)
    return total + rows.update(status=StepStatus.CANCELLED, error=error, finished_at=timezone.now())


SWEEP_ROUNDS = 500  # of 10 ms each; then it waits for the rows like any update
