"""The DAG rules: needs, conditions, skip propagation, continue_on_error, finally, outputs."""

from __future__ import annotations

from engine.models import RunEvent, RunStatus, SkipReason, StepStatus
from tests.engine.runtime.builders import plan, step
from tests.engine.runtime.conftest import steps_of


def test_a_chain_passes_outputs_downstream_and_sets_run_outputs(start, run_to_end):
    flow = plan(
        "chain",
        step("a", with_={"n": "${{ inputs.n }}"}),
        step("b", needs=["a"], with_={"double": "${{ steps.a.outputs.n * 2 }}"}),
        step("c", needs=["b"], with_={"text": "b gave ${{ steps.b.outputs.double }}"}),
        outputs={"result": "${{ steps.b.outputs.double }}", "text": "${{ steps.c.outputs.text }}"},
        inputs={},
    )
    from engine.dsl.plan import InputSpec

    flow = flow.__class__(
        **{**flow.__dict__, "inputs": {"n": InputSpec("n", "integer", {"type": "integer"})}}
    )
    run = run_to_end(start(flow, n=21))
    assert run.status == RunStatus.SUCCEEDED
    assert run.outputs == {"result": 42, "text": "b gave 42"}
    steps = steps_of(run)
    assert [steps[s].status for s in "abc"] == [StepStatus.SUCCEEDED] * 3
    assert steps["c"].outputs == {"text": "b gave 42"}
    assert run.started_at is not None and run.finished_at is not None


def test_the_audit_trail_records_every_transition(start, run_to_end):
    run = run_to_end(start(plan("audit", step("a"), step("b", needs=["a"]))))
    kinds = list(RunEvent.objects.filter(run=run).values_list("kind", flat=True))
    assert kinds[0] == "run_queued"
    assert kinds.count("step_queued") == 2
    assert kinds.count("step_started") == 2
    assert kinds.count("step_succeeded") == 2
    assert "run_started" in kinds
    assert kinds[-1] == "run_succeeded"


def test_independent_steps_run_and_a_join_waits_for_all(start, run_to_end):
    flow = plan(
        "diamond",
        step("a"),
        step("b", needs=["a"], with_={"v": 1}),
        step("c", needs=["a"], with_={"v": 2}),
        step("d", needs=["b", "c"], with_={"sum": "${{ steps.b.outputs.v + steps.c.outputs.v }}"}),
    )
    run = run_to_end(start(flow))
    assert run.status == RunStatus.SUCCEEDED
    assert steps_of(run)["d"].outputs == {"sum": 3}


def test_a_failed_dependency_skips_the_step_and_its_dependents(start, run_to_end):
    flow = plan(
        "skips",
        step("a", "fail", with_={"message": "boom"}),
        step("b", needs=["a"]),
        step("c", needs=["b"]),
        step("other"),
    )
    run = run_to_end(start(flow))
    steps = steps_of(run)
    assert run.status == RunStatus.FAILED
    assert run.error == "step 'a' failed: boom"
    assert steps["a"].status == StepStatus.FAILED
    assert steps["b"].status == StepStatus.SKIPPED
    assert steps["b"].skip_reason == SkipReason.FAILURE
    assert "'a' failed" in steps["b"].error
    assert steps["c"].status == StepStatus.SKIPPED
    assert steps["c"].skip_reason == SkipReason.FAILURE
    assert steps["other"].status == StepStatus.SUCCEEDED


def test_if_false_skips_and_always_and_failure_run_after_a_failure(start, run_to_end):
    flow = plan(
        "conditions",
        step("a", "fail"),
        step("never", needs=["a"], if_="${{ false }}"),
        step("cleanup", needs=["a"], if_="${{ always() }}"),
        step(
            "on_failure", needs=["a"], if_="${{ failure() }}", with_={"e": "${{ steps.a.error }}"}
        ),
        step("on_success", needs=["a"], if_="${{ success() }}"),
        step("root_if", if_="${{ 1 > 2 }}"),
    )
    run = run_to_end(start(flow))
    steps = steps_of(run)
    assert steps["cleanup"].status == StepStatus.SUCCEEDED
    assert steps["on_failure"].status == StepStatus.SUCCEEDED
    assert steps["on_failure"].outputs["e"] == "failed by a `fail` step"
    assert steps["on_success"].status == StepStatus.SKIPPED
    assert steps["never"].status == StepStatus.SKIPPED
    assert steps["root_if"].status == StepStatus.SKIPPED
    assert steps["root_if"].skip_reason == SkipReason.CONDITION
    assert run.status == RunStatus.FAILED


def test_a_skipped_dependency_skips_dependents_unless_always(start, run_to_end):
    flow = plan(
        "skip-chain",
        step("gate", if_="false"),
        step("next", needs=["gate"]),
        step("anyway", needs=["gate"], if_="always()"),
    )
    run = run_to_end(start(flow))
    steps = steps_of(run)
    assert run.status == RunStatus.SUCCEEDED
    assert steps["next"].status == StepStatus.SKIPPED
    assert steps["next"].skip_reason == SkipReason.DEPENDENCY
    assert steps["anyway"].status == StepStatus.SUCCEEDED


def test_continue_on_error_lets_dependents_run_and_the_run_succeed(start, run_to_end):
    flow = plan(
        "tolerant",
        step("flaky", "fail", continue_on_error=True),
        step("after", needs=["flaky"], with_={"s": "${{ steps.flaky.status }}"}),
    )
    run = run_to_end(start(flow))
    steps = steps_of(run)
    assert steps["flaky"].status == StepStatus.FAILED
    assert steps["after"].outputs == {"s": "failed"}
    assert run.status == RunStatus.SUCCEEDED


def test_finally_steps_run_after_the_main_graph_whatever_happened(start, run_to_end):
    flow = plan(
        "finally",
        step("a", "fail", with_={"message": "nope"}),
        step("b", needs=["a"]),
        finally_steps=(
            step("tidy", needs=["a"], with_={"saw": "${{ steps.a.status }}"}),
            step("report", needs=["tidy"]),
        ),
    )
    run = run_to_end(start(flow))
    steps = steps_of(run)
    assert steps["tidy"].status == StepStatus.SUCCEEDED
    assert steps["tidy"].outputs == {"saw": "failed"}
    assert steps["report"].status == StepStatus.SUCCEEDED
    assert steps["tidy"].started_at > steps["b"].finished_at
    assert run.status == RunStatus.FAILED
    assert run.error == "step 'a' failed: nope"


def test_a_broken_expression_fails_the_step_permanently(start, run_to_end):
    run = run_to_end(start(plan("broken", step("a", with_={"x": "${{ steps.nope.outputs.x }}"}))))
    step_a = steps_of(run)["a"]
    assert step_a.status == StepStatus.FAILED
    assert step_a.attempt == 1
    assert "nope" in step_a.error
    assert run.status == RunStatus.FAILED


def test_run_outputs_that_fail_to_evaluate_fail_the_run(start, run_to_end):
    run = run_to_end(
        start(plan("bad-outputs", step("a"), outputs={"x": "${{ steps.a.outputs.missing.deep }}"}))
    )
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("outputs:")
