"""Engine retries counted in the database; claims make duplicate messages harmless."""

from __future__ import annotations

import time

import dramatiq

from engine.models import EventKind, RunEvent, RunStatus, StepAttempt, StepStatus
from engine.runtime.embedded import run_wait
from engine.runtime.execute import step_execute
from tests.engine.runtime.builders import plan, step
from tests.engine.runtime.conftest import steps_of


def test_a_retry_with_backoff_records_each_attempts_error(start, run_to_end):
    flow = plan(
        "flaky",
        step(
            "try",
            "shell",
            with_={"run": 'echo "attempt $FLOWYARD_ATTEMPT" >&2; exit 3'},
            retry={"max_attempts": 3, "delay": 0.2, "backoff": "exponential"},
        ),
    )
    run = run_to_end(start(flow))
    tried = steps_of(run)["try"]
    assert tried.status == StepStatus.FAILED
    assert tried.attempt == 3
    attempts = list(StepAttempt.objects.filter(step=tried).order_by("number"))
    assert [(a.number, a.status) for a in attempts] == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert [a.error for a in attempts] == [f"exit code 3: attempt {n}" for n in (1, 2, 3)]
    # Exponential backoff: 0.2 s then 0.4 s between attempts.
    assert (attempts[1].started_at - attempts[0].finished_at).total_seconds() >= 0.19
    assert (attempts[2].started_at - attempts[1].finished_at).total_seconds() >= 0.39
    assert RunEvent.objects.filter(run=run, kind=EventKind.STEP_RETRYING).count() == 2
    assert run.error == "step 'try' failed: exit code 3: attempt 3"


def test_a_retry_that_succeeds_keeps_the_earlier_failure(start, run_to_end, tmp_path):
    marker = tmp_path / "second"
    flow = plan(
        "second-time",
        step(
            "try",
            "shell",
            retry={"max_attempts": 2},
            with_={"run": f"test -e {marker} || {{ touch {marker}; exit 1; }}"},
        ),
    )
    run = run_to_end(start(flow))
    tried = steps_of(run)["try"]
    assert run.status == RunStatus.SUCCEEDED
    assert list(StepAttempt.objects.filter(step=tried).values_list("status", flat=True)) == [
        "failed",
        "succeeded",
    ]


def test_a_permanent_failure_is_not_retried(start, run_to_end):
    run = run_to_end(start(plan("permanent", step("f", "fail", retry={"max_attempts": 5}))))
    assert steps_of(run)["f"].attempt == 1
    assert StepAttempt.objects.filter(step__run=run).count() == 1


def test_a_duplicate_message_is_a_no_op(start, worker):
    run = start(plan("dupe", step("a", with_={"x": 1}), step("b", needs=["a"])))
    run = run_wait(run)
    a = steps_of(run)["a"]
    # The broker delivers the same message again, after the step finished.
    step_execute(step_run_id=a.pk, attempt=1)
    dramatiq.get_broker().get_actor("flowyard_noop").send(a.pk, 1)
    deadline = time.monotonic() + 10
    dropped = RunEvent.objects.filter(run=run, step=a, kind=EventKind.MESSAGE_DROPPED)
    while dropped.count() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    a.refresh_from_db()
    assert a.status == StepStatus.SUCCEEDED
    assert StepAttempt.objects.filter(step=a).count() == 1
    assert dropped.count() == 2
    assert "lost its claim: the step is succeeded" in dropped.first().message
    assert steps_of(run)["b"].attempt == 1
