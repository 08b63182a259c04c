"""Checks of a workflow's inputs and triggers that a JSON Schema cannot express.

An input is declared as a small JSON Schema; its default, and the inputs each schedule gives,
must match it. Cron lines must parse (croniter) and time zones must exist (zoneinfo).
"""

from __future__ import annotations

import json
import re
import zoneinfo
from functools import lru_cache
from typing import Any

from croniter import croniter
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from engine.dsl.loader import Document
from engine.dsl.plan import InputSpec
from engine.dsl.schema import input_declaration_schema
from engine.dsl.validation import did_you_mean, error_message
from engine.errors import Problem

# Keys of an input declaration that are not part of the value's JSON Schema.
_NOT_SCHEMA = frozenset({"required"})


def input_schema(declaration: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema a value of this input must match (type defaults to string)."""
    schema = {k: v for k, v in declaration.items() if k not in _NOT_SCHEMA}
    schema.setdefault("type", "string")
    return schema


def input_spec(name: str, declaration: dict[str, Any]) -> InputSpec:
    """The compiled form of one declared input."""
    schema = input_schema(declaration)
    return InputSpec(
        name=name,
        type=schema["type"],
        schema=schema,
        required=bool(declaration.get("required", True)) and "default" not in declaration,
        default=declaration.get("default"),
        description=declaration.get("description", "") or "",
    )


@lru_cache(maxsize=1)
def _declaration_validator() -> Draft202012Validator:
    return Draft202012Validator(input_declaration_schema())


def _declared_inputs(document: Document) -> dict[str, dict[str, Any]]:
    """The inputs declared in a valid form (the schema reports the others)."""
    inputs = document.data.get("inputs")
    if not isinstance(inputs, dict):
        return {}
    valid = _declaration_validator().is_valid
    return {name: spec for name, spec in inputs.items() if isinstance(spec, dict) and valid(spec)}


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Draft202012Validator | str:
    """A validator for one input's schema, or the reason the schema itself is wrong."""
    schema = json.loads(schema_text)
    try:
        if isinstance(schema.get("pattern"), str):
            re.compile(schema["pattern"])
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        return f"invalid input declaration: {error.message}"
    except re.error as error:
        return f"invalid pattern {schema['pattern']!r}: {error}"
    return Draft202012Validator(schema)


def _validator_for(declaration: dict[str, Any]) -> Draft202012Validator | str:
    try:
        text = json.dumps(input_schema(declaration), sort_keys=True)
    except (TypeError, ValueError):
        return "invalid input declaration"
    return _validator(text)


def _value_problems(
    document: Document, validator: Draft202012Validator, value: Any, path: tuple, what: str
) -> list[Problem]:
    problems = []
    for error in validator.iter_errors(value):
        where = (*path, *error.absolute_path)
        problems.append(document.problem(where, f"{what}: {error_message(error)}"))
    return problems


def input_problems(document: Document) -> list[Problem]:
    """Declarations that are not valid schemas, and defaults that do not match them."""
    problems = []
    for name, declaration in _declared_inputs(document).items():
        path = ("inputs", name)
        validator = _validator_for(declaration)
        if isinstance(validator, str):
            at = (*path, "pattern") if validator.startswith("invalid pattern") else path
            problems.append(document.problem(at, validator, at_key=at == path))
            continue
        if "default" in declaration:
            problems += _value_problems(
                document,
                validator,
                declaration["default"],
                (*path, "default"),
                f"the default does not match the input {name!r}",
            )
    return problems


def trigger_problems(document: Document) -> list[Problem]:
    """Cron lines that do not parse, unknown time zones, and schedule inputs that do not fit."""
    on = document.data.get("on")
    schedules = on.get("schedule") if isinstance(on, dict) else None
    if not isinstance(schedules, list):
        return []
    declared = _declared_inputs(document)
    problems = []
    for index, schedule in enumerate(schedules):
        if not isinstance(schedule, dict):
            continue
        path = ("on", "schedule", index)
        cron = schedule.get("cron")
        if isinstance(cron, str) and (message := cron_error(cron)):
            problems.append(document.problem((*path, "cron"), message))
        timezone = schedule.get("timezone")
        if isinstance(timezone, str) and (message := timezone_error(timezone)):
            problems.append(document.problem((*path, "timezone"), message))
        given = schedule.get("inputs")
        given = given if isinstance(given, dict) else {}
        problems += _schedule_input_problems(document, declared, given, path)
    return problems


def _schedule_input_problems(
    document: Document, declared: dict[str, dict[str, Any]], given: dict[str, Any], path: tuple
) -> list[Problem]:
    problems = []
    for name, value in given.items():
        where = (*path, "inputs", name)
        if name not in declared:
            message = f"unknown input {name!r}{did_you_mean(name, declared)}"
            problems.append(document.problem(where, message, at_key=True))
            continue
        validator = _validator_for(declared[name])
        if not isinstance(validator, str):
            what = f"the value does not match the input {name!r}"
            problems += _value_problems(document, validator, value, where, what)
    # A required input a schedule leaves out is not reported: the design's own example does
    # that, and the run that starts without it says so at that moment.
    return problems


def cron_error(expression: str) -> str:
    """Why ``expression`` is not a five-field cron line (or @daily …), "" when it is one."""
    text = expression.strip()
    if not text.startswith("@") and len(text.split()) != 5:
        return (
            f"invalid cron {expression!r}: give five fields (minute hour day month weekday), "
            f"e.g. '0 3 * * *'"
        )
    try:
        croniter(text)
    except (ValueError, KeyError, TypeError) as error:  # croniter's errors are ValueErrors
        reason = re.sub(r"^\[[^\]]*\]\s*", "", str(error)) or "not a cron line"
        if "out of range" in reason:
            reason = f"a field is out of range ({_RANGES})"
        return f"invalid cron {expression!r}: {reason}"
    return ""


_RANGES = "minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-6"


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_error(name: str) -> str:
    """Why ``name`` is not an IANA time zone, "" when it is one."""
    if name in _timezones():
        return ""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone {name!r}{did_you_mean(name, sorted(_timezones()))}"
    return ""
