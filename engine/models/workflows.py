"""Workflows and their immutable versions."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models

from engine.dsl.plan import Plan


class Workflow(models.Model):
    """A named workflow. Its definition lives in its versions; the newest is the current one."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    labels = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def latest_version(self) -> WorkflowVersion | None:
        return self.versions.order_by("-number").first()


class ImmutableRowError(Exception):
    pass


class WorkflowVersion(models.Model):
    """One saved definition of a workflow. Never changes once written; runs are pinned to it."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    source = models.TextField(help_text="The YAML exactly as it was saved.")
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the source.")
    plan = models.JSONField(help_text="The compiled plan the runtime executes.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="unique_version_number"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ImmutableRowError("a workflow version is immutable; save a new version instead")
        super().save(*args, **kwargs)

    @staticmethod
    def checksum_of(source: str) -> str:
        return hashlib.sha256(source.encode()).hexdigest()

    def compiled_plan(self) -> Plan:
        return Plan.from_dict(self.plan)
