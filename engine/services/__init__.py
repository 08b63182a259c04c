"""The write paths of Flowyard. Views, commands, actors and the admin call these, nothing lower."""

from engine.services.runs import run_cancel, run_rerun, run_retry, run_start, step_approve
from engine.services.workflows import workflow_publish

__all__ = [
    "run_cancel",
    "run_rerun",
    "run_retry",
    "run_start",
    "step_approve",
    "workflow_publish",
]
