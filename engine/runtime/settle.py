"""The end of a run's main graph and of the run, decided after the completions commit.

Completions never touch the run's row: a completion of a top-level step commits, then asks
``settle(run_id)`` whether anything is left, with one read of a small partial index
(``steprun_run_open``: the unfinished top-level steps). Only when nothing is left in the main
graph (or in the whole run) does it take the run's lock and, in a transaction, lift the
barrier the finally steps wait behind (``main_left`` 1 -> 0, once) and/or finish the run
(conditional on the run still being active, once).

Why no end is missed: every completion of a top-level step checks *after its own commit*
(``Work.settle`` registers the check with ``transaction.on_commit``; the one-statement fast
path calls it after its autocommit). Take the last completion to commit, L. Every other
completion committed before L did, so the statement L runs after its commit sees every
top-level step finished, and L settles the run. Two completions may both see "nothing left";
the run's lock plus the re-check under it (``main_left`` still 1, the run still active) make
the second one a no-op, so the end-of-graph logic runs once. A settle transaction that itself
finishes steps (a skipped finally step) settles again after its own commit.
"""

from __future__ import annotations

from django.db import transaction

from engine.models import RunStatus, StepStatus

_OPEN = ", ".join(f"'{s}'" for s in StepStatus.active())
_ACTIVE_RUN = ", ".join(f"'{s}'" for s in (RunStatus.QUEUED, RunStatus.RUNNING))
# Each probe reads the partial index steprun_run_open (run, is_finally, id) backwards: steps
# that finish last (dependents, finally steps: higher ids) come first, so the probe stops at
# once instead of stepping over the entries of the many steps that already finished.
_PROBE = (
    "(SELECT 1 FROM engine_steprun s WHERE s.run_id = r.id{main} "
    f'AND s."index" IS NULL AND s.status IN ({_OPEN}) '
    "ORDER BY s.is_finally DESC, s.id DESC LIMIT 1) IS NOT NULL"
)
_LEFT = (
    "SELECT r.main_left, "
    + _PROBE.format(main=" AND s.is_finally = false")
    + ", "
    + _PROBE.format(main="")
    + f" FROM engine_run r WHERE r.id = %s AND r.status IN ({_ACTIVE_RUN})"
)


def due(run_id: int) -> bool:
    """Whether an active run's main graph ended with the barrier still up, or nothing at all
    is left: one read, no lock. False for a run that is no longer active."""
    from engine.runtime.sql import hot

    with hot(_LEFT, [run_id]) as cursor:
        row = cursor.fetchone()
    if row is None:
        return False
    barrier_up, main_open, any_open = row
    return (bool(barrier_up) and not main_open) or not any_open


def settle(run_id: int, *, skip_locked: bool = False) -> bool:
    """After a completion committed: end the main graph and/or the run if nothing is left.
    Call outside any transaction (``transaction.on_commit``). True if it took the run's lock
    to do so (``skip_locked``: not if another transaction holds it — the reconciler)."""
    if not due(run_id):
        return False
    from engine.runtime.advance import Advance
    from engine.runtime.dispatch import Work
    from engine.runtime.sql import lock_run

    with transaction.atomic():
        run = lock_run(run_id, skip_locked=skip_locked)
        if run is None or run.is_finished:
            return False
        work = Work()
        advance = Advance(run, work)
        advance.settle()
        advance.save()
        work.commit()
    return True


def settle_all(run_ids: list[int]) -> None:
    for run_id in run_ids:
        settle(run_id)
