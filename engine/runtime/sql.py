"""The hot path's statements, each one round trip: ``UPDATE … RETURNING``.

The ORM cannot return rows from an UPDATE; these are the few places where a second query per
step would cost real throughput. Plain SQL valid on PostgreSQL and SQLite (≥ 3.35).
"""

from __future__ import annotations

import json
import weakref
from datetime import datetime
from enum import Enum
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import Model

from engine.models import Run, RunStatus, StepKind, StepRun, StepStatus

_T = StepRun._meta.db_table


def hot(query: str, params: Any = None) -> Any:
    """Execute one of the hot path's statements; returns a cursor to fetch from.

    On PostgreSQL, a server-side prepared statement (psycopg ``prepare=True`` on a
    server-binding cursor of the same connection): these statements run once or twice per
    step, and parsing and planning them cost the server as much as running them (0.6 ms of
    planning for a completion, 0.2 ms for a claim). Elsewhere Django's cursor. Placeholders
    are ``%s`` / ``%(name)s`` either way. Errors are Django's (``wrap_database_errors``).
    """
    if connection.vendor != "postgresql":
        cursor = connection.cursor()
        cursor.execute(query, params)
        return cursor
    import psycopg

    if isinstance(params, dict):
        params = {k: _plain(v) for k, v in params.items()}
    elif params is not None:
        params = [_plain(v) for v in params]
    connection.ensure_connection()
    conn = connection.connection
    with connection.wrap_database_errors:
        if conn not in _prepared and not connection.in_atomic_block:
            # Django turns psycopg's prepared statements off (None); a threshold no query
            # reaches turns them on for ``prepare=True`` only (Django's client-binding cursors
            # never prepare). Generic plans: "auto" kept re-planning these statements (their
            # generic cost estimate loses to the custom one), which cost more than running
            # them. Session-level SET, hence outside a transaction that could undo it.
            conn.prepare_threshold = 1 << 30
            conn.execute("SET plan_cache_mode = force_generic_plan")
            _prepared.add(conn)
        cursor = psycopg.Cursor(conn)
        cursor.execute(query, params, prepare=True)
    return cursor


_prepared: weakref.WeakSet = weakref.WeakSet()  # connections set up for ``hot``


def _plain(value: Any) -> Any:
    """A choice's plain string (psycopg would dump an Enum by its name)."""
    return value.value if isinstance(value, Enum) else value


_CLAIM_COLUMNS = [f.column for f in StepRun._meta.concrete_fields]
_CLAIM_NAMES = [f.attname for f in StepRun._meta.concrete_fields]


def claim(*, step_run_id: int, attempt: int, now: datetime, worker: str) -> StepRun | None:
    """queued/retrying at ``attempt`` -> running, returning the row with its run attached
    (the run's fields a step reads); None if the claim is lost. One statement on PostgreSQL
    (``UPDATE … FROM run``), two elsewhere.

    On PostgreSQL, outside a transaction, the claim commits without waiting for its WAL flush
    (``synchronous_commit`` off for this statement only, through ``set_config(…, true)``):
    the commits' flushes are what the server waits on most. A claim lost in a crash of
    PostgreSQL leaves the step ``queued``: the worker's completion then loses its claim and
    the reconciler re-sends the step (the attempt runs again, as after a worker's crash). The
    completion commits synchronously, and its flush covers the claim's earlier WAL record."""
    qn = connection.ops.quote_name
    params = [StepStatus.RUNNING, now, worker, step_run_id, attempt, StepStatus.QUEUED,
              StepStatus.RETRYING]  # fmt: skip
    join = connection.vendor == "postgresql"
    if join:
        columns = ", ".join(f"s.{qn(c)}" for c in _CLAIM_COLUMNS)
        run_columns = ", ".join(f"r.{qn(f.column)}" for f in _RUN_READ)
        nosync = ""
        if not connection.in_atomic_block:
            nosync = ", (SELECT set_config('synchronous_commit', 'off', true)) AS nosync"
        with hot(
            f"UPDATE {_T} AS s SET status = %s, started_at = %s, worker = %s, "
            f"wake_at = NULL, deadline_at = NULL FROM {Run._meta.db_table} AS r{nosync} "
            f"WHERE s.id = %s AND s.attempt = %s AND s.status IN (%s, %s) "
            f"AND r.id = s.run_id AND r.status IN ({_ACTIVE_RUN}) "
            f"RETURNING {columns}, {run_columns}",
            params,
        ) as cursor:
            row = cursor.fetchone()
    else:  # SQLite: RETURNING can name neither an alias nor a joined table
        with connection.cursor() as cursor:
            columns = ", ".join(qn(c) for c in _CLAIM_COLUMNS)
            cursor.execute(
                f"UPDATE {_T} SET status = %s, started_at = %s, worker = %s, wake_at = NULL, "
                f"deadline_at = NULL WHERE id = %s AND attempt = %s AND status IN (%s, %s) "
                f"AND run_id IN (SELECT id FROM {Run._meta.db_table} "
                f"WHERE status IN ({_ACTIVE_RUN})) RETURNING {columns}",
                params,
            )
            row = cursor.fetchone()
    if row is None:
        return None
    n = len(_CLAIM_COLUMNS)
    step = StepRun.from_db(connection.alias, _CLAIM_NAMES, _converted(row[:n], _STEP_FIELDS))
    if join:
        values = _converted(row[n:], _RUN_READ)
        step.run = Run.from_db(connection.alias, [f.attname for f in _RUN_READ], values)
    else:
        step.run = Run.objects.only(*(f.attname for f in _RUN_READ)).get(pk=step.run_id)
    return step


# A run that ended (cancel, timeout) dispatches nothing: a step a completion queued in the race
# with the end (completions do not lock the run) loses its claim, and the sweep cancels it.
_ACTIVE_RUN = ", ".join(f"'{s}'" for s in (RunStatus.QUEUED, RunStatus.RUNNING))
_STEP_FIELDS = list(StepRun._meta.concrete_fields)
_RUN_READ = [Run._meta.get_field(name) for name in (
    "id", "workflow", "version", "status", "trigger", "inputs", "created_at", "started_at",
)]  # fmt: skip
_converters: dict[tuple[str, int], list] = {}


def _converted(row: tuple | list, fields: list) -> list:
    """Apply the backend's converters (JSON, datetimes on SQLite) as the ORM would."""
    key = (connection.vendor, id(fields))
    found = _converters.get(key)
    if found is None:
        found = []
        for i, field in enumerate(fields):
            column = field.get_col(field.model._meta.db_table)
            for converter in connection.ops.get_db_converters(column) + column.get_db_converters(
                connection
            ):
                found.append((i, converter, column))
        _converters[key] = found
    values = list(row)
    for i, converter, column in found:
        values[i] = converter(values[i], column, connection)
    return values


def group_count(*, group_id: int, failed: bool, error: str) -> tuple[int, int, int, int, str]:
    """Count one finished instance of a group: (total, done, active, failed, first error).

    ``active`` still includes the finished instance: the caller refills the window and then
    writes the new count only if it changed (``set_group_active``), which in the steady state
    of a max_parallel window it does not.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_T} SET fanout_done = fanout_done + 1, "
            f"fanout_failed = fanout_failed + %s, "
            f"error = CASE WHEN error = '' THEN %s ELSE error END "
            f"WHERE id = %s "
            f"RETURNING fanout_total, fanout_done, fanout_active, fanout_failed, error",
            [1 if failed else 0, error if failed else "", group_id],
        )
        total, done, active, failed_count, first_error = cursor.fetchone()
    return total or 0, done, active, failed_count, first_error


def pick_pending(*, group_id: int, limit: int, now: datetime) -> list[tuple[int, int]]:
    """Queue the next ``limit`` pending instances of a group, in index order: [(id, attempt)]."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_T} SET status = %s, attempt = attempt + 1, queued_at = %s "
            f"WHERE id IN (SELECT id FROM {_T} WHERE parent_id = %s AND status = %s "
            f"ORDER BY {connection.ops.quote_name('index')} LIMIT %s) RETURNING id, attempt",
            [StepStatus.QUEUED, now, group_id, StepStatus.PENDING, limit],
        )
        return sorted(cursor.fetchall())


def set_group_active(*, group_id: int, active: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {_T} SET fanout_active = %s WHERE id = %s", [active, group_id])


def count_down(*, run_id: int, step_ids: list[str], blocked: bool = False) -> list[int]:
    """Decrement ``deps_left`` of pending top-level steps (and count a dependency that did not
    succeed in ``deps_blocked``); return the ids that reached 0. Rows are locked in step id
    order, as the one-statement completions lock them (they do not hold the run's lock)."""
    marks = ", ".join(["%s"] * len(step_ids))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # one lookup per step id: see fastpath._TOP
            cursor.execute(
                f"UPDATE {_T} SET deps_left = deps_left - 1, deps_blocked = deps_blocked + %s "
                f"WHERE id IN (SELECT t.id FROM unnest(%s::varchar[]) AS u(step_id), "
                f"LATERAL (SELECT id FROM {_T} WHERE run_id = %s AND step_id = u.step_id "
                f'AND "index" IS NULL AND status = %s FOR NO KEY UPDATE) AS t) '
                f"RETURNING id, deps_left",
                [1 if blocked else 0, sorted(step_ids), run_id, StepStatus.PENDING],
            )
        else:
            cursor.execute(
                f"UPDATE {_T} SET deps_left = deps_left - 1, deps_blocked = deps_blocked + %s "
                f"WHERE run_id = %s AND {connection.ops.quote_name('index')} IS NULL "
                f"AND status = %s AND step_id IN ({marks}) RETURNING id, deps_left",
                [1 if blocked else 0, run_id, StepStatus.PENDING, *step_ids],
            )
        return [pk for pk, left in cursor.fetchall() if left == 0]


_RUN_COLUMNS = (
    "id", "workflow_id", "version_id", "status", "trigger", "parent_step_id", "main_left",
    "created_at", "started_at", "finished_at", "deadline_at",
)  # fmt: skip


_RUN_LOCKED = [Run._meta.get_field(c.removesuffix("_id")) for c in _RUN_COLUMNS]


def lock_run(run_id: int, *, skip_locked: bool = False) -> Run | None:
    """``SELECT … FOR NO KEY UPDATE [SKIP LOCKED]`` of a run (the columns the advance needs;
    the others load on demand). NO KEY: inserts referencing the run (events, steps) do not
    wait for it. On SQLite there is no row lock; its writes serialize."""
    features = connection.features
    suffix = ""
    if features.has_select_for_update:
        suffix = " FOR NO KEY UPDATE" if features.has_select_for_no_key_update else " FOR UPDATE"
        if skip_locked and features.has_select_for_update_skip_locked:
            suffix += " SKIP LOCKED"
    fields = _RUN_LOCKED
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {Run._meta.db_table} WHERE id = %s{suffix}", [run_id]
        )
        row = cursor.fetchone()
    if row is None:
        return None
    values = _converted(row, fields)
    return Run.from_db(connection.alias, [f.attname for f in fields], values)


def insert_instances(*, group: StepRun, items: list[Any]) -> None:
    """Insert the pending instances of a group, one per item. On PostgreSQL a single
    ``INSERT … SELECT`` over the JSON array (10,000 items in one statement); elsewhere
    ``bulk_create`` in batches."""
    if not items:
        return
    if connection.vendor != "postgresql":
        StepRun.objects.bulk_create(
            [
                StepRun(
                    run_id=group.run_id, step_id=group.step_id, kind=StepKind.INSTANCE,
                    is_finally=group.is_finally, parent=group, index=i, item=item,
                    max_attempts=group.max_attempts, timeout=group.timeout,
                )
                for i, item in enumerate(items)
            ],
            batch_size=2000,
        )  # fmt: skip
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {_T} (run_id, step_id, kind, is_finally, parent_id, "index", item, '
            "status, skip_reason, attempt, max_attempts, deps_left, deps_blocked, error, "
            "timeout, worker, fanout_active, fanout_done, fanout_failed) "
            "SELECT %s, %s, %s, %s, %s, t.ord - 1, t.elem, %s, '', 0, %s, 0, 0, '', %s, '', "
            "0, 0, 0 "
            "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(elem, ord)",
            [group.run_id, group.step_id, StepKind.INSTANCE, group.is_finally, group.pk,
             StepStatus.PENDING, group.max_attempts, group.timeout,
             json.dumps(items, cls=DjangoJSONEncoder)],
        )  # fmt: skip


def insert_rows(model: type[Model], rows: list[dict[str, Any]]) -> None:
    """Insert plain rows in one ``executemany`` (pipelined by psycopg 3): no model instances,
    no returned ids. Values go through each field's own preparation (JSON, datetimes)."""
    if not rows:
        return
    names = list(rows[0])
    fields = [model._meta.get_field(n) for n in names]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    params = [
        [f.get_db_prep_save(row[n], connection) for f, n in zip(fields, names, strict=True)]
        for row in rows
    ]
    with connection.cursor() as cursor:
        sql = f"INSERT INTO {model._meta.db_table} ({columns}) VALUES ({marks})"
        if len(params) == 1:
            cursor.execute(sql, params[0])
        else:
            cursor.executemany(sql, params)
