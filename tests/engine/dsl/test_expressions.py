"""``${{ … }}`` expressions: finding, checking, evaluating, conditions and secret masking."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.dsl.expressions import (
    DependencyState,
    check_condition,
    check_syntax,
    condition_expression,
    contains_expression,
    evaluate,
    evaluate_condition,
    find_expressions,
    is_expression,
    iter_strings,
    mask_secrets,
    mask_secrets_in,
    referenced_steps,
    truthy,
    uses_status_function,
)
from engine.errors import ExpressionError

CONTEXT = {
    "inputs": {"day": "2024-05-01", "threshold": 0.5, "count": 3, "flag": False, "name": None},
    "env": {"REPORT_DIR": "/tmp/reports"},
    "steps": {
        "build": {
            "outputs": {"url": "https://example.org/b/1", "rows": 12, "items": ["a", "b"]},
            "status": "succeeded",
            "error": None,
            "attempts": 1,
        },
        "collect": {
            "outputs": [
                {"path": "/data/north.wav", "region": "north", "size": 3},
                {"path": "/data/south.wav", "region": "south", "size": 5},
            ],
            "status": "succeeded",
            "error": None,
            "attempts": 2,
        },
    },
    "run": {"id": "run-42", "workflow": "nightly", "trigger": "manual", "started_at": "2024"},
    "secrets": {"TOKEN": "s3cr3t-value"},
}


def run(value: object, **extra: object) -> object:
    return evaluate(value, {**CONTEXT, **extra})


def error_of(value: object, **extra: object) -> str:
    with pytest.raises(ExpressionError) as caught:
        run(value, **extra)
    return caught.value.message


# ---------------------------------------------------------------- finding expressions


def test_find_expressions_returns_the_source_of_each_expression():
    text = "echo ${{ inputs.day }} > ${{ env.REPORT_DIR }}/out"

    assert find_expressions(text) == [" inputs.day ", " env.REPORT_DIR "]


def test_closing_braces_inside_quotes_or_a_dict_do_not_end_an_expression():
    assert find_expressions("${{ '}}' }}") == [" '}}' "]
    assert find_expressions('${{ "a }} b" ~ "c" }}') == [' "a }} b" ~ "c" ']
    assert find_expressions("${{ {'a': {'b': 1}} }}") == [" {'a': {'b': 1}} "]
    assert run("${{ '}}' }}") == "}}"
    assert run("${{ {'a': {'b': 1}} }}") == {"a": {"b": 1}}


def test_a_literal_opening_is_written_as_a_string_expression():
    assert run("${{ '${{' }} inputs.day }}") == "${{ inputs.day }}"


def test_text_without_expressions_has_none_and_an_unclosed_one_is_not_returned():
    assert find_expressions("plain $HOME {{ not ours }}") == []
    assert find_expressions("${{ inputs.day }} ${{ 'open") == [" inputs.day "]


def test_is_expression_is_true_only_for_exactly_one_expression():
    assert is_expression("${{ inputs.day }}")
    assert is_expression("  ${{ inputs.day }}\n")
    assert not is_expression("day ${{ inputs.day }}")
    assert not is_expression("${{ inputs.day }}${{ inputs.day }}")
    assert not is_expression("${{ inputs.day")
    assert not is_expression(3)


def test_strings_are_found_in_nested_values():
    value = {"a": ["x", {"b": "${{ inputs.day }}"}], "c": 3, "d": None}

    assert list(iter_strings(value)) == ["x", "${{ inputs.day }}"]
    assert contains_expression(value)
    assert not contains_expression({"a": ["x", 1]})


# ---------------------------------------------------------------- checking syntax


def test_an_expression_that_does_not_parse_is_reported_with_its_text():
    with pytest.raises(ExpressionError) as caught:
        check_syntax("url: ${{ steps.a.outputs) }}")

    assert caught.value.message == (
        "expression does not parse: unexpected ')' in \"${{ steps.a.outputs) }}\""
    )
    assert caught.value.details["expression"] == " steps.a.outputs) "
    assert caught.value.details["position"] == 5  # where the `${{` starts, for line:column


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${{ inputs.day", "is not closed"),
        ("${{ 'inputs.day }}", "is a quote left open?"),
        ("${{ }}", "the expression is empty"),
        ("${{ stpes.build.outputs }}", "unknown name 'stpes' (did you mean 'steps'?)"),
        ("${{ inputs.x | lenght }}", "unknown filter 'lenght' (did you mean 'length'?)"),
        ("${{ inputs.x is nmber }}", "unknown test 'nmber' (did you mean 'number'?)"),
        ("${{ steps.my-step.outputs }}", "write a step id containing '-' as steps['a-b']"),
        ("${{ " + "x" * 5000 + " }}", "over the limit of 4096"),
        ("${{ " + "[" * 40 + "]" * 40 + " }}", "nested deeper than 32 levels"),
        ("ok ${{ inputs.day }} bad ${{ inputs.day + }}", "expression does not parse"),
    ],
)
def test_check_syntax_explains_what_is_wrong(text: str, message: str):
    with pytest.raises(ExpressionError) as caught:
        check_syntax(text)

    assert message in caught.value.message


def test_valid_expressions_pass_the_check():
    for text in [
        "plain text",
        "${{ steps.collect.outputs | map(attribute='path') | list }}",
        "${{ steps.report.outputs.rows > 0 && !cancelled() || inputs.force }}",
        "${{ inputs.a != inputs.b }}",
        "${{ format('{0}-{1}', matrix.os, index) }} and ${{ item.name }}",
    ]:
        check_syntax(text)


def test_referenced_steps_finds_dotted_and_subscripted_references():
    text = (
        "${{ steps.build.outputs.url }} ${{ steps['de-ploy'].status }} "
        '${{ steps["quoted"].outputs | length }} ${{ steps.collect.outputs | map(attribute="x") }}'
    )

    assert referenced_steps(text) == {"build", "de-ploy", "quoted", "collect"}


def test_referenced_steps_ignores_strings_and_dynamic_subscripts():
    assert referenced_steps("steps.plain ${{ 'steps.quoted' }} ${{ steps[inputs.which] }}") == set()
    assert referenced_steps("no expressions") == set()


@given(
    st.lists(
        st.one_of(
            st.from_regex(r"\.[a-z_][a-z0-9_]{0,6}", fullmatch=True),
            st.from_regex(r"\['[a-z0-9_-]{0,6}'\]", fullmatch=True),
            st.from_regex(r"\[[0-9]{1,2}\]", fullmatch=True),
            st.from_regex(r'\["[a-z]{0,3}"\]', fullmatch=True),
        ),
        max_size=4,
    )
)
def test_plain_paths_report_the_same_steps_as_the_full_parser(segments: list[str]):
    def outcome(text: str) -> set[str] | str:
        try:
            return referenced_steps(text)
        except ExpressionError:
            return "refused"

    # Parentheses make the path go through Jinja's parser instead of the fast path.
    path = "steps" + "".join(segments)

    assert outcome(f"${{{{ {path} }}}}") == outcome(f"${{{{ ({path}) }}}}")


@given(st.text(alphabet="${}()[]'\"|.!&~ abcsteps0123", max_size=40))
def test_checking_any_text_raises_only_expression_errors(text: str):
    find_expressions(text)
    try:
        check_syntax(text)
        referenced_steps(text)
    except ExpressionError:
        pass


def test_checking_fifteen_thousand_strings_takes_well_under_a_second():
    token = time.perf_counter_ns()  # distinct sources, so nothing is cached from an earlier run
    texts = []
    for index in range(5000):
        step = f"s{token}_{index}"
        texts += [
            f"${{{{ steps.{step}.outputs.url }}}}",
            f"collect --day ${{{{ inputs.day }}}} --from ${{{{ steps['{step}'].outputs.path }}}}",
            f"plain text {index}",
        ]
    started = time.perf_counter()

    for text in texts:
        check_syntax(text)
        referenced_steps(text)

    assert time.perf_counter() - started < 1.0


# ---------------------------------------------------------------- evaluating


def test_a_whole_expression_keeps_its_type():
    assert run("${{ inputs.count }}") == 3
    assert run("${{ inputs.threshold }}") == 0.5
    assert run("${{ inputs.flag }}") is False
    assert run("${{ inputs.name }}") is None
    assert run("${{ steps.build.outputs.items }}") == ["a", "b"]
    assert run("${{ steps.build.outputs }}") == CONTEXT["steps"]["build"]["outputs"]
    assert run("  ${{ inputs.count + 1 }}\n") == 4


def test_an_expression_inside_text_renders_as_text():
    text = "n=${{ inputs.count }} flag=${{ inputs.flag }} name=[${{ inputs.name }}] x=${{ 1.5 }}"

    assert run(text) == "n=3 flag=false name=[] x=1.5"
    assert run("items: ${{ steps.build.outputs.items }}") == 'items: ["a", "b"]'
    assert run("${{ {'k': true} }}!") == '{"k": true}!'


def test_strings_without_expressions_and_other_values_are_unchanged():
    value = {"a": "plain {{ jinja }} $HOME", "b": 3, "c": None, "d": [True, 1.5]}

    assert run(value) == value


def test_uuids_and_decimals_in_the_context_are_data():
    run_id = uuid.uuid4()
    context = {"run": {"id": run_id}, "inputs": {"price": Decimal("2.50"), "n": Decimal("3")}}

    assert evaluate("${{ run.id }}", context) == str(run_id)
    assert evaluate("${{ inputs.price }} ${{ inputs.n }}", context) == "2.5 3"


def test_dicts_and_lists_are_evaluated_recursively():
    value = {"with": {"url": "${{ steps.build.outputs.url }}", "args": ["-n", "${{ index }}"]}}

    assert run(value, index=7) == {"with": {"url": "https://example.org/b/1", "args": ["-n", 7]}}


def test_keys_read_as_attributes_even_when_they_shadow_methods():
    assert run("${{ steps.build.outputs.items | length }}") == 2
    assert run("${{ steps['build']['outputs']['rows'] }}") == 12
    assert run("${{ steps.collect.outputs[1].region }}") == "south"


def test_a_missing_key_is_named_with_its_path_and_a_suggestion():
    assert error_of("${{ steps.build.outputs.ur }}") == (
        "'steps.build.outputs' has no key 'ur' (did you mean 'url'?) "
        'in "${{ steps.build.outputs.ur }}"'
    )
    assert "'steps' has no key 'deploy' (it has 'build', 'collect')" in error_of(
        "${{ steps.deploy.outputs }}"
    )
    assert "'steps.collect.outputs' has no item 5 (it has 2)" in error_of(
        "${{ steps.collect.outputs[5] }}"
    )
    assert "the value is null, so it has no 'first'" in error_of("${{ inputs.name.first }}")


def test_a_context_name_the_run_does_not_provide_is_reported():
    message = error_of("${{ item.name }}")

    assert message.startswith("'item' is not available here (the context has env, inputs")


def test_default_and_defined_handle_missing_values():
    assert run("${{ inputs.missing | default(3) }}") == 3
    assert run("${{ inputs.missing.deeper[0] | default('x') }}") == "x"
    assert run("${{ inputs.missing is defined }}") is False
    assert run("${{ inputs.day is defined }}") is True
    assert "'inputs' has no key 'missing'" in error_of("${{ inputs.missing + 1 }}")
    assert "'inputs' has no key 'missing'" in error_of("${{ inputs.missing == 1 }}")


def test_github_operators_are_accepted():
    assert run("${{ inputs.count > 2 && !inputs.flag }}") is True
    assert run("${{ inputs.flag || inputs.count }}") == 3
    assert run("${{ inputs.count != 3 }}") is False
    assert run("${{ '&& || !' }}") == "&& || !"
    assert run("${{ null }}") is None


def test_concatenation_renders_values_like_text():
    assert run("${{ inputs.day ~ '/' ~ inputs.flag ~ '/' ~ inputs.name }}") == "2024-05-01/false/"


def test_now_is_a_timezone_aware_utc_datetime_rendered_as_iso():
    before = datetime.now(UTC)

    assert run("${{ now().tzinfo is none }}") is False
    assert run("${{ now().year }}") == before.year
    rendered = run("${{ now() }}")
    assert datetime.fromisoformat(rendered) >= before
    assert rendered.endswith("+00:00")


def test_json_functions_and_filters():
    assert run("${{ fromjson('{\"a\": [1, 2]}').a[1] }}") == 2
    assert run("${{ '[1, null]' | fromjson }}") == [1, None]
    assert run("${{ tojson(steps.build.outputs.items) }}") == '["a", "b"]'
    assert run("${{ {'a': '<b>'} | tojson }}") == '{"a": "<b>"}'
    assert run("${{ fromJSON(toJSON([true])) }}") == [True]
    assert "not valid JSON" in error_of("${{ fromjson('{') }}")


def test_github_style_functions():
    assert run("${{ contains(steps.build.outputs.items, 'A') }}") is True
    assert run("${{ contains('Hello world', 'WORLD') }}") is True
    assert run("${{ startsWith(inputs.day, '2024') && endswith('abc', 'BC') }}") is True
    assert (
        run("${{ format('{0}-{1} {{literal}}', inputs.day, true) }}") == "2024-05-01-true {literal}"
    )
    assert run("${{ join(steps.build.outputs.items) }}") == "a,b"
    assert "only 1 given" in error_of("${{ format('{0}{1}', 1) }}")


def test_usual_filters_work():
    outputs = "steps.collect.outputs"
    assert run(f"${{{{ {outputs} | map(attribute='path') | list }}}}") == [
        "/data/north.wav",
        "/data/south.wav",
    ]
    assert (
        run(f"${{{{ {outputs} | selectattr('size', 'gt', 4) | map(attribute='region') | first }}}}")
        == "south"
    )
    assert run(f"${{{{ {outputs} | sum(attribute='size') }}}}") == 8
    assert run(f"${{{{ {outputs} | map(attribute='region') | join(', ') }}}}") == "north, south"
    assert run("${{ [3, 1, 3] | unique | sort | list }}") == [1, 3]
    assert run("${{ [3, 1] | max + [3, 1] | min + ([1, 2] | length) }}") == 6
    assert run("${{ '3.7' | float | round | int }}") == 4
    assert run("${{ range(4) | select('odd') | list }}") == [1, 3]
    assert (
        run("${{ range(10)[2:4] | list }} ${{ range(3) }} ${{ 2 in range(3) }}")
        == "[2, 3] [0, 1, 2] true"
    )
    assert run("${{ contains(range(3), 2) }}") is True
    assert run(f"${{{{ {outputs} | groupby('region') | map(attribute='grouper') | list }}}}") == [
        "north",
        "south",
    ]
    assert run("${{ {'b': 1, 'a': 2} | dictsort | first }}") == ["a", 2]
    assert run("${{ true | string }}") == "true"
    assert run("${{ '  x ' | trim | upper }}") == "X"
    assert run("${{ 'a-b' | replace('-', '+') }}") == "a+b"
    assert run("${{ '%s=%d' | format('n', 2) }}") == "n=2"


def test_string_methods_that_read_data_work():
    assert run("${{ inputs.day.split('-') | last | int }}") == 1
    assert run("${{ 'a,b'.upper().startswith('A') }}") is True
    assert run("${{ '{}-{}'.format(inputs.day, 1) }}") == "2024-05-01-1"


def test_a_type_error_becomes_an_expression_error():
    assert "unsupported operand" in error_of("${{ inputs.count + 'x' }}")
    assert "ZeroDivisionError" in error_of("${{ 1 / 0 }}")


def test_status_functions_outside_a_condition_are_refused_unless_deps_are_given():
    assert "failure() can only be used in a condition" in error_of("${{ failure() }}")
    assert evaluate("${{ failure() }}", CONTEXT, deps=DependencyState(any_failed=True)) is True


def test_evaluating_one_expression_for_ten_thousand_items_is_fast():
    items = [{"name": f"device-{n}"} for n in range(10_000)]
    started = time.perf_counter()

    results = [
        evaluate(
            {"device": "${{ item.name }}", "n": "${{ index }}"}, {**CONTEXT, "item": i, "index": n}
        )
        for n, i in enumerate(items)
    ]

    assert time.perf_counter() - started < 2.0
    assert results[9_999] == {"device": "device-9999", "n": 9_999}


# ---------------------------------------------------------------- conditions

SUCCEEDED = DependencyState()
FAILED = DependencyState(any_failed=True)
SKIPPED = DependencyState(any_skipped=True)
SKIPPED_AFTER_FAILURE = DependencyState(any_failed=True, any_skipped=True)
DEP_CANCELLED = DependencyState(any_cancelled=True)
RUN_CANCELLED = DependencyState(run_cancelled=True)
STATES = [SUCCEEDED, FAILED, SKIPPED, SKIPPED_AFTER_FAILURE, DEP_CANCELLED, RUN_CANCELLED]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # condition                       succ.  failed skipped skip+fail dep-canc run-canc
        (None, [True, False, False, False, False, False]),
        ("", [True, False, False, False, False, False]),
        ("success()", [True, False, False, False, False, False]),
        ("failure()", [False, True, False, True, False, False]),
        ("always()", [True, True, True, True, True, True]),
        ("cancelled()", [False, False, False, False, True, True]),
        ("!cancelled()", [True, True, True, True, False, False]),
        ("inputs.count > 2", [True, False, False, False, False, False]),
        ("inputs.count > 5", [False, False, False, False, False, False]),
        ("${{ failure() && inputs.count > 2 }}", [False, True, False, True, False, False]),
        ("${{ always() && inputs.flag }}", [False, False, False, False, False, False]),
    ],
)
def test_condition_truth_table(condition: str | None, expected: list[bool]):
    assert [evaluate_condition(condition, CONTEXT, deps=s) for s in STATES] == expected


def test_a_failed_dependency_skips_unless_the_condition_calls_failure():
    assert evaluate_condition("inputs.count > 0", CONTEXT, deps=FAILED) is False
    assert evaluate_condition("${{ failure() }}", CONTEXT, deps=FAILED) is True


def test_a_skipped_dependency_skips_dependents_unless_always_is_used():
    assert evaluate_condition(None, CONTEXT, deps=SKIPPED) is False
    assert evaluate_condition("failure()", CONTEXT, deps=SKIPPED) is False
    assert evaluate_condition("always()", CONTEXT, deps=SKIPPED) is True


def test_an_implicit_success_condition_is_not_evaluated_after_a_failure():
    # The failed step wrote no outputs; reading them would raise if the condition ran.
    assert evaluate_condition("steps.failed_step.outputs.x", CONTEXT, deps=FAILED) is False
    with pytest.raises(ExpressionError):
        evaluate_condition("steps.failed_step.outputs.x", CONTEXT, deps=SUCCEEDED)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, False),
        (0, False),
        (0.0, False),
        (float("nan"), False),
        ("", False),
        (None, False),
        (True, True),
        (1, True),
        ("false", True),
        ("0", True),
        ([], True),
        ({}, True),
    ],
)
def test_conditions_use_github_truthiness(value: object, expected: bool):
    assert truthy(value) is expected
    assert evaluate_condition("inputs.v", {"inputs": {"v": value}}, deps=SUCCEEDED) is expected


def test_yaml_booleans_are_conditions_too():
    assert evaluate_condition(True, CONTEXT, deps=SUCCEEDED) is True  # type: ignore[arg-type]
    assert evaluate_condition(False, CONTEXT, deps=SUCCEEDED) is False  # type: ignore[arg-type]


def test_a_condition_mixing_an_expression_with_text_is_refused():
    with pytest.raises(ExpressionError) as caught:
        check_condition("${{ inputs.count }} == 3")

    assert "a condition must be one expression" in caught.value.message


def test_the_compiler_can_check_a_bare_condition_and_find_its_steps():
    text = condition_expression("steps.report.outputs.rows > 0")

    assert text == "${{ steps.report.outputs.rows > 0 }}"
    assert referenced_steps(text) == {"report"}
    with pytest.raises(ExpressionError):
        check_condition("steps.report.outputs.rows >")


def test_uses_status_function_detects_the_four_functions():
    assert uses_status_function("${{ always() }}")
    assert uses_status_function("!cancelled() && inputs.x")
    assert uses_status_function(None)  # no condition means success()
    assert not uses_status_function("inputs.always")
    assert not uses_status_function("${{ steps.failure.outputs.x }}")


def test_dependency_state_from_statuses():
    state = DependencyState.from_statuses(["succeeded", "skipped"])

    assert state == DependencyState(any_skipped=True)
    assert DependencyState.from_statuses(["failed"]).failure
    assert DependencyState.from_statuses([], run_cancelled=True).cancelled


# ---------------------------------------------------------------- masking secrets


def test_secrets_are_masked_in_text():
    text = "curl -H 'Authorization: s3cr3t-value' https://x"

    assert mask_secrets(text, ["s3cr3t-value"]) == "curl -H 'Authorization: ***' https://x"


def test_short_and_empty_secrets_are_not_masked():
    assert mask_secrets("a 1 ab", ["", "1", "ab"]) == "a 1 ab"


def test_a_secret_containing_another_is_masked_whole():
    assert mask_secrets("key=abcdef", ["abc", "abcdef"]) == "key=***"


def test_each_line_of_a_multiline_secret_and_its_json_form_are_masked():
    secret = 'line-one\nline-"two"'

    assert mask_secrets("got line-one", [secret]) == "got ***"
    assert mask_secrets('{"k": "line-one\\nline-\\"two\\""}', [secret]) == '{"k": "***"}'


def test_secrets_are_masked_in_nested_outputs():
    outputs = {"token": "s3cr3t-value", "list": ["x s3cr3t-value"], "n": 3}

    assert mask_secrets_in(outputs, ["s3cr3t-value"]) == {"token": "***", "list": ["x ***"], "n": 3}
