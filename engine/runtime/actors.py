"""The Dramatiq actors: one per action (a small fixed set), plus two for timers.

Thin and idempotent: they take ids and call one runtime function. Messages carry
``(step_run_id, attempt)``; the plan names each step's actor, queue and time limit. Discovered
by ``rundramatiq`` through DRAMATIQ_AUTODISCOVER_MODULES = ["runtime.actors"].
No Retries middleware: retries are the engine's, counted in the database.
"""

from __future__ import annotations

import dramatiq

from engine.actions.attach import attach_builtin_funcs
from engine.actions.registry import Action, registry
from engine.runtime.advance import RESUME_ACTOR
from engine.runtime.dispatch import RUN_TIMEOUT_ACTOR
from engine.runtime.workers import install_heartbeats

SYSTEM_QUEUE = "flowyard.default"


def _step_actor(action: Action) -> dramatiq.Actor:
    def run_step(step_run_id: int, attempt: int) -> None:
        from engine.runtime.execute import step_execute

        step_execute(step_run_id=step_run_id, attempt=attempt)

    run_step.__name__ = run_step.__qualname__ = action.actor
    return dramatiq.actor(
        run_step,
        actor_name=action.actor,
        queue_name=action.queue,
        time_limit=action.time_limit_ms,
    )


@dramatiq.actor(actor_name=RESUME_ACTOR, queue_name=SYSTEM_QUEUE)
def step_resume_actor(step_run_id: int, attempt: int) -> None:
    """A waiting step's timer fired (sleep over, approval timeout) or its child run ended."""
    from engine.runtime.waits import step_resume

    step_resume(step_run_id=step_run_id, attempt=attempt)


@dramatiq.actor(actor_name=RUN_TIMEOUT_ACTOR, queue_name=SYSTEM_QUEUE)
def run_timeout_actor(run_id: int) -> None:
    """The run's `timeout` passed: end it as failed if it is still going."""
    from engine.runtime.timeouts import run_timeout

    run_timeout(run_id=run_id)


def declare_step_actors() -> dict[str, dramatiq.Actor]:
    """An actor for every registered action (plugins included); safe to call again."""
    broker = dramatiq.get_broker()
    actors = {}
    for action in registry:
        if action.actor in broker.actors:
            actors[action.actor] = broker.get_actor(action.actor)
        else:
            actors[action.actor] = _step_actor(action)
    return actors


attach_builtin_funcs(registry)
STEP_ACTORS = declare_step_actors()
install_heartbeats(dramatiq.get_broker())
