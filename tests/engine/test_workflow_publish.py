"""Saving workflows stores immutable versions; identical sources are not stored twice."""

from __future__ import annotations

import pytest

from engine.errors import WorkflowInvalid
from engine.models import Workflow, WorkflowVersion
from engine.models.workflows import ImmutableRowError
from engine.services import workflow_publish

pytestmark = pytest.mark.django_db

HELLO = """\
name: hello
steps:
  greet:
    uses: noop
    with: {message: hi}
"""


def test_publishing_a_new_workflow_stores_version_one_with_its_plan():
    published = workflow_publish(source=HELLO)

    assert published.created
    version = published.version
    assert (version.workflow.name, version.number) == ("hello", 1)
    assert version.source == HELLO
    assert version.compiled_plan().steps["greet"].uses == "noop"


def test_saving_the_same_source_twice_does_not_make_a_new_version():
    first = workflow_publish(source=HELLO)
    second = workflow_publish(source=HELLO)

    assert not second.created
    assert second.version.pk == first.version.pk
    assert WorkflowVersion.objects.count() == 1


def test_a_changed_source_becomes_the_next_version_and_a_revert_is_recorded_too():
    workflow_publish(source=HELLO)
    workflow_publish(source=HELLO.replace("hi", "hello"))
    reverted = workflow_publish(source=HELLO)

    assert reverted.created
    assert list(Workflow.objects.get().versions.values_list("number", flat=True)) == [3, 2, 1]


def test_an_invalid_source_stores_nothing_and_reports_its_problems():
    with pytest.raises(WorkflowInvalid) as caught:
        workflow_publish(source=HELLO.replace("uses: noop", "uses: nop"), filename="hello.yaml")

    assert "hello.yaml:4:" in str(caught.value)
    assert "nop" in str(caught.value)
    assert not Workflow.objects.exists()


def test_a_stored_version_cannot_be_changed():
    version = workflow_publish(source=HELLO).version
    version.source = "name: other"

    with pytest.raises(ImmutableRowError):
        version.save()
