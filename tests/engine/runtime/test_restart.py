"""Retry failed (same run) and re-run (new run, optionally from a step)."""

from __future__ import annotations

import pytest

from engine.errors import Conflict
from engine.models import RunStatus, StepAttempt, StepRun
from engine.runtime.embedded import run_wait
from engine.services import run_rerun, run_retry
from tests.engine.runtime.builders import plan, step
from tests.engine.runtime.conftest import steps_of


def test_retry_failed_reruns_only_what_failed_and_keeps_outputs(start, run_to_end, tmp_path):
    flag = tmp_path / "fixed"
    flow = plan(
        "retry-me",
        step("ok", with_={"v": 1}),
        step("flaky", "shell", needs=["ok"], with_={"run": f"test -e {flag}"}),
        step("after", needs=["flaky", "ok"], with_={"v": "${{ steps.ok.outputs.v }}"}),
        finally_steps=(step("tidy"),),
    )
    run = run_to_end(start(flow))
    assert run.status == RunStatus.FAILED
    ok_before = steps_of(run)["ok"]
    flag.touch()
    run_retry(run=run)
    run = run_wait(run)
    steps = steps_of(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert steps["ok"].finished_at == ok_before.finished_at  # not run again
    assert steps["after"].outputs == {"v": 1}
    assert list(
        StepAttempt.objects.filter(step=steps["flaky"]).values_list("number", "status")
    ) == [(1, "failed"), (2, "succeeded")]
    assert StepAttempt.objects.filter(step=steps["tidy"]).count() == 2
    with pytest.raises(Conflict):
        run_retry(run=run)


def test_retry_failed_reruns_only_the_failed_instances(start, run_to_end, tmp_path):
    flag = tmp_path / "fixed"
    flow = plan(
        "retry-fan",
        step(
            "each",
            "shell",
            for_each=[0, 1, 2],
            with_={"run": f"test ${{{{ item }}}} -ne 1 || test -e {flag}"},
        ),
    )
    run = run_to_end(start(flow))
    assert run.status == RunStatus.FAILED
    flag.touch()
    run_retry(run=run)
    run = run_wait(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    attempts = dict(
        StepRun.objects.filter(run=run, index__isnull=False).values_list("index", "attempt")
    )
    assert attempts == {0: 1, 1: 2, 2: 1}


def test_rerun_from_a_step_reuses_the_outputs_before_it(start, run_to_end):
    flow = plan(
        "rerun",
        step("first", "shell", with_={"run": "echo n=$RANDOM$RANDOM > $FLOWYARD_OUTPUT"}),
        step(
            "second",
            "shell",
            needs=["first"],
            with_={"run": "echo n=${{ steps.first.outputs.n }}-$RANDOM > $FLOWYARD_OUTPUT"},
        ),
    )
    old = run_to_end(start(flow))
    new = run_wait(run_rerun(run=old, from_step="second"))
    before, after = steps_of(old), steps_of(new)
    assert new.status == RunStatus.SUCCEEDED
    assert new.rerun_of_id == old.pk and new.inputs == old.inputs
    assert after["first"].outputs == before["first"].outputs
    assert after["first"].reused_from_id == before["first"].pk
    assert after["second"].outputs["n"].startswith(before["first"].outputs["n"] + "-")
    assert after["second"].outputs != before["second"].outputs


def test_rerun_without_a_step_runs_everything_again(start, run_to_end):
    old = run_to_end(start(plan("again", step("a"))))
    new = run_to_end(run_rerun(run=old))
    assert new.status == RunStatus.SUCCEEDED
    assert steps_of(new)["a"].reused_from_id is None
