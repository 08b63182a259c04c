"""A unit of work: the transitions and messages one transaction produces.

Messages leave only after the transaction commits (``transaction.on_commit``), so a worker can
never see a message for a row it cannot read yet, and a rolled-back decision sends nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dramatiq
from django.db import transaction
from django.utils import timezone

from engine.dsl.plan import StepPlan
from engine.runtime.hooks import Transition, hooks

logger = logging.getLogger("flowyard.runtime")

# Extra time the broker's TimeLimit gives an attempt beyond the step's own timeout, so the
# shell action (which kills its process itself, cleanly) normally wins the race.
TIME_LIMIT_GRACE_MS = 5_000
RUN_TIMEOUT_ACTOR = "flowyard_run_timeout"


@dataclass(frozen=True)
class Outgoing:
    actor: str
    queue: str | None
    args: tuple[Any, ...]
    delay_ms: int | None = None
    time_limit_ms: int | None = None


class Work:
    """Collects transitions and outgoing messages; ``commit()`` flushes them (inside atomic)."""

    def __init__(self) -> None:
        self.now: datetime = timezone.now()
        self.events: list[Transition] = []
        self.outgoing: list[Outgoing] = []
        self.after: list[Any] = []
        self.settling: set[int] = set()

    def event(
        self,
        run_id: int,
        kind: str,
        *,
        step_id: int | None = None,
        attempt: int | None = None,
        message: str = "",
        data: dict[str, Any] | None = None,
        at: datetime | None = None,
        stored: bool = False,
    ) -> None:
        self.events.append(
            Transition(
                run_id=run_id,
                kind=kind,
                at=at or self.now,
                step_id=step_id,
                attempt=attempt,
                message=message,
                data=data,
                stored=stored,
            )
        )

    def send_step(
        self, step_run_id: int, attempt: int, step: StepPlan, *, delay: float | None = None
    ) -> None:
        """Queue the message that runs (or resumes) ``attempt`` of a step, ``delay`` seconds on."""
        if step.timeout:
            time_limit = int(step.timeout * 1000) + TIME_LIMIT_GRACE_MS
        else:
            time_limit = step.time_limit_ms or None
        self.outgoing.append(
            Outgoing(
                actor=step.actor,
                queue=step.queue,
                args=(step_run_id, attempt),
                delay_ms=int(delay * 1000) if delay and delay > 0 else None,
                time_limit_ms=time_limit,
            )
        )

    def send(self, actor: str, *args: Any, delay: float | None = None) -> None:
        self.outgoing.append(
            Outgoing(
                actor=actor,
                queue=None,
                args=args,
                delay_ms=int(delay * 1000) if delay and delay > 0 else None,
            )
        )

    def settle(self, run_id: int) -> None:
        """A top-level step of the run ended: after the commit, check whether the main graph
        or the run ended (``engine.runtime.settle``)."""
        self.settling.add(run_id)

    def on_commit(self, func: Any) -> None:
        """Run ``func()`` after the commit, after the messages were sent."""
        self.after.append(func)

    def commit(self) -> None:
        """Write the transitions now and send the messages once the transaction commits."""
        hooks.transitions(self.events)
        self.events = []
        outgoing, after, settling = self.outgoing, self.after, sorted(self.settling)
        self.outgoing, self.after, self.settling = [], [], set()
        if outgoing:
            transaction.on_commit(lambda: send_messages(outgoing))
        for func in after:
            transaction.on_commit(func)
        if settling:
            from engine.runtime.settle import settle_all

            transaction.on_commit(lambda: settle_all(settling))


def send_messages(messages: list[Outgoing]) -> None:
    """Enqueue messages on the configured broker. Sending is best effort: the reconciler
    re-sends what a broker outage lost, so one failure must not stop the others."""
    import engine.runtime.actors  # noqa: F401  (declares the actors on the broker)

    broker = dramatiq.get_broker()
    for out in messages:
        try:
            actor = broker.get_actor(out.actor)
            options: dict[str, Any] = {}
            if out.time_limit_ms:
                options["time_limit"] = out.time_limit_ms
            message = actor.message_with_options(args=out.args, **options)
            if out.queue and out.queue != actor.queue_name:
                broker.declare_queue(out.queue)
                message = message.copy(queue_name=out.queue)
            broker.enqueue(message, delay=out.delay_ms)
        except Exception:
            logger.exception("could not send %s%r; the reconciler will retry", out.actor, out.args)
