"""Build the Plan of a workflow that passed every check.

Defaults: a step's `retry` is merged key by key over `defaults.retry`; its `timeout` and
`runs_on` replace the defaults'. The time limit of the step's actor is its timeout when it has
one, else the action's own. Environment variables and labels become text (``true``, ``8080``).
"""

from __future__ import annotations

from typing import Any

from engine.actions.registry import ActionRegistry
from engine.dsl.durations import DurationError, parse_duration
from engine.dsl.expressions import condition_source
from engine.dsl.inputs import input_spec
from engine.dsl.loader import Document
from engine.dsl.plan import (
    Concurrency,
    Plan,
    RetryPolicy,
    RunsOn,
    Schedule,
    StepPlan,
    Triggers,
)

SECTIONS = ("steps", "finally")


def mapping_of(value: Any) -> dict[str, Any]:
    """``value`` if it is a mapping, else an empty one (for data the schema may have refused)."""
    return value if isinstance(value, dict) else {}


def seconds_of(value: Any) -> float | None:
    """A duration in seconds; None when absent or not a duration (the schema reports that)."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except DurationError:
        return None


def _text(value: Any) -> str:
    """A scalar as environment variables and labels hold it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_plan(
    document: Document, registry: ActionRegistry, needs: dict[tuple[str, str], list[str]]
) -> Plan:
    """The Plan of a checked document; ``needs`` maps (section, step id) to its dependencies."""
    data = document.data
    on = mapping_of(data.get("on"))
    webhook = on.get("webhook", False)
    concurrency = data.get("concurrency")
    sections = {name: mapping_of(data.get(name)) for name in SECTIONS}

    def step_plans(section: str) -> dict[str, StepPlan]:
        return {
            step_id: _step_plan(document, registry, section, step_id, needs)
            for step_id in sections[section]
        }

    return Plan(
        name=data["name"],
        description=data.get("description", "") or "",
        labels={k: _text(v) for k, v in mapping_of(data.get("labels")).items()},
        inputs={
            name: input_spec(name, declaration)
            for name, declaration in mapping_of(data.get("inputs")).items()
        },
        env={k: _text(v) for k, v in mapping_of(data.get("env")).items()},
        triggers=Triggers(
            schedules=tuple(
                Schedule(
                    cron=s["cron"].strip(),
                    timezone=s.get("timezone", "UTC"),
                    inputs=dict(s.get("inputs") or {}),
                )
                for s in on.get("schedule", ())
            ),
            webhook=bool(webhook),
            webhook_secret=webhook.get("secret") if isinstance(webhook, dict) else None,
        ),
        concurrency=(
            Concurrency(
                limit=concurrency.get("limit", 1), on_limit=concurrency.get("on_limit", "queue")
            )
            if isinstance(concurrency, dict)
            else None
        ),
        timeout=seconds_of(data.get("timeout")),
        steps=step_plans("steps"),
        finally_steps=step_plans("finally"),
        outputs=dict(mapping_of(data.get("outputs"))),
    )


def _step_plan(
    document: Document,
    registry: ActionRegistry,
    section: str,
    step_id: str,
    needs: dict[tuple[str, str], list[str]],
) -> StepPlan:
    step = document.data[section][step_id]
    defaults = mapping_of(document.data.get("defaults"))
    action = registry.get(step["uses"])
    timeout = seconds_of(step.get("timeout", defaults.get("timeout")))
    retry = {**mapping_of(defaults.get("retry")), **mapping_of(step.get("retry"))}
    runs_on = step.get("runs_on", defaults.get("runs_on"))
    return StepPlan(
        id=step_id,
        uses=action.name,
        actor=action.actor,
        queue=action.queue,
        time_limit_ms=round(timeout * 1000) if timeout else action.time_limit_ms,
        with_=dict(step.get("with") or {}),
        needs=tuple(sorted(needs.get((section, step_id), ()))),
        if_=condition_source(step["if"]).strip() if "if" in step else None,
        for_each=step.get("for_each"),
        matrix=step.get("matrix"),
        max_parallel=step.get("max_parallel"),
        runs_on=(
            RunsOn(device=runs_on.get("device"), labels=tuple(runs_on.get("labels", ())))
            if isinstance(runs_on, dict)
            else None
        ),
        retry=RetryPolicy(
            max_attempts=retry.get("max_attempts", 1),
            delay=seconds_of(retry.get("delay")) or 0.0,
            backoff=retry.get("backoff", "constant"),
            max_delay=seconds_of(retry.get("max_delay")),
            jitter=retry.get("jitter", False),
        ),
        timeout=timeout,
        continue_on_error=step.get("continue_on_error", False),
        outputs=step.get("outputs"),
        env={k: _text(v) for k, v in mapping_of(step.get("env")).items()},
        is_finally=section == "finally",
        description=step.get("description", "") or "",
        name=step.get("name", "") or "",
        line=document.key_position((section, step_id))[0],
    )
