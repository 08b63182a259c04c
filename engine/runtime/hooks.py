"""Cross-cutting runtime behaviour as small hook objects with no-op defaults.

The runtime calls every installed hook at a few points; a hook overrides the ones it cares
about. The audit trail (RunEvent rows) and timing are hooks; metrics exporters can be too.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

logger = logging.getLogger("flowyard.runtime")


@dataclass(frozen=True)
class Transition:
    """One state change of a run or a step, as the audit trail records it."""

    run_id: int
    kind: str  # an EventKind value
    at: datetime
    step_id: int | None = None
    attempt: int | None = None
    message: str = ""
    data: dict[str, Any] | None = None
    stored: bool = False  # already written by the statement that made the change (fastpath)


class RuntimeHook:
    """Base class: every method is a no-op. Hooks must be cheap and must not raise."""

    def transitions(self, events: list[Transition]) -> None:
        """Called inside the transaction that made the changes, once per unit of work."""

    def step_started(self, *, step_run_id: int, attempt: int, worker: str) -> None:
        """Called by the worker after it claimed an attempt."""

    def step_finished(self, *, step_run_id: int, attempt: int, status: str, seconds: float) -> None:
        """Called by the worker after the attempt's outcome was committed."""


class AuditHook(RuntimeHook):
    """Writes every transition as a RunEvent, in one INSERT per unit of work."""

    def transitions(self, events: list[Transition]) -> None:
        from engine.models import RunEvent
        from engine.runtime.sql import insert_rows

        events = [e for e in events if not e.stored]
        for start in range(0, len(events), 2000):
            insert_rows(
                RunEvent,
                [
                    {
                        "run_id": e.run_id,
                        "step_id": e.step_id,
                        "kind": e.kind,
                        "attempt": e.attempt,
                        "message": e.message,
                        "data": e.data,
                        "created_at": e.at,
                    }
                    for e in events[start : start + 2000]
                ],
            )


class TimingHook(RuntimeHook):
    """Counts finished attempts by status and logs their duration at DEBUG level."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def step_finished(self, *, step_run_id: int, attempt: int, status: str, seconds: float) -> None:
        with self._lock:
            self.counts[status] += 1
        logger.debug("step %s attempt %s %s in %.3fs", step_run_id, attempt, status, seconds)


class Hooks:
    """The installed hooks, called in order."""

    def __init__(self, hooks: list[RuntimeHook]) -> None:
        self.hooks = list(hooks)

    def install(self, hook: RuntimeHook) -> None:
        self.hooks.append(hook)

    def remove(self, hook: RuntimeHook) -> None:
        self.hooks.remove(hook)

    def transitions(self, events: list[Transition]) -> None:
        if events:
            for hook in self.hooks:
                hook.transitions(events)

    def step_started(self, **kwargs: Any) -> None:
        for hook in self.hooks:
            hook.step_started(**kwargs)

    def step_finished(self, **kwargs: Any) -> None:
        for hook in self.hooks:
            hook.step_finished(**kwargs)


hooks = Hooks([AuditHook(), TimingHook()])
