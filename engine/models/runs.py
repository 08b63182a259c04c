"""Runs of a workflow version and their append-only audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from engine.models.workflows import Workflow, WorkflowVersion


class RunStatus(models.TextChoices):
    QUEUED = "queued"  # created, no step has started yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @classmethod
    def finished(cls) -> tuple[str, ...]:
        return (cls.SUCCEEDED, cls.FAILED, cls.CANCELLED)


class Trigger(models.TextChoices):
    MANUAL = "manual"
    API = "api"
    SCHEDULE = "schedule"
    WEBHOOK = "webhook"
    WORKFLOW = "workflow"  # a child run started by a `workflow` step
    RERUN = "rerun"


class Run(models.Model):
    """One execution of a workflow, pinned to the version it started on."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    inputs = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    # A child run started by a `workflow` step points at that step; its end resumes the step.
    parent_step = models.ForeignKey(
        "engine.StepRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    # 1 while the main graph runs (finally steps wait behind it), 0 once ``settle`` saw it end
    # and lifted that barrier. Changed only with the row locked; completions never touch it.
    main_left = models.PositiveIntegerField(default=1, help_text="1 until the main graph ended.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True, help_text="The run's timeout.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["workflow", "status", "-started_at"], name="run_wf_status_started"
            ),
            models.Index(fields=["status", "deadline_at"], name="run_status_deadline"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.workflow_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in RunStatus.finished()


class EventKind(models.TextChoices):
    RUN_QUEUED = "run_queued"
    RUN_STARTED = "run_started"
    RUN_SUCCEEDED = "run_succeeded"
    RUN_FAILED = "run_failed"
    RUN_CANCELLED = "run_cancelled"
    RUN_RETRIED = "run_retried"
    RUN_TIMED_OUT = "run_timed_out"
    STEP_QUEUED = "step_queued"
    STEP_STARTED = "step_started"
    STEP_WAITING = "step_waiting"
    STEP_RETRYING = "step_retrying"
    STEP_SUCCEEDED = "step_succeeded"
    STEP_FAILED = "step_failed"
    STEP_SKIPPED = "step_skipped"
    STEP_CANCELLED = "step_cancelled"
    STEP_EXPANDED = "step_expanded"  # a for_each / matrix step created its instances
    STEP_REUSED = "step_reused"  # a re-run copied the step's result from the earlier run
    STEP_APPROVED = "step_approved"
    STEP_REJECTED = "step_rejected"
    ATTEMPT_LOST = "attempt_lost"  # the reconciler gave up on a worker or a message
    MESSAGE_DROPPED = "message_dropped"  # a duplicate or stale message lost its claim
    MESSAGE_RESENT = "message_resent"


class RunEvent(models.Model):
    """One transition of a run or one of its steps. Rows are only ever inserted."""

    # Indexed by runevent_run (run, id). Nothing reads events by step: no index.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events", db_index=False)
    step = models.ForeignKey(
        "engine.StepRun",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
    )
    kind = models.CharField(max_length=24, choices=EventKind.choices)
    attempt = models.PositiveIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    data = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "id"], name="runevent_run")]

    def __str__(self) -> str:
        return f"{self.kind} run={self.run_id} step={self.step_id}"
