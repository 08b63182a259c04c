"""The Django admin for workflows. Versions are read-only; new ones come through the service."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from engine.errors import WorkflowInvalid
from engine.models import Workflow, WorkflowVersion
from engine.services import workflow_publish


class VersionInline(admin.TabularInline):
    model = WorkflowVersion
    fields = ("number", "checksum", "created_by", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "updated_at")
    search_fields = ("name", "description")
    readonly_fields = ("name", "description", "labels", "created_at", "updated_at")
    inlines = [VersionInline]

    def has_add_permission(self, request) -> bool:
        return False  # a workflow is created by saving its first version


class VersionAddForm(forms.ModelForm):
    source = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "style": "font-family: monospace"}),
        help_text="The workflow YAML. Its `name` picks the workflow; a new version is stored.",
    )

    class Meta:
        model = WorkflowVersion
        fields = ("source",)

    def clean_source(self) -> str:
        source = self.cleaned_data["source"].replace("\r\n", "\n")
        try:
            from engine.dsl import compile_workflow

            compile_workflow(source, filename="admin")
        except WorkflowInvalid as exc:
            raise ValidationError([str(p) for p in exc.problems]) from None
        return source


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(admin.ModelAdmin):
    list_display = ("workflow", "number", "created_by", "created_at")
    list_filter = ("workflow",)
    readonly_fields = (
        "workflow",
        "number",
        "source",
        "checksum",
        "plan",
        "created_by",
        "created_at",
    )

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = VersionAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ("source",)

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        published = workflow_publish(
            source=form.cleaned_data["source"], filename="admin", user=request.user
        )
        obj.pk = published.version.pk
        obj.workflow = published.version.workflow
        obj.number = published.version.number
        if not published.created:
            messages.info(
                request, "The source is identical to the current version: nothing new was saved."
            )
