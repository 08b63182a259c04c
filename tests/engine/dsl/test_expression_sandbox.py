"""The expression sandbox: template-injection payloads and resource bombs fail, clearly and fast."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.dsl.expressions import Limits, check_syntax, evaluate
from engine.errors import ExpressionError

CONTEXT = {
    "inputs": {"day": "2024-05-01", "n": 3, "big": "x" * 700_000},
    "steps": {"build": {"outputs": {"url": "https://example.org"}, "status": "succeeded"}},
    "secrets": {"TOKEN": "s3cr3t-value"},
}


def refusal(source: str, context: dict[str, object] | None = None, **limits: float) -> str:
    """The message of the ExpressionError that evaluating ``${{ source }}`` raises, quickly."""
    started = time.perf_counter()
    with pytest.raises(ExpressionError) as caught:
        evaluate(
            f"${{{{ {source} }}}}", CONTEXT if context is None else context, limits=Limits(**limits)
        )
    # Exactly our error, not a Jinja SecurityError/UndefinedError or a Python error leaking out.
    assert type(caught.value) is ExpressionError
    # Refused before the work was done, not after grinding through it.
    assert time.perf_counter() - started < 1.5
    return caught.value.message


# ---------------------------------------------------------------- Python internals


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("''.__class__.__mro__[1].__subclasses__()", "names starting with '_' are private"),
        ("inputs.__globals__", "names starting with '_' are private"),
        ("cycler.__init__.__globals__.os", "names starting with '_' are private"),
        ("joiner()", "unknown name 'joiner'"),
        ("lipsum.__globals__", "names starting with '_' are private"),
        ("lipsum()", "unknown name 'lipsum'"),
        ("namespace(a=1)", "unknown name 'namespace'"),
        ("dict(a=1)", "unknown name 'dict'"),
        ("self._TemplateReference__context", "unknown name 'self'"),
        ("self", "unknown name 'self'"),
        ("config.__class__", "names starting with '_' are private"),
        ("config.items()", "unknown name 'config'"),
        ("request.application", "unknown name 'request'"),
        ("range.__self__", "names starting with '_' are private"),
        ("().__class__.__base__", "names starting with '_' are private"),
        ("now().__class__", "names starting with '_' are private"),
    ],
)
def test_python_internals_are_refused_before_anything_runs(payload: str, reason: str):
    with pytest.raises(ExpressionError) as caught:
        check_syntax(f"${{{{ {payload} }}}}")

    assert reason in caught.value.message
    assert reason in refusal(payload)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("'{0.__class__}'.format(1)", "'__class__' is not accessible"),
        ("'{0.__class__.__mro__}'.format(inputs)", "'__class__' is not accessible"),
        ("'{0[__class__]}'.format(inputs)", "'inputs' has no key '__class__'"),
        ("inputs | attr('__class__')", "'__class__' is not accessible"),
        ("inputs.day | attr('__class__')", "'__class__' is not accessible"),
        ("inputs._private", "'_private' is not accessible"),
        ("inputs.day['_x']", "'_x' is not accessible"),
        ("(inputs.day | attr('center'))(10)", "'center' of a string is not available"),
        ("range(3).items", "is not available in expressions"),
        ("(1).to_bytes(8, 'big')", "'to_bytes' of a number is not available"),
        ("inputs.day.encode()", "'encode' of a string is not available"),
        ("now().tzinfo", "'tzinfo' of a datetime is not available"),
        ("inputs.items().mapping", "is not available in expressions"),
        ("(inputs.keys() | list).append(1)", "'append' of an array is not available"),
        ("now", "a function is not a value"),
        ("inputs.day.upper", "a function is not a value"),
    ],
)
def test_attributes_of_python_objects_are_refused_while_running(payload: str, reason: str):
    assert reason in refusal(payload)


def test_keys_that_look_private_are_still_data():
    context = {"inputs": {"__class__": "just data", "_id": 7}}

    assert evaluate("${{ inputs['__class__'] }} ${{ inputs['_id'] }}", context) == "just data 7"
    assert evaluate("${{ inputs._id }}", context) == 7


# ---------------------------------------------------------------- size and time


@pytest.mark.parametrize(
    ("bomb", "reason"),
    [
        ("range(10**9)", "range() of 1000000000 items is over the limit of 10000"),
        ("range(10001) | list", "over the limit of 10000"),
        (
            "'x' * 10**9",
            "repeating a string 1000000000 times would be 954 MiB, over the limit of 1 MiB",
        ),
        ("[1] * 10**8", "repeating an array 100000000 times"),
        ("[[1] * 1000] * 1000", "over the limit of 1 MiB"),
        ("[inputs.big] * 2", "over the limit of 1 MiB"),
        ("[range(10000)] * 20", "over the limit of 1 MiB"),
        ("[1, 2, 3] | join(inputs.big)", "over the limit of 1 MiB"),
        ("inputs.big * 2", "over the limit of 1 MiB"),
        ("inputs.big + inputs.big", "over the limit of 1 MiB"),
        ("inputs.big ~ inputs.big", "over the limit of 1 MiB"),
        ("inputs.big | replace('x', 'xy')", "over the limit of 1 MiB"),
        ("inputs.big.replace('x', 'xy')", "over the limit of 1 MiB"),
        ("'-'.join([inputs.big, inputs.big])", "over the limit of 1 MiB"),
        ("[inputs.big, inputs.big] | join", "over the limit of 1 MiB"),
        ("format('{0}{0}', inputs.big)", "over the limit of 1 MiB"),
        ("'{0}{0}'.format(inputs.big)", "over the limit of 1 MiB"),
        ("'%s%s' % (inputs.big, inputs.big)", "over the limit of 1 MiB"),
        ("2 ** 100000", "is too large (the limit is 4096-bit integers)"),
        ("'{:>999999999}'.format(1)", "width 999999999 is over the limit of 10000"),
        ("'{:{w}}'.format(1, w=999999999)", "a replacement field inside a format spec"),
        ("'%999999999d' % 1", "width 999999999 is over the limit of 10000"),
        ("'%*d' % (999999999, 1)", "a '*' width is not supported"),
        ("'%s' | format(inputs.big ~ inputs.big)", "over the limit of 1 MiB"),
        ("now().strftime('%999999999Y')", "width 999999999 is over the limit of 100"),
        ("[1, 2] | sum(start=[])", "sum adds numbers"),
        ("('ü' * 300000) | urlencode", "over the limit of 1 MiB"),
        ("inputs.big | list | string", "over the size limit of 1 MiB"),
        ("'x'.center(10**9)", "'center' of a string is not available"),
        ("'x' | center(10**9)", "unknown filter 'center'"),
        ("[1] | batch(10**9, 0) | list", "unknown filter 'batch'"),
        ("fromjson('[' * 3000 + ']' * 3000)", "nested too deeply"),
    ],
)
def test_resource_bombs_are_refused_before_they_run(bomb: str, reason: str):
    assert reason in refusal(bomb)


def test_a_huge_result_is_refused_naming_the_limit():
    context = {"inputs": {"big": "x" * 2_000_000, "rows": list(range(300_000))}}

    assert "over the size limit of 1 MiB" in refusal("inputs.big", context)
    assert "over the size limit of 1 MiB" in refusal("inputs.rows", context)
    assert "over the size limit of 1 MiB" in refusal("inputs.rows | tojson", context)
    with pytest.raises(ExpressionError) as caught:
        evaluate("${{ inputs.big[:600000] }}${{ inputs.big[:600000] }}", context)
    assert "rendered text is over the size limit" in caught.value.message


def test_deeply_nested_data_is_refused():
    nested: list[object] = []
    for _ in range(200):
        nested = [nested]

    assert "nested deeper than 64 levels" in refusal("inputs.deep", {"inputs": {"deep": nested}})


def test_all_the_text_one_evaluation_creates_is_bounded():
    # Each piece is under the 1 MiB limit, but together they pass the 16 MiB budget.
    pieces = " ~ ".join(["('x' * 1000000)"] * 20)

    assert "created more than 16 MiB of text" in refusal(f"({pieces}) | length")


def test_a_slow_evaluation_stops_at_the_deadline():
    slow = "range(10000) | map('string') | map('int') | map('string') | sort | unique | list"
    started = time.perf_counter()

    message = refusal(f"{slow} | length", max_seconds=0.01)

    assert "took longer than the limit of 0.01 s" in message
    assert time.perf_counter() - started < 0.5


def test_one_deadline_covers_every_expression_in_a_value():
    slow = "${{ range(10000) | map('string') | map('int') | list | length }}"

    with pytest.raises(ExpressionError) as caught:
        evaluate([slow] * 200, {}, limits=Limits(max_seconds=0.05))

    assert "took longer than the limit" in caught.value.message


def test_limits_can_be_raised_for_a_workflow_that_needs_them():
    assert evaluate("${{ range(20000) | list | length }}", {}, limits=Limits(max_range=20_000)) == (
        20_000
    )


# ------------------------------------------------- anything in: data or ExpressionError out

_PIECES = st.sampled_from(
    [
        "inputs", "steps", ".build", ".outputs", "['url']", ".__class__", "()", "(1)", "|list",
        "|length", "|attr('x')", " ~ ", " * ", " ** ", " + ", " % ", "'%s'", "'{0}'", ".format",
        "9", "10**9", "range", "[", "]", "{", "}", ",", "none", "'x'", "now()", ".year", "!",
        " && ", " || ", "|map('string')", "|join", "|tojson", "fromjson", "|default(1)",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=8).map("".join))
def test_any_expression_gives_json_data_or_raises_expression_error(source: str):
    try:
        result = evaluate(f"${{{{ {source} }}}}", CONTEXT)
    except ExpressionError:
        return
    json.dumps(result)  # results are always plain JSON-compatible data
