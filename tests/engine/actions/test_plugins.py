"""Plugins add actions with a decorator or through the `flowyard.actions` entry-point group."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from engine.actions.registry import ActionRegistry, registry
from engine.dsl import compile_workflow
from engine.errors import WorkflowInvalid

PLUGIN = """
from engine.actions.registry import action

@action(
    "acme.greet",
    schema={
        "type": "object",
        "properties": {"who": {"type": "string", "description": "whom to greet"}},
        "required": ["who"],
        "additionalProperties": False,
    },
    description="Greets someone.",
)
def greet(call):
    return {"greeting": "hello " + call.with_["who"]}
"""

USES_PLUGIN = """\
name: plugged
steps:
  hi:
    uses: acme.greet
    with: {who: ada}
"""


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A real distribution on sys.path whose entry point names the plugin module."""
    (tmp_path / "acme_flowyard.py").write_text(PLUGIN)
    dist = tmp_path / "acme_flowyard-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-flowyard\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("""\
            [flowyard.actions]
            acme = acme_flowyard
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield
    registry._actions.pop("acme.greet", None)
    sys.modules.pop("acme_flowyard", None)


def test_an_entry_point_plugin_adds_an_action_that_workflows_can_use(installed_plugin):
    registry._plugins_loaded = False  # a fresh process would load them on first use

    plan = compile_workflow(USES_PLUGIN)

    assert "acme.greet" in registry.names()
    assert plan.steps["hi"].actor == "flowyard_acme_greet"


def test_a_plugin_action_validates_its_with_arguments(installed_plugin):
    registry._plugins_loaded = False

    with pytest.raises(WorkflowInvalid) as caught:
        compile_workflow(USES_PLUGIN.replace("who: ada", "whom: ada"), filename="p.yaml")

    assert "p.yaml:5:12: steps.hi.with.whom: unknown key 'whom' (did you mean 'who'?)" in str(
        caught.value
    )


def test_the_decorator_registers_a_function_with_its_schema():
    local = ActionRegistry()

    @local.action("acme.noop", schema={"type": "object"}, queue="acme")
    def noop(call):
        return {}

    action = local.get("acme.noop")
    assert (action.func, action.queue, action.actor) == (noop, "acme", "flowyard_acme_noop")
    with pytest.raises(ValueError, match="already registered"):
        local.action("acme.noop", schema={})(noop)
