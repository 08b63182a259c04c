"""Fan-out: a for_each / matrix group creates its instances, keeps its max_parallel window
full, and ends once every instance ended. Part of the advance logic (``Advance`` mixes it in)
and bound by its rules: the run's row is locked, counters change one completion at a time.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from engine.dsl.expressions import evaluate
from engine.dsl.plan import StepPlan
from engine.errors import ExpressionError, StepFailed
from engine.models import EventKind, SkipReason, StepRun, StepStatus
from engine.runtime import sql

if TYPE_CHECKING:
    from engine.models import Run
    from engine.runtime.dispatch import Work
    from engine.runtime.plans import RunPlan

GROUP_FIELDS = ["status", "started_at", "error", "fanout_total", "fanout_active",
                "fanout_done", "fanout_failed"]  # fmt: skip


class FanOut:
    """The fan-out half of ``Advance``."""

    run: Run
    work: Work
    rp: RunPlan
    active: bool

    def fail_top(self, row: StepRun, error: str) -> None:
        raise NotImplementedError

    def finished(self, row: StepRun) -> None:
        raise NotImplementedError

    def _context(self, step: StepPlan, needs: dict) -> dict[str, Any]:
        raise NotImplementedError

    def _expand(self, row: StepRun, step: StepPlan, needs: dict) -> None:
        if row.fanout_total is not None:  # "retry failed": the instances exist already
            row.status = StepStatus.RUNNING
            row.error = ""
            self._fill(row, step)
            self._save_group(row, step)
            return
        try:
            items = self._items(step, self._context(step, needs))
        except (ExpressionError, StepFailed) as exc:
            self.fail_top(row, f"{'for_each' if step.for_each is not None else 'matrix'}: {exc}")
            return
        row.status = StepStatus.RUNNING
        row.started_at = self.work.now
        row.fanout_total = len(items)
        self.work.event(
            self.run.pk, EventKind.STEP_EXPANDED, step_id=row.pk, data={"instances": len(items)}
        )
        sql.insert_instances(group=row, items=items)
        self._fill(row, step)
        self._save_group(row, step)

    def _items(self, step: StepPlan, context: dict[str, Any]) -> list[Any]:
        if step.for_each is not None:
            items = evaluate(step.for_each, context)
            if not isinstance(items, list):
                raise StepFailed(f"must be a list, got {type(items).__name__}", permanent=True)
            return items
        axes = evaluate(dict(step.matrix or {}), context)
        for name, values in axes.items():
            if not isinstance(values, list):
                raise StepFailed(f"{name} must be a list, got {type(values).__name__}")
        names = list(axes)
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]

    def _fill(self, group: StepRun, step: StepPlan) -> None:
        """Queue pending instances up to max_parallel (counted in ``group.fanout_active``)."""
        if not self.active:
            return
        free = (step.max_parallel or group.fanout_total or 0) - group.fanout_active
        if free > 0:
            group.fanout_active += len(self._pick(group.pk, step, free))

    def _pick(self, group_id: int, step: StepPlan, limit: int) -> list[tuple[int, int]]:
        picked = sql.pick_pending(group_id=group_id, limit=limit, now=self.work.now)
        for pk, attempt in picked:
            self.work.event(self.run.pk, EventKind.STEP_QUEUED, step_id=pk, attempt=attempt)
            self.work.send_step(pk, attempt, step)
        return picked

    def instance_finished(self, instance: StepRun) -> None:
        """An instance ended for good: count it, refill the window, finish the group.

        Two statements in the steady state: count (UPDATE … RETURNING) and pick the next
        pending instance (UPDATE … RETURNING); the group row is loaded only at the end.
        """
        step = self.rp.step(instance.step_id)
        failed = instance.status not in (StepStatus.SUCCEEDED, StepStatus.SKIPPED)
        total, done, active, _, _ = sql.group_count(
            group_id=instance.parent_id, failed=failed, error=f"{instance.label}: {instance.error}"
        )
        running = max(active - 1, 0)  # `active` still counts the instance that just ended
        picked: list[tuple[int, int]] = []
        if self.active and done < total:
            free = (step.max_parallel or total) - running
            if free > 0:
                picked = self._pick(instance.parent_id, step, free)
        if running + len(picked) != active:
            sql.set_group_active(group_id=instance.parent_id, active=running + len(picked))
        if done >= total:
            self.group_done(instance.parent_id, step)

    def group_done(self, group_id: int, step: StepPlan) -> None:
        """Every instance of the group ended: finish the group (loads its instances once)."""
        self._save_group(StepRun.objects.get(pk=group_id), step)

    def _save_group(self, group: StepRun, step: StepPlan) -> None:
        if group.fanout_done < (group.fanout_total or 0):
            group.save(update_fields=GROUP_FIELDS)
            return
        instances = StepRun.objects.filter(parent=group).order_by("index")
        rows = list(instances.values_list("outputs", "status"))
        group.outputs = [outputs for outputs, _ in rows]
        if group.fanout_failed:
            group.status = StepStatus.FAILED
            group.error = (
                f"{group.fanout_failed} of {group.fanout_total} instances failed; "
                f"first: {group.error}"
            )
            kind = EventKind.STEP_FAILED
        elif rows and all(status == StepStatus.SKIPPED for _, status in rows):
            group.status = StepStatus.SKIPPED
            group.skip_reason = SkipReason.CONDITION
            group.error = "skipped: its `if` was false for every instance"
            kind = EventKind.STEP_SKIPPED
        else:
            group.status = StepStatus.SUCCEEDED
            kind = EventKind.STEP_SUCCEEDED
        group.finished_at = self.work.now
        group.save()
        self.work.event(self.run.pk, kind, step_id=group.pk, message=group.error)
        self.finished(group)
