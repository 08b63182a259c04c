"""The common completions as one statement each (PostgreSQL: data-modifying CTEs).

A plain step or an instance that ended for good (succeeded, failed without a retry left, or
skipped by its per-item `if`) is recorded by one ``WITH … UPDATE/INSERT …`` that records the
result (conditional on the step still being ours at this attempt), reads the run (still
active), writes the attempt row and the events, and:

- a top-level step: decrements its dependents' ``deps_left`` (counting a dependency that did
  not succeed in ``deps_blocked``); a plain dependent (no `if`, no fan-out) whose last
  dependency succeeded is queued by the same statement. The run's row is not written: after
  the commit, ``engine.runtime.settle`` checks whether the main graph or the run ended;
- an instance: counts it in its group and queues the next pending instance when the
  ``max_parallel`` window has room (it is always full: active = min(max_parallel, total - done)).

Alone (autocommit, the common case) the statement does not lock the run: completions of one
run no longer queue on its row. It locks the step, then the dependents in step id order (as
``sql.count_down`` does), or the group row. A run that ended meanwhile (cancel, timeout) is
handled by the claim, which refuses steps of a finished run, and by ``terminate.step_sweep``,
which cancels (with ``SKIP LOCKED``, never waiting while holding rows) what such a completion
queued in the race. When something needs Python (a dependent with an `if`, a group, the end of
a group) or the run has finished, the statement refuses (nothing written) and the completion
is redone in a transaction, where the same CTE locks the run (step, run, others: the slow
path's order) and ``Advance`` follows up under that lock.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DataError, connection

from engine.dsl.plan import StepPlan
from engine.models import EventKind, StepKind, StepRun, StepStatus
from engine.runtime import sql
from engine.runtime.dispatch import Work
from engine.runtime.plans import RunPlan

ACTIVE_RUN = "('queued', 'running')"

_HEAD = """
WITH s AS (
  UPDATE engine_steprun SET status = %(status)s, outputs = %(outputs)s::jsonb,
    error = %(error)s, skip_reason = %(skip)s, finished_at = %(now)s
  WHERE id = %(id)s AND status = 'running' AND attempt = %(attempt)s
  RETURNING id
)"""

_ATTEMPT_AND_EVENTS = """
a AS (
  INSERT INTO engine_stepattempt
    (step_id, number, status, error, worker, device, started_at, finished_at)
  SELECT %(id)s, %(attempt)s, %(attempt_status)s, %(error)s, %(worker)s, '', %(started)s, %(now)s
  FROM r
), e AS (
  INSERT INTO engine_runevent (run_id, step_id, kind, attempt, message, data, created_at)
  SELECT %(run)s, %(id)s, v.kind, %(attempt)s, v.message, v.data::jsonb, v.at
  FROM r, (VALUES ('step_started', '', %(started_data)s, %(started)s::timestamptz),
                  (%(kind)s, %(error)s, NULL, %(now)s::timestamptz)) AS v(kind, message, data, at)
  UNION ALL
  SELECT %(run)s, q.id, 'step_queued', q.attempt, '', NULL, %(now)s FROM {queued} AS q
)"""

# The run: alone, a plain read (no lock: see the module docstring); in a transaction, locked
# (``FOR NO KEY UPDATE``) after the step's row and before the others, as the slow path does.
_RUN = (
    """, r AS (
  SELECT id FROM engine_run WHERE id = %(run)s AND status IN """
    + ACTIVE_RUN
    + """ AND EXISTS (SELECT FROM s){lock}
)"""
)
_RUN_SQL = {True: _RUN.format(lock=""), False: _RUN.format(lock=" FOR NO KEY UPDATE")}

# The dependents are found one (run, step_id) lookup each (LATERAL over the list): a plain
# ``step_id = ANY(…)`` (or a join) lets the planner, with the stale statistics of a table that
# grows during the run, scan every top-level row of the run on each completion (quadratic).
# They are locked in the list's order, sorted by step id, as ``sql.count_down`` locks them:
# completions hold no run lock, so their order among the dependents' rows must agree.
_TOP = (
    _HEAD
    + """{run}, d AS (
  UPDATE engine_steprun SET deps_left = deps_left - 1,
    deps_blocked = deps_blocked + %(blocked)s,
    status = CASE WHEN deps_left = 1 AND deps_blocked + %(blocked)s = 0
      AND step_id = ANY(%(plain)s::varchar[]) THEN 'queued' ELSE status END,
    attempt = CASE WHEN deps_left = 1 AND deps_blocked + %(blocked)s = 0
      AND step_id = ANY(%(plain)s::varchar[]) THEN attempt + 1 ELSE attempt END,
    queued_at = CASE WHEN deps_left = 1 AND deps_blocked + %(blocked)s = 0
      AND step_id = ANY(%(plain)s::varchar[]) THEN %(now)s ELSE queued_at END
  WHERE id IN (SELECT t.id FROM unnest(%(dependents)s::varchar[]) AS u(step_id),
    LATERAL (SELECT id FROM engine_steprun WHERE run_id = %(run)s AND step_id = u.step_id
             AND "index" IS NULL AND status = 'pending' FOR NO KEY UPDATE) AS t
    WHERE EXISTS (SELECT FROM r))
  RETURNING id, step_id, status, attempt, deps_left
), """
    + _ATTEMPT_AND_EVENTS.format(queued="(SELECT * FROM d WHERE status = 'queued')")
    + """
SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM r),
  (SELECT coalesce(json_agg(json_build_array(id, step_id, status, attempt, deps_left)), '[]')
   FROM d){guard}
"""
)

_INSTANCE = (
    _HEAD
    + """{run}, g AS (
  UPDATE engine_steprun SET fanout_done = fanout_done + 1,
    fanout_failed = fanout_failed + %(failed)s,
    error = CASE WHEN error = '' AND %(failed)s = 1 THEN %(group_error)s ELSE error END,
    fanout_active = LEAST(COALESCE(%(max_parallel)s, fanout_total),
                          fanout_total - fanout_done - 1)
  WHERE id = %(group)s AND EXISTS (SELECT FROM r)
  RETURNING fanout_total, fanout_done,
    CASE WHEN fanout_total - fanout_done >= COALESCE(%(max_parallel)s, fanout_total)
      THEN 1 ELSE 0 END AS free
), p AS (
  UPDATE engine_steprun SET status = 'queued', attempt = attempt + 1, queued_at = %(now)s
  WHERE id IN (SELECT id FROM engine_steprun WHERE parent_id = %(group)s AND status = 'pending'
               ORDER BY "index" LIMIT (SELECT free FROM g) FOR UPDATE SKIP LOCKED)
  RETURNING id, attempt
), """
    + _ATTEMPT_AND_EVENTS.format(queued="p")
    + """
SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM r), (SELECT fanout_total FROM g),
  (SELECT fanout_done FROM g),
  (SELECT coalesce(json_agg(json_build_array(id, attempt)), '[]') FROM p){guard}
"""
)
_INSTANCE_GUARD = """,
  1 / (CASE WHEN EXISTS (SELECT FROM s) AND (NOT EXISTS (SELECT FROM g)
       OR (SELECT fanout_done >= fanout_total FROM g)) THEN 0 ELSE 1 END)"""
_TOP_GUARD = """,
  1 / (CASE WHEN EXISTS (SELECT FROM s) AND (NOT EXISTS (SELECT FROM r)
       OR EXISTS (SELECT FROM d WHERE status = 'pending' AND deps_left = 0)) THEN 0 ELSE 1 END)"""


_TOP_SQL = {
    False: _TOP.format(run=_RUN_SQL[False], guard=""),
    True: _TOP.format(run=_RUN_SQL[True], guard=_TOP_GUARD),
}
_INSTANCE_SQL = {
    False: _INSTANCE.format(run=_RUN_SQL[False], guard=""),
    True: _INSTANCE.format(run=_RUN_SQL[True], guard=_INSTANCE_GUARD),
}
DIVISION_BY_ZERO = "22012"


def applies(row: StepRun, from_status: str, retrying: bool, note: Any) -> bool:
    """Whether this completion can take the fast path."""
    return (
        connection.vendor == "postgresql"
        and from_status == StepStatus.RUNNING
        and not retrying
        and note is None
        and row.kind in (StepKind.STEP, StepKind.INSTANCE)
    )


def finish(
    *,
    row: StepRun,
    attempt: int,
    fields: dict[str, Any],
    rp: RunPlan,
    step: StepPlan,
    work: Work,
    alone: bool = False,
) -> tuple[bool, Any]:
    """Run the statement inside the caller's transaction (``alone``: see ``finish_alone``).

    Returns (claimed, follow_up): ``claimed`` False means the attempt had lost its claim or
    the run had finished (the caller rolls back); ``follow_up`` is a callable taking the
    ``Advance`` for the rest, or None when the statement did everything.
    """
    status = fields["status"]
    params = {
        "id": row.pk,
        "run": row.run_id,
        "attempt": attempt,
        "status": status,
        "outputs": None if fields.get("outputs") is None else _json(fields["outputs"]),
        "error": fields.get("error", ""),
        "skip": fields.get("skip_reason", ""),
        "now": work.now,
        "started": row.started_at,
        "started_data": _json({"worker": row.worker}) if row.worker else None,
        "worker": row.worker,
        "attempt_status": StepStatus.FAILED if status == StepStatus.FAILED else status,
        "kind": _EVENT[status],
    }
    if row.kind == StepKind.INSTANCE:
        return _instance(row, params, step, work, alone)
    return _top(row, params, rp, step, work, alone)


class NeedsTransaction(Exception):
    """The completion needs Python under the run's lock (or the run has finished): do it again
    inside a transaction. Nothing was written."""


def finish_alone(
    *, row: StepRun, attempt: int, fields: dict[str, Any], rp: RunPlan, step: StepPlan, work: Work
) -> bool:
    """``finish`` as a statement of its own (autocommit): its row locks last only while the
    server runs it, never while this thread waits for the GIL. The statement refuses (a
    division by zero aborts it, writing nothing) when the completion needs a follow-up or the
    run has finished; that raises NeedsTransaction. Returns False when the claim was lost."""
    try:
        claimed, follow_up = finish(
            row=row, attempt=attempt, fields=fields, rp=rp, step=step, work=work, alone=True
        )
    except DataError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == DIVISION_BY_ZERO:
            raise NeedsTransaction from None
        raise
    assert follow_up is None
    if claimed:
        work.commit()  # not in a transaction: the messages leave now, then the run settles
    return claimed


_EVENT = {
    StepStatus.SUCCEEDED: EventKind.STEP_SUCCEEDED,
    StepStatus.FAILED: EventKind.STEP_FAILED,
    StepStatus.SKIPPED: EventKind.STEP_SKIPPED,
}


def _top(
    row: StepRun, params: dict[str, Any], rp: RunPlan, step: StepPlan, work: Work, alone: bool
) -> tuple[bool, Any]:
    from engine.runtime.context import effective_status

    dependents, plain = rp.released(step.id)
    view = {"status": params["status"]}
    params.update(
        blocked=1 if effective_status(view, step) != StepStatus.SUCCEEDED else 0,
        dependents=sorted(dependents),
        plain=list(plain),
    )
    with sql.hot(_TOP_SQL[alone], params) as cursor:
        claimed, active, released = cursor.fetchone()[:3]
    if not claimed or not active:
        return False, None
    _recorded(row, params, work)
    work.settle(row.run_id)  # a top-level step ended: is anything left? (after the commit)
    ready = []
    for pk, step_id, status, attempt, deps_left in _loads(released):
        if status == StepStatus.QUEUED:
            work.event(row.run_id, EventKind.STEP_QUEUED, step_id=pk, attempt=attempt, stored=True)
            work.send_step(pk, attempt, rp.step(step_id))
        elif deps_left == 0:
            ready.append(pk)
    if ready:
        return True, lambda advance: advance.released(step, ready)
    return True, None


def _instance(
    row: StepRun, params: dict[str, Any], step: StepPlan, work: Work, alone: bool
) -> tuple[bool, Any]:
    failed = params["status"] == StepStatus.FAILED
    params.update(
        group=row.parent_id,
        failed=1 if failed else 0,
        group_error=f"{row.label}: {params['error']}" if failed else "",
        max_parallel=step.max_parallel,
    )
    with sql.hot(_INSTANCE_SQL[alone], params) as cursor:
        claimed, active, total, done, picked = cursor.fetchone()[:5]
    if not claimed or not active:
        return False, None
    _recorded(row, params, work)
    for pk, attempt in _loads(picked):
        work.event(row.run_id, EventKind.STEP_QUEUED, step_id=pk, attempt=attempt, stored=True)
        work.send_step(pk, attempt, step)
    if done >= (total or 0):
        return True, lambda advance: advance.group_done(row.parent_id, step)
    return True, None


def _recorded(row: StepRun, params: dict[str, Any], work: Work) -> None:
    """Tell the hooks about the transitions the statement wrote itself."""
    data = {"worker": row.worker} if row.worker else None
    work.event(
        row.run_id,
        EventKind.STEP_STARTED,
        step_id=row.pk,
        attempt=params["attempt"],
        at=row.started_at,
        data=data,
        stored=True,
    )
    work.event(
        row.run_id,
        params["kind"],
        step_id=row.pk,
        attempt=params["attempt"],
        message=params["error"],
        stored=True,
    )


def _json(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder)


def _loads(value: Any) -> list:
    return json.loads(value) if isinstance(value, (str, bytes)) else value
