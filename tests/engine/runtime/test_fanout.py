"""for_each and matrix: instances, max_parallel, the list downstream steps see."""

from __future__ import annotations

import time

import pytest
from django.db.models import Max

from engine.models import RunEvent, RunStatus, StepKind, StepRun, StepStatus
from tests.engine.runtime.builders import plan, step
from tests.engine.runtime.conftest import steps_of


def test_for_each_runs_one_instance_per_item_and_downstream_sees_the_list(start, run_to_end):
    flow = plan(
        "fan",
        step("list", with_={"items": [3, 1, 2]}),
        step(
            "square",
            needs=["list"],
            for_each="${{ steps.list.outputs['items'] }}",
            with_={"n": "${{ item * item }}", "i": "${{ index }}"},
        ),
        step(
            "total",
            needs=["square"],
            with_={
                "sum": "${{ steps.square.outputs | sum(attribute='n') }}",
                "all": "${{ steps.square.outputs }}",
            },
        ),
    )
    run = run_to_end(start(flow))
    assert run.status == RunStatus.SUCCEEDED
    steps = steps_of(run)
    assert steps["square"].kind == StepKind.GROUP
    assert steps["square"].outputs == [{"n": 9, "i": 0}, {"n": 1, "i": 1}, {"n": 4, "i": 2}]
    assert steps["total"].outputs["sum"] == 14
    instances = StepRun.objects.filter(parent=steps["square"]).order_by("index")
    assert [(i.index, i.item, i.status) for i in instances] == [
        (0, 3, "succeeded"),
        (1, 1, "succeeded"),
        (2, 2, "succeeded"),
    ]


def test_an_empty_for_each_succeeds_with_an_empty_list(start, run_to_end):
    run = run_to_end(
        start(
            plan(
                "empty",
                step("none", for_each=[]),
                step("after", needs=["none"], with_={"n": "${{ steps.none.outputs | length }}"}),
            )
        )
    )
    steps = steps_of(run)
    assert steps["none"].status == StepStatus.SUCCEEDED
    assert steps["after"].outputs == {"n": 0}


def test_matrix_runs_the_cartesian_product(start, run_to_end):
    flow = plan(
        "matrix",
        step(
            "build",
            matrix={"os": ["linux", "mac"], "py": ["3.11", "3.12"]},
            with_={"name": "${{ matrix.os }}-${{ matrix.py }}"},
        ),
    )
    run = run_to_end(start(flow))
    assert run.status == RunStatus.SUCCEEDED
    assert [o["name"] for o in steps_of(run)["build"].outputs] == [
        "linux-3.11",
        "linux-3.12",
        "mac-3.11",
        "mac-3.12",
    ]


def test_a_failing_instance_fails_the_step_but_the_others_finish(start, run_to_end):
    flow = plan(
        "partial",
        step("each", "shell", for_each=[0, 1, 2, 0], with_={"run": "exit ${{ item }}"}),
        step("after", needs=["each"]),
    )
    run = run_to_end(start(flow))
    steps = steps_of(run)
    assert steps["each"].status == StepStatus.FAILED
    assert steps["each"].error.startswith("2 of 4 instances failed; first: each[")
    assert "exit code" in steps["each"].error
    statuses = list(
        StepRun.objects.filter(parent=steps["each"])
        .order_by("index")
        .values_list("status", flat=True)
    )
    assert statuses == ["succeeded", "failed", "failed", "succeeded"]
    assert steps["after"].status == StepStatus.SKIPPED
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("step 'each' failed: 2 of 4 instances failed")


def test_max_parallel_bounds_the_instances_in_flight(start, run_to_end):
    flow = plan(
        "bounded",
        step("each", "shell", for_each=list(range(6)), max_parallel=2, with_={"run": "sleep 0.2"}),
    )
    run = run_to_end(start(flow), timeout=30)
    assert run.status == RunStatus.SUCCEEDED
    instances = list(StepRun.objects.filter(run=run, kind=StepKind.INSTANCE))
    # At no moment did more than two instances run at once.
    moments = sorted(
        [(i.started_at, 1) for i in instances] + [(i.finished_at, -1) for i in instances],
        key=lambda m: (m[0], m[1]),
    )
    running = peak = 0
    for _, delta in moments:
        running += delta
        peak = max(peak, running)
    assert peak <= 2


def test_a_for_each_that_is_not_a_list_fails_the_step(start, run_to_end):
    run = run_to_end(start(plan("not-a-list", step("each", for_each="${{ 42 }}"))))
    each = steps_of(run)["each"]
    assert each.status == StepStatus.FAILED
    assert each.error == "for_each: must be a list, got int"


@pytest.mark.slow
def test_ten_thousand_instances_with_max_parallel_complete(start, run_to_end):
    flow = plan(
        "ten-thousand",
        step(
            "each",
            for_each="${{ range(10000) | list }}",
            max_parallel=200,
            with_={"i": "${{ item }}"},
        ),
        step(
            "count",
            needs=["each"],
            with_={
                "n": "${{ steps.each.outputs | length }}",
                "last": "${{ steps.each.outputs[-1].i }}",
            },
        ),
    )
    began = time.monotonic()
    run = run_to_end(start(flow), timeout=240)
    elapsed = time.monotonic() - began
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert steps_of(run)["count"].outputs == {"n": 10000, "last": 9999}
    assert (
        StepRun.objects.filter(run=run, kind=StepKind.INSTANCE, status="succeeded").count() == 10000
    )
    assert StepRun.objects.filter(run=run).aggregate(m=Max("attempt"))["m"] == 1
    assert RunEvent.objects.filter(run=run, kind="step_succeeded").count() == 10002
    print(f"10,000 instances in {elapsed:.1f}s")
