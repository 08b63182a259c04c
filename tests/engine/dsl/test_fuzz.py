"""Whatever text arrives, loading and compiling end in a Plan or in located problems.

The only exception that may escape is WorkflowInvalid, and every problem it carries has a
line and a column (both from 1) inside the file.
"""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.dsl import compile_workflow, load_yaml
from engine.dsl.schema import builtin_registry
from engine.errors import Problem, WorkflowInvalid
from tests.engine.dsl.test_compiler import SEVERAL_MISTAKES

BUILTINS = builtin_registry()
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID = """\
name: fuzz
inputs:
  day: {type: string, default: "2024-01-31"}
on:
  schedule:
    - {cron: "0 3 * * *", timezone: UTC}
defaults: {retry: {max_attempts: 2, delay: 1s}, timeout: 5m}
steps:
  list:
    uses: noop
    with: {items: [a, b]}
  each:
    for_each: ${{ steps.list.outputs.items }}
    uses: shell
    with: {run: "echo ${{ item }} ${{ inputs.day }}"}
    outputs: {x: "${{ result.exit_code }}"}
  call:
    needs: [each]
    if: ${{ always() }}
    uses: http
    with: {method: POST, url: "https://example.org", json: "${{ steps.each.outputs }}"}
finally:
  tidy: {uses: shell, with: {run: "true"}}
outputs: {x: "${{ steps.call.outputs.status }}"}
"""


def located(problems: list[Problem], text: str | bytes) -> bool:
    lines = (text.count(b"\n") if isinstance(text, bytes) else text.count("\n")) + 2
    return all(1 <= p.line <= lines and p.column >= 1 and p.file == "f.yaml" for p in problems)


def compiles_or_reports(text: str | bytes) -> None:
    try:
        compile_workflow(text, filename="f.yaml", registry=BUILTINS)
    except WorkflowInvalid as invalid:
        assert invalid.problems
        assert located(invalid.problems, text)


def test_the_fuzzing_base_is_valid() -> None:
    compile_workflow(VALID, registry=BUILTINS)


YAMLISH = st.lists(
    st.sampled_from([*"ab: -[]{},\n\t'\"#&*!|>?%@`~0123456789.$", "${{", "}}", "\n  "]),
    max_size=60,
).map("".join)


@FUZZ
@given(YAMLISH)
def test_random_yaml_like_text_never_escapes_as_another_exception(text: str) -> None:
    compiles_or_reports(text)


@FUZZ
@given(YAMLISH)
def test_the_loader_alone_reports_located_problems(text: str) -> None:
    try:
        document = load_yaml(text, filename="f.yaml", strict=False)
    except WorkflowInvalid as invalid:
        assert located(invalid.problems, text)
    else:
        assert isinstance(document.data, dict)
        assert located(document.problems, text)


@FUZZ
@given(st.text(st.characters(exclude_categories=()), max_size=40))
def test_any_unicode_text_even_with_lone_surrogates_is_refused_or_read(text: str) -> None:
    compiles_or_reports(text)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_are_refused_or_read(data: bytes) -> None:
    compiles_or_reports(data)


@st.composite
def mutations(draw: st.DrawFn, base: str = VALID) -> str:
    """A valid workflow with a few characters or lines changed."""
    text = base
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "line"]))
        at = draw(st.integers(0, len(text)))
        if kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 8)) :]
        elif kind == "insert":
            text = text[:at] + draw(YAMLISH) + text[at:]
        elif kind == "replace":
            text = text[:at] + draw(st.sampled_from(list(":-[]{}#'\" \n\tx1"))) + text[at + 1 :]
        else:
            lines = text.splitlines(keepends=True)
            index = draw(st.integers(0, len(lines) - 1))
            choice = draw(st.sampled_from(["dup", "drop", "indent", "dedent"]))
            line = lines[index]
            lines[index : index + 1] = {
                "dup": [line, line],
                "drop": [],
                "indent": ["  " + line],
                "dedent": [line[2:] if line.startswith("  ") else line],
            }[choice]
            text = "".join(lines)
    return text


@FUZZ
@given(mutations())
def test_a_mutated_workflow_compiles_or_reports_located_problems(text: str) -> None:
    compiles_or_reports(text)


@FUZZ
@given(mutations(SEVERAL_MISTAKES))
def test_a_mutated_invalid_workflow_reports_located_problems(text: str) -> None:
    compiles_or_reports(text)


KEYS = st.sampled_from(
    ["name", "steps", "finally", "uses", "with", "needs", "if", "for_each", "matrix",
     "runs_on", "retry", "timeout", "outputs", "env", "inputs", "on", "schedule", "cron",
     "timezone", "webhook", "concurrency", "defaults", "labels", "a", "b", "run", "url",
     "type", "default", "device", "max_parallel", "continue_on_error"]
)  # fmt: skip
WORDS = ["a", "b", "shell", "noop", "http", "5m", "0 3 * * *", "UTC", "${{ steps.a.outputs }}"]
WORDS += ["${{ item }}", "${{ 1 + }}", "${{ steps['b'] }}", "Nope/Zone", "string", "number"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(WORDS),
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25,
)


@FUZZ
@given(st.dictionaries(KEYS, DATA, min_size=1, max_size=6))
def test_generated_workflow_shaped_data_compiles_or_reports_located_problems(data: dict) -> None:
    compiles_or_reports(yaml.safe_dump(data, sort_keys=False))
