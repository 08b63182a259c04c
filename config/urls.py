from __future__ import annotations

from django.contrib import admin
from django.urls import path

from engine.views import health, workflow_schema

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/workflow.json", workflow_schema, name="workflow-schema"),
    path("health/", health, name="health"),
]
