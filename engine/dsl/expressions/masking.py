"""Masking secret values in logs and outputs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

MASK = "***"
MIN_SECRET_LENGTH = 3  # shorter values ("1", "no") occur everywhere; masking them ruins logs


@lru_cache(maxsize=256)
def _pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    forms: set[str] = set()
    for secret in secrets:
        # A secret also leaks line by line, and JSON-escaped inside a serialized output.
        for form in (secret, *secret.splitlines(), json.dumps(secret, ensure_ascii=False)[1:-1]):
            if len(form.strip()) >= MIN_SECRET_LENGTH:
                forms.add(form)
    if not forms:
        return None
    # Longest first, so a secret containing another is masked whole.
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=lambda f: (-len(f), f))))


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value (of at least 3 characters) replaced by ``***``."""
    pattern = _pattern(tuple(sorted({s for s in secrets if isinstance(s, str) and s})))
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def mask_secrets_in(value: Any, secrets: Iterable[str]) -> Any:
    """``mask_secrets`` applied to every string (values and keys) in nested dicts and lists."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        return mask_secrets(value, secrets)
    if isinstance(value, dict):
        return {
            mask_secrets(k, secrets) if isinstance(k, str) else k: mask_secrets_in(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [mask_secrets_in(item, secrets) for item in value]
    return value
