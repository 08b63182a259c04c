"""Reading run inputs from the command line: ``--input key=value`` and ``--inputs-file``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from engine.dsl.plan import InputSpec
from engine.errors import InputsInvalid


def parse_input_value(raw: str, spec: InputSpec | None) -> Any:
    """The value of ``--input key=RAW``: JSON when it parses, else the text itself.

    An input declared as a string keeps the text as typed (``--input version=1.0`` is "1.0",
    not the number 1.0), unless it is written as a JSON string literal (``'"quoted"'``).
    """
    declared = spec.type if spec is not None else None
    if declared == "string" and not raw.startswith('"'):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_input_options(options: list[str], specs: dict[str, InputSpec]) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``. Raises InputsInvalid on ``a`` without ``=``."""
    values: dict[str, Any] = {}
    for option in options:
        name, sep, raw = option.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputsInvalid(f"--input {option!r}: expected NAME=VALUE")
        values[name] = parse_input_value(raw, specs.get(name))
    return values


def read_inputs_file(path: str) -> dict[str, Any]:
    """The inputs in a JSON or YAML file holding one mapping. Raises InputsInvalid."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputsInvalid(f"--inputs-file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputsInvalid(f"--inputs-file {path}: cannot read it ({exc})") from None
    try:
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if file.suffix == ".json" else "YAML"
        raise InputsInvalid(f"--inputs-file {path}: not valid {kind}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputsInvalid(
            f"--inputs-file {path}: expected a mapping of input names to values, "
            f"got {type(data).__name__}"
        )
    return {str(key): value for key, value in data.items()}
