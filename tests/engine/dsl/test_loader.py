"""Loading YAML safely, the YAML 1.2 way, remembering where every value was written."""

from __future__ import annotations

import textwrap

import pytest

from engine.dsl.loader import MAX_ALIAS_NODES, MAX_BYTES, MAX_DEPTH, format_path, load_yaml
from engine.errors import WorkflowInvalid


def load(text: str, **options: object):
    return load_yaml(textwrap.dedent(text), filename="w.yaml", **options)


def problems_of(text: str) -> list[str]:
    with pytest.raises(WorkflowInvalid) as raised:
        load(text)
    return [str(problem) for problem in raised.value.problems]


def test_on_and_yes_no_stay_strings_and_only_true_false_are_booleans() -> None:
    document = load(
        """
        on: {webhook: yes}
        words: [no, off, on, y, n, Yes, NO]
        booleans: [true, True, TRUE, false, False, FALSE]
        """
    )

    assert document.data["on"] == {"webhook": "yes"}
    assert document.data["words"] == ["no", "off", "on", "y", "n", "Yes", "NO"]
    assert document.data["booleans"] == [True, True, True, False, False, False]


def test_numbers_follow_the_yaml_1_2_core_schema() -> None:
    document = load(
        """
        values: [12, 012, 0o17, 0x1f, -3, +4, 1.5, .5, 5., 1e3, "7", 1:30, 1_000, 0b11]
        nulls: [~, null, Null, NULL, ]
        """
    )

    assert document.data["values"] == [12, 12, 15, 31, -3, 4, 1.5, 0.5, 5.0, 1000.0, "7",
                                       "1:30", "1_000", "0b11"]  # fmt: skip
    assert document.data["nulls"] == [None, None, None, None]


def test_dates_infinities_and_nan_stay_strings_because_json_has_none() -> None:
    document = load("day: 2024-01-31\nat: 2024-01-31T03:00:00Z\nbig: .inf\nodd: .nan\n")

    assert document.data == {
        "day": "2024-01-31",
        "at": "2024-01-31T03:00:00Z",
        "big": ".inf",
        "odd": ".nan",
    }


def test_keys_are_always_strings_as_written() -> None:
    document = load("200: ok\ntrue: yes\n1.0: x\n")

    assert document.data == {"200": "ok", "true": "yes", "1.0": "x"}


def test_a_duplicate_key_is_reported_at_its_second_occurrence() -> None:
    assert problems_of(
        """\
        name: x
        steps:
          build: {uses: noop}
          build: {uses: shell}
        """
    ) == ["w.yaml:4:3: steps.build: duplicate key 'build' (first defined at line 3)"]


def test_every_duplicate_key_is_reported_and_the_first_value_is_kept() -> None:
    text = "a: 1\nb: {c: 1, c: 2}\na: 3\n"

    document = load(text, strict=False)

    assert document.data == {"a": 1, "b": {"c": 1}}
    assert [str(p) for p in document.problems] == [
        "w.yaml:2:11: b.c: duplicate key 'c' (first defined at line 2)",
        "w.yaml:3:1: a: duplicate key 'a' (first defined at line 1)",
    ]


def test_positions_point_at_values_and_at_keys() -> None:
    document = load(
        """\
        name: demo
        steps:
          fetch:
            uses: http
            with: {url: "https://example.org"}
            needs:
              - build
        """
    )

    assert document.position(("steps", "fetch", "with", "url")) == (5, 17)
    assert document.key_position(("steps", "fetch", "with", "url")) == (5, 12)
    assert document.position(("steps", "fetch", "needs", 0)) == (7, 9)
    assert document.key_position(("steps", "fetch")) == (3, 3)


def test_a_path_that_does_not_exist_points_at_its_deepest_existing_part() -> None:
    document = load("steps:\n  fetch:\n    uses: http\n")

    # `fetch` exists, its `with` does not: the position is that of fetch's mapping.
    assert document.position(("steps", "fetch", "with", "url")) == (3, 5)


def test_a_syntax_error_is_a_problem_with_its_line_and_column() -> None:
    assert problems_of("name: x\nsteps: [a, b\nother: 1\n") == [
        "w.yaml:3:6: invalid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence started at line 2)"
    ]


def test_an_empty_file_says_what_a_workflow_needs() -> None:
    message = "w.yaml:1:1: the file is empty; a workflow is a mapping with at least name and steps"
    assert problems_of("") == [message]
    assert problems_of("# only a comment\n") == [message]


def test_a_top_level_list_is_refused() -> None:
    assert problems_of("- a\n- b\n") == [
        "w.yaml:1:1: a workflow is a mapping (name: …, steps: …), got a list"
    ]


def test_a_second_document_is_refused() -> None:
    assert problems_of("a: 1\n---\nb: 2\n") == [
        "w.yaml:2:1: a workflow file holds one YAML document; a second one starts here"
    ]


def test_tags_that_construct_objects_are_refused_and_nothing_is_executed() -> None:
    problems = problems_of(
        """\
        a: !!python/object/apply:os.system ["touch /tmp/flowyard-pwned"]
        b: !!binary aGVsbG8=
        c: !!set {x, y}
        """
    )

    assert problems == [
        "w.yaml:1:4: a: unsupported tag !!python/object/apply:os.system: a workflow holds "
        "plain YAML (strings, numbers, lists, mappings)",
        "w.yaml:2:4: b: unsupported tag !!binary: a workflow holds plain YAML (strings, "
        "numbers, lists, mappings)",
        "w.yaml:3:4: c: unsupported tag !!set: a workflow holds plain YAML (strings, numbers, "
        "lists, mappings)",
    ]


def test_standard_tags_convert_values() -> None:
    document = load("a: !!str 5\nb: !!int '7'\nc: !!float 2\nd: ! 8\n")

    assert document.data == {"a": "5", "b": 7, "c": 2.0, "d": "8"}


def test_anchors_aliases_and_merge_keys_work_as_copies() -> None:
    document = load(
        """\
        base: &retry {max_attempts: 3, delay: 5s}
        one:
          <<: *retry
          delay: 1s
        two: *retry
        """
    )

    assert document.data["one"] == {"max_attempts": 3, "delay": "1s"}
    assert document.data["two"] == {"max_attempts": 3, "delay": "5s"}
    assert document.data["two"] is not document.data["base"]
    # A value that came through an alias is located where it was written.
    assert document.position(("two", "max_attempts")) == (1, 29)


def test_an_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 7):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")

    problems = problems_of("\n".join(lines) + "\n")

    assert len(problems) == 1
    assert f"aliases expand to more than {MAX_ALIAS_NODES:,} values" in problems[0]


def test_an_alias_to_an_unknown_anchor_or_to_itself_is_refused() -> None:
    assert problems_of("a: *nope\n") == [
        "w.yaml:1:4: unknown alias *nope (no anchor &nope before it)"
    ]
    assert problems_of("a: &x [*x]\n") == [
        "w.yaml:1:8: the alias *x refers to a value that contains it"
    ]


def test_a_file_over_one_mebibyte_is_refused_before_parsing() -> None:
    text = "a: '" + "x" * MAX_BYTES + "'\n"

    problems = problems_of(text)

    assert problems == [
        f"w.yaml:1:1: the file is {len(text):,} bytes; a workflow file may be at most "
        f"{MAX_BYTES:,} bytes (1 MiB)"
    ]


def test_deep_nesting_is_refused_quickly() -> None:
    problems = problems_of("a: " + "[" * 100_000 + "]" * 100_000 + "\n")

    assert problems == [f"w.yaml:1:{4 + MAX_DEPTH - 1}: the document is nested more than "
                        f"{MAX_DEPTH} levels deep"]  # fmt: skip


def test_a_complex_key_is_refused() -> None:
    assert problems_of("? [a, b]\n: 1\n") == [
        "w.yaml:1:3: a key must be a plain value, not a list or mapping"
    ]


def test_a_number_too_large_for_json_is_refused() -> None:
    assert problems_of("a: 1e400\n") == [
        "w.yaml:1:4: a: the number 1e400 is too large; quote it to keep it as text"
    ]


def test_control_characters_are_refused_with_their_position() -> None:
    assert problems_of("a: b\nc: \x01\n") == [
        "w.yaml:2:4: invalid YAML: control characters are not allowed"
    ]


def test_a_tab_used_for_indentation_gets_a_hint() -> None:
    assert problems_of("a:\n\tb: 1\n") == [
        "w.yaml:2:1: invalid YAML: found character that cannot start any token (while scanning "
        "for the next token started at line 2); YAML indents with spaces, not tabs"
    ]


def test_text_that_is_not_unicode_is_refused() -> None:
    assert problems_of("a: \ud800\n") == [
        "w.yaml:1:4: the text holds an invalid character (a lone surrogate)"
    ]


def test_bytes_must_be_utf8() -> None:
    with pytest.raises(WorkflowInvalid) as raised:
        load_yaml(b"a: b\nc: \xff\n", filename="w.yaml")

    assert str(raised.value) == "w.yaml:2:4: the file is not valid UTF-8 text"


def test_paths_read_the_way_users_write_them() -> None:
    assert format_path(("steps", "build", "with", "url")) == "steps.build.with.url"
    assert format_path(("on", "schedule", 0, "cron")) == "on.schedule[0].cron"
    assert format_path(("labels", "a.b")) == 'labels["a.b"]'
    assert format_path(()) == ""
