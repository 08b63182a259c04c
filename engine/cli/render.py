"""Text for people: the live progress line, finished-step lines and the final summary table."""

from __future__ import annotations

import json
import shutil
from typing import Any, TextIO

from engine.cli.follow import WAITING, Snapshot, StepResult

MARKS = {
    "succeeded": "✓",
    "failed": "✗",
    "cancelled": "✗",
    "skipped": "-",
    WAITING: "…",
}
_CLEAR_LINE = "\r\x1b[2K"


def duration(seconds: float | None) -> str:
    """``0.4s``, ``12s``, ``3m 05s``, ``2h 01m``; an em dash when unknown."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def progress_line(snap: Snapshot) -> str:
    """``3/7 steps · running: build, test (+2) · collect 40/100 · 12s``."""
    parts = [f"{snap.done}/{snap.total} steps"]
    if snap.running:
        more = snap.running_count - len(snap.running)
        parts.append("running: " + ", ".join(snap.running) + (f" (+{more})" if more > 0 else ""))
    parts.extend(f"{step_id} {done}/{total}" for step_id, done, total in snap.groups)
    if snap.approvals:
        parts.append("waiting for approval: " + ", ".join(snap.approvals))
    parts.append(duration(snap.elapsed))
    return " · ".join(parts)


class Live:
    """Prints progress: a status line rewritten in place on a terminal, plain lines elsewhere."""

    def __init__(self, out: TextIO, *, tty: bool, enabled: bool = True) -> None:
        self.out = out
        self.tty = tty and enabled
        self.enabled = enabled
        self._line = ""

    def status(self, snap: Snapshot) -> None:
        if not self.tty:
            return
        width = shutil.get_terminal_size((100, 20)).columns - 1
        line = progress_line(snap)
        if len(line) > width:
            line = line[: max(width - 1, 10)] + "…"
        if line != self._line:
            self.out.write(_CLEAR_LINE + line)
            self.out.flush()
            self._line = line

    def step_done(self, result: StepResult) -> None:
        """A top-level step ended: one line above the status line."""
        mark = MARKS.get(result.status, "?")
        note = ""
        if result.status in ("failed", "skipped", "cancelled") and result.error:
            note = "  " + first_line(result.error, 100)
        self.say(
            f"{mark} {result.step_id:<24} {result.status:<10} {duration(result.seconds)}{note}"
        )

    def say(self, text: str) -> None:
        if self.tty and self._line:
            self.out.write(_CLEAR_LINE)
            self._line = ""
        self.out.write(text + "\n")
        self.out.flush()

    def clear(self) -> None:
        if self.tty and self._line:
            self.out.write(_CLEAR_LINE)
            self.out.flush()
            self._line = ""


def summary_table(results: list[StepResult]) -> list[str]:
    """The steps of a finished (or waiting) run as an aligned table."""
    header = ("STEP", "STATUS", "ATTEMPTS", "TIME", "NOTE")
    rows = []
    for r in results:
        name = f"{r.step_id} (finally)" if r.is_finally else r.step_id
        rows.append((name, r.status, str(r.attempts or "—"), duration(r.seconds), note_of(r)))
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(4)]
    lines = []
    for row in (header, *rows):
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return lines


def note_of(result: StepResult) -> str:
    """What a person wants to know about a step at a glance: its error, or its instances."""
    if result.instance_counts:
        total = sum(result.instance_counts.values())
        by_status = ", ".join(f"{n} {s}" for s, n in sorted(result.instance_counts.items()))
        note = f"{total} instances: {by_status}"
        if result.status == "failed" and result.error:
            note += " — " + first_line(result.error, 80)
        return note
    if result.error:
        return first_line(result.error, 100)
    return ""


def first_line(text: str, limit: int) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def compact_json(value: Any, limit: int = 400) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
