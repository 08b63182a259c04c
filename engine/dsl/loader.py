"""Load workflow YAML into plain JSON data, remembering the line and column of every value.

Safety first: a file that loads is safe to store. ``yamlread.WorkflowLoader`` (a safe loader
working from the parser's events) builds the data itself, so nothing is ever constructed from
a tag, duplicate keys are caught, and the size, nesting depth and alias expansion of a document
are bounded before they can cost memory or time.

Scalars are read the YAML 1.2 core way, restricted to what JSON can hold:

- only ``true``/``True``/``TRUE`` and ``false``/``False``/``FALSE`` are booleans, so ``on``,
  ``off``, ``yes``, ``no``, ``y`` and ``n`` stay strings (the key ``on:`` included);
- integers are decimal (``012`` is 12), ``0o17`` or ``0x1f``; no sexagesimal ``1:30``, no ``_``;
- ``~``, ``null``, ``Null``, ``NULL`` and an empty value are null;
- dates and times stay strings, and ``.inf``/``.nan`` stay strings (JSON has neither);
- mapping keys are always strings, taken as written (``200: ok`` has the key ``"200"``).

Anchors, aliases and the ``<<`` merge key work as in other YAML tools; each use of an alias is
a fresh copy, counted against ``MAX_ALIAS_NODES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from engine.dsl.paths import Path, format_path
from engine.dsl.yamlread import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    USES_LIBYAML,
    LoadStopped,
    PosTree,
    WorkflowLoader,
)
from engine.errors import Problem, WorkflowInvalid

MAX_BYTES = 1024 * 1024

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "Document",
    "Path",
    "format_path",
    "load_yaml",
]


@dataclass
class Document:
    """Loaded YAML: the data plus where each part of it was written."""

    data: dict[str, Any]
    tree: PosTree = field(repr=False)
    filename: str = "workflow.yaml"
    # Mistakes that did not stop loading (duplicate keys, unsupported tags …); the data holds
    # the first value of a duplicated key.
    problems: list[Problem] = field(default_factory=list)

    def position(self, path: Sequence[str | int]) -> tuple[int, int]:
        """(line, column) of the value at ``path``, or of its deepest existing ancestor."""
        return self._walk(path)[1]

    def key_position(self, path: Sequence[str | int]) -> tuple[int, int]:
        """(line, column) of the key that ``path`` ends with (for an item, the item itself)."""
        reached, value_position, key_position = self._walk(path)
        return key_position if reached and path else value_position

    def problem(self, path: Sequence[str | int], message: str, *, at_key: bool = False) -> Problem:
        """A Problem located at the value (or with ``at_key``, the key) at ``path``."""
        line, column = self.key_position(path) if at_key else self.position(path)
        return Problem(line, column, format_path(path), message, self.filename)

    def _walk(self, path: Sequence[str | int]) -> tuple[bool, tuple[int, int], tuple[int, int]]:
        tree = self.tree
        key_position = (tree[0], tree[1])
        for part in path:
            children = tree[2]
            if isinstance(children, dict) and isinstance(part, str) and part in children:
                key_line, key_column, tree = children[part]
                key_position = (key_line, key_column)
            elif isinstance(children, list) and isinstance(part, int) and 0 <= part < len(children):
                tree = children[part]
                key_position = (tree[0], tree[1])
            else:
                return False, (tree[0], tree[1]), key_position
        return True, (tree[0], tree[1]), key_position


def load_yaml(
    text: str | bytes, *, filename: str = "workflow.yaml", strict: bool = True
) -> Document:
    """Load one workflow file, which must be a YAML mapping.

    Raises ``WorkflowInvalid`` when the file cannot be read (syntax error, too large, too deep,
    too many aliases, empty, not a mapping) and, when ``strict``, for any other problem found
    while loading. With ``strict=False`` those are left in ``Document.problems`` for the caller
    to report together with its own.
    """
    try:
        text, encoded = _text_of(text)
        try:
            data, tree, problems = WorkflowLoader(text, filename).load()
        except yaml.MarkedYAMLError as error:
            raise _yaml_error(error, text) from None
        except yaml.reader.ReaderError as error:
            # libyaml reports a byte offset into UTF-8, the Python reader a character offset.
            prefix = encoded[: error.position].decode("utf-8", "replace")
            if not USES_LIBYAML:
                prefix = text[: error.position]
            line, column = _line_column(prefix)
            raise LoadStopped(line, column, f"invalid YAML: {error.reason}") from None
        except yaml.YAMLError as error:
            raise LoadStopped(1, 1, f"invalid YAML: {error}") from None
    except LoadStopped as stopped:
        problem = Problem(stopped.line, stopped.column, "", stopped.message, filename)
        raise WorkflowInvalid([problem]) from None
    if strict and problems:
        raise WorkflowInvalid(problems)
    return Document(data=data, tree=tree, filename=filename, problems=problems)


def _text_of(source: str | bytes) -> tuple[str, bytes]:
    """The text and its UTF-8 bytes, refusing what is too large or not Unicode."""
    if isinstance(source, bytes):
        if len(source) > MAX_BYTES:
            raise LoadStopped(1, 1, _too_large(len(source)))
        try:
            return source.decode("utf-8"), source
        except UnicodeDecodeError as error:
            line, column = _line_column(source[: error.start].decode("utf-8", "replace"))
            raise LoadStopped(line, column, "the file is not valid UTF-8 text") from None
    # A character is at least one byte: no need to encode what is already too long.
    if len(source) > MAX_BYTES:
        raise LoadStopped(1, 1, _too_large(len(source.encode("utf-8", "surrogatepass"))))
    try:
        encoded = source.encode("utf-8")
    except UnicodeEncodeError as error:
        line, column = _line_column(source[: error.start])
        message = "the text holds an invalid character (a lone surrogate)"
        raise LoadStopped(line, column, message) from None
    if len(encoded) > MAX_BYTES:
        raise LoadStopped(1, 1, _too_large(len(encoded)))
    return source, encoded


def _too_large(size: int) -> str:
    return f"the file is {size:,} bytes; a workflow file may be at most {MAX_BYTES:,} bytes (1 MiB)"


def _line_column(prefix: str) -> tuple[int, int]:
    line = prefix.count("\n") + 1
    return line, len(prefix) - (prefix.rfind("\n") + 1) + 1


def _yaml_error(error: yaml.MarkedYAMLError, text: str) -> LoadStopped:
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    message = error.problem or error.context or "not valid YAML"
    if error.context and error.problem:
        where = f" started at line {error.context_mark.line + 1}" if error.context_mark else ""
        message = f"{message} ({error.context}{where})"
    lines = text.splitlines()
    if mark is not None and mark.line < len(lines) and "\t" in lines[mark.line][: mark.column + 1]:
        message += "; YAML indents with spaces, not tabs"
    return LoadStopped(line, column, f"invalid YAML: {message}")
