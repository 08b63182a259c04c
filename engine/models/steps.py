"""Step instances of a run, their attempts and their logs."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from engine.models.runs import Run


class StepStatus(models.TextChoices):
    PENDING = "pending"  # waiting for its dependencies (or for a max_parallel slot)
    QUEUED = "queued"  # a message for the current attempt is on its way to a worker
    RUNNING = "running"  # a worker claimed the current attempt
    WAITING = "waiting"  # sleep, approval or child workflow: no worker thread is held
    RETRYING = "retrying"  # an attempt failed; the next one is due at `wake_at`
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @classmethod
    def finished(cls) -> tuple[str, ...]:
        return (cls.SUCCEEDED, cls.FAILED, cls.SKIPPED, cls.CANCELLED)

    @classmethod
    def active(cls) -> tuple[str, ...]:
        return (cls.PENDING, cls.QUEUED, cls.RUNNING, cls.WAITING, cls.RETRYING)


class StepKind(models.TextChoices):
    STEP = "step"  # a plain step: one row, it runs itself
    GROUP = "group"  # a for_each / matrix step: its instances run, it aggregates them
    INSTANCE = "instance"  # one item of a group


class SkipReason(models.TextChoices):
    NONE = ""
    CONDITION = "condition"  # its `if` was false while its dependencies were fine
    FAILURE = "failure"  # a dependency (or an ancestor) failed; "retry failed" re-runs it
    DEPENDENCY = "dependency"  # a dependency was skipped or cancelled for another reason


class StepRun(models.Model):
    """One step of a run, or one instance of a fanned-out step.

    Top-level rows (plain steps and groups, ``index`` null) exist from the run's start, as
    ``pending`` with ``deps_left`` counting their unfinished dependencies. Instances are created
    when their group's ``for_each`` / ``matrix`` is evaluated.
    """

    # Indexed by steprun_run_step (run, step_id); parent by steprun_parent_status.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps", db_index=False)
    step_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=StepKind.choices, default=StepKind.STEP)
    is_finally = models.BooleanField(default=False)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="instances",
        db_index=False,
    )
    index = models.PositiveIntegerField(null=True, blank=True)
    item = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING)
    skip_reason = models.CharField(
        max_length=16, choices=SkipReason.choices, default=SkipReason.NONE, blank=True
    )
    attempt = models.PositiveIntegerField(default=0, help_text="The current attempt number.")
    max_attempts = models.PositiveIntegerField(default=1)
    deps_left = models.PositiveIntegerField(default=0)
    # Finished dependencies that did not succeed (as dependents judge them): a step without an
    # `if` whose count is 0 when deps_left reaches 0 is queued by the completion's own statement.
    deps_blocked = models.PositiveIntegerField(default=0)
    outputs = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    # What a waiting step waits for (sleep's outputs, approval's message, the child run).
    wait = models.JSONField(null=True, blank=True)
    timeout = models.DurationField(null=True, blank=True, help_text="Per attempt.")
    worker = models.CharField(max_length=200, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    wake_at = models.DateTimeField(null=True, blank=True)
    # Groups only: counters kept by the advance logic under the run's lock.
    fanout_total = models.PositiveIntegerField(null=True, blank=True)
    fanout_active = models.PositiveIntegerField(default=0)
    fanout_done = models.PositiveIntegerField(default=0)
    fanout_failed = models.PositiveIntegerField(default=0)
    reused_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # steprun_reused_from: partial, most rows have none
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "step_id"],
                condition=Q(index__isnull=True),
                name="steprun_unique_top_level",
            ),
        ]
        indexes = [
            models.Index(fields=["run", "step_id"], name="steprun_run_step"),
            models.Index(fields=["parent", "status", "index"], name="steprun_parent_status"),
            models.Index(
                fields=["status", "queued_at"],
                condition=Q(status__in=["queued", "running", "waiting", "retrying"]),
                name="steprun_active",
            ),
            # The unfinished top-level steps of a run: "is anything left?" after a completion
            # (engine.runtime.settle) reads this small index instead of locking the run.
            models.Index(
                fields=["run", "is_finally", "id"],
                condition=Q(
                    index__isnull=True,
                    status__in=["pending", "queued", "running", "waiting", "retrying"],
                ),
                name="steprun_run_open",
            ),
            models.Index(
                fields=["reused_from"],
                condition=Q(reused_from__isnull=False),
                name="steprun_reused_from",
            ),
        ]

    def __str__(self) -> str:
        suffix = f"[{self.index}]" if self.index is not None else ""
        return f"{self.step_id}{suffix} ({self.status})"

    @property
    def label(self) -> str:
        """The step's name as people read it: ``collect[3]`` for an instance."""
        return f"{self.step_id}[{self.index}]" if self.index is not None else self.step_id


class StepAttempt(models.Model):
    """One attempt of a step instance, kept with its error after the step moved on."""

    # Indexed by the unique (step, number).
    step = models.ForeignKey(
        StepRun, on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=StepStatus.choices)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    device = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["step", "number"]
        constraints = [
            models.UniqueConstraint(fields=["step", "number"], name="stepattempt_unique_number"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of step {self.step_id} ({self.status})"


class LogStream(models.TextChoices):
    STDOUT = "stdout"
    STDERR = "stderr"
    LOG = "log"  # log records of python steps and the runtime's own notes


class StepLog(models.Model):
    """A bounded chunk of a step attempt's output. Read them in ``seq`` order."""

    step = models.ForeignKey(StepRun, on_delete=models.CASCADE, related_name="logs")
    attempt = models.PositiveIntegerField()
    seq = models.PositiveIntegerField()
    stream = models.CharField(max_length=8, choices=LogStream.choices)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["step", "attempt", "seq"]
        indexes = [models.Index(fields=["step", "attempt", "seq"], name="steplog_step_attempt")]

    def __str__(self) -> str:
        return f"log {self.seq} of step {self.step_id} attempt {self.attempt}"


class WorkerHeartbeat(models.Model):
    """A live worker process. Refreshed by a thread; a stale row means the worker is gone."""

    worker_id = models.CharField(max_length=200, unique=True)
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.worker_id
