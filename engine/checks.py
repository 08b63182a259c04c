"""System checks for configuration mistakes, with stable ids (engine.E001 …)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_production_settings(app_configs, **kwargs) -> list[Warning]:
    problems = []
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        problems.append(
            Warning(
                "SQLite is the embedded quick-start database.",
                hint="Set DATABASE_URL to a PostgreSQL URL in production.",
                id="engine.W001",
            )
        )
    if settings.BROKER_URL is None:
        problems.append(
            Warning(
                "No broker is configured: steps run in an in-process worker.",
                hint="Set BROKER_URL to amqp://… (RabbitMQ) or redis://… in production.",
                id="engine.W002",
            )
        )
    return problems
