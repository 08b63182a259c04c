"""The worker side of a step: claim the attempt, evaluate `with`, run the action, record it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from dramatiq.middleware.time_limit import TimeLimitExceeded

from engine.actions.registry import UnknownAction, registry
from engine.dsl.expressions import evaluate, evaluate_condition, mask_secrets, mask_secrets_in
from engine.dsl.plan import StepPlan
from engine.errors import ExpressionError, StepFailed
from engine.models import EventKind, Run, RunStatus, StepRun, StepStatus
from engine.runtime import sql
from engine.runtime.context import (
    build_context,
    check_output_size,
    dependency_state,
    load_views,
    secrets_from_env,
)
from engine.runtime.dispatch import Work
from engine.runtime.hooks import hooks
from engine.runtime.logs import LogWriter
from engine.runtime.outcomes import Outcome, Suspend, attempt_finish, attempt_suspend
from engine.runtime.plans import run_plan
from engine.runtime.workers import worker_id

logger = logging.getLogger("flowyard.runtime")


@dataclass
class StepCall:
    """What an action function receives: the evaluated `with` and the attempt's facilities."""

    step_run_id: int
    attempt: int
    run_id: int
    step: StepPlan
    with_: dict[str, Any]
    env: dict[str, str]  # the workflow's env, then the step's (evaluated)
    secrets: dict[str, str]
    log: LogWriter
    started_at: datetime
    index: int | None = None
    item: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def timeout(self) -> float | None:
        """Seconds this attempt may take (the step's `timeout`), or None."""
        return self.step.timeout

    def cancelled(self) -> bool:
        """True once this attempt no longer owns the step (run cancelled, timed out, taken
        over by the reconciler). One query: poll it at most every second or so."""
        return not StepRun.objects.filter(
            pk=self.step_run_id, status=StepStatus.RUNNING, attempt=self.attempt
        ).exists()


def step_execute(*, step_run_id: int, attempt: int) -> None:
    """Run ``attempt`` of a step if this message wins the claim; otherwise drop it.

    The claim is a conditional UPDATE (queued/retrying at this attempt -> running); a message
    that loses it (duplicate, cancelled run, stale attempt) leaves a MESSAGE_DROPPED event.
    Never raises for a step's own failure: it is recorded and the retry policy applies.
    """
    now = timezone.now()
    row = sql.claim(step_run_id=step_run_id, attempt=attempt, now=now, worker=worker_id())
    if row is None:
        _drop(step_run_id, attempt)
        return
    if row.run.status == RunStatus.QUEUED:
        _run_started(row.run, now)
    hooks.step_started(step_run_id=step_run_id, attempt=attempt, worker=row.worker)
    began = time.monotonic()
    result = _perform(row, attempt)
    if isinstance(result, Suspend):
        attempt_suspend(row=row, attempt=attempt, suspend=result)
        status = StepStatus.WAITING
    else:
        attempt_finish(row=row, attempt=attempt, outcome=result)
        status = row.status
    hooks.step_finished(
        step_run_id=step_run_id, attempt=attempt, status=status, seconds=time.monotonic() - began
    )


def _perform(row: StepRun, attempt: int) -> Outcome | Suspend:
    run = row.run
    rp = run_plan(run.version_id)
    step = rp.step(row.step_id)
    secrets = secrets_from_env()
    log = LogWriter(row.pk, attempt, secrets=secrets.values())
    try:
        action = registry.get(step.uses)
        if action.func is None:
            raise StepFailed(f"the action '{step.uses}' has no implementation", permanent=True)
        item_if = row.index is not None and rp.item_condition(step)
        views = {}
        if item_if or rp.reads_steps(step):  # most steps read no other step: no query
            views = load_views(run.pk, rp.visible(step))
        context = build_context(
            run=run, rp=rp, step=step, steps=views, item=row.item, index=row.index, secrets=secrets
        )
        if item_if:
            deps = dependency_state(rp, {n: views[n] for n in step.needs if n in views})
            if not evaluate_condition(step.if_, context, deps=deps):
                return Outcome(ok=True, skipped=True, error="skipped: its `if` was false")
        with_ = evaluate(dict(step.with_), context)
        call = StepCall(
            step_run_id=row.pk,
            attempt=attempt,
            run_id=run.pk,
            step=step,
            with_=with_,
            env=context["env"],
            secrets=secrets,
            log=log,
            started_at=row.started_at or timezone.now(),
            index=row.index,
            item=row.item,
        )
        result = action.func(call)
        if isinstance(result, Suspend):
            return result
        if result is None:
            result = {}
        outputs = result
        if step.outputs is not None:
            outputs = evaluate(dict(step.outputs), {**context, "result": result})
        outputs = mask_secrets_in(check_output_size(outputs), secrets.values())
        return Outcome(ok=True, outputs=outputs)
    except StepFailed as exc:
        return Outcome(
            ok=False, error=mask_secrets(exc.message, secrets.values()), permanent=exc.permanent
        )
    except ExpressionError as exc:
        return Outcome(ok=False, error=exc.message, permanent=True)
    except UnknownAction:
        return Outcome(ok=False, error=f"unknown action '{step.uses}'", permanent=True)
    except TimeLimitExceeded:
        limit = step.timeout or step.time_limit_ms / 1000
        return Outcome(ok=False, error=f"timed out after {limit:g}s")
    except Exception as exc:
        logger.info("step %s attempt %s failed", row.pk, attempt, exc_info=True)
        message = mask_secrets(f"{type(exc).__name__}: {exc}", secrets.values())
        return Outcome(ok=False, error=message)
    finally:
        try:
            log.close()
        except Exception:
            logger.exception("could not store the logs of step %s", row.pk)


def _run_started(run: Run, now: datetime) -> None:
    with transaction.atomic():
        started = Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=now
        )
        if started:
            work = Work()
            work.event(run.pk, EventKind.RUN_STARTED, at=now)
            work.commit()
            run.status, run.started_at = RunStatus.RUNNING, now


def _drop(step_run_id: int, attempt: int) -> None:
    row = StepRun.objects.filter(pk=step_run_id).values("run_id", "status", "attempt").first()
    if row is None:
        logger.info("dropped a message for step %s: no such step", step_run_id)
        return
    if row["status"] == StepStatus.WAITING and row["attempt"] == attempt:
        return  # a redelivered first message of a wait step: it already suspended
    reason = f"message for attempt {attempt} lost its claim: the step is {row['status']}"
    if row["attempt"] != attempt:
        reason += f" at attempt {row['attempt']}"
    with transaction.atomic():
        work = Work()
        work.event(
            row["run_id"],
            EventKind.MESSAGE_DROPPED,
            step_id=step_run_id,
            attempt=attempt,
            message=reason,
        )
        work.commit()
