"""A worker killed with kill -9 in the middle of 50 runs: every run still succeeds, once."""

from __future__ import annotations

import signal

import pytest
from django.db.models import Count, Q

from engine.models import Run, RunStatus, StepAttempt, StepRun, StepStatus
from engine.services import workflow_publish
from tests.e2e.conftest import Cluster
from tests.e2e.harness import django_shell, wait_until

pytestmark = pytest.mark.e2e

WORKER_THREADS = 8
RUNS = 50

# The retry policy is what turns an attempt lost with its worker into a new attempt.
SECONDS = """\
name: seconds
defaults:
  retry: {max_attempts: 3}
steps:
  first: {uses: shell, with: {run: sleep 1}}
  second: {uses: shell, needs: [first], with: {run: sleep 1}}
"""


def start_runs(cluster: Cluster, version_id: int, count: int) -> None:
    """Start runs from a process bound to the real broker (the test's own broker is a stub)."""
    django_shell(
        "from engine.models import WorkflowVersion\n"
        "from engine.services import run_start\n"
        f"version = WorkflowVersion.objects.get(pk={version_id})\n"
        f"for _ in range({count}):\n"
        "    run_start(version=version, inputs={})\n",
        cluster.env,
    )


def test_every_run_succeeds_once_after_a_worker_is_killed_mid_flight(rabbitmq: Cluster):
    version = workflow_publish(source=SECONDS).version
    rabbitmq.start_reconciler()
    start_runs(rabbitmq, version.pk, RUNS)
    wait_until(
        lambda: StepRun.objects.filter(status=StepStatus.RUNNING).count() >= WORKER_THREADS // 2,
        timeout=30,
        what="steps running on the first worker",
    )

    rabbitmq.worker.kill(signal.SIGKILL)
    rabbitmq.worker.proc.wait(timeout=10)
    interrupted = StepRun.objects.filter(status=StepStatus.RUNNING).count()
    rabbitmq.start_worker()

    wait_until(
        lambda: Run.objects.filter(status__in=RunStatus.finished()).count() == RUNS,
        timeout=180,
        poll=0.5,
        what=f"all {RUNS} runs to finish",
    )
    assert interrupted > 0
    assert set(Run.objects.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}
    assert set(StepRun.objects.values_list("status", flat=True)) == {StepStatus.SUCCEEDED}
    succeeded = StepRun.objects.annotate(
        wins=Count("attempts", filter=Q(attempts__status=StepStatus.SUCCEEDED))
    )
    assert set(succeeded.values_list("wins", flat=True)) == {1}
    lost = StepAttempt.objects.filter(status=StepStatus.FAILED, error__contains="heartbeat")
    assert lost.count() >= 1  # the kill did hit running attempts, and they were recovered
