"""Step logs: buffered, masked, stored in bounded chunks with a visible truncation marker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from django.conf import settings

from engine.dsl.expressions import mask_secrets
from engine.models import LogStream, StepLog

CHUNK_CHARS = 64 * 1024
DEFAULT_MAX_LOG_BYTES = 4 * 1024 * 1024  # per attempt; FLOWYARD["MAX_LOG_BYTES"] overrides


class LogWriter:
    """Collects an attempt's output; only the owner thread writes to the database.

    ``write`` may be called from any thread (the shell action's pipe readers); ``flush`` and
    ``close`` belong to the thread that created the writer, so no extra connection is opened.
    Past the limit, text is counted but dropped, and ``close`` appends a marker saying how much.
    """

    def __init__(self, step_run_id: int, attempt: int, *, secrets: Iterable[str] = ()) -> None:
        self.step_run_id = step_run_id
        self.attempt = attempt
        self.secrets = tuple(secrets)
        self.limit = settings.FLOWYARD.get("MAX_LOG_BYTES", DEFAULT_MAX_LOG_BYTES)
        self._owner = threading.get_ident()
        self._lock = threading.Lock()
        self._buffer: list[tuple[str, str]] = []
        self._buffered = 0
        self._kept = 0
        self._dropped = 0
        self._seq = 0
        self._last_flush = time.monotonic()

    def write(self, text: str, stream: str = LogStream.LOG) -> None:
        if not text:
            return
        text = mask_secrets(text, self.secrets)
        with self._lock:
            room = self.limit - self._kept
            if room <= 0:
                self._dropped += len(text.encode())
                return
            encoded = text.encode()
            if len(encoded) > room:
                self._dropped += len(encoded) - room
                text = encoded[:room].decode(errors="ignore")
            self._kept += len(text.encode())
            if self._buffer and self._buffer[-1][0] == stream:
                self._buffer[-1] = (stream, self._buffer[-1][1] + text)
            else:
                self._buffer.append((stream, text))
            self._buffered += len(text)
        if threading.get_ident() == self._owner and self._buffered >= CHUNK_CHARS:
            self.flush()

    def flush(self, *, every: float = 0.0) -> None:
        """Store what is buffered (at most once per ``every`` seconds)."""
        if every and time.monotonic() - self._last_flush < every:
            return
        with self._lock:
            buffer, self._buffer, self._buffered = self._buffer, [], 0
        self._last_flush = time.monotonic()
        rows = []
        for stream, text in buffer:
            for start in range(0, len(text), CHUNK_CHARS):
                self._seq += 1
                rows.append(
                    StepLog(
                        step_id=self.step_run_id,
                        attempt=self.attempt,
                        seq=self._seq,
                        stream=stream,
                        text=text[start : start + CHUNK_CHARS],
                    )
                )
        if rows:
            StepLog.objects.bulk_create(rows)

    def close(self) -> None:
        if self._dropped:
            self._buffer.append(
                (
                    LogStream.LOG,
                    f"\n[… log truncated: {self._dropped:,} more bytes were dropped "
                    f"(limit {self.limit:,} bytes per attempt, FLOWYARD_MAX_LOG_BYTES) …]\n",
                )
            )
        self.flush()

    def tail(self, stream: str, chars: int = 500) -> str:
        """The end of what was written to ``stream`` and is still buffered (for error text)."""
        with self._lock:
            text = "".join(t for s, t in self._buffer if s == stream)
        return text[-chars:]
