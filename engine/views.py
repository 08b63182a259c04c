"""Plain HTTP endpoints of the engine that are neither API nor dashboard."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from engine.dsl.schema import workflow_schema as build_workflow_schema


@require_GET
@cache_control(max_age=300, public=True)
def workflow_schema(request: HttpRequest) -> JsonResponse:
    """The published JSON Schema of workflow files, with every registered action composed in."""
    return JsonResponse(build_workflow_schema(), json_dumps_params={"indent": 2})


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # the point of a health check is to report, not raise
        return JsonResponse({"status": "error", "database": str(exc)}, status=503)
    return JsonResponse({"status": "ok"})
