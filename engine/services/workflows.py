"""Saving workflows: validate, compile, store an immutable version."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from engine.dsl import compile_workflow
from engine.models import Workflow, WorkflowVersion


@dataclass(frozen=True)
class Published:
    version: WorkflowVersion
    created: bool  # false when the source was identical to the current version


def workflow_publish(
    *, source: str, filename: str = "workflow.yaml", user: AbstractBaseUser | None = None
) -> Published:
    """Validate and compile ``source``, and store it as the workflow's next version.

    Raises ``WorkflowInvalid`` (nothing is stored) when the file has any problem. Saving the
    source of the current version again stores nothing and returns that version. The workflow
    row is locked while the version number is chosen, so concurrent saves do not collide.
    """
    plan = compile_workflow(source, filename=filename)
    checksum = WorkflowVersion.checksum_of(source)
    with transaction.atomic():
        workflow, _ = Workflow.objects.get_or_create(name=plan.name)
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        latest = workflow.versions.order_by("-number").first()
        if latest is not None and latest.checksum == checksum:
            return Published(version=latest, created=False)
        version = WorkflowVersion.objects.create(
            workflow=workflow,
            number=(latest.number + 1) if latest else 1,
            source=source,
            checksum=checksum,
            plan=plan.to_dict(),
            created_by=user if user is not None and user.is_authenticated else None,
        )
        workflow.description = plan.description
        workflow.labels = plan.labels
        workflow.save(update_fields=["description", "labels", "updated_at"])
    return Published(version=version, created=True)
