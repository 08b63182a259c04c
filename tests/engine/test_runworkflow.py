"""`manage.py runworkflow` in the embedded mode (no broker): as a user runs it."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from engine.cli.inputs import parse_input_options
from engine.dsl.plan import InputSpec
from engine.models import Run, RunStatus, StepRun, StepStatus, Workflow
from engine.services import workflow_publish
from tests.e2e.harness import database_url, process_env, wait_until

REPO = Path(__file__).resolve().parents[2]

HELLO = """\
name: greeter
inputs:
  who: {type: string, default: world}
  times: {type: integer, default: 1}
steps:
  greet:
    uses: noop
    with: {greeting: "Hello, ${{ inputs.who }}!", times: "${{ inputs.times }}"}
outputs:
  greeting: ${{ steps.greet.outputs.greeting }}
"""

FAILING = """\
name: breaks
steps:
  build:
    uses: fail
    with: {message: the compiler caught fire}
  deploy:
    needs: [build]
    uses: noop
"""

FAN_OUT = """\
name: fans
steps:
  each:
    for_each: ${{ [1, 2, 3] }}
    uses: noop
    with: {double: "${{ item * 2 }}"}
"""

APPROVAL = """\
name: gated
steps:
  prepare: {uses: noop}
  approve:
    needs: [prepare]
    uses: approval
    with: {message: Ship it?}
  ship:
    needs: [approve]
    uses: noop
"""


def write(tmp_path: Path, text: str, name: str = "workflow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def runworkflow(*args: str) -> tuple[int, str, str]:
    """Run the command in this process; its exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("runworkflow", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    except CommandError as exc:
        err.write(str(exc))
        code = exc.returncode
    return code, out.getvalue(), err.getvalue()


def report_of(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.strip().splitlines()[-1])


# --- input parsing ---------------------------------------------------------------------------


def test_input_values_are_read_as_json_when_they_parse_and_as_text_otherwise():
    specs = {
        "n": InputSpec(name="n", type="integer", schema={"type": "integer"}),
        "tags": InputSpec(name="tags", type="array", schema={"type": "array"}),
        "day": InputSpec(name="day", type="string", schema={"type": "string"}),
    }

    values = parse_input_options(["n=3", "tags=[1, 2]", "day=2024-01-31", "extra=x y"], specs)

    assert values == {"n": 3, "tags": [1, 2], "day": "2024-01-31", "extra": "x y"}


def test_a_string_input_keeps_the_text_as_typed():
    specs = {"version": InputSpec(name="version", type="string", schema={"type": "string"})}

    assert parse_input_options(["version=1.0"], specs) == {"version": "1.0"}
    assert parse_input_options(['version="quoted"'], specs) == {"version": "quoted"}


# --- running ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_workflow_file_is_stored_run_and_summarised(tmp_path):
    code, out, _ = runworkflow(str(write(tmp_path, HELLO)), "--input", "who=Ada")

    assert code == 0
    assert "greet" in out and "succeeded" in out
    assert 'outputs: {"greeting": "Hello, Ada!"}' in out
    assert Workflow.objects.get(name="greeter").versions.count() == 1


@pytest.mark.django_db(transaction=True)
def test_json_prints_the_run_its_outputs_and_every_step(tmp_path):
    code, out, _ = runworkflow(str(write(tmp_path, HELLO)), "--json", "--input", "times=3")

    report = report_of(out)
    assert code == 0
    assert report["status"] == "succeeded"
    assert report["outputs"] == {"greeting": "Hello, world!"}
    assert report["error"] == ""
    assert report["waiting_for"] == []
    assert report["steps"]["greet"]["status"] == "succeeded"
    assert report["steps"]["greet"]["attempts"] == 1
    assert report["steps"]["greet"]["outputs"]["times"] == 3
    assert Run.objects.get(pk=report["run_id"]).status == RunStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_failed_run_exits_1_and_names_the_failed_step(tmp_path):
    code, out, _ = runworkflow(str(write(tmp_path, FAILING)), "--json")

    report = report_of(out)
    assert code == 1
    assert report["status"] == "failed"
    assert "build" in report["error"] and "the compiler caught fire" in report["error"]
    assert report["steps"]["deploy"]["status"] == "skipped"


@pytest.mark.django_db(transaction=True)
def test_a_failed_run_prints_the_error_after_the_table(tmp_path):
    code, out, err = runworkflow(str(write(tmp_path, FAILING)))

    assert code == 1
    assert "failed" in out
    assert "error: step 'build' failed: the compiler caught fire" in err


@pytest.mark.django_db(transaction=True)
def test_a_fanned_out_step_lists_its_instances_in_json(tmp_path):
    code, out, _ = runworkflow(str(write(tmp_path, FAN_OUT)), "--json")

    each = report_of(out)["steps"]["each"]
    assert code == 0
    assert each["status"] == "succeeded"
    assert [i["index"] for i in each["instances"]] == [0, 1, 2]
    assert [i["outputs"]["double"] for i in each["instances"]] == [2, 4, 6]
    assert {i["status"] for i in each["instances"]} == {"succeeded"}


@pytest.mark.django_db(transaction=True)
def test_a_name_runs_the_latest_stored_version(tmp_path):
    workflow_publish(source=HELLO)
    workflow_publish(source=HELLO.replace("Hello", "Howdy"))

    code, out, _ = runworkflow("greeter", "--json")

    report = report_of(out)
    assert code == 0
    assert report["version"] == 2
    assert report["outputs"] == {"greeting": "Howdy, world!"}


@pytest.mark.django_db(transaction=True)
def test_a_run_waiting_for_an_approval_exits_3_and_says_what_it_waits_for(tmp_path):
    code, out, _ = runworkflow(str(write(tmp_path, APPROVAL)), "--json")

    report = report_of(out)
    assert code == 3
    assert report["status"] == "running"
    assert report["waiting_for"] == ["approve"]
    assert report["steps"]["approve"]["status"] == "waiting"
    assert report["steps"]["ship"]["status"] == "pending"


# --- bad usage: exit 2, nothing stored --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "whom=Ada"], "whom: unknown input"),
        (["--input", "times=many"], "times: 'many' is not of type 'integer'"),
        (["--inputs-file", "/nonexistent/inputs.yaml"], "no such file"),
        (["--input", "who"], "expected NAME=VALUE"),
    ],
)
def test_bad_inputs_exit_2_with_a_clear_message_and_store_nothing(tmp_path, args, message):
    code, _, err = runworkflow(str(write(tmp_path, HELLO)), *args)

    assert code == 2
    assert message in err
    assert not Workflow.objects.exists()
    assert not Run.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_inputs_file_gives_inputs_and_input_options_override_it(tmp_path):
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text("who: Grace\ntimes: 2\n")

    code, out, _ = runworkflow(
        str(write(tmp_path, HELLO)), "--json", "--inputs-file", str(inputs), "--input", "times=5"
    )

    report = report_of(out)
    assert code == 0
    assert report["outputs"] == {"greeting": "Hello, Grace!"}
    assert report["steps"]["greet"]["outputs"]["times"] == 5


@pytest.mark.django_db(transaction=True)
def test_an_invalid_file_prints_each_problem_with_its_position_and_exits_2(tmp_path):
    path = write(tmp_path, "name: bad\nsteps:\n  a: {uses: noop, neds: [b]}\n")

    code, _, err = runworkflow(str(path))

    assert code == 2
    assert f"{path}:3:" in err and "neds" in err
    assert not Workflow.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_unknown_name_exits_2_and_suggests_a_close_one():
    workflow_publish(source=HELLO)

    code, _, err = runworkflow("greetr")

    assert code == 2
    assert "no stored workflow" in err and "did you mean 'greeter'" in err


@pytest.mark.django_db(transaction=True)
def test_a_missing_file_exits_2(tmp_path):
    code, _, err = runworkflow(str(tmp_path / "missing.yaml"))

    assert code == 2
    assert "no such file" in err


@pytest.mark.django_db(transaction=True)
def test_detach_needs_a_broker(tmp_path):
    code, _, err = runworkflow(str(write(tmp_path, HELLO)), "--detach")

    assert code == 2
    assert "--detach needs a broker" in err
    assert not Run.objects.exists()


# --- Ctrl-C ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_ctrl_c_cancels_the_run_and_exits_1(tmp_path):
    path = write(
        tmp_path,
        "name: slow\nsteps:\n  wait: {uses: shell, with: {run: sleep 60}}\n  after: "
        "{uses: noop, needs: [wait]}\n",
    )
    env = process_env(database_url(connection.settings_dict), None)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runworkflow", str(path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: StepRun.objects.filter(step_id="wait", status=StepStatus.RUNNING).exists(),
            timeout=30,
            what="the shell step to start",
        )
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)

    assert proc.returncode == 1, err
    assert time.monotonic() - began < 20  # the `sleep 60` was killed, not waited for
    run = Run.objects.get()
    assert run.status == RunStatus.CANCELLED
    assert "interrupted" in run.error
    assert {s.step_id: s.status for s in run.steps.all()} == {
        "wait": StepStatus.CANCELLED,
        "after": StepStatus.CANCELLED,
    }
    assert "cancelled" in out


@pytest.mark.django_db(transaction=True)
def test_a_run_waiting_for_an_approval_says_where_to_approve_it(tmp_path):
    code, out, _ = runworkflow(str(write(tmp_path, APPROVAL)))

    assert code == 3
    assert "is waiting for approval at approve" in out


def test_an_unmigrated_database_is_named_as_the_problem(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
    }
    env.pop("BROKER_URL", None)

    result = subprocess.run(
        [sys.executable, "manage.py", "runworkflow", "workflows/hello.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2
    assert "run `python manage.py migrate` first" in result.stderr
    assert "Traceback" not in result.stderr
