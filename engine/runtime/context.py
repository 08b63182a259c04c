"""The expression context of a step: inputs, env, steps, item/index/matrix, run, secrets."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from engine.dsl.expressions import DependencyState, evaluate
from engine.dsl.plan import StepPlan
from engine.errors import StepFailed
from engine.models import Run, SkipReason, StepRun, StepStatus
from engine.runtime.plans import RunPlan

# Secrets come from the worker's environment: FLOWYARD_SECRET_API_TOKEN is `secrets.API_TOKEN`.
SECRET_PREFIX = "FLOWYARD_SECRET_"
VIEW_FIELDS = ("step_id", "status", "outputs", "error", "attempt", "skip_reason")


def secrets_from_env() -> dict[str, str]:
    return {
        k[len(SECRET_PREFIX) :]: v for k, v in os.environ.items() if k.startswith(SECRET_PREFIX)
    }


def step_view(row: dict[str, Any]) -> dict[str, Any]:
    """What ``steps.<id>`` shows of a finished top-level step (a group shows its list)."""
    return {
        "outputs": row["outputs"] if row["outputs"] is not None else {},
        "status": row["status"],
        "error": row["error"],
        "attempts": row["attempt"],
        "skip_reason": row.get("skip_reason", ""),
    }


def load_views(run_id: int, step_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The views of some top-level steps of a run, in one query."""
    ids = list(step_ids)
    if not ids:
        return {}
    rows = StepRun.objects.filter(run_id=run_id, index__isnull=True, step_id__in=ids)
    return {r["step_id"]: step_view(r) for r in rows.values(*VIEW_FIELDS)}


def effective_status(view: dict[str, Any], step: StepPlan) -> str:
    """The status dependents and the run judge by: continue_on_error turns failed into ok."""
    if view["status"] == StepStatus.FAILED and step.continue_on_error:
        return StepStatus.SUCCEEDED
    return view["status"]


def dependency_state(
    rp: RunPlan, needs: dict[str, dict[str, Any]], *, run_cancelled: bool = False
) -> DependencyState:
    statuses = [effective_status(v, rp.step(k)) for k, v in needs.items()]
    ancestor_failed = any(
        v["status"] == StepStatus.SKIPPED and v.get("skip_reason") == SkipReason.FAILURE
        for v in needs.values()
    )
    return DependencyState.from_statuses(
        statuses, run_cancelled=run_cancelled, ancestor_failed=ancestor_failed
    )


def build_context(
    *,
    run: Run,
    rp: RunPlan,
    step: StepPlan | None,
    steps: dict[str, dict[str, Any]],
    item: Any = None,
    index: int | None = None,
    secrets: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The names a step's expressions can read. ``steps`` holds the views of its dependencies.

    ``env`` is the workflow's env then the step's, each evaluated (so env values may use
    ``inputs`` or ``secrets``). Raises ExpressionError.
    """
    context: dict[str, Any] = {
        "inputs": run.inputs,
        "steps": steps,
        "run": {
            "id": run.pk,
            "workflow": rp.plan.name,
            "trigger": run.trigger,
            "started_at": (run.started_at or run.created_at).isoformat(),
        },
        "secrets": secrets if secrets is not None else secrets_from_env(),
        "env": {},
    }
    if index is not None:
        context["index"] = index
        context["item"] = item
        if step is not None and step.matrix is not None:
            context["matrix"] = item
    env = {str(k): _text(v) for k, v in evaluate(dict(rp.plan.env), context).items()}
    if step is not None and step.env:
        context["env"] = env
        env.update({str(k): _text(v) for k, v in evaluate(dict(step.env), context).items()})
    context["env"] = env
    return context


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def check_output_size(value: Any, *, what: str = "outputs") -> Any:
    """Return ``value`` if it is JSON and within FLOWYARD["MAX_OUTPUT_BYTES"].

    Raises StepFailed (permanent) naming the limit otherwise.
    """
    limit = settings.FLOWYARD.get("MAX_OUTPUT_BYTES", 1024 * 1024)
    try:
        size = len(json.dumps(value, ensure_ascii=False).encode())
    except (TypeError, ValueError) as exc:
        raise StepFailed(f"{what} are not JSON: {exc}", permanent=True) from None
    if size > limit:
        raise StepFailed(
            f"{what} are {size:,} bytes, over the limit of {limit:,} bytes "
            f"(FLOWYARD_MAX_OUTPUT_BYTES)",
            permanent=True,
        )
    return value
