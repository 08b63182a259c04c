"""The `http` action: one request with httpx.

Outputs: ``status``, ``headers``, and ``json`` (when the body is JSON) or ``text``. A status
outside `expected_status` (default: any 2xx) fails the step with the status and a body
excerpt: 4xx permanently, 5xx (and 408, 429) transiently; connection errors are transient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from engine.actions.control import seconds_of
from engine.errors import StepFailed

if TYPE_CHECKING:
    from engine.runtime.execute import StepCall

DEFAULT_TIMEOUT = 30.0
EXCERPT_CHARS = 500
TRANSIENT_STATUSES = {408, 425, 429}


def http(call: StepCall) -> dict[str, Any]:
    w = call.with_
    method = str(w.get("method", "GET")).upper()
    url = w.get("url")
    timeout = seconds_of(w.get("timeout") or DEFAULT_TIMEOUT, what="timeout")
    if call.timeout:
        timeout = min(timeout, call.timeout)
    request: dict[str, Any] = {
        "headers": {str(k): str(v) for k, v in (w.get("headers") or {}).items()},
        "params": w.get("params") or None,
        "timeout": timeout,
        "follow_redirects": bool(w.get("follow_redirects", True)),
    }
    if w.get("json") is not None:
        request["json"] = w["json"]
    elif w.get("body") is not None:
        body = w["body"]
        request["content"] = body if isinstance(body, (str, bytes)) else str(body)
    try:
        response = httpx.request(method, url, **request)
    except httpx.InvalidURL as exc:
        raise StepFailed(f"{method} {url}: {exc}", permanent=True) from None
    except httpx.HTTPError as exc:
        raise StepFailed(f"{method} {url}: {type(exc).__name__}: {exc}") from None
    expected = _expected(w.get("expected_status", w.get("expect")))
    ok = response.status_code in expected if expected else response.is_success
    if not ok:
        excerpt = response.text[:EXCERPT_CHARS]
        code = response.status_code
        transient = code >= 500 or code in TRANSIENT_STATUSES
        raise StepFailed(
            f"{method} {url} returned {code}: {excerpt}",
            permanent=not transient,
            details={"status": code},
        )
    outputs: dict[str, Any] = {"status": response.status_code, "headers": dict(response.headers)}
    try:
        outputs["json"] = response.json() if response.content else None
    except ValueError:
        outputs["text"] = response.text
    return outputs


def _expected(value: Any) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, (int, str)):
        value = [value]
    return {int(v) for v in value}
