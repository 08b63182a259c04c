"""The read paths of Flowyard, shared by the API, the dashboard and the admin."""

from __future__ import annotations

from django.db.models import QuerySet

from engine.errors import NotFound
from engine.models import Workflow, WorkflowVersion


def workflow_list() -> QuerySet[Workflow]:
    return Workflow.objects.all()


def workflow_get(*, name: str) -> Workflow:
    try:
        return Workflow.objects.get(name=name)
    except Workflow.DoesNotExist:
        raise NotFound(f"no workflow named {name!r}") from None


def version_latest(*, workflow: Workflow) -> WorkflowVersion:
    version = workflow.versions.order_by("-number").first()
    if version is None:
        raise NotFound(f"workflow {workflow.name!r} has no version")
    return version
