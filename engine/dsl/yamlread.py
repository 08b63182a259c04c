"""Reading a YAML event stream into JSON data and a tree of line/column positions.

The loader works from PyYAML's parser events (libyaml's when available) rather than from its
constructors, so no tag ever constructs an object, duplicate keys are seen, and size limits
apply while reading: nesting depth (libyaml's parser slows down quadratically with it, and the
composer's recursion could crash the process) and the number of values aliases expand to.
``engine.dsl.loader`` describes the rules for scalars.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from engine.dsl.paths import format_path
from engine.errors import Problem

MAX_DEPTH = 100  # nesting levels; deeper is never a workflow
MAX_ALIAS_NODES = 100_000  # values produced by alias expansion, to stop "billion laughs" files

# libyaml is about six times faster; the pure-Python parser produces the same events.
_Parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
USES_LIBYAML = _Parser is not yaml.SafeLoader

# A position tree mirrors the data: (line, column, children) where children is None for a
# scalar, a list of position trees for a sequence, and {key: (key_line, key_column, tree)} for
# a mapping. Tuples keep it small: a 5,000-step workflow has ~100,000 of them.
PosTree = tuple[int, int, Any]

_TAG = "tag:yaml.org,2002:"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NUMBER_START = frozenset("0123456789+-.")
# First characters of plain scalars that may be something other than a string.
_MAYBE_NOT_TEXT = frozenset("0123456789+-.~nNtTfF")
_INT = re.compile(r"[-+]?[0-9]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")


class LoadStopped(Exception):
    """Stops loading: the rest of the file cannot be read meaningfully."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


class _Frame:
    """An open mapping or sequence while events stream in."""

    __slots__ = (
        "anchor",
        "children",
        "column",
        "key",
        "key_column",
        "key_line",
        "line",
        "merges",
        "size",
        "state",
        "value",
    )

    def __init__(self, value: Any, children: Any, line: int, column: int, anchor: str | None):
        self.value = value
        self.children = children
        self.line = line
        self.column = column
        self.anchor = anchor
        self.size = 1
        # Mapping state: 0 = expecting a key, 1 = expecting its value, 2 = skip the value
        # (duplicate or invalid key), 3 = the value is a `<<` merge source.
        self.state = 0
        self.key: str | int = 0
        self.key_line = self.key_column = 0
        self.merges: list[tuple[Any, PosTree]] | None = None


class WorkflowLoader(_Parser):  # type: ignore[misc, valid-type]
    """A safe YAML loader that builds JSON data and a position tree from the event stream.

    Raises ``LoadStopped`` for what makes the rest unreadable; other problems are collected in
    ``problems``. Use once: ``WorkflowLoader(text, filename).load()``.
    """

    def __init__(self, text: str, filename: str) -> None:
        super().__init__(text)
        self.filename = filename
        self.problems: list[Problem] = []
        self.anchors: dict[str, tuple[Any, PosTree, str | None, int]] = {}
        self.open_anchors: set[str] = set()
        self.alias_nodes = 0
        self.stack: list[_Frame] = []
        self.root: tuple[Any, PosTree] | None = None

    def load(self) -> tuple[dict[str, Any], PosTree, list[Problem]]:
        """The document's data (a mapping), its position tree, and the problems found."""
        try:
            return self._run()
        finally:
            self.dispose()

    def _run(self) -> tuple[dict[str, Any], PosTree, list[Problem]]:
        get_event = self.get_event
        stack = self.stack
        add = self._add
        scalar_event = yaml.ScalarEvent
        documents = 0
        while True:
            event = get_event()
            kind = type(event)
            mark = event.start_mark
            if kind is scalar_event:
                text = event.value
                plain = event.implicit[0]
                if event.tag is not None:
                    value = self._tagged(event, mark)
                elif not plain or (text and text[0] not in _MAYBE_NOT_TEXT):
                    value = text  # the common case, decided without a regex
                else:
                    value = self._resolve_plain(text, mark)
                tree = (mark.line + 1, mark.column + 1, None)
                if event.anchor is not None:
                    self.anchors[event.anchor] = (value, tree, text, 1)
                add(value, tree, text, 1, plain)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                if len(stack) >= MAX_DEPTH:
                    raise LoadStopped(
                        mark.line + 1,
                        mark.column + 1,
                        f"the document is nested more than {MAX_DEPTH} levels deep",
                    )
                self._check_collection_tag(event, mark)
                is_mapping = kind is yaml.MappingStartEvent
                frame = _Frame(
                    {} if is_mapping else [],
                    {} if is_mapping else [],
                    mark.line + 1,
                    mark.column + 1,
                    event.anchor,
                )
                if event.anchor is not None:
                    self.open_anchors.add(event.anchor)
                stack.append(frame)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                frame = stack.pop()
                if frame.merges:
                    self._merge(frame)
                tree = (frame.line, frame.column, frame.children)
                if frame.anchor is not None:
                    self.open_anchors.discard(frame.anchor)
                    self._anchor(frame.anchor, frame.value, tree, None, frame.size)
                self._add(frame.value, tree, None, frame.size, False)
            elif kind is yaml.AliasEvent:
                self._alias(event, mark)
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise LoadStopped(
                        mark.line + 1,
                        mark.column + 1,
                        "a workflow file holds one YAML document; a second one starts here",
                    )
            elif kind is yaml.StreamEndEvent:
                break
        return self._document(self.root)

    def _document(
        self, root: tuple[Any, PosTree] | None
    ) -> tuple[dict[str, Any], PosTree, list[Problem]]:
        if root is None or root[0] is None:
            raise LoadStopped(
                1, 1, "the file is empty; a workflow is a mapping with at least name and steps"
            )
        data, tree = root
        if not isinstance(data, dict):
            kind = "a list" if isinstance(data, list) else f"{_kind(data)} {data!r}"
            raise LoadStopped(
                tree[0], tree[1], f"a workflow is a mapping (name: …, steps: …), got {kind}"
            )
        return data, tree, self.problems

    def _add(
        self,
        value: Any,
        tree: PosTree,
        key_text: str | None,
        size: int,
        plain: bool,
    ) -> None:
        """Attach a finished value to the open collection (or make it the document's root)."""
        stack = self.stack
        if not stack:
            self.root = (value, tree)
            return
        frame = stack[-1]
        frame.size += size
        if type(frame.value) is list:
            frame.value.append(value)
            frame.children.append(tree)
            return
        state = frame.state
        if state == 1:
            frame.value[frame.key] = value
            frame.children[frame.key] = (frame.key_line, frame.key_column, tree)
            frame.state = 0
        elif state == 0:
            self._key(frame, tree, key_text, plain)
        elif state == 3:
            self._merge_source(frame, value, tree)
            frame.state = 0
        else:
            frame.state = 0

    def _key(self, frame: _Frame, tree: PosTree, key_text: str | None, plain: bool) -> None:
        line, column = tree[0], tree[1]
        if key_text is None:
            self.problems.append(
                self._problem(
                    line, column, None, "a key must be a plain value, not a list or mapping"
                )
            )
            frame.state = 2
            return
        if plain and key_text == "<<":
            frame.state = 3
            return
        if key_text in frame.value:
            first = frame.children[key_text][0]
            self.problems.append(
                self._problem(
                    line,
                    column,
                    key_text,
                    f"duplicate key {key_text!r} (first defined at line {first})",
                )
            )
            frame.state = 2
            return
        frame.key = key_text
        frame.key_line, frame.key_column = line, column
        frame.state = 1

    def _merge_source(self, frame: _Frame, value: Any, tree: PosTree) -> None:
        sources = (
            list(zip(value, tree[2], strict=True)) if isinstance(value, list) else [(value, tree)]
        )
        if not all(isinstance(source, dict) for source, _ in sources):
            self.problems.append(
                self._problem(
                    tree[0], tree[1], "<<", "the merge key << takes a mapping or a list of mappings"
                )
            )
            return
        if frame.merges is None:
            frame.merges = []
        frame.merges.extend(sources)

    def _merge(self, frame: _Frame) -> None:
        # As in YAML 1.1 merge keys: the mapping's own keys win, then earlier sources.
        merged: dict[str, Any] = {}
        children: dict[str, Any] = {}
        for source, tree in frame.merges or ():
            for key, value in source.items():
                if key not in merged and key not in frame.value:
                    merged[key] = value
                    children[key] = tree[2][key]
        merged.update(frame.value)
        children.update(frame.children)
        frame.value, frame.children = merged, children

    def _anchor(
        self, anchor: str | None, value: Any, tree: PosTree, key_text: str | None, size: int
    ) -> None:
        if anchor is not None:
            self.anchors[anchor] = (value, tree, key_text, size)

    def _alias(self, event: Any, mark: Any) -> None:
        name = event.anchor
        line, column = mark.line + 1, mark.column + 1
        if name in self.open_anchors:
            raise LoadStopped(line, column, f"the alias *{name} refers to a value that contains it")
        if name not in self.anchors:
            raise LoadStopped(line, column, f"unknown alias *{name} (no anchor &{name} before it)")
        value, tree, key_text, size = self.anchors[name]
        self.alias_nodes += size
        if self.alias_nodes > MAX_ALIAS_NODES:
            raise LoadStopped(
                line,
                column,
                f"aliases expand to more than {MAX_ALIAS_NODES:,} values; "
                "write the repeated parts out or make them smaller",
            )
        self._add(_copy(value), tree, key_text, size, True)

    def _check_collection_tag(self, event: Any, mark: Any) -> None:
        tag = event.tag
        expected = _TAG + ("map" if type(event) is yaml.MappingStartEvent else "seq")
        if tag is not None and tag != "!" and tag != expected:
            self.problems.append(
                self._problem(mark.line + 1, mark.column + 1, None, _unsupported_tag(tag))
            )

    def _tagged(self, event: Any, mark: Any) -> Any:
        """A scalar with an explicit tag: ``!!str``, ``!!int`` … (others are refused)."""
        text = event.value
        tag = event.tag
        if tag == "!" or tag == _TAG + "str":
            return text
        converted = _EXPLICIT.get(tag)
        if converted is None:
            self.problems.append(
                self._problem(mark.line + 1, mark.column + 1, None, _unsupported_tag(tag))
            )
            return text
        value = self._resolve_plain(text, mark)
        if not converted(value):
            self.problems.append(
                self._problem(
                    mark.line + 1,
                    mark.column + 1,
                    None,
                    f"{text!r} is not a valid {tag.removeprefix(_TAG)}",
                )
            )
            return text
        return float(value) if tag == _TAG + "float" else value

    def _resolve_plain(self, text: str, mark: Any) -> Any:
        if text in _NULLS:
            return None
        first = text[0]
        if first in "tTfF" and text in _BOOLS:
            return _BOOLS[text]
        if first not in _NUMBER_START:
            return text
        try:
            if _INT.match(text):
                return int(text)
            if _OCT.match(text):
                return int(text[2:], 8)
            if _HEX.match(text):
                return int(text[2:], 16)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            self._number_problem(text, mark)
            return text
        if _FLOAT.match(text):
            number = float(text)
            if math.isinf(number):
                self._number_problem(text, mark)
                return text
            return number
        return text

    def _number_problem(self, text: str, mark: Any) -> None:
        shown = text if len(text) <= 20 else text[:17] + "..."
        self.problems.append(
            self._problem(
                mark.line + 1,
                mark.column + 1,
                None,
                f"the number {shown} is too large; quote it to keep it as text",
            )
        )

    def _problem(self, line: int, column: int, last: str | int | None, message: str) -> Problem:
        path = self._path()
        if last is not None:
            path.append(last)
        return Problem(line, column, format_path(path), message, self.filename)

    def _path(self) -> list[str | int]:
        """The path of the value being read, from the open collections."""
        path: list[str | int] = []
        for frame in self.stack:
            if type(frame.value) is list:
                path.append(len(frame.value))
            elif frame.state == 1:
                path.append(frame.key)
            else:
                break
        return path


def _unsupported_tag(tag: str) -> str:
    shown = "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
    return (
        f"unsupported tag {shown}: a workflow holds plain YAML (strings, numbers, lists, mappings)"
    )


_EXPLICIT = {
    _TAG + "int": lambda value: type(value) is int,
    _TAG + "float": lambda value: type(value) in (int, float),
    _TAG + "bool": lambda value: type(value) is bool,
    _TAG + "null": lambda value: value is None,
}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def _copy(value: Any) -> Any:
    """A deep copy of loaded data (only dicts, lists and immutable scalars occur)."""
    if type(value) is dict:
        return {key: _copy(item) for key, item in value.items()}
    if type(value) is list:
        return [_copy(item) for item in value]
    return value
