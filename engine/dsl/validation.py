"""Validate loaded YAML against the workflow schema; every error becomes a readable Problem.

jsonschema reports what failed in schema terms ("'neds' was unexpected", "is not valid under
any of the given schemas"). This module says it in workflow terms, at the right line and
column: ``unknown key 'neds' (did you mean 'needs'?)``, ``expected a number, got string
'abc'``. Every error is reported, not just the first.
"""

from __future__ import annotations

import difflib
import re
import weakref
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from engine.actions.builtin import EXPRESSION_PATTERN
from engine.actions.registry import ActionRegistry
from engine.actions.registry import registry as default_registry
from engine.dsl.durations import DURATION_PATTERN, EXAMPLES, duration_error
from engine.dsl.fastcheck import Checks
from engine.dsl.loader import Document
from engine.dsl.schema import PATTERN_HELP, STEP_ID_PATTERN, workflow_schema
from engine.errors import Problem

_STEP_SECTIONS = ("steps", "finally")

# One compiled validator per registry, rebuilt when its set of actions changes.
_validators: weakref.WeakKeyDictionary[ActionRegistry, tuple[tuple[str, ...], Any]] = (
    weakref.WeakKeyDictionary()
)


def _accelerated(checks: Checks) -> type:
    """Draft 2020-12 with the keywords that descend into children skipping valid children."""
    originals = Draft202012Validator.VALIDATORS

    def properties(validator: Any, properties: Any, instance: Any, schema: Any) -> Any:
        if not isinstance(instance, dict):
            return
        for name, subschema in properties.items():
            if name in instance:
                check = checks.check(subschema)
                if check is None or not check(instance[name]):
                    yield from validator.descend(
                        instance[name], subschema, path=name, schema_path=name
                    )

    def additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Any:
        if not isinstance(instance, dict) or not isinstance(extra, dict):
            yield from originals["additionalProperties"](validator, extra, instance, schema)
            return
        known = schema.get("properties", {})
        patterns = [re.compile(p) for p in schema.get("patternProperties", ())]
        check = checks.check(extra)
        for key, value in instance.items():
            if key in known or any(p.search(key) for p in patterns):
                continue
            if check is None or not check(value):
                yield from validator.descend(value, extra, path=key)

    def items(validator: Any, items: Any, instance: Any, schema: Any) -> Any:
        if not isinstance(instance, list) or "prefixItems" in schema:
            yield from originals["items"](validator, items, instance, schema)
            return
        check = checks.check(items)
        for index, item in enumerate(instance):
            if check is None or not check(item):
                yield from validator.descend(item, items, path=index)

    return validators.extend(
        Draft202012Validator,
        {"properties": properties, "additionalProperties": additional_properties, "items": items},
    )


_SIZE_LIMITS = {
    "minLength": "must be at least {} characters long",
    "maxLength": "must be at most {} characters long",
    "minItems": "must have at least {} items",
    "maxItems": "must have at most {} items",
    "minProperties": "must have at least {} keys",
    "maxProperties": "must have at most {} keys",
}


class WorkflowValidator:
    """The workflow schema of one registry, compiled once: a fast check, then jsonschema."""

    def __init__(self, schema: dict[str, Any]) -> None:
        Draft202012Validator.check_schema(schema)
        self.schema = schema
        self.checks = Checks(schema)
        self.validator = _accelerated(self.checks)(schema)

    def iter_errors(self, data: Any) -> Any:
        """jsonschema's errors for ``data`` (none, at once, when the fast check passes)."""
        check = self.checks.check(self.schema)
        if check is not None and check(data):
            return iter(())
        return self.validator.iter_errors(data)

    def resolve(self, schema: Any) -> Any:
        """``schema`` with a local ``$ref`` followed (for describing what it expects)."""
        while isinstance(schema, dict) and str(schema.get("$ref", "")).startswith("#/$defs/"):
            target = self.schema["$defs"].get(schema["$ref"][len("#/$defs/") :])
            if target is None:
                break
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema


def validator_for(registry: ActionRegistry | None = None) -> WorkflowValidator:
    """The compiled validator of the workflow schema for ``registry`` (cached)."""
    registry = default_registry if registry is None else registry
    names = tuple(registry.names())
    cached = _validators.get(registry)
    if cached is not None and cached[0] == names:
        return cached[1]
    validator = WorkflowValidator(workflow_schema(registry))
    _validators[registry] = (names, validator)
    return validator


def schema_problems(document: Document, registry: ActionRegistry | None = None) -> list[Problem]:
    """Every way ``document`` breaks the workflow schema, as Problems."""
    validator = validator_for(registry)
    problems: dict[tuple[str, int, int, str], Problem] = {}
    for error in validator.iter_errors(document.data):
        for problem in _Translation(document, validator).translate(error):
            key = (problem.path, problem.line, problem.column, problem.message)
            problems.setdefault(key, problem)
    return list(problems.values())


def did_you_mean(word: object, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a candidate is close to ``word``, else ``""``."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe_value(value: Any) -> str:
    """How a message names a value a user wrote: ``string 'abc'``, ``number 5``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_TYPE_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}
# YAML 1.1 booleans that YAML 1.2 (and so Flowyard) reads as text.
_OLD_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n", "Yes", "No", "On", "Off"})


def _or(words: list[str]) -> str:
    unique = list(dict.fromkeys(words))
    if len(unique) > 1:
        unique = ["a boolean" if word == "true or false" else word for word in unique]
    if len(unique) <= 2:
        return " or ".join(unique)
    return ", ".join(unique[:-1]) + " or " + unique[-1]


def _is_duration(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("title") == "duration"


def _type_mismatch(error: ValidationError) -> bool:
    """Whether the value is of the wrong kind altogether for the schema that reported it."""
    if error.path:
        return False
    if error.validator == "type":
        return True
    if error.validator == "pattern" and error.validator_value == EXPRESSION_PATTERN:
        return True
    if error.validator in ("anyOf", "oneOf"):
        return all(_type_mismatch(child) for child in error.context)
    return False


class _Translation:
    """Turns jsonschema errors into Problems worded for workflow authors."""

    def __init__(self, document: Document | None, validator: WorkflowValidator | None) -> None:
        self.document = document
        self.validator = validator

    def describe(self, schema: Any) -> str:
        """What a schema expects, in words: ``a number``, ``a duration``, ``one of 'a', 'b'``."""
        return _or(self.alternatives(schema))

    def alternatives(self, schema: Any) -> list[str]:
        """The kinds of value a schema accepts, in words, one per alternative."""
        if self.validator is not None:
            schema = self.validator.resolve(schema)
        if not isinstance(schema, dict):
            return ["a value"]
        if _is_duration(schema):
            return ["a duration (30s, 10m, 1h30m …)"]
        if schema.get("pattern") == EXPRESSION_PATTERN:
            return ["an expression ${{ … }}"]
        if schema.get("pattern") == STEP_ID_PATTERN:
            return ["a step id"]
        if "enum" in schema:
            return ["one of " + ", ".join(repr(v) for v in schema["enum"])]
        if "const" in schema:
            return [repr(schema["const"])]
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                return [word for branch in schema[keyword] for word in self.alternatives(branch)]
        kind = schema.get("type")
        kinds = kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else []
        return [_TYPE_NAMES.get(k, k) for k in kinds] or ["a value"]

    def expected(self, schema: Any, instance: Any) -> str:
        message = f"expected {self.describe(schema)}, got {describe_value(instance)}"
        if isinstance(instance, str) and instance in _OLD_BOOLEANS and "true or false" in message:
            message += " (YAML 1.2 reads only true and false as booleans)"
        return message

    def problem(self, path: tuple, message: str, *, at_key: bool = False) -> Problem:
        assert self.document is not None, "locating a problem needs the document"
        return self.document.problem(path, message, at_key=at_key)

    def translate(self, error: ValidationError) -> list[Problem]:
        path = tuple(error.absolute_path)
        validator = error.validator
        instance = error.instance
        schema = error.schema if isinstance(error.schema, dict) else {}

        if validator == "additionalProperties" and isinstance(instance, dict):
            return self.unknown_keys(error, path, schema)
        if validator == "required" and isinstance(instance, dict):
            return [
                self.problem(path, _missing(name, instance), at_key=True)
                for name in error.validator_value
                if name not in instance
            ]
        if "propertyNames" in error.relative_schema_path:
            # jsonschema reports a bad key at its mapping; point at the key itself.
            key_path = (*path, instance) if isinstance(instance, str) else path
            what = "step id" if schema.get("pattern") == STEP_ID_PATTERN else "name"
            help_text = PATTERN_HELP.get(error.validator_value, "")
            if validator == "maxLength":
                help_text = f"at most {error.validator_value} characters"
            message = f"invalid {what} {instance!r}" + (f": {help_text}" if help_text else "")
            return [self.problem(key_path, message, at_key=True)]
        if validator in ("anyOf", "oneOf"):
            return self.any_of(error, path)
        return [self.problem(path, self.message(error, path, schema))]

    def unknown_keys(
        self, error: ValidationError, path: tuple, schema: dict[str, Any]
    ) -> list[Problem]:
        known = list(schema.get("properties", {}))
        patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
        problems = []
        for key in error.instance:
            if key in known or any(p.search(key) for p in patterns):
                continue
            message = f"unknown key {key!r}{did_you_mean(key, known)}"
            problems.append(self.problem((*path, key), message, at_key=True))
        return problems

    def any_of(self, error: ValidationError, path: tuple) -> list[Problem]:
        branches = error.validator_value
        instance = error.instance
        if all(isinstance(b, dict) and set(b) == {"required"} for b in branches):
            names = " or ".join(repr(name) for b in branches for name in b["required"])
            return [self.problem(path, f"missing required key {names}", at_key=True)]
        if (
            isinstance(instance, str)
            and "${{" in instance
            and any(self.alternatives(b) == ["an expression ${{ … }}"] for b in branches)
        ):
            message = self.expected({"anyOf": branches}, instance)
            return [self.problem(path, f"{message}: an expression must be the whole value here")]
        by_branch: dict[int, list[ValidationError]] = {}
        for child in error.context:
            by_branch.setdefault(child.relative_schema_path[0], []).append(child)
        fitting = [
            index
            for index, children in sorted(by_branch.items())
            if not any(_type_mismatch(child) for child in children)
        ]
        if len(fitting) == 1:
            # The value has the right kind for one branch only: its errors say what is wrong.
            problems: list[Problem] = []
            for child in by_branch[fitting[0]]:
                problems.extend(self.translate(child))
            return problems
        if isinstance(instance, str) and any(_is_duration(b) for b in branches):
            return [self.problem(path, duration_error(instance) or "invalid duration")]
        return [self.problem(path, self.expected({"anyOf": branches}, instance))]

    def message(self, error: ValidationError, path: tuple, schema: dict[str, Any]) -> str:
        validator = error.validator
        value = error.validator_value
        instance = error.instance
        if validator == "type":
            if path in (("steps",), ("finally",)) and isinstance(instance, list):
                return (
                    "expected a mapping of step id to step, got a list: write "
                    "`build: {uses: …}` rather than `- uses: …`"
                )
            return self.expected(schema if _is_duration(schema) else {"type": value}, instance)
        if validator == "enum":
            if len(path) == 3 and path[0] in _STEP_SECTIONS and path[2] == "uses":
                return f"unknown action {instance!r}{did_you_mean(instance, value)}"
            strings = [v for v in value if isinstance(v, str)]
            return self.expected({"enum": value}, instance) + did_you_mean(instance, strings)
        if validator == "const":
            return self.expected({"const": value}, instance)
        if validator == "pattern":
            return _pattern_message(value, instance)
        if validator in ("minimum", "exclusiveMinimum"):
            above = "at least" if validator == "minimum" else "more than"
            return f"must be {above} {value}, got {instance!r}"
        if validator in ("maximum", "exclusiveMaximum"):
            below = "at most" if validator == "maximum" else "less than"
            return f"must be {below} {value}, got {instance!r}"
        if validator in ("minLength", "minItems", "minProperties") and value == 1:
            if path == ("steps",):
                return "a workflow needs at least one step"
            return "must not be empty"
        if validator in _SIZE_LIMITS:
            return _SIZE_LIMITS[validator].format(value)
        if validator == "uniqueItems":
            return "must not list the same item twice"
        if validator == "not" and isinstance(value, dict) and set(value) == {"required"}:
            names = " and ".join(repr(n) for n in value["required"])
            return f"use only one of {names}"
        if validator == "false":
            return "not allowed here"
        return error.message


def error_message(error: ValidationError) -> str:
    """A jsonschema error in workflow words, without its location (for values like inputs)."""
    words = _Translation(None, None)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        missing = [name for name in error.validator_value if name not in instance]
        return "; ".join(_missing(name, instance) for name in missing)
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = (error.schema or {}).get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = [key for key in instance if key not in known]
        return "unknown key " + ", ".join(repr(key) for key in extra)
    if error.validator in ("anyOf", "oneOf"):
        return words.expected({"anyOf": error.validator_value}, instance)
    return words.message(error, tuple(error.absolute_path), {})


def _missing(name: str, instance: dict[str, Any]) -> str:
    if name == "with" and isinstance(instance.get("uses"), str):
        return f"missing required key 'with' (the {instance['uses']} action needs arguments)"
    return f"missing required key {name!r}"


def _pattern_message(pattern: str, instance: Any) -> str:
    if pattern == DURATION_PATTERN:
        if isinstance(instance, str) and "${{" in instance:
            return f"expressions are not evaluated here; use a duration ({EXAMPLES})"
        return duration_error(instance) or f"invalid duration {instance!r}"
    help_text = PATTERN_HELP.get(pattern)
    what = "step id" if pattern == STEP_ID_PATTERN else "value"
    if help_text:
        return f"invalid {what} {instance!r}: {help_text}"
    return f"{instance!r} does not match the pattern {pattern}"
