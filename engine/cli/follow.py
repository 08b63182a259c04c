"""What a terminal follower reads about a run: cheap snapshots while it runs, a report at the end.

Each snapshot costs a handful of queries whatever the size of the run (counts are aggregated in
SQL), so following a run of 10,000 step instances every quarter of a second is fine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from engine.models import Run, RunStatus, StepKind, StepLog, StepRun, StepStatus

# How runworkflow describes a run that can only go on once a person decides. It is not a
# Run.status: the run is still `running` in the database and resumes when someone approves.
WAITING = "waiting"
_MOVING = (StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.RETRYING)


@dataclass(frozen=True)
class Snapshot:
    """The state of a run at one moment, as the progress line shows it."""

    status: str
    done: int  # top-level steps finished
    total: int  # top-level steps
    running: list[str]  # labels of running steps and instances, oldest first
    running_count: int
    groups: list[tuple[str, int, int]]  # (step id, instances finished, instances) of live groups
    approvals: list[str]  # labels of steps waiting for a person
    elapsed: float  # seconds since the run was created

    @property
    def finished(self) -> bool:
        return self.status in RunStatus.finished()


def snapshot(run_id: int, *, show: int = 4) -> Snapshot:
    """A consistent-enough view of the run for a progress line (a few small queries)."""
    run = Run.objects.only("status", "created_at", "finished_at").get(pk=run_id)
    tops = StepRun.objects.filter(run_id=run_id, index__isnull=True).aggregate(
        total=Count("id"), done=Count("id", filter=Q(status__in=StepStatus.finished()))
    )
    running = StepRun.objects.filter(run_id=run_id, status=StepStatus.RUNNING).exclude(
        kind=StepKind.GROUP
    )
    labels = [
        f"{step_id}[{index}]" if index is not None else step_id
        for step_id, index in running.order_by("started_at", "id").values_list("step_id", "index")[
            :show
        ]
    ]
    running_count = len(labels) if len(labels) < show else running.count()
    groups = [
        (g["step_id"], g["fanout_done"], g["fanout_total"])
        for g in StepRun.objects.filter(
            run_id=run_id, kind=StepKind.GROUP, status=StepStatus.RUNNING
        ).values("step_id", "fanout_done", "fanout_total")
    ]
    end = run.finished_at or timezone.now()
    return Snapshot(
        status=run.status,
        done=tops["done"],
        total=tops["total"],
        running=labels,
        running_count=running_count,
        groups=groups,
        approvals=waiting_for_people(run_id) if run.status == RunStatus.RUNNING else [],
        elapsed=(end - run.created_at).total_seconds(),
    )


def waiting_for_people(run_id: int) -> list[str]:
    """Labels of the approvals the run waits for, when nothing else in it can move; else [].

    One statement (one snapshot of the table): no step is queued, running or retrying, and
    every waiting step waits for an approval (not for a timer or a child run).
    """
    counts = StepRun.objects.filter(run_id=run_id).aggregate(
        moving=Count("id", filter=Q(status__in=_MOVING)),
        timers=Count("id", filter=Q(status=StepStatus.WAITING) & ~Q(wait__kind="approval")),
        approvals=Count("id", filter=Q(status=StepStatus.WAITING, wait__kind="approval")),
    )
    if counts["moving"] or counts["timers"] or not counts["approvals"]:
        return []
    rows = StepRun.objects.filter(run_id=run_id, status=StepStatus.WAITING, wait__kind="approval")
    return [
        f"{step_id}[{index}]" if index is not None else step_id
        for step_id, index in rows.order_by("id").values_list("step_id", "index")
    ]


@dataclass
class StepResult:
    """One row of the summary: a top-level step (and its instances when it fanned out)."""

    step_id: str
    status: str
    attempts: int
    outputs: Any
    error: str
    started_at: datetime | None
    finished_at: datetime | None
    is_finally: bool = False
    instances: list[dict[str, Any]] | None = None
    pk: int = 0
    instance_counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, row: StepRun) -> StepResult:
        return cls(
            step_id=row.step_id,
            status=row.status,
            attempts=row.attempt,
            outputs=row.outputs,
            error=row.error,
            started_at=row.started_at,
            finished_at=row.finished_at,
            is_finally=row.is_finally,
            pk=row.pk,
        )

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


def step_results(run_id: int, *, with_instances: bool = True) -> list[StepResult]:
    """The run's top-level steps in plan order (then finally steps), with their instances."""
    rows = list(
        StepRun.objects.filter(run_id=run_id, index__isnull=True).order_by("is_finally", "id")
    )
    results = [StepResult.of(r) for r in rows]
    groups = {r.pk: res for r, res in zip(rows, results, strict=True) if r.kind == StepKind.GROUP}
    if groups:
        counts = (
            StepRun.objects.filter(parent_id__in=list(groups))
            .values("parent_id", "status")
            .annotate(n=Count("id"))
        )
        for row in counts:
            groups[row["parent_id"]].instance_counts[row["status"]] = row["n"]
        for group in groups.values():
            group.instances = []
        if with_instances:
            instances = (
                StepRun.objects.filter(parent_id__in=list(groups))
                .order_by("parent_id", "index")
                .values_list("parent_id", "index", "status", "attempt", "outputs", "error")
            )
            for parent_id, index, status, attempt, outputs, error in instances.iterator(2000):
                groups[parent_id].instances.append(
                    {
                        "index": index,
                        "status": status,
                        "attempts": attempt,
                        "outputs": outputs,
                        "error": error,
                    }
                )
    return results


def run_report(run_id: int) -> dict[str, Any]:
    """The object ``runworkflow --json`` prints: run id, status, outputs, error and steps.

    ``status`` is the run's own; a run that stopped at approvals is ``running`` and lists
    them in ``waiting_for``.
    """
    run = Run.objects.get(pk=run_id)
    steps: dict[str, Any] = {}
    for result in step_results(run_id):
        entry: dict[str, Any] = {
            "status": result.status,
            "attempts": result.attempts,
            "outputs": result.outputs,
            "error": result.error,
        }
        if result.instances is not None:
            entry["instances"] = result.instances
        steps[result.step_id] = entry
    return {
        "run_id": run.pk,
        "workflow": run.workflow.name,
        "version": run.version.number,
        "status": run.status,
        "outputs": run.outputs,
        "error": run.error,
        "waiting_for": waiting_for_people(run_id) if run.status == RunStatus.RUNNING else [],
        "steps": steps,
    }


def log_tail(step_run_id: int, *, lines: int = 10) -> list[str]:
    """The last ``lines`` lines a step's latest attempt wrote (stdout and stderr together)."""
    latest = StepLog.objects.filter(step_id=step_run_id).order_by("-attempt").first()
    if latest is None:
        return []
    chunks = StepLog.objects.filter(step_id=step_run_id, attempt=latest.attempt).order_by("-seq")
    text: list[str] = []
    for chunk in chunks.values_list("text", flat=True)[:4]:
        text.insert(0, chunk)
    return "".join(text).rstrip("\n").splitlines()[-lines:]


def finished_since(run_id: int, seen: set[int]) -> list[StepResult]:
    """Top-level steps that finished and are not in ``seen`` (which this call updates)."""
    rows = (
        StepRun.objects.filter(run_id=run_id, index__isnull=True, status__in=StepStatus.finished())
        .exclude(pk__in=seen)
        .order_by("finished_at", "id")
    )
    results = []
    for r in rows:
        seen.add(r.pk)
        results.append(StepResult.of(r))
    return results
