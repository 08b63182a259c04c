"""The example workflows users start from: each one is valid, named uniquely and says how it ends.

Pure Python (``engine.dsl``), no database: run alone with ``pytest tests/workflows -p no:django``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.dsl import compile_workflow, validate_workflow
from engine.dsl.loader import load_yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = ROOT / "workflows"
SCHEMA_PATH = ROOT / "engine" / "schema" / "workflow.schema.json"
EXAMPLES = sorted(p for p in WORKFLOWS_DIR.iterdir() if p.suffix in {".yaml", ".yml"})

SCHEMA_COMMENT = "# yaml-language-server: $schema=http://localhost:8000/api/schema/workflow.json"
EXPECTED_STATUS = re.compile(r"^# expected-status: (\S+)\s*$")
EXPECTED_STEPS = re.compile(r"^# expected-steps: (.+?)\s*$")
HEADER_LINES = 5  # where the machine-readable comments must be
# The values of engine.models.RunStatus and StepStatus, which cannot be imported without Django.
RUN_STATUSES = {"queued", "running", "succeeded", "failed", "cancelled"}
STEP_STATUSES = RUN_STATUSES | {"pending", "waiting", "retrying", "skipped"}


def ids(path: Path) -> str:
    return path.name


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_the_examples_folder_is_not_empty():
    assert len(EXAMPLES) >= 7, [p.name for p in EXAMPLES]


@pytest.mark.parametrize("path", EXAMPLES, ids=ids)
def test_the_example_validates_without_problem(path):
    problems = validate_workflow(read(path), filename=str(path.relative_to(ROOT)))

    assert problems == [], "\n" + "\n".join(str(p) for p in problems)


@pytest.mark.parametrize("path", EXAMPLES, ids=ids)
def test_the_example_name_is_unique_in_the_folder(path):
    names = Counter(name_of(p) for p in EXAMPLES)

    name = name_of(path)

    assert names[name] == 1, f"{name!r} is the name of {names[name]} example files"


@pytest.mark.parametrize("path", EXAMPLES, ids=ids)
def test_the_example_begins_with_the_schema_comment(path):
    assert read(path).splitlines()[0] == SCHEMA_COMMENT


@pytest.mark.parametrize("path", EXAMPLES, ids=ids)
def test_the_example_states_its_expected_status(path):
    header = read(path).splitlines()[:HEADER_LINES]

    statuses = [m.group(1) for m in map(EXPECTED_STATUS.match, header) if m]

    assert len(statuses) == 1, f"one '# expected-status: STATUS' line in the first {HEADER_LINES}"
    assert statuses[0] in RUN_STATUSES, f"{statuses[0]!r} is not a run status"


@pytest.mark.parametrize("path", EXAMPLES, ids=ids)
def test_the_expected_step_statuses_name_real_steps(path):
    """``# expected-steps: a=succeeded b=skipped`` (optional) names steps of the workflow."""
    header = read(path).splitlines()[:HEADER_LINES]
    plan = compile_workflow(read(path), filename=path.name)
    step_ids = set(plan.steps) | set(plan.finally_steps)

    lines = [m.group(1) for m in map(EXPECTED_STEPS.match, header) if m]
    pairs = [pair.partition("=") for line in lines for pair in line.split()]

    assert len(lines) <= 1
    assert [p for p in pairs if p[1] != "="] == [], "write step=status"
    assert {step for step, _, _ in pairs} - step_ids == set(), "unknown step"
    assert {status for _, _, status in pairs} - STEP_STATUSES == set(), "unknown status"


def test_the_examples_together_use_every_top_level_key():
    schema = load_schema()
    defined = set(object_schema(schema, schema)["properties"])

    used = {key for doc in example_documents() for key in doc}

    assert defined - used == set(), f"no example uses {sorted(defined - used)}"


def test_the_examples_together_use_every_step_key():
    schema = load_schema()
    defined = set(step_schema(schema)["properties"])

    used = {key for doc in example_documents() for step in all_steps(doc) for key in step}

    assert defined - used == set(), f"no example uses {sorted(defined - used)}"


# --- helpers ---------------------------------------------------------------------------------


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s (``#/$defs/...``) until a schema without one."""
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local references are followed, not {ref}"
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def object_schema(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """The schema that declares ``properties``, looking through ``$ref`` and ``allOf``."""
    node = resolve(root, node)
    if "properties" in node:
        return node
    for part in node.get("allOf", []):
        found = object_schema(root, part)
        if "properties" in found:
            return found
    raise AssertionError(f"no object schema with properties in {node}")


def step_schema(root: dict[str, Any]) -> dict[str, Any]:
    steps = resolve(root, object_schema(root, root)["properties"]["steps"])
    candidates = list(steps.get("patternProperties", {}).values())
    if isinstance(steps.get("additionalProperties"), dict):
        candidates.append(steps["additionalProperties"])
    assert candidates, "the schema of `steps` declares no step schema"
    return object_schema(root, candidates[0])


def name_of(path: Path) -> object:
    """The workflow's `name` as loaded (other files may be broken: each has its own test)."""
    return load_yaml(read(path), filename=path.name, strict=False).data.get("name")


def example_documents() -> Iterator[dict[str, Any]]:
    for path in EXAMPLES:
        yield load_yaml(read(path), filename=path.name).data


def all_steps(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for section in ("steps", "finally"):
        yield from (doc.get(section) or {}).values()
