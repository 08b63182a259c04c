"""The hot path's statements, each one round trip: ``UPDATE … RETURNING``.

The ORM cannot return rows from an UPDATE; these are the few places where a second query per
step would cost real throughput. Plain SQL valid on PostgreSQL and SQLite (≥ 3.35).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import Model

from engine.models import Run, StepKind, StepRun, StepStatus

_T = StepRun._meta.db_table
_CLAIM_COLUMNS = [f.column for f in StepRun._meta.concrete_fields]
_CLAIM_NAMES = [f.attname for f in StepRun._meta.concrete_fields]


def claim(*, step_run_id: int, attempt: int, now: datetime, worker: str) -> StepRun | None:
    """queued/retrying at ``attempt`` -> running, returning the row with its run attached
    (the run's fields a step reads); None if the claim is lost. One statement on PostgreSQL
    (``UPDATE … FROM run``), two elsewhere."""
    qn = connection.ops.quote_name
    params = [StepStatus.RUNNING, now, worker, step_run_id, attempt, StepStatus.QUEUED,
              StepStatus.RETRYING]  # fmt: skip
    join = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if join:
            columns = ", ".join(f"s.{qn(c)}" for c in _CLAIM_COLUMNS)
            run_columns = ", ".join(f"r.{qn(f.column)}" for f in _RUN_READ)
            cursor.execute(
                f"UPDATE {_T} AS s SET status = %s, started_at = %s, worker = %s, "
                f"wake_at = NULL, deadline_at = NULL FROM {Run._meta.db_table} AS r "
                f"WHERE s.id = %s AND s.attempt = %s AND s.status IN (%s, %s) "
                f"AND r.id = s.run_id RETURNING {columns}, {run_columns}",
                params,
            )
        else:  # SQLite: RETURNING can name neither an alias nor a joined table
            columns = ", ".join(qn(c) for c in _CLAIM_COLUMNS)
            cursor.execute(
                f"UPDATE {_T} SET status = %s, started_at = %s, worker = %s, wake_at = NULL, "
                f"deadline_at = NULL WHERE id = %s AND attempt = %s AND status IN (%s, %s) "
                f"RETURNING {columns}",
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
    succeed in ``deps_blocked``); return the ids that reached 0."""
    marks = ", ".join(["%s"] * len(step_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_T} SET deps_left = deps_left - 1, deps_blocked = deps_blocked + %s "
            f"WHERE run_id = %s AND {connection.ops.quote_name('index')} IS NULL AND status = %s "
            f"AND step_id IN ({marks}) RETURNING id, deps_left",
            [1 if blocked else 0, run_id, StepStatus.PENDING, *step_ids],
        )
        return [pk for pk, left in cursor.fetchall() if left == 0]


_RUN_COLUMNS = (
    "id", "workflow_id", "version_id", "status", "trigger", "parent_step_id", "main_left",
    "finally_left", "created_at", "started_at", "finished_at", "deadline_at",
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
