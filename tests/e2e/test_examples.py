"""Every example in workflows/ run with `runworkflow --json`, embedded and on RabbitMQ workers.

Each file states how it ends in its first lines: ``# expected-status: STATUS`` and maybe
``# expected-steps: step=status …``. A run that ends ``running`` stops at an approval:
runworkflow exits 3 listing it in ``waiting_for``; the test approves it and the run succeeds.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from engine.models import Run, RunStatus, StepRun, StepStatus
from engine.runtime.embedded import EmbeddedWorker, run_wait
from engine.services import step_approve, workflow_publish
from tests.e2e.conftest import Cluster
from tests.e2e.harness import REPO, django_shell, runworkflow_json, wait_until

pytestmark = pytest.mark.e2e

EXAMPLES = sorted((REPO / "workflows").glob("*.y*ml"))
EXPECTED = re.compile(r"^# expected-status: ([a-z_]+)\s*$", re.MULTILINE)
EXPECTED_STEPS = re.compile(r"^# expected-steps: (.+)$", re.MULTILINE)
EXIT_CODES = {"succeeded": 0, "failed": 1, "cancelled": 1, "running": 3}


def expected_end(path: Path) -> tuple[str, dict[str, str]]:
    """The run status and step statuses the example says it ends with."""
    header = "\n".join(path.read_text(encoding="utf-8").splitlines()[:6])
    found = EXPECTED.search(header)
    assert found, f"{path.name} does not say its expected status"
    steps = EXPECTED_STEPS.search(header)
    pairs = (pair.split("=", 1) for pair in steps.group(1).split()) if steps else ()
    return found.group(1), dict(pairs)


class _Ping(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"ok": True, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def ping_url() -> Iterator[str]:
    """A local HTTP server answering 200 with JSON: what the http example calls."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ping)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ping"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=["embedded", "rabbitmq"])
def mode(request: pytest.FixtureRequest, transactional_db: None) -> tuple[str, dict[str, str]]:
    if request.param == "embedded":
        return "embedded", request.getfixturevalue("embedded_env")
    cluster: Cluster = request.getfixturevalue("rabbitmq")
    return "rabbitmq", cluster.env


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_example_ends_as_it_says(path: Path, mode: tuple[str, dict[str, str]], ping_url: str):
    kind, env = mode
    expected, expected_steps = expected_end(path)
    workflow_publish(source=(REPO / "workflows" / "hello.yaml").read_text())  # parent-child's
    args = [str(path)]
    if path.name == "http-call.yaml":
        args += ["--input", f"url={ping_url}"]

    code, report = runworkflow_json(args, env)

    assert report["status"] == expected, json.dumps(report, indent=2)
    assert code == EXIT_CODES[expected]
    steps = {step_id: report["steps"][step_id]["status"] for step_id in expected_steps}
    assert steps == expected_steps
    if expected == "running":
        assert report["waiting_for"], "a run that ends running must wait for an approval"
        approve_and_finish(report["run_id"], kind, env)


def approve_and_finish(run_id: int, kind: str, env: dict[str, str]) -> None:
    """Approve every waiting step of the run, then check that the run succeeds."""
    waiting = StepRun.objects.filter(run_id=run_id, status=StepStatus.WAITING)
    assert waiting.exists()
    if kind == "embedded":
        user = get_user_model().objects.create_user("reviewer")
        with EmbeddedWorker(threads=2, reconcile_every=None, poll_ms=20):
            for step in waiting:
                step_approve(step_run=step, user=user, approved=True)
            run = run_wait(run_id, timeout=30)
    else:
        django_shell(
            "from django.contrib.auth import get_user_model\n"
            "from engine.models import StepRun\n"
            "from engine.services import step_approve\n"
            "user = get_user_model().objects.create_user('reviewer')\n"
            f"for step in StepRun.objects.filter(run_id={run_id}, status='waiting'):\n"
            "    step_approve(step_run=step, user=user, approved=True)\n",
            env,
        )
        run = wait_until(
            lambda: Run.objects.filter(pk=run_id, status__in=RunStatus.finished()).first(),
            timeout=30,
            what="the approved run to finish",
        )
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert set(run.steps.values_list("status", flat=True)) == {StepStatus.SUCCEEDED}
