"""The workflow JSON Schema: what it publishes, and how its errors read."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from engine.actions.builtin import register_builtins
from engine.actions.registry import Action, ActionRegistry
from engine.dsl.fastcheck import Checks
from engine.dsl.loader import load_yaml
from engine.dsl.schema import builtin_registry, schema_json, workflow_schema
from engine.dsl.validation import schema_problems, validator_for
from tests.engine.dsl.registries import with_devices

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "engine" / "schema" / "workflow.schema.json"
BUILTINS = builtin_registry()


def problems(text: str, registry: ActionRegistry | None = None) -> list[str]:
    document = load_yaml(textwrap.dedent(text), filename="w.yaml")
    found = schema_problems(document, registry or BUILTINS)
    return [str(p) for p in sorted(found, key=lambda p: (p.line, p.column, p.message))]


def test_the_checked_in_schema_is_up_to_date() -> None:
    # Regenerate with: python -m engine.dsl.schema > engine/schema/workflow.schema.json
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_json(builtin_registry())


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(workflow_schema(builtin_registry()))


def _properties_without_description(schema: Any, path: str = "") -> list[str]:
    if not isinstance(schema, dict):
        return []
    missing = []
    for name, sub in schema.get("properties", {}).items():
        if not (isinstance(sub, dict) and sub.get("description")):
            missing.append(f"{path}.{name}")
        missing += _properties_without_description(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties", "propertyNames", "not", "if", "then", "else"):
        missing += _properties_without_description(schema.get(key), f"{path}/{key}")
    for key in ("anyOf", "oneOf", "allOf"):
        for index, sub in enumerate(schema.get(key, ())):
            missing += _properties_without_description(sub, f"{path}/{key}/{index}")
    for name, sub in schema.get("$defs", {}).items():
        missing += _properties_without_description(sub, f"#/$defs/{name}")
    return missing


def test_every_property_has_a_description_for_editors() -> None:
    schema = workflow_schema(builtin_registry())
    missing = [
        path
        for path in _properties_without_description(schema)
        # The if/then rules that choose an action's `with` schema are not user-facing.
        if "/allOf/" not in path
    ]

    assert missing == []


def test_the_uses_completion_lists_every_action() -> None:
    schema = workflow_schema(builtin_registry())

    assert schema["$defs"]["step"]["properties"]["uses"]["enum"] == [
        "approval",
        "fail",
        "http",
        "noop",
        "python",
        "shell",
        "sleep",
        "workflow",
    ]


def test_an_unknown_key_is_reported_at_the_key_with_a_suggestion() -> None:
    assert problems(
        """\
        name: demo
        steps:
          build:
            uses: shell
            neds: [fetch]
            with: {run: make, shel: bash}
        """
    ) == [
        "w.yaml:5:5: steps.build.neds: unknown key 'neds' (did you mean 'needs'?)",
        "w.yaml:6:23: steps.build.with.shel: unknown key 'shel' (did you mean 'shell'?)",
    ]


def test_an_unknown_action_is_reported_with_a_suggestion() -> None:
    assert problems("name: demo\nsteps:\n  build: {uses: shel, with: {run: make}}\n") == [
        "w.yaml:3:17: steps.build.uses: unknown action 'shel' (did you mean 'shell'?)"
    ]


def test_a_wrong_type_says_what_was_expected_and_what_was_found() -> None:
    assert problems(
        """\
        name: demo
        concurrency: {limit: abc}
        steps:
          build: {uses: shell, with: {run: make}, max_parallel: 2.5, continue_on_error: yes}
        """
    ) == [
        "w.yaml:2:22: concurrency.limit: expected an integer, got string 'abc'",
        "w.yaml:4:57: steps.build.max_parallel: expected an integer, got number 2.5",
        "w.yaml:4:81: steps.build.continue_on_error: expected true or false, got string 'yes' "
        "(YAML 1.2 reads only true and false as booleans)",
    ]


def test_values_that_may_be_expressions_read_as_one_alternative() -> None:
    assert problems(
        """\
        name: demo
        steps:
          call:
            uses: http
            with:
              url: https://example.org
              method: GTE
              timeout: soon
              expected_status: ok
              follow_redirects: ${{ inputs.follow }}
        """
    ) == [
        "w.yaml:7:15: steps.call.with.method: expected one of 'GET', 'POST', 'PUT', 'PATCH', "
        "'DELETE', 'HEAD', 'OPTIONS', got string 'GTE' (did you mean 'GET'?)",
        "w.yaml:8:16: steps.call.with.timeout: invalid duration 'soon': use 30s, 10m, 1h30m, "
        "1d, 500ms or a number of seconds",
        "w.yaml:9:24: steps.call.with.expected_status: expected an integer, a list or an "
        "expression ${{ … }}, got string 'ok'",
    ]


def test_durations_are_checked_where_they_are_written() -> None:
    assert problems(
        """\
        name: demo
        timeout: 2 hours
        defaults: {retry: {delay: 30m5h}}
        steps:
          wait: {uses: sleep, with: {duration: 5m}, timeout: "${{ inputs.t }}"}
        """
    ) == [
        "w.yaml:2:10: timeout: invalid duration '2 hours': use 30s, 10m, 1h30m, 1d, 500ms or "
        "a number of seconds",
        "w.yaml:3:27: defaults.retry.delay: invalid duration '30m5h': give each unit once, "
        "largest first (e.g. 1h30m)",
        "w.yaml:5:54: steps.wait.timeout: expressions are not evaluated here; use a duration "
        "(30s, 10m, 1h30m, 1d, 500ms or a number of seconds)",
    ]


def test_missing_keys_are_reported_where_their_mapping_is_declared() -> None:
    assert problems(
        """\
        description: no name
        steps:
          build: {with: {run: make}}
          run_tests: {uses: shell}
          child: {uses: workflow, with: {inputs: {}}}
        """
    ) == [
        "w.yaml:1:1: missing required key 'name'",
        "w.yaml:3:3: steps.build: missing required key 'uses'",
        "w.yaml:4:3: steps.run_tests: missing required key 'with' (the shell action needs "
        "arguments)",
        "w.yaml:5:27: steps.child.with: missing required key 'workflow' or 'name'",
    ]


def test_names_and_step_ids_must_be_slugs() -> None:
    assert problems(
        """\
        name: Nightly Report
        steps:
          Build: {uses: noop}
          9lives: {uses: noop}
          fine-id_2: {uses: noop}
        """
    ) == [
        "w.yaml:1:7: name: invalid value 'Nightly Report': use lower case letters, digits, - "
        "and _ (e.g. nightly-report)",
        "w.yaml:3:3: steps.Build: invalid step id 'Build': use lower case letters, digits, _ "
        "and -, starting with a letter or _",
        "w.yaml:4:3: steps.9lives: invalid step id '9lives': use lower case letters, digits, "
        "_ and -, starting with a letter or _",
    ]


def test_a_workflow_needs_at_least_one_step() -> None:
    assert problems("name: demo\nsteps: {}\n") == [
        "w.yaml:2:8: steps: a workflow needs at least one step"
    ]


def test_json_and_body_cannot_both_be_sent() -> None:
    assert problems(
        "name: demo\nsteps:\n  call: {uses: http, with: {url: x, json: {}, body: x}}\n"
    ) == ["w.yaml:3:28: steps.call.with: use only one of 'json' and 'body'"]


def test_a_plugin_action_is_validated_by_its_own_schema() -> None:
    registry = with_devices()

    assert problems(
        "name: demo\nsteps:\n  list: {uses: devices.list, with: {labels: gpu, lables: []}}\n",
        registry,
    ) == [
        "w.yaml:3:45: steps.list.with.labels: expected a list, got string 'gpu'",
        "w.yaml:3:50: steps.list.with.lables: unknown key 'lables' (did you mean 'labels'?)",
    ]


def test_a_registry_that_gains_an_action_gets_a_new_validator() -> None:
    registry = ActionRegistry()
    register_builtins(registry)
    before = validator_for(registry)

    registry.register(Action(name="late", schema={"type": "object"}))

    assert validator_for(registry) is not before
    assert problems("name: demo\nsteps:\n  a: {uses: late}\n", registry) == []


# ---------------------------------------------------------------- the fast check is exact

_SCHEMA = workflow_schema(BUILTINS)
_CHECK = Checks(_SCHEMA).check(_SCHEMA)
_REFERENCE = Draft202012Validator(_SCHEMA)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 200),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.sampled_from(["", "x", "30s", "1h30m", "GET", "shell", "${{ inputs.a }}", "a-b", "A"]),
)
_keys = st.sampled_from(
    ["uses", "with", "needs", "if", "run", "url", "method", "timeout", "retry", "max_attempts",
     "delay", "backoff", "labels", "device", "runs_on", "for_each", "matrix", "json", "body",
     "workflow", "name", "duration", "outputs", "env", "x", "Bad"]
)  # fmt: skip
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=12,
)
_actions = st.sampled_from(
    ["noop", "fail", "shell", "http", "python", "sleep", "approval", "workflow", "nope"]
)
_steps = st.fixed_dictionaries(
    {"uses": _actions}, optional={"with": st.dictionaries(_keys, _values, max_size=4)}
).flatmap(lambda step: st.dictionaries(_keys, _values, max_size=2).map(lambda x: {**x, **step}))
_documents = st.fixed_dictionaries(
    {"name": st.sampled_from(["demo", "Demo"]), "steps": st.dictionaries(
        st.sampled_from(["a", "b", "B", "c-d"]), _steps, max_size=3)},
    optional={"timeout": _scalars, "concurrency": _values, "on": _values},
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents)
def test_the_fast_check_agrees_with_jsonschema(document: dict[str, Any]) -> None:
    assert _CHECK(document) == _REFERENCE.is_valid(document)


def _error_set(errors: Any) -> set[tuple[str, str]]:
    return {(json.dumps(list(e.absolute_path)), e.message) for e in errors}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents)
def test_the_accelerated_validator_reports_the_errors_jsonschema_reports(
    document: dict[str, Any],
) -> None:
    accelerated = validator_for(BUILTINS)

    assert _error_set(accelerated.iter_errors(document)) == _error_set(
        _REFERENCE.iter_errors(document)
    )


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"enum": [1]}, True),
        ({"const": 1.0}, 1),
        ({"type": "integer"}, 2.0),
        ({"type": "integer"}, False),
        ({"uniqueItems": True}, [1, True]),
        ({"uniqueItems": True}, [{"a": [1]}, {"a": [1.0]}]),
        ({"not": {"required": ["a", "b"]}}, {"a": 1}),
        ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, 3),
        ({"if": {"minimum": 3}, "then": {"multipleOf": 2}}, 5),
    ],
)
def test_the_fast_check_matches_jsonschema_on_tricky_values(schema: dict, value: Any) -> None:
    check = Checks(schema).check(schema)
    expected = Draft202012Validator(schema).is_valid(value)

    assert check is None or check(value) == expected


def test_steps_written_as_a_list_get_a_hint() -> None:
    assert problems("name: demo\nsteps:\n  - uses: noop\n") == [
        "w.yaml:3:3: steps: expected a mapping of step id to step, got a list: write "
        "`build: {uses: …}` rather than `- uses: …`"
    ]


def test_an_expression_with_text_around_it_is_not_a_number_or_a_duration() -> None:
    assert problems(
        """\
        name: demo
        steps:
          a: {uses: sleep, with: {duration: "${{ inputs.minutes }}m"}}
          b: {uses: sleep, with: {duration: "${{ inputs.seconds }}"}}
        """
    ) == [
        "w.yaml:3:37: steps.a.with.duration: expected a duration (30s, 10m, 1h30m …) or an "
        "expression ${{ … }}, got string '${{ inputs.minutes }}m': an expression must be the "
        "whole value here"
    ]


def test_a_python_step_names_a_registered_function() -> None:
    assert problems(
        "name: demo\nsteps:\n  a: {uses: python, with: {function: 'os.system(1)'}}\n"
    ) == [
        "w.yaml:3:38: steps.a.with.function: invalid value 'os.system(1)': use the name the "
        "function was registered with, e.g. reports.build"
    ]
