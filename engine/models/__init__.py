"""Flowyard's tables, split by concern; import them from here."""

from engine.models.runs import EventKind, Run, RunEvent, RunStatus, Trigger
from engine.models.steps import (
    LogStream,
    SkipReason,
    StepAttempt,
    StepKind,
    StepLog,
    StepRun,
    StepStatus,
    WorkerHeartbeat,
)
from engine.models.workflows import Workflow, WorkflowVersion

__all__ = [
    "EventKind",
    "LogStream",
    "Run",
    "RunEvent",
    "RunStatus",
    "SkipReason",
    "StepAttempt",
    "StepKind",
    "StepLog",
    "StepRun",
    "StepStatus",
    "Trigger",
    "WorkerHeartbeat",
    "Workflow",
    "WorkflowVersion",
]
