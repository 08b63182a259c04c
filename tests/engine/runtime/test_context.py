"""What a step's expressions can read: finally steps see the main graph, fan-out `if` per item."""

from __future__ import annotations

from engine.models import RunStatus, SkipReason, StepRun, StepStatus
from engine.services import run_start, workflow_publish
from tests.engine.runtime.conftest import steps_of


def start_yaml(source: str):
    return run_start(version=workflow_publish(source=source).version, inputs={})


def test_a_finally_step_reads_the_status_and_outputs_of_main_steps(worker, run_to_end):
    run = run_to_end(
        start_yaml(
            "name: finally-reads\n"
            "steps:\n"
            "  build: {uses: noop, with: {artifact: app.tar}}\n"
            "  deploy: {uses: fail, needs: [build], with: {message: no capacity}}\n"
            "finally:\n"
            "  report:\n"
            "    uses: noop\n"
            "    with:\n"
            "      build: '${{ steps.build.status }}'\n"
            "      artifact: '${{ steps.build.outputs.artifact }}'\n"
            "      deploy: '${{ steps.deploy.status }}: ${{ steps.deploy.error }}'\n"
            "  notify:\n"
            "    uses: noop\n"
            "    needs: [report]\n"
            "    if: steps.deploy.status == 'failed'\n"
            "    with: {summary: '${{ steps.report.outputs.deploy }}'}\n"
        )
    )
    steps = steps_of(run)
    assert steps["report"].status == StepStatus.SUCCEEDED
    assert steps["report"].outputs == {
        "build": "succeeded",
        "artifact": "app.tar",
        "deploy": "failed: no capacity",
    }
    assert steps["notify"].outputs == {"summary": "failed: no capacity"}
    assert run.status == RunStatus.FAILED


def test_an_if_on_a_for_each_is_evaluated_for_each_item(worker, run_to_end):
    run = run_to_end(
        start_yaml(
            "name: fan-if\n"
            "steps:\n"
            "  even:\n"
            "    for_each: [1, 2, 3, 4]\n"
            "    if: item % 2 == 0 and index > 1\n"
            "    uses: noop\n"
            "    with: {n: '${{ item }}'}\n"
            "  after:\n"
            "    uses: noop\n"
            "    needs: [even]\n"
            "    with: {got: '${{ steps.even.outputs }}'}\n"
        )
    )
    assert run.status == RunStatus.SUCCEEDED
    steps = steps_of(run)
    instances = StepRun.objects.filter(parent=steps["even"]).order_by("index")
    assert [i.status for i in instances] == ["skipped", "skipped", "skipped", "succeeded"]
    assert instances[0].skip_reason == SkipReason.CONDITION
    assert steps["even"].status == StepStatus.SUCCEEDED
    assert steps["after"].outputs == {"got": [None, None, None, {"n": 4}]}


def test_a_matrix_whose_if_is_false_for_every_combination_is_skipped(worker, run_to_end):
    run = run_to_end(
        start_yaml(
            "name: matrix-if\n"
            "steps:\n"
            "  build:\n"
            "    matrix: {os: [linux, mac]}\n"
            "    if: matrix.os == 'windows'\n"
            "    uses: noop\n"
            "  after:\n"
            "    uses: noop\n"
            "    needs: [build]\n"
            "    if: always()\n"
            "    with: {saw: '${{ steps.build.status }}'}\n"
        )
    )
    steps = steps_of(run)
    assert steps["build"].status == StepStatus.SKIPPED
    assert steps["build"].skip_reason == SkipReason.CONDITION
    assert steps["after"].outputs == {"saw": "skipped"}
    assert run.status == RunStatus.SUCCEEDED
