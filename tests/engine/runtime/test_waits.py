"""sleep, approval and child workflows wait without holding a worker thread."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from engine.errors import Conflict
from engine.models import Run, RunStatus, StepStatus, Trigger
from engine.runtime.embedded import run_wait
from engine.services import step_approve
from tests.engine.runtime.builders import plan, step
from tests.engine.runtime.conftest import steps_of


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def waiting_step(run, step_id):
    return (
        steps_of(run).get(step_id) if steps_of(run)[step_id].status == StepStatus.WAITING else None
    )


def test_sleep_waits_without_holding_the_worker(start, run_to_end, worker):
    flow = plan("sleepy", *[step(f"s{i}", "sleep", with_={"duration": "1s"}) for i in range(8)])
    began = time.monotonic()
    run = run_to_end(start(flow))
    elapsed = time.monotonic() - began
    assert run.status == RunStatus.SUCCEEDED
    # Eight one-second sleeps on four worker threads end together: nobody held a thread.
    assert elapsed < 3.5
    assert steps_of(run)["s0"].outputs == {"slept": 1.0}


@pytest.fixture
def alice(transactional_db):
    return get_user_model().objects.create_user("alice")


def test_an_approved_step_lets_the_run_continue(start, worker, alice):
    run = start(
        plan(
            "approve",
            step("ask", "approval", with_={"message": "Ship it?"}),
            step("ship", needs=["ask"], with_={"by": "${{ steps.ask.outputs.approver }}"}),
        )
    )
    wait_for(lambda: waiting_step(run, "ask"))
    ask = steps_of(run)["ask"]
    assert ask.wait["message"] == "Ship it?"
    step_approve(step_run=ask, user=alice, approved=True, comment="go")
    run = run_wait(run)
    assert run.status == RunStatus.SUCCEEDED
    assert steps_of(run)["ask"].outputs == {"approved": True, "approver": "alice", "comment": "go"}
    assert steps_of(run)["ship"].outputs == {"by": "alice"}
    with pytest.raises(Conflict):
        step_approve(step_run=ask, user=alice, approved=True)


def test_a_rejected_step_fails_the_run(start, worker, alice):
    run = start(plan("reject", step("ask", "approval"), step("ship", needs=["ask"])))
    wait_for(lambda: waiting_step(run, "ask"))
    step_approve(step_run=steps_of(run)["ask"], user=alice, approved=False, comment="not today")
    run = run_wait(run)
    assert run.status == RunStatus.FAILED
    assert run.error == "step 'ask' failed: rejected by alice: not today"
    assert steps_of(run)["ship"].status == StepStatus.SKIPPED


def test_an_approval_times_out(start, run_to_end):
    run = run_to_end(start(plan("too-late", step("ask", "approval", with_={"timeout": "0.5s"}))))
    ask = steps_of(run)["ask"]
    assert ask.status == StepStatus.FAILED
    assert ask.error == "approval timed out after 0.5s"


def test_a_workflow_step_runs_a_child_and_takes_its_outputs(publish, start, run_to_end):
    publish(
        plan(
            "child",
            step("work", with_={"v": "${{ inputs.x * 10 }}"}),
            outputs={"value": "${{ steps.work.outputs.v }}"},
            inputs={
                "x": __import__("engine.dsl.plan", fromlist=["InputSpec"]).InputSpec(
                    "x", "integer", {"type": "integer"}
                )
            },
        )
    )
    run = run_to_end(
        start(
            plan(
                "parent",
                step("call", "workflow", with_={"workflow": "child", "inputs": {"x": 4}}),
                step("after", needs=["call"], with_={"got": "${{ steps.call.outputs.value }}"}),
            )
        )
    )
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert steps_of(run)["after"].outputs == {"got": 40}
    child = Run.objects.get(parent_step=steps_of(run)["call"])
    assert child.trigger == Trigger.WORKFLOW
    assert child.status == RunStatus.SUCCEEDED


def test_a_failed_child_run_fails_the_workflow_step(publish, start, run_to_end):
    publish(plan("bad-child", step("boom", "fail", with_={"message": "kaput"})))
    run = run_to_end(
        start(plan("parent2", step("call", "workflow", with_={"workflow": "bad-child"})))
    )
    call = steps_of(run)["call"]
    assert call.status == StepStatus.FAILED
    assert "of 'bad-child' failed: step 'boom' failed: kaput" in call.error


def test_an_unknown_child_workflow_fails_the_step(start, run_to_end):
    run = run_to_end(start(plan("orphan", step("call", "workflow", with_={"workflow": "nope"}))))
    assert steps_of(run)["call"].error == "no workflow named 'nope' (or it has no version)"
