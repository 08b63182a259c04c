"""`manage.py runworkflow PATH_OR_NAME`: store a workflow, run it and follow it to its end.

Without BROKER_URL the steps run in this process (an embedded worker); with a broker the run is
executed by the workers (`manage.py rundramatiq`) and this command follows it, or returns at
once with ``--detach``. Exit status: 0 succeeded, 1 failed or cancelled, 2 bad usage (invalid
file, unknown workflow, bad inputs: nothing is stored), 3 waiting for an approval.
"""

from __future__ import annotations

import difflib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from engine.cli.follow import WAITING, finished_since, log_tail, run_report, snapshot, step_results
from engine.cli.inputs import parse_input_options, read_inputs_file
from engine.cli.render import Live, compact_json, duration, summary_table
from engine.dsl.plan import Plan
from engine.errors import Conflict, InputsInvalid, WorkflowInvalid
from engine.models import Run, RunStatus, Trigger, WorkerHeartbeat, Workflow, WorkflowVersion

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_WAITING = 3
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Target:
    """What to run: a file to store first (``source``) or a stored version."""

    plan: Plan
    source: str | None = None
    filename: str = ""
    version: WorkflowVersion | None = None


class Command(BaseCommand):
    help = (
        "Run a workflow file (stored as a new version first) or the latest version of a stored "
        "workflow, and follow it. Exit 0 succeeded, 1 failed/cancelled, 2 bad usage, 3 waiting "
        "for an approval."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("target", metavar="PATH_OR_NAME", help="a workflow file, or a name")
        parser.add_argument(
            "--input",
            action="append",
            default=[],
            dest="input_options",
            metavar="NAME=VALUE",
            help="an input (repeatable); VALUE is read as JSON when it parses, else as text",
        )
        parser.add_argument("--inputs-file", metavar="FILE", help="inputs as a JSON or YAML map")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print one JSON object at the end"
        )
        parser.add_argument(
            "--detach",
            action="store_true",
            help="print the run id and return at once (needs a broker and running workers)",
        )

    def handle(
        self,
        *args: Any,
        target: str,
        input_options: list[str],
        inputs_file: str | None = None,
        as_json: bool = False,
        detach: bool = False,
        **options: Any,
    ) -> None:
        self.as_json = as_json
        embedded = settings.BROKER_URL is None
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            self._usage("the database is not up to date: run `python manage.py migrate` first")
        if detach and embedded:
            self._usage(
                "--detach needs a broker (set BROKER_URL): without one the steps run inside "
                "this command"
            )
        what = self._resolve(target)
        inputs = self._inputs(what.plan, input_options, inputs_file)
        if options.get("verbosity", 1) < 2:
            for name in ("dramatiq", "flowyard.runtime"):
                logging.getLogger(name).setLevel(logging.WARNING)

        with self._embedded_worker(embedded):
            run = self._start(what, inputs)
            if detach:
                self._detached(run)
                return
            if not embedded:
                self._warn_without_workers()
            stream = getattr(self.stdout, "_out", sys.stdout)
            live = Live(stream, tty=self.stdout.isatty(), enabled=not as_json)
            status = self._follow(run.pk, live)
        self._report(run.pk, status, live)
        if status == WAITING:
            raise SystemExit(EXIT_WAITING)
        if status != RunStatus.SUCCEEDED:
            raise SystemExit(EXIT_FAILED)

    # --- before the run --------------------------------------------------------------------

    def _usage(self, message: str, *, problems: list[str] | None = None) -> NoReturn:
        """Report bad usage (exit 2); nothing has been stored."""
        if self.as_json:
            self.stdout.write(
                json.dumps({"run_id": None, "status": "invalid", "error": message,
                            "problems": problems or []})
            )  # fmt: skip
        for problem in problems or []:
            self.stderr.write(problem)
        raise CommandError(message, returncode=EXIT_USAGE)

    def _resolve(self, target: str) -> Target:
        path = Path(target)
        if path.is_file():
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                self._usage(f"{target}: cannot read it ({exc})")
            from engine.dsl import compile_workflow

            try:
                plan = compile_workflow(source, filename=str(path))
            except WorkflowInvalid as exc:
                self._usage(
                    f"{target}: {len(exc.problems)} problem(s); nothing was stored or run",
                    problems=[str(p) for p in exc.problems],
                )
            return Target(plan=plan, source=source, filename=str(path))
        if path.suffix in {".yaml", ".yml"} or "/" in target or path.exists():
            self._usage(f"{target}: no such file")
        workflow = Workflow.objects.filter(name=target).first()
        version = workflow.latest_version if workflow is not None else None
        if version is None:
            names = list(Workflow.objects.values_list("name", flat=True))
            close = difflib.get_close_matches(target, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            self._usage(f"{target}: no such file, and no stored workflow of that name{hint}")
        return Target(plan=version.compiled_plan(), version=version)

    def _inputs(self, plan: Plan, input_options: list[str], inputs_file: str | None) -> dict:
        from engine.runtime.start import inputs_validate

        try:
            values = read_inputs_file(inputs_file) if inputs_file else {}
            values.update(parse_input_options(input_options, plan.inputs))
            inputs_validate(plan, values)
        except InputsInvalid as exc:
            problems = exc.details if isinstance(exc.details, list) else None
            self._usage(
                f"invalid inputs: {exc.message}; nothing was stored or run",
                problems=[f"input {p}" for p in problems] if problems else None,
            )
        return values

    @contextmanager
    def _embedded_worker(self, embedded: bool) -> Iterator[None]:
        if not embedded:
            yield
            return
        from engine.runtime.embedded import EmbeddedWorker

        worker = EmbeddedWorker().start()
        try:
            yield
        finally:
            worker.stop(timeout=30)

    def _start(self, what: Target, inputs: dict[str, Any]) -> Run:
        from engine.services import run_start, workflow_publish

        try:
            with transaction.atomic():
                version = what.version
                if version is None:
                    version = workflow_publish(source=what.source, filename=what.filename).version
                return run_start(version=version, inputs=inputs, trigger=Trigger.MANUAL)
        except (InputsInvalid, WorkflowInvalid) as exc:
            self._usage(f"{exc.message}; nothing was stored or run")

    def _detached(self, run: Run) -> None:
        if self.as_json:
            self.stdout.write(json.dumps({"run_id": run.pk, "status": run.status}))
        else:
            self.stdout.write(str(run.pk))

    def _warn_without_workers(self) -> None:
        stale = float(settings.FLOWYARD.get("WORKER_STALE_SECONDS", 30))
        recent = timezone.now() - timedelta(seconds=stale)
        if not WorkerHeartbeat.objects.filter(last_seen_at__gte=recent).exists():
            self.stderr.write(
                f"no worker has reported in the last {stale:g}s: start one with "
                "`python manage.py rundramatiq`; the run waits in the queue until then"
            )

    # --- following -------------------------------------------------------------------------

    def _follow(self, run_id: int, live: Live) -> str:
        """Poll the run until it finishes or waits for a person; Ctrl-C cancels it."""
        seen: set[int] = set()
        cancelling = False
        with _sigterm_as_interrupt():
            while True:
                try:
                    snap = snapshot(run_id)
                    for result in finished_since(run_id, seen):
                        if live.enabled:
                            live.step_done(result)
                    if snap.finished:
                        return snap.status
                    if snap.approvals:
                        return WAITING
                    if live.enabled:
                        live.status(snap)
                    time.sleep(POLL_SECONDS)
                except KeyboardInterrupt:
                    if cancelling:
                        raise
                    cancelling = True
                    self._cancel(run_id, live)

    def _cancel(self, run_id: int, live: Live) -> None:
        from engine.services import run_cancel

        if live.enabled:
            live.say("interrupted: cancelling the run…")
        with suppress(Conflict):  # it finished meanwhile
            run_cancel(run=Run.objects.get(pk=run_id), reason="interrupted in runworkflow")

    # --- after -----------------------------------------------------------------------------

    def _report(self, run_id: int, status: str, live: Live) -> None:
        if self.as_json:
            self.stdout.write(json.dumps(run_report(run_id), default=str))
            return
        live.clear()
        run = Run.objects.select_related("workflow", "version").get(pk=run_id)
        results = step_results(run_id, with_instances=False)
        out = self.stdout
        out.write("")
        for line in summary_table(results):
            out.write(line)
        out.write("")
        took = duration(((run.finished_at or timezone.now()) - run.created_at).total_seconds())
        name = f"{run.workflow.name} v{run.version.number}"
        if status == WAITING:
            waiting = snapshot(run_id).approvals
            out.write(
                f"run {run.pk} of {name} is waiting for approval at {', '.join(waiting)} "
                f"({took} so far). Approve or reject it in the dashboard or the API; the run "
                "goes on in the workers (or in `manage.py standalone`)."
            )
            return
        style = self.style.SUCCESS if status == RunStatus.SUCCEEDED else self.style.ERROR
        out.write(style(f"run {run.pk} of {name} {status} in {took}"))
        if run.outputs:
            out.write(f"outputs: {compact_json(run.outputs)}")
        if run.error:
            self.stderr.write(f"error: {run.error}")
        for result in results:
            if result.status == "failed" and not result.instances:
                tail = log_tail(result.pk)
                if tail:
                    self.stderr.write(f"last lines of '{result.step_id}':")
                    for line in tail:
                        self.stderr.write(f"  | {line}")


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while following, so a stopped command cancels its run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
