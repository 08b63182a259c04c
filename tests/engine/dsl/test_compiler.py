"""Compiling workflows: the Plan a valid file gives, and every problem of an invalid one."""

from __future__ import annotations

import json
import textwrap

import pytest

from engine.dsl import compile_workflow, validate_workflow
from engine.dsl.plan import Plan, RetryPolicy, RunsOn, Schedule
from engine.dsl.schema import builtin_registry
from engine.errors import WorkflowInvalid
from tests.engine.dsl.registries import with_devices

BUILTINS = builtin_registry()

# The example of DESIGN.md, "The workflow language (v1)", as written there.
DESIGN_EXAMPLE = """\
# yaml-language-server: $schema=http://localhost:8000/api/schema/workflow.json
name: nightly-report              # required; slug: lower case, digits, - and _
description: Collect readings from every recorder and publish a report
labels: {team: acoustics}
inputs:                           # typed; validated before a run is created
  day:       {type: string, format: date}
  threshold: {type: number, default: 0.5, minimum: 0}
env: {REPORT_DIR: /tmp/reports}
on:                               # triggers (manual runs are always allowed)
  schedule:
    - cron: "0 3 * * *"
      timezone: Europe/London
      inputs: {threshold: 0.7}
  webhook: true
concurrency: {limit: 1, on_limit: queue}    # queue | cancel_running | skip
timeout: 2h                       # whole run
defaults: {retry: {max_attempts: 3, delay: 5s, backoff: exponential}, timeout: 10m}
steps:                            # required: mapping step-id -> step. A DAG, not a list.
  recorders:
    uses: devices.list
    with: {labels: [recorder]}
  collect:
    for_each: ${{ steps.recorders.outputs.devices }}   # fan-out; `item` and `index` in scope
    max_parallel: 4
    runs_on: {device: "${{ item.name }}"}              # or {labels: [gpu]}
    uses: shell
    with: {run: "collect --day ${{ inputs.day }}"}
    retry: {max_attempts: 5}
    timeout: 15m
    continue_on_error: true
  report:                         # needs [collect] is inferred from the reference below
    uses: python
    with:
      function: reports.build
      kwargs: {paths: "${{ steps.collect.outputs | map(attribute='path') | list }}"}
  approve:
    needs: [report]
    uses: approval
    with: {message: "Publish the report?", timeout: 1d}
  publish:
    needs: [approve]
    if: ${{ steps.report.outputs.rows > 0 }}
    uses: http
    with: {method: POST, url: "https://reports.example.org", json: "${{ steps.report.outputs }}"}
    outputs: {url: "${{ result.json.url }}"}
finally:                          # steps that run after the graph, whatever happened
  tidy: {uses: shell, with: {run: "rm -rf $REPORT_DIR"}}
outputs: {url: "${{ steps.publish.outputs.url }}"}
"""


DEVICES = with_devices()


def compile_text(text: str) -> Plan:
    return compile_workflow(textwrap.dedent(text), filename="w.yaml", registry=BUILTINS)


def problems(text: str) -> list[str]:
    return [
        str(p)
        for p in validate_workflow(textwrap.dedent(text), filename="w.yaml", registry=BUILTINS)
    ]


# ---------------------------------------------------------------- the Plan


def test_the_design_example_compiles_into_a_plan() -> None:
    plan = compile_workflow(DESIGN_EXAMPLE, filename="nightly.yaml", registry=DEVICES)

    assert list(plan.steps) == ["recorders", "collect", "report", "approve", "publish"]
    assert {k: s.needs for k, s in plan.steps.items()} == {
        "recorders": (),
        "collect": ("recorders",),
        "report": ("collect",),
        "approve": ("report",),
        "publish": ("approve", "report"),
    }
    collect = plan.steps["collect"]
    assert (collect.actor, collect.queue, collect.time_limit_ms) == (
        "flowyard_shell",
        "flowyard.default",
        15 * 60 * 1000,
    )
    assert collect.retry == RetryPolicy(max_attempts=5, delay=5.0, backoff="exponential")
    assert collect.for_each == "${{ steps.recorders.outputs.devices }}"
    assert collect.max_parallel == 4
    assert collect.runs_on == RunsOn(device="${{ item.name }}")
    assert collect.continue_on_error is True
    assert plan.steps["publish"].if_ == "steps.report.outputs.rows > 0"
    assert plan.steps["publish"].outputs == {"url": "${{ result.json.url }}"}
    assert plan.steps["recorders"].timeout == 600.0
    assert plan.steps["approve"].with_ == {"message": "Publish the report?", "timeout": "1d"}
    assert list(plan.finally_steps) == ["tidy"]
    assert plan.finally_steps["tidy"].is_finally is True
    assert plan.triggers.schedules == (
        Schedule(cron="0 3 * * *", timezone="Europe/London", inputs={"threshold": 0.7}),
    )
    assert plan.triggers.webhook is True
    assert plan.timeout == 7200.0
    assert plan.inputs["day"].required is True
    assert plan.inputs["threshold"].required is False
    assert plan.inputs["threshold"].schema == {"type": "number", "default": 0.5, "minimum": 0}
    assert plan.env == {"REPORT_DIR": "/tmp/reports"}
    assert plan.labels == {"team": "acoustics"}
    assert plan.outputs == {"url": "${{ steps.publish.outputs.url }}"}


def test_a_plan_round_trips_through_json() -> None:
    plan = compile_workflow(DESIGN_EXAMPLE, registry=DEVICES)

    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_the_design_example_needs_its_plugin_action() -> None:
    assert [str(p) for p in validate_workflow(DESIGN_EXAMPLE, registry=BUILTINS)] == [
        "workflow.yaml:20:11: steps.recorders.uses: unknown action 'devices.list'"
    ]


def test_a_step_without_a_timeout_gets_its_actions_time_limit() -> None:
    plan = compile_text(
        """\
        name: demo
        steps:
          call: {uses: http, with: {url: "https://example.org"}}
          wait: {uses: sleep, with: {duration: 1h}, timeout: 2h}
        """
    )

    assert plan.steps["call"].timeout is None
    assert plan.steps["call"].time_limit_ms == BUILTINS.get("http").time_limit_ms
    assert plan.steps["wait"].time_limit_ms == 2 * 3600 * 1000


def test_a_step_retry_is_merged_key_by_key_over_the_defaults() -> None:
    plan = compile_text(
        """\
        name: demo
        defaults:
          retry: {max_attempts: 3, delay: 5s, backoff: exponential, max_delay: 1m}
          runs_on: {labels: [linux]}
        steps:
          a: {uses: noop, retry: {max_attempts: 5, jitter: true}}
          b: {uses: noop, runs_on: {device: rec-01}}
        """
    )

    assert plan.steps["a"].retry == RetryPolicy(
        max_attempts=5, delay=5.0, backoff="exponential", max_delay=60.0, jitter=True
    )
    assert plan.steps["a"].runs_on == RunsOn(labels=("linux",))
    assert plan.steps["b"].runs_on == RunsOn(device="rec-01")


def test_dependencies_are_inferred_from_every_expression_of_a_step() -> None:
    plan = compile_text(
        """\
        name: demo
        steps:
          a: {uses: noop}
          b: {uses: noop}
          c: {uses: noop}
          d: {uses: noop}
          e: {uses: noop}
          f: {uses: noop}
          g:
            uses: noop
            needs: a
            with: {x: "${{ steps.b.outputs.x }}"}
            if: steps['c'].status == 'succeeded'
            for_each: ${{ steps.d.outputs.items }}
            env: {E: "${{ steps.e.outputs.e }}"}
            runs_on: {device: "${{ steps.f.outputs.name }}"}
            outputs: {y: "${{ result.y }}"}
        """
    )

    assert plan.steps["g"].needs == ("a", "b", "c", "d", "e", "f")
    assert plan.steps["g"].if_ == "steps['c'].status == 'succeeded'"


def test_conditions_may_be_written_without_braces_or_as_booleans() -> None:
    plan = compile_text(
        """\
        name: demo
        steps:
          a: {uses: noop, if: "inputs.go && !cancelled()"}
          b: {uses: noop, if: false}
          c: {uses: noop, if: "${{ always() }}"}
        """
    )

    assert [s.if_ for s in plan.steps.values()] == [
        "inputs.go && !cancelled()",
        "false",
        "always()",
    ]


def test_finally_steps_may_read_main_steps_but_only_depend_on_finally_steps() -> None:
    plan = compile_text(
        """\
        name: demo
        steps:
          build: {uses: noop}
        finally:
          report: {uses: noop, with: {status: "${{ steps.build.status }}"}}
          tidy: {uses: noop, needs: [report, build]}
        """
    )

    assert plan.finally_steps["report"].needs == ()
    assert plan.finally_steps["tidy"].needs == ("report",)


def test_environment_and_labels_become_text() -> None:
    plan = compile_text(
        """\
        name: demo
        labels: {tier: 1, public: false}
        env: {PORT: 8080, DEBUG: true}
        steps:
          a: {uses: noop, env: {RATIO: 0.5}}
        """
    )

    assert plan.labels == {"tier": "1", "public": "false"}
    assert plan.env == {"PORT": "8080", "DEBUG": "true"}
    assert plan.steps["a"].env == {"RATIO": "0.5"}


def test_a_valid_workflow_has_no_problems() -> None:
    assert validate_workflow(DESIGN_EXAMPLE, registry=DEVICES) == []


# ---------------------------------------------------------------- problems

SEVERAL_MISTAKES = """\
name: demo
inputs:
  threshold: {type: number, default: high}
on:
  schedule:
    - {cron: "0 25 * * *", timezone: Europe/Londn}
timeout: 1h
steps:
  fetch:
    uses: htp
    with: {url: "https://example.org"}
  build:
    neds: [fetch]
    uses: shell
    with: {run: "make ${{ steps.fecth.outputs.x }}"}
  test:
    uses: shell
    needs: [build, deploy]
    with: {run: "make test", timeout: 5m}
  deploy:
    uses: shell
    needs: test
    if: ${{ steps.test.outputs.ok == }}
    with: {run: deploy}
    retry: {max_attempts: 0, delay: 30m1h}
"""


def test_a_file_with_several_mistakes_reports_them_all_at_once_in_order() -> None:
    with pytest.raises(WorkflowInvalid) as raised:
        compile_workflow(SEVERAL_MISTAKES, filename="demo.yaml", registry=BUILTINS)

    assert str(raised.value).splitlines() == [
        "demo.yaml:3:38: inputs.threshold.default: the default does not match the input "
        "'threshold': expected a number, got string 'high'",
        "demo.yaml:6:14: on.schedule[0].cron: invalid cron '0 25 * * *': a field is out of "
        "range (minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-6)",
        "demo.yaml:6:38: on.schedule[0].timezone: unknown time zone 'Europe/Londn' "
        "(did you mean 'Europe/London'?)",
        "demo.yaml:10:11: steps.fetch.uses: unknown action 'htp' (did you mean 'http'?)",
        "demo.yaml:13:5: steps.build.neds: unknown key 'neds' (did you mean 'needs'?)",
        "demo.yaml:15:17: steps.build.with.run: unknown step 'fecth' in expression "
        "(did you mean 'fetch'?)",
        "demo.yaml:16:3: steps.test: dependency cycle: test → deploy → test",
        "demo.yaml:19:30: steps.test.with.timeout: unknown key 'timeout'",
        "demo.yaml:23:9: steps.deploy.if: expression does not parse: unexpected 'end of "
        'template\' in "${{ steps.test.outputs.ok == }}"',
        "demo.yaml:25:27: steps.deploy.retry.max_attempts: must be at least 1, got 0",
        "demo.yaml:25:37: steps.deploy.retry.delay: invalid duration '30m1h': give each unit "
        "once, largest first (e.g. 1h30m)",
    ]
    assert [p.line for p in raised.value.problems] == sorted(p.line for p in raised.value.problems)


def test_needs_naming_an_unknown_step_suggests_a_close_one() -> None:
    assert problems(
        """\
        name: demo
        steps:
          build: {uses: noop}
          test: {uses: noop, needs: [biuld, lint]}
        """
    ) == [
        "w.yaml:4:30: steps.test.needs[0]: unknown step 'biuld' in needs (did you mean 'build'?)",
        "w.yaml:4:37: steps.test.needs[1]: unknown step 'lint' in needs",
    ]


def test_a_step_that_depends_on_itself_is_reported() -> None:
    assert problems(
        """\
        name: demo
        steps:
          a: {uses: noop, needs: a}
          b: {uses: noop, with: {x: "${{ steps.b.outputs.x }}"}}
          c: {uses: noop, outputs: {x: "${{ steps.c.outputs.x }}"}}
        """
    ) == [
        "w.yaml:3:26: steps.a.needs: step 'a' depends on itself (needs it)",
        "w.yaml:4:29: steps.b.with.x: step 'b' depends on itself (an expression reads it)",
        "w.yaml:5:32: steps.c.outputs.x: a step's outputs read its own result as `result`",
    ]


def test_a_cycle_is_named_once_from_its_earliest_step() -> None:
    assert problems(
        """\
        name: demo
        steps:
          start: {uses: noop}
          a: {uses: noop, needs: [start, c]}
          b: {uses: noop, with: {x: "${{ steps.a.outputs }}"}}
          c: {uses: noop, if: "steps.b.status == 'succeeded'"}
        """
    ) == ["w.yaml:4:3: steps.a: dependency cycle: a → c → b → a"]


def test_a_long_chain_of_steps_is_fine() -> None:
    steps = "".join(f"  s{i}: {{uses: noop, needs: [s{i - 1}]}}\n" for i in range(1, 3000))

    plan = compile_text("name: chain\nsteps:\n  s0: {uses: noop}\n" + steps)

    assert plan.steps["s2999"].needs == ("s2998",)


def test_main_steps_cannot_depend_on_finally_steps_and_ids_are_unique() -> None:
    assert problems(
        """\
        name: demo
        steps:
          build: {uses: noop, needs: [tidy]}
          show: {uses: noop, with: {x: "${{ steps.tidy.outputs }}"}}
        finally:
          tidy: {uses: noop}
          build: {uses: noop}
        """
    ) == [
        "w.yaml:3:31: steps.build.needs[0]: 'tidy' is a finally step: it runs after every "
        "step, so steps cannot depend on it",
        "w.yaml:4:32: steps.show.with.x: 'tidy' is a finally step: it runs after every step, "
        "so steps cannot depend on it",
        "w.yaml:7:3: finally.build: the step id 'build' is already used in steps (line 3)",
    ]


def test_names_an_expression_reads_must_be_set_where_it_is() -> None:
    assert problems(
        """\
        name: demo
        env: {WHO: "${{ steps.a.outputs.who }}"}
        steps:
          a: {uses: noop, with: {x: "${{ item }}", y: "${{ matrix.size }}", z: "${{ result }}"}}
          b: {uses: noop, for_each: [1, 2], with: {x: "${{ item }} ${{ index }}"}}
          c: {uses: noop, matrix: {size: [s, m]}, with: {x: "${{ matrix.size }} ${{ item }}"}}
        outputs: {who: "${{ steps.zz.outputs.who }}"}
        """
    ) == [
        "w.yaml:2:12: env.WHO: the workflow's env is set before any step runs; it cannot "
        "read steps.a",
        "w.yaml:4:29: steps.a.with.x: 'item' is only set in a step with for_each or matrix",
        "w.yaml:4:47: steps.a.with.y: 'matrix' is only set in a step with a matrix",
        "w.yaml:4:72: steps.a.with.z: 'result' is only set in a step's outputs",
        "w.yaml:7:16: outputs.who: unknown step 'zz' in expression",
    ]


def test_fan_out_options_must_fit_together() -> None:
    assert problems(
        """\
        name: demo
        steps:
          a: {uses: noop, for_each: [1], matrix: {x: [1]}}
          b: {uses: noop, max_parallel: 2}
          c: {uses: noop, runs_on: {device: rec-01, labels: [gpu]}}
        """
    ) == [
        "w.yaml:3:34: steps.a.matrix: use for_each or matrix, not both",
        "w.yaml:4:19: steps.b.max_parallel: max_parallel only applies to a step with for_each "
        "or matrix",
        "w.yaml:5:28: steps.c.runs_on: runs_on takes a device or labels, not both",
    ]


def test_a_condition_mixing_text_and_an_expression_is_refused() -> None:
    [problem] = problems("name: demo\nsteps:\n  a: {uses: noop, if: '${{ inputs.x }} == 1'}\n")

    assert problem.startswith("w.yaml:3:23: steps.a.if: a condition must be one expression")


def test_inputs_and_schedules_are_checked_against_each_other() -> None:
    assert problems(
        """\
        name: demo
        inputs:
          size: {type: integer, minimum: 1, default: 0}
          code: {type: string, pattern: "[a-z"}
          mode: {enum: [fast, slow], default: medium}
        on:
          schedule:
            - cron: "@daily"
              inputs: {size: 2.5, mdoe: fast}
        steps:
          a: {uses: noop}
        """
    ) == [
        "w.yaml:3:46: inputs.size.default: the default does not match the input 'size': "
        "must be at least 1, got 0",
        "w.yaml:4:33: inputs.code.pattern: invalid pattern '[a-z': unterminated character set "
        "at position 0",
        "w.yaml:5:39: inputs.mode.default: the default does not match the input 'mode': "
        "expected one of 'fast', 'slow', got string 'medium'",
        "w.yaml:9:22: on.schedule[0].inputs.size: the value does not match the input 'size': "
        "expected an integer, got number 2.5",
        "w.yaml:9:27: on.schedule[0].inputs.mdoe: unknown input 'mdoe' (did you mean 'mode'?)",
    ]


def test_a_timeout_must_be_longer_than_zero() -> None:
    assert problems("name: demo\ntimeout: 0s\nsteps:\n  a: {uses: noop, timeout: 0}\n") == [
        "w.yaml:2:10: timeout: a timeout must be longer than 0",
        "w.yaml:4:28: steps.a.timeout: a timeout must be longer than 0",
    ]


def test_a_yaml_syntax_error_is_reported_alone() -> None:
    assert problems("name: demo\nsteps:\n  a: {uses: noop\n") == [
        "w.yaml:4:1: invalid YAML: did not find expected ',' or '}' "
        "(while parsing a flow mapping started at line 3)"
    ]
