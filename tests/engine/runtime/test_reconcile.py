"""The reconciler recovers lost messages and lost workers, and fires overdue timers."""

from __future__ import annotations

from datetime import timedelta

import dramatiq
from django.utils import timezone

from engine.models import EventKind, RunEvent, RunStatus, StepAttempt, StepRun, StepStatus
from engine.runtime.embedded import run_wait
from engine.runtime.reconcile import reconcile
from tests.engine.runtime.builders import plan, step
from tests.engine.runtime.conftest import steps_of


def test_a_queued_step_whose_message_was_lost_is_sent_again(start, transactional_db):
    # No worker yet: the message sits in the stub broker, and the broker then loses it.
    run = start(plan("lost", step("a")))
    dramatiq.get_broker().flush_all()
    StepRun.objects.filter(run=run).update(queued_at=timezone.now() - timedelta(hours=1))
    assert reconcile().resent == 1
    from engine.runtime.embedded import EmbeddedWorker

    with EmbeddedWorker(threads=1, reconcile_every=None, poll_ms=20):
        run = run_wait(run)
    assert run.status == RunStatus.SUCCEEDED
    assert steps_of(run)["a"].attempt == 1  # a message that never ran uses no attempt
    assert RunEvent.objects.filter(run=run, kind=EventKind.MESSAGE_RESENT).count() == 1


def test_a_step_on_a_dead_worker_gets_a_new_attempt(start, worker):
    run = start(
        plan(
            "crash",
            step("a", "sleep", with_={"duration": 0}),
            step("b", needs=["a"], retry={"max_attempts": 2}),
        )
    )
    run_wait(run)
    b = steps_of(run)["b"]
    # Pretend b's first attempt was claimed by a worker that then died (no heartbeat row).
    from engine.models import Run

    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, finished_at=None)
    StepRun.objects.filter(pk=b.pk).update(
        status=StepStatus.RUNNING,
        attempt=1,
        worker="gone:1:x",
        started_at=timezone.now() - timedelta(seconds=45),
    )
    StepAttempt.objects.filter(step=b).delete()
    Run.objects.filter(pk=run.pk).update(main_left=1)
    assert reconcile().lost == 1
    run = run_wait(run)
    assert run.status == RunStatus.SUCCEEDED
    b.refresh_from_db()
    assert b.attempt == 2
    first = StepAttempt.objects.get(step=b, number=1)
    assert first.error == "worker gone:1:x stopped sending heartbeats (attempt lost)"


def test_an_overdue_run_timeout_is_fired_by_the_reconciler(start, transactional_db):
    run = start(plan("overdue", step("a"), timeout=3600))
    from engine.models import Run

    Run.objects.filter(pk=run.pk).update(deadline_at=timezone.now() - timedelta(minutes=1))
    assert reconcile().timed_out == 1
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error == "run timed out after 3600s"
    assert steps_of(run)["a"].status == StepStatus.CANCELLED


def test_a_run_whose_last_completion_did_not_settle_is_ended_by_the_reconciler(start, worker):
    from engine.models import Run
    from engine.runtime.settle import settle

    run = run_wait(start(plan("unsettled", step("a"), step("b", needs=["a"]))))
    assert run.status == RunStatus.SUCCEEDED
    # Pretend the worker died between b's commit and its settle check: nothing is left, yet
    # the run is still running.
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, finished_at=None)
    RunEvent.objects.filter(run=run, kind=EventKind.RUN_SUCCEEDED).delete()
    assert reconcile().settled == 1
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    # Settling is idempotent: a second settle (a racing completion, the next pass) does nothing.
    assert settle(run.pk) is False
    assert reconcile().settled == 0
    assert RunEvent.objects.filter(run=run, kind=EventKind.RUN_SUCCEEDED).count() == 1
