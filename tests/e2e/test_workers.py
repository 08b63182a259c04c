"""Runs executed by `rundramatiq` worker processes on RabbitMQ and on Redis, followed by the CLI."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from dramatiq import Message

from engine.models import (
    EventKind,
    Run,
    RunEvent,
    RunStatus,
    StepAttempt,
    StepRun,
    StepStatus,
)
from tests.e2e.conftest import Cluster
from tests.e2e.harness import REPO, cli, runworkflow_json, wait_until

pytestmark = pytest.mark.e2e

PIPELINE = """\
name: pipeline
inputs:
  who: {type: string, default: world}
steps:
  hello:
    uses: shell
    with: {run: 'echo "greeting=Hello, ${{ inputs.who }}" >> "$FLOWYARD_OUTPUT"'}
  each:
    for_each: ${{ range(5) | list }}
    uses: noop
    with: {square: "${{ item * item }}"}
  total:
    uses: noop
    with:
      greeting: ${{ steps.hello.outputs.greeting }}
      sum: ${{ steps.each.outputs | map(attribute='square') | sum }}
outputs:
  greeting: ${{ steps.total.outputs.greeting }}
  sum: ${{ steps.total.outputs.sum }}
"""

SLOW = """\
name: slow
steps:
  wait: {uses: shell, with: {run: sleep 60}}
  after: {uses: noop, needs: [wait]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "workflow.yaml"
    path.write_text(text)
    return path


def worker_pid_of(step: StepRun) -> int:
    """The pid in a step's worker id (``host:pid:random``)."""
    return int(step.worker.split(":")[1])


def test_runworkflow_follows_a_run_the_worker_processes_execute(cluster: Cluster, tmp_path):
    code, report = runworkflow_json(
        [str(write(tmp_path, PIPELINE)), "--input", "who=Ada"], cluster.env
    )

    assert code == 0, report
    assert report["status"] == "succeeded"
    assert report["outputs"] == {"greeting": "Hello, Ada", "sum": 30}
    assert [i["outputs"]["square"] for i in report["steps"]["each"]["instances"]] == [
        0, 1, 4, 9, 16,
    ]  # fmt: skip
    leaves = StepRun.objects.exclude(kind="group")
    worker_pids = {worker_pid_of(s) for s in leaves}
    assert len(worker_pids) == 1 and worker_pids != {cluster.worker.pid}  # the worker child


def test_detach_prints_the_run_id_and_the_workers_finish_the_run(cluster: Cluster, tmp_path):
    done = cli(["runworkflow", "--detach", str(write(tmp_path, PIPELINE))], cluster.env)

    assert done.returncode == 0, done.stderr
    run_id = int(done.stdout.strip())
    run = wait_until(
        lambda: Run.objects.filter(pk=run_id, status__in=RunStatus.finished()).first(),
        timeout=30,
        what="the detached run to finish",
    )
    assert run.status == RunStatus.SUCCEEDED
    assert run.outputs == {"greeting": "Hello, world", "sum": 30}


def test_a_duplicated_message_is_a_no_op(cluster: Cluster, tmp_path):
    code, report = runworkflow_json([str(write(tmp_path, PIPELINE))], cluster.env)
    assert code == 0, report
    leaves = list(StepRun.objects.exclude(kind="group"))
    before = {s.pk: (s.status, s.attempt, s.outputs, s.finished_at) for s in leaves}
    attempts = StepAttempt.objects.count()

    send_again(cluster.env["BROKER_URL"], leaves)

    wait_until(
        lambda: RunEvent.objects.filter(kind=EventKind.MESSAGE_DROPPED).count() == len(leaves),
        timeout=30,
        what="every duplicate to be dropped",
    )
    for step in leaves:
        step.refresh_from_db()
    after = {s.pk: (s.status, s.attempt, s.outputs, s.finished_at) for s in leaves}
    assert after == before
    assert StepAttempt.objects.count() == attempts
    assert Run.objects.get().status == RunStatus.SUCCEEDED


def test_ctrl_c_cancels_the_run_on_the_workers(rabbitmq: Cluster, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runworkflow", str(write(tmp_path, SLOW))],
        cwd=REPO,
        env=rabbitmq.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: StepRun.objects.filter(step_id="wait", status=StepStatus.RUNNING).exists(),
            timeout=30,
            what="the shell step to start on the worker",
        )
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert proc.returncode == 1, err
    run = Run.objects.get()
    assert run.status == RunStatus.CANCELLED
    wait = StepRun.objects.get(step_id="wait")
    assert wait.status == StepStatus.CANCELLED
    assert "cancelled" in out
    # The worker noticed the cancellation and killed `sleep 60` (its thread is free again).
    wait_until(lambda: not sleeping("60"), timeout=15, what="the worker to kill `sleep 60`")


def sleeping(seconds: str) -> list[int]:
    """Pids of `sleep SECONDS` processes on this machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[:2] == [b"sleep", seconds.encode()]:
                found.append(int(entry.name))
    return found


def send_again(broker_url: str, steps: list[StepRun]) -> None:
    """Enqueue every step's message for its current attempt once more, on the real broker."""
    from engine.runtime.plans import run_plan

    if broker_url.startswith("amqp"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        real = RabbitmqBroker(url=broker_url)
    else:
        from dramatiq.brokers.redis import RedisBroker

        real = RedisBroker(url=broker_url)
    try:
        for step in steps:
            plan = run_plan(step.run.version_id).step(step.step_id)
            real.declare_queue(plan.queue)
            real.enqueue(
                Message(
                    queue_name=plan.queue,
                    actor_name=plan.actor,
                    args=(step.pk, step.attempt),
                    kwargs={},
                    options={},
                )
            )
    finally:
        real.close()
