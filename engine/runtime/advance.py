"""The DAG advance logic: what became ready, skipped, fanned out or finished.

Every method runs inside ``transaction.atomic()`` with the Run row locked by the caller
(``select_for_update``). Joins are counted in SQL (``deps_left`` on steps, ``fanout_*`` on
groups: atomic ``UPDATE … RETURNING``, so the one-statement completions, which do not lock the
run, can count too); nothing ever loads all instances of a group except once, when it finishes.
The end of the main graph and of the run is decided after the commit, by ``settle`` (see
``engine.runtime.settle``): every top-level step that ends asks for it.
Fan-out lives in ``engine.runtime.fanout``; the common completions are single statements in
``engine.runtime.fastpath``, which hand over to this class only for what needs Python.
"""

from __future__ import annotations

from collections import deque
from datetime import timedelta
from typing import Any

from engine.dsl.expressions import evaluate, evaluate_condition
from engine.dsl.expressions.conditions import uses_status_function
from engine.dsl.plan import StepPlan
from engine.errors import ExpressionError, StepFailed
from engine.models import EventKind, Run, RunStatus, SkipReason, StepKind, StepRun, StepStatus
from engine.runtime import sql
from engine.runtime.context import (
    build_context,
    check_output_size,
    dependency_state,
    effective_status,
    load_views,
    step_view,
)
from engine.runtime.dispatch import Work
from engine.runtime.fanout import FanOut
from engine.runtime.plans import run_plan

RESUME_ACTOR = "flowyard_step_resume"
REUSED_FIELDS = (
    "status", "skip_reason", "attempt", "outputs", "error", "started_at", "finished_at",
    "fanout_total", "fanout_done", "fanout_failed",
)  # fmt: skip


def attempt_timeout(step: StepPlan) -> timedelta:
    """How long one attempt may run: the step's timeout, else its action's time limit."""
    if step.timeout:
        return timedelta(seconds=step.timeout)
    return timedelta(milliseconds=step.time_limit_ms or 3_600_000)


class Advance(FanOut):
    """The advance logic over one run whose row the caller has locked."""

    def __init__(self, run: Run, work: Work) -> None:
        self.run = run
        self.work = work
        self.rp = run_plan(run.version_id)
        self.views: dict[str, dict[str, Any]] = {}
        self._finished: deque[StepRun] = deque()
        self._draining = False
        self._run_fields: set[str] = set()
        self.reused: dict[str, StepRun] = {}  # step id -> the earlier run's row (re-runs)

    @property
    def active(self) -> bool:
        return self.run.status in (RunStatus.QUEUED, RunStatus.RUNNING)

    # --- a new run -----------------------------------------------------------------------

    def create_steps(self) -> None:
        """Insert every top-level step as pending and start those with no dependency.

        Steps in ``self.reused`` are inserted already finished, as copies of the earlier run's.
        """
        rows = []
        for step in self.rp.all_steps.values():
            row = StepRun(
                run=self.run,
                step_id=step.id,
                kind=StepKind.GROUP if step.fans_out else StepKind.STEP,
                is_finally=step.is_finally,
                deps_left=self.rp.deps_left(step),
                max_attempts=step.retry.max_attempts,
                timeout=attempt_timeout(step),
            )
            old = self.reused.get(step.id)
            if old is not None:
                for name in REUSED_FIELDS:
                    setattr(row, name, getattr(old, name))
                row.deps_left = 0
                row.reused_from = old
            elif row.deps_left == 0 and step.id in self.rp.plain_roots:
                row.status, row.attempt, row.queued_at = StepStatus.QUEUED, 1, self.work.now
            rows.append(row)
        StepRun.objects.bulk_create(rows)
        self._set_run(main_left=1)
        self.work.settle(self.run.pk)  # no main step, or all reused: the run may be done
        self._draining = True  # collect first, release after every root was looked at
        for row in rows:
            if row.reused_from is not None:
                self.work.event(
                    self.run.pk,
                    EventKind.STEP_REUSED,
                    step_id=row.pk,
                    data={"from_run": row.reused_from.run_id, "from_step": row.reused_from.pk},
                )
                self._finished.append(row)
            elif row.status == StepStatus.QUEUED:  # queued by the insert itself
                self.work.event(self.run.pk, EventKind.STEP_QUEUED, step_id=row.pk, attempt=1)
                self.work.send_step(row.pk, 1, self.rp.step(row.step_id))
            elif not row.is_finally and row.deps_left == 0:
                self.ready(row)
        self._drain()

    def restart(self, rows: list[StepRun]) -> None:
        """Start again the reset steps of a retried run (see ``run_retry``)."""
        self._draining = True
        for row in rows:
            if not row.is_finally and row.deps_left == 0:
                self.ready(row)
        self.work.settle(self.run.pk)  # only finally steps were reset: lift their barrier
        self._drain()

    # --- readiness -----------------------------------------------------------------------

    def ready(self, row: StepRun) -> None:
        """A pending top-level step has no unfinished dependency: skip it, queue or expand it."""
        step = self.rp.step(row.step_id)
        needs = self._needs(step)
        deps = dependency_state(self.rp, needs)
        try:
            if step.is_finally and step.if_ is None:
                go = True
            elif step.if_ is None:
                go = deps.success
            elif self.rp.item_condition(step):  # evaluated per instance, by the worker
                go = deps.success or uses_status_function(step.if_)
            else:
                go = evaluate_condition(step.if_, self._context(step, needs), deps=deps)
        except ExpressionError as exc:
            self.fail_top(row, f"if: {exc.message}")
            return
        if not go:
            self._skip(row, step, needs, deps)
        elif row.kind == StepKind.GROUP:
            self._expand(row, step, needs)
        else:
            self.queue(row, step)

    def queue(self, row: StepRun, step: StepPlan) -> None:
        """Dispatch the next attempt of a plain step or an instance."""
        row.attempt += 1
        row.status = StepStatus.QUEUED
        row.queued_at = self.work.now
        row.error = ""
        row.save(update_fields=["attempt", "status", "queued_at", "error"])
        self.work.event(self.run.pk, EventKind.STEP_QUEUED, step_id=row.pk, attempt=row.attempt)
        self.work.send_step(row.pk, row.attempt, step)

    def fail_top(self, row: StepRun, error: str) -> None:
        """Fail a top-level step before it ran (its `if`, `for_each` or `matrix` is broken)."""
        row.status = StepStatus.FAILED
        row.error = error
        row.finished_at = self.work.now
        row.save(update_fields=["status", "error", "finished_at"])
        self.work.event(self.run.pk, EventKind.STEP_FAILED, step_id=row.pk, message=error)
        self.finished(row)

    def _skip(self, row: StepRun, step: StepPlan, needs: dict, deps: Any) -> None:
        if deps.any_failed and not deps.run_cancelled:
            reason = SkipReason.FAILURE
            names = [
                k
                for k, v in needs.items()
                if effective_status(v, self.rp.step(k)) == StepStatus.FAILED
                or v.get("skip_reason") == SkipReason.FAILURE
            ]
            message = f"skipped: {_names(names)} failed"
        elif not deps.success and step.if_ is None:
            reason = SkipReason.DEPENDENCY
            names = [k for k, v in needs.items() if v["status"] != StepStatus.SUCCEEDED]
            message = f"skipped: {_names(names)} did not succeed"
        else:
            reason = SkipReason.CONDITION
            message = "skipped: its `if` was false"
        row.status = StepStatus.SKIPPED
        row.skip_reason = reason
        row.error = message
        row.finished_at = self.work.now
        row.save(update_fields=["status", "skip_reason", "error", "finished_at"])
        self.work.event(self.run.pk, EventKind.STEP_SKIPPED, step_id=row.pk, message=message)
        self.finished(row)

    # --- completion ----------------------------------------------------------------------

    def finished(self, row: StepRun) -> None:
        """A top-level step ended for good: release its dependents; finish the run when done."""
        self._finished.append(row)
        if not self._draining:
            self._drain()

    def _drain(self) -> None:
        self._draining = True
        try:
            while self._finished:
                self._release(self._finished.popleft())
        finally:
            self._draining = False

    def _release(self, row: StepRun) -> None:
        step = self.rp.step(row.step_id)
        self.views[row.step_id] = step_view(
            {
                "status": row.status,
                "outputs": row.outputs,
                "error": row.error,
                "attempt": row.attempt,
                "skip_reason": row.skip_reason,
            }
        )
        self.work.settle(self.run.pk)
        dependents, _ = self.rp.released(step.id)
        if dependents and self.active:
            blocked = effective_status(self.views[row.step_id], step) != StepStatus.SUCCEEDED
            self._count_down(list(dependents), blocked=blocked)

    def released(self, step: StepPlan, ready: list[int]) -> None:
        """After a fast-path completion of ``step`` (``engine.runtime.fastpath``) counted its
        dependents and the run's counters in SQL: evaluate the dependents that became ready
        but were not queued by that statement, and go on as ``finished`` would."""
        self._draining = True
        try:
            for row in StepRun.objects.filter(pk__in=ready).order_by("id"):
                self.ready(row)
        finally:
            self._draining = False
        self._drain()

    def settle(self) -> None:
        """Under the run's lock, after completions committed (``engine.runtime.settle``):
        when no main step is unfinished, lift the finally steps' barrier (once: ``main_left``
        1 -> 0); when no step at all is unfinished, finish the run (once: it is active)."""
        if not self.active:
            return
        self._draining = True
        try:
            if self.run.main_left and not self._open(main_only=True):
                self._set_run(main_left=0)
                self._main_done()
        finally:
            self._draining = False
        self._drain()
        if self.active and not self.run.main_left and not self._open():
            self._finish_run()

    def _open(self, *, main_only: bool = False) -> bool:
        """Whether a top-level step (a main one with ``main_only``) is unfinished."""
        rows = StepRun.objects.filter(
            run_id=self.run.pk, index__isnull=True, status__in=StepStatus.active()
        )
        if main_only:
            rows = rows.filter(is_finally=False)
        return rows.exists()

    def _count_down(self, step_ids: list[str], *, blocked: bool = False) -> None:
        ready = sql.count_down(run_id=self.run.pk, step_ids=step_ids, blocked=blocked)
        if ready:
            for row in StepRun.objects.filter(pk__in=ready).order_by("id"):
                self.ready(row)

    def _main_done(self) -> None:
        """The main graph is finished: lift the barrier the finally steps wait behind."""
        finally_ids = list(self.rp.plan.finally_steps)
        if finally_ids:
            self._count_down(finally_ids)

    def _finish_run(self) -> None:
        failed = StepRun.objects.filter(
            run_id=self.run.pk, index__isnull=True, status=StepStatus.FAILED
        ).order_by("finished_at", "id")
        bad = [
            f
            for f in failed.values("step_id", "error")
            if not self.rp.step(f["step_id"]).continue_on_error
        ]
        outputs = None
        error = ""
        if bad:
            error = f"step '{bad[0]['step_id']}' failed: {bad[0]['error']}"
            if len(bad) > 1:
                error += f" (and {len(bad) - 1} other failed step{'s' if len(bad) > 2 else ''})"
        elif self.rp.plan.outputs:
            try:
                views = load_views(self.run.pk, self.rp.all_steps)
                context = build_context(run=self.run, rp=self.rp, step=None, steps=views)
                outputs = check_output_size(
                    evaluate(dict(self.rp.plan.outputs), context), what="run outputs"
                )
            except (ExpressionError, StepFailed) as exc:
                error = f"outputs: {exc.message}"
        status = RunStatus.FAILED if error else RunStatus.SUCCEEDED
        self.finish_run(status=status, error=error, outputs=outputs)

    def finish_run(self, *, status: str, error: str = "", outputs: Any = None) -> None:
        """Mark the run finished; a child run then resumes the step that started it."""
        self._set_run(status=status, error=error, outputs=outputs, finished_at=self.work.now)
        kind = {
            RunStatus.SUCCEEDED: EventKind.RUN_SUCCEEDED,
            RunStatus.FAILED: EventKind.RUN_FAILED,
            RunStatus.CANCELLED: EventKind.RUN_CANCELLED,
        }[status]
        self.work.event(self.run.pk, kind, message=error)
        if self.run.parent_step_id:
            parent = StepRun.objects.filter(pk=self.run.parent_step_id, status=StepStatus.WAITING)
            for pk, attempt in parent.values_list("id", "attempt"):
                self.work.send(RESUME_ACTOR, pk, attempt)

    # --- helpers -------------------------------------------------------------------------

    def _views(self, step_ids: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        missing = [n for n in step_ids if n not in self.views]
        if missing:
            self.views.update(load_views(self.run.pk, missing))
        return {n: self.views[n] for n in step_ids if n in self.views}

    def _needs(self, step: StepPlan) -> dict[str, dict[str, Any]]:
        return self._views(step.needs)

    def _context(self, step: StepPlan, needs: dict) -> dict[str, Any]:
        steps = self._views(self.rp.visible(step)) if step.is_finally else needs
        return build_context(run=self.run, rp=self.rp, step=step, steps=steps)

    def _set_run(self, **fields: Any) -> None:
        for name, value in fields.items():
            setattr(self.run, name, value)
        self._run_fields.update(fields)

    def save(self) -> None:
        """Write the run's changed fields (call once, at the end of the unit of work)."""
        if self._run_fields:
            self.run.save(update_fields=sorted(self._run_fields))
            self._run_fields.clear()


def _names(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names] or ["a dependency"]
    return ", ".join(quoted)
