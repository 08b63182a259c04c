"""The admin accepts YAML versions; the schema and health endpoints answer."""

from __future__ import annotations

import pytest

from engine.models import WorkflowVersion

pytestmark = pytest.mark.django_db


def test_an_admin_adds_a_version_by_pasting_yaml(admin_client):
    response = admin_client.post(
        "/admin/engine/workflowversion/add/",
        {"source": "name: pasted\nsteps:\n  a: {uses: noop}\n"},
    )

    assert response.status_code == 302
    version = WorkflowVersion.objects.get()
    assert (version.workflow.name, version.number) == ("pasted", 1)


def test_the_admin_shows_every_problem_of_invalid_yaml_and_stores_nothing(admin_client):
    response = admin_client.post(
        "/admin/engine/workflowversion/add/",
        {"source": "name: pasted\nsteps:\n  a: {uses: noop, needs: [zz]}\n"},
    )

    assert response.status_code == 200
    assert "admin:3:" in response.content.decode()
    assert not WorkflowVersion.objects.exists()


def test_the_workflow_schema_is_published(client):
    response = client.get("/api/schema/workflow.json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["$schema"].endswith("2020-12/schema")
    assert "steps" in schema["properties"]


def test_health_reports_the_database(client):
    assert client.get("/health/").json() == {"status": "ok"}
