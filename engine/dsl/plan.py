"""The compiled form of a workflow: what the runtime executes.

A Plan is plain data (frozen dataclasses) and round-trips through JSON, so a WorkflowVersion
can store it and a run never has to re-read YAML.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Backoff = Literal["constant", "exponential"]
OnLimit = Literal["queue", "cancel_running", "skip"]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 1
    delay: float = 0.0  # seconds before the second attempt
    backoff: Backoff = "constant"
    max_delay: float | None = None  # seconds; caps exponential growth
    jitter: bool = False  # when true, each delay is drawn uniformly from [delay/2, delay]

    def delay_after(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait after attempt number ``attempt`` (1-based) failed."""
        delay = self.delay
        if self.backoff == "exponential":
            delay = self.delay * (2 ** (attempt - 1))
        if self.max_delay is not None:
            delay = min(delay, self.max_delay)
        if self.jitter and delay > 0:
            delay = (rng or random).uniform(delay / 2, delay)
        return delay


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str  # string | number | integer | boolean | object | array
    schema: dict[str, Any]  # the JSON Schema of this input, as declared (type, format, enum …)
    required: bool = True  # false when a default is given or `required: false`
    default: Any = None
    description: str = ""


@dataclass(frozen=True)
class RunsOn:
    device: str | None = None  # a device name, possibly an expression (`${{ item.name }}`)
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepPlan:
    id: str
    uses: str
    actor: str  # the Dramatiq actor that executes it
    queue: str
    time_limit_ms: int
    with_: dict[str, Any] = field(default_factory=dict)  # raw: expressions still unevaluated
    needs: tuple[str, ...] = ()  # explicit `needs` plus every `steps.<id>` referenced, sorted
    if_: str | None = None  # the condition's expression source, None = success()
    for_each: Any = None  # a list, or an expression string that yields one
    matrix: dict[str, Any] | None = None  # name -> list (or expression)
    max_parallel: int | None = None
    runs_on: RunsOn | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None  # seconds, per attempt
    continue_on_error: bool = False
    outputs: dict[str, Any] | None = None  # expressions over `result`; None = the action's result
    env: dict[str, str] = field(default_factory=dict)
    is_finally: bool = False
    description: str = ""
    line: int = 0  # where the step is declared, for messages
    name: str = ""  # a display name, when the workflow gives one

    @property
    def fans_out(self) -> bool:
        return self.for_each is not None or self.matrix is not None


@dataclass(frozen=True)
class Schedule:
    cron: str
    timezone: str = "UTC"
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Triggers:
    schedules: tuple[Schedule, ...] = ()
    webhook: bool = False
    webhook_secret: str | None = None  # name of the secret whose value signs webhook calls


@dataclass(frozen=True)
class Concurrency:
    limit: int = 1
    on_limit: OnLimit = "queue"


@dataclass(frozen=True)
class Plan:
    name: str
    steps: dict[str, StepPlan]  # in file order
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    triggers: Triggers = field(default_factory=Triggers)
    concurrency: Concurrency | None = None
    timeout: float | None = None  # seconds, whole run
    finally_steps: dict[str, StepPlan] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        def step(d: dict[str, Any]) -> StepPlan:
            d = dict(d)
            d["needs"] = tuple(d.get("needs", ()))
            d["retry"] = RetryPolicy(**d.get("retry", {}))
            if d.get("runs_on") is not None:
                ro = d["runs_on"]
                d["runs_on"] = RunsOn(device=ro.get("device"), labels=tuple(ro.get("labels", ())))
            return StepPlan(**d)

        data = dict(data)
        triggers = data.get("triggers") or {}
        return cls(
            name=data["name"],
            description=data.get("description", ""),
            labels=data.get("labels", {}),
            inputs={k: InputSpec(**v) for k, v in data.get("inputs", {}).items()},
            env=data.get("env", {}),
            triggers=Triggers(
                schedules=tuple(Schedule(**s) for s in triggers.get("schedules", ())),
                webhook=triggers.get("webhook", False),
                webhook_secret=triggers.get("webhook_secret"),
            ),
            concurrency=Concurrency(**data["concurrency"]) if data.get("concurrency") else None,
            timeout=data.get("timeout"),
            steps={k: step(v) for k, v in data["steps"].items()},
            finally_steps={k: step(v) for k, v in data.get("finally_steps", {}).items()},
            outputs=data.get("outputs", {}),
        )
