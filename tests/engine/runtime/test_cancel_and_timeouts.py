"""Cancelling a run, run timeouts, step timeouts."""

from __future__ import annotations

import subprocess
import time

import pytest

from engine.errors import Conflict
from engine.models import RunStatus, StepAttempt, StepStatus
from engine.runtime.embedded import run_wait
from engine.services import run_cancel
from tests.engine.runtime.builders import plan, step
from tests.engine.runtime.conftest import steps_of


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def sleepers_running(marker: str) -> bool:
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return bool(found.stdout.strip())


def test_cancel_terminates_a_running_shell_step(start, worker):
    marker = "sleep 30.0123"  # a duration no other process uses, to find it with pgrep
    run = start(
        plan(
            "cancel-me", step("long", "shell", with_={"run": marker}), step("after", needs=["long"])
        )
    )
    wait_for(
        lambda: steps_of(run)["long"].status == StepStatus.RUNNING and sleepers_running(marker)
    )
    began = time.monotonic()
    run_cancel(run=run, reason="enough")
    run = run_wait(run, timeout=10)
    assert run.status == RunStatus.CANCELLED
    assert run.error == "cancelled: enough"
    steps = steps_of(run)
    assert steps["long"].status == StepStatus.CANCELLED
    assert steps["after"].status == StepStatus.CANCELLED
    wait_for(lambda: not sleepers_running(marker), timeout=5)
    assert time.monotonic() - began < 5
    assert StepAttempt.objects.get(step=steps["long"]).status == StepStatus.CANCELLED
    with pytest.raises(Conflict):
        run_cancel(run=run)


def test_a_run_that_outlives_its_timeout_fails(start, run_to_end):
    run = run_to_end(
        start(plan("slow-run", step("nap", "shell", with_={"run": "sleep 20"}), timeout=1.0)),
        timeout=15,
    )
    assert run.status == RunStatus.FAILED
    assert run.error == "run timed out after 1s"
    assert steps_of(run)["nap"].status == StepStatus.CANCELLED


def test_a_step_that_outlives_its_timeout_fails(start, run_to_end):
    run = run_to_end(
        start(plan("slow-step", step("nap", "shell", timeout=0.5, with_={"run": "sleep 20"}))),
        timeout=15,
    )
    nap = steps_of(run)["nap"]
    assert nap.status == StepStatus.FAILED
    assert nap.error == "timed out after 0.5s"
    assert run.status == RunStatus.FAILED
