"""Runtime fixtures: an in-process worker over the stub broker, on the real PostgreSQL.

Tests that execute steps use ``transaction=True`` databases (the ``worker`` fixture asks for
one): worker threads have their own connections and must see committed rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pytest

from engine.dsl.plan import Plan
from engine.models import Run, StepRun, Workflow, WorkflowVersion
from engine.runtime.embedded import EmbeddedWorker, run_wait
from engine.services import run_start


@pytest.fixture
def worker(transactional_db: None) -> Iterator[EmbeddedWorker]:
    """An embedded worker (4 threads, no periodic reconciler: tests call reconcile())."""
    embedded = EmbeddedWorker(threads=4, reconcile_every=None, poll_ms=20).start()
    try:
        yield embedded
    finally:
        embedded.stop(timeout=15)
        dramatiq.get_broker().flush_all()


@pytest.fixture
def run_to_end(worker: EmbeddedWorker) -> Callable[..., Run]:
    """``run_to_end(run, timeout=30)``: drive the worker until the run has finished."""

    def drive(run: Run | int, *, timeout: float = 30.0) -> Run:
        return run_wait(run, timeout=timeout)

    return drive


@pytest.fixture
def publish(transactional_db: None) -> Callable[[Plan], WorkflowVersion]:
    """Store a Plan as the next version of its workflow (no YAML involved)."""

    def store(plan: Plan) -> WorkflowVersion:
        workflow, _ = Workflow.objects.get_or_create(name=plan.name)
        number = workflow.versions.count() + 1
        return WorkflowVersion.objects.create(
            workflow=workflow, number=number, source="", checksum=str(number), plan=plan.to_dict()
        )

    return store


@pytest.fixture
def start(publish: Callable[[Plan], WorkflowVersion]) -> Callable[..., Run]:
    """``start(plan, **inputs)``: publish the plan and start a run of it."""

    def begin(plan: Plan, **inputs: Any) -> Run:
        return run_start(version=publish(plan), inputs=inputs)

    return begin


def steps_of(run: Run) -> dict[str, StepRun]:
    """The top-level steps of a run by id."""
    return {s.step_id: s for s in StepRun.objects.filter(run=run, index__isnull=True)}
