"""Built-in actions: shell outputs and logs, http against a local server, python callables,
and the output/log size limits."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.actions.python_call import flowyard_callable
from engine.models import RunStatus, StepAttempt, StepLog, StepStatus
from tests.engine.runtime.builders import plan, step
from tests.engine.runtime.conftest import steps_of


def logs_of(step_run) -> str:
    return "".join(
        StepLog.objects.filter(step=step_run)
        .order_by("attempt", "seq")
        .values_list("text", flat=True)
    )


def test_a_shell_step_publishes_outputs_and_streams_its_logs(start, run_to_end):
    flow = plan(
        "shell-out",
        step(
            "sh",
            "shell",
            with_={
                "run": "echo hello; echo oops >&2\n"
                'echo "count=3" >> $FLOWYARD_OUTPUT; echo "name=$WHO" >> $FLOWYARD_OUTPUT',
                "env": {"WHO": "world"},
            },
        ),
    )
    run = run_to_end(start(flow))
    sh = steps_of(run)["sh"]
    assert run.status == RunStatus.SUCCEEDED
    assert sh.outputs == {"count": "3", "name": "world", "exit_code": 0}
    streams = dict(StepLog.objects.filter(step=sh).values_list("stream", "text"))
    assert streams["stdout"] == "hello\n"
    assert streams["stderr"] == "oops\n"


def test_a_secret_is_masked_in_logs_and_outputs(start, run_to_end, monkeypatch):
    monkeypatch.setenv("FLOWYARD_SECRET_TOKEN", "s3cr3t-value")
    flow = plan(
        "secret",
        step(
            "sh",
            "shell",
            with_={
                "run": 'echo "token is $TOKEN"; echo "{\\"t\\": \\"$TOKEN\\"}" > $FLOWYARD_OUTPUT',
                "env": {"TOKEN": "${{ secrets.TOKEN }}"},
            },
        ),
    )
    run = run_to_end(start(flow))
    sh = steps_of(run)["sh"]
    assert logs_of(sh) == "token is ***\n"
    assert sh.outputs["t"] == "***"


def test_outputs_over_the_limit_fail_the_step_naming_the_limit(start, run_to_end, settings):
    settings.FLOWYARD = {**settings.FLOWYARD, "MAX_OUTPUT_BYTES": 1000}
    run = run_to_end(
        start(plan("big", step("big", with_={"blob": "x" * 2000}, retry={"max_attempts": 3})))
    )
    big = steps_of(run)["big"]
    assert big.status == StepStatus.FAILED
    assert (
        big.error
        == "outputs are 2,012 bytes, over the limit of 1,000 bytes (FLOWYARD_MAX_OUTPUT_BYTES)"
    )
    assert big.attempt == 1  # permanent: not retried


def test_logs_over_the_limit_end_with_a_truncation_marker(start, run_to_end, settings):
    settings.FLOWYARD = {**settings.FLOWYARD, "MAX_LOG_BYTES": 1000}
    run = run_to_end(
        start(plan("chatty", step("sh", "shell", with_={"run": "yes line | head -n 1000"})))
    )
    text = logs_of(steps_of(run)["sh"])
    assert text.startswith("line\nline\n")
    assert len(text.encode()) < 1200
    assert "log truncated: 4,000 more bytes were dropped (limit 1,000 bytes" in text


@flowyard_callable("tests.add")
def add(a: int, b: int = 0) -> dict:
    logging.getLogger("tests.add").info("adding %s and %s", a, b)
    return {"sum": a + b}


@flowyard_callable("tests.explode")
def explode() -> None:
    raise RuntimeError("kaboom")


def test_a_python_step_calls_a_registered_callable_and_keeps_its_log(start, run_to_end):
    flow = plan(
        "py",
        step(
            "add",
            "python",
            with_={"function": "tests.add", "args": [2], "kwargs": {"b": 3}},
            outputs={"total": "${{ result.sum }}"},
        ),
    )
    run = run_to_end(start(flow))
    added = steps_of(run)["add"]
    assert added.outputs == {"total": 5}
    assert "INFO tests.add: adding 2 and 3" in logs_of(added)


def test_only_registered_callables_can_run(start, run_to_end):
    run = run_to_end(start(plan("py-bad", step("x", "python", with_={"function": "os.system"}))))
    assert "no python callable registered as 'os.system'" in steps_of(run)["x"].error


def test_an_exception_is_a_transient_failure_with_its_message(start, run_to_end):
    run = run_to_end(
        start(
            plan(
                "py-boom",
                step("x", "python", with_={"function": "tests.explode"}, retry={"max_attempts": 2}),
            )
        )
    )
    x = steps_of(run)["x"]
    assert x.error == "RuntimeError: kaboom"
    assert StepAttempt.objects.filter(step=x).count() == 2


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status = int(self.path.strip("/").split("?")[0] or 200)
        body = json.dumps({"path": self.path}).encode() if status < 400 else b"nope " * 10
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def test_http_returns_status_and_json(start, run_to_end, server):
    run = run_to_end(
        start(
            plan(
                "http-ok", step("get", "http", with_={"url": f"{server}/200", "params": {"q": "1"}})
            )
        )
    )
    get = steps_of(run)["get"]
    assert get.outputs["status"] == 200
    assert get.outputs["json"] == {"path": "/200?q=1"}


def test_http_4xx_fails_permanently_with_an_excerpt(start, run_to_end, server):
    run = run_to_end(
        start(
            plan(
                "http-404",
                step("get", "http", with_={"url": f"{server}/404"}, retry={"max_attempts": 3}),
            )
        )
    )
    get = steps_of(run)["get"]
    assert get.error.startswith(f"GET {server}/404 returned 404: nope nope")
    assert get.attempt == 1


def test_http_5xx_is_retried(start, run_to_end, server):
    run = run_to_end(
        start(
            plan(
                "http-503",
                step("get", "http", with_={"url": f"{server}/503"}, retry={"max_attempts": 2}),
            )
        )
    )
    assert steps_of(run)["get"].attempt == 2


def test_http_expected_statuses_accept_an_error_status(start, run_to_end, server):
    run = run_to_end(
        start(
            plan(
                "http-exp",
                step("get", "http", with_={"url": f"{server}/404", "expected_status": [404]}),
            )
        )
    )
    assert steps_of(run)["get"].outputs["status"] == 404
