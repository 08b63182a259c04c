"""Flowyard's tables, split by concern; import them from here."""

from engine.models.workflows import Workflow, WorkflowVersion

__all__ = ["Workflow", "WorkflowVersion"]
