"""Durations: ``30s``, ``10m``, ``1h30m``, ``1d``, ``500ms`` and plain seconds."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.dsl.durations import (
    DURATION_PATTERN,
    DurationError,
    format_duration,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1d", 86400),
        ("2h", 7200),
        ("500ms", 0.5),
        ("10m500ms", 600.5),
        ("1.5h", 5400),
        ("90", 90),
        ("2.5", 2.5),
        (" 7s ", 7),
        ("0s", 0),
        (45, 45),
        (0.25, 0.25),
    ],
)
def test_a_duration_is_read_in_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "invalid duration 'abc': use 30s, 10m, 1h30m, 1d, 500ms or a number of seconds"),
        ("", "invalid duration '': use 30s, 10m, 1h30m, 1d, 500ms or a number of seconds"),
        ("1 h", "invalid duration '1 h': use 30s, 10m, 1h30m, 1d, 500ms or a number of seconds"),
        ("-5s", "invalid duration '-5s': use 30s, 10m, 1h30m, 1d, 500ms or a number of seconds"),
        ("30m1h", "invalid duration '30m1h': give each unit once, largest first (e.g. 1h30m)"),
        ("1h1h", "invalid duration '1h1h': give each unit once, largest first (e.g. 1h30m)"),
        (-1, "a duration must be a number of seconds ≥ 0, got -1"),
        (float("inf"), "a duration must be a number of seconds ≥ 0, got inf"),
        (True, "expected a duration (30s, 10m, 1h30m, 1d, 500ms or a number of seconds), got bool"),
        (None, "expected a duration (30s, 10m, 1h30m, 1d, 500ms or a number of seconds), got null"),
    ],
)
def test_anything_else_is_refused_with_a_message_saying_what_is_accepted(
    value: object, message: str
) -> None:
    with pytest.raises(DurationError) as raised:
        parse_duration(value)
    assert str(raised.value) == message


def test_a_duration_is_written_back_the_way_a_workflow_would_write_it() -> None:
    assert format_duration(5400) == "1h30m"
    assert format_duration(0.5) == "500ms"
    assert format_duration(0) == "0s"
    assert format_duration(90061.25) == "1d1h1m1s250ms"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789.dhms -x", max_size=12))
def test_the_schema_pattern_accepts_exactly_what_the_parser_accepts(text: str) -> None:
    matches = re.search(DURATION_PATTERN, text) is not None
    try:
        parse_duration(text)
    except DurationError:
        parsed = False
    else:
        parsed = True
    assert matches == parsed


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10**9))
def test_formatting_then_parsing_gives_the_same_duration(milliseconds: int) -> None:
    seconds = milliseconds / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
