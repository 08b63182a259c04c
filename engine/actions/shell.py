"""The `shell` action: run a script in its own process group, stream its output to the logs.

Outputs: ``exit_code`` plus whatever the script publishes by writing ``key=value`` lines or
one JSON object to the file named by ``$FLOWYARD_OUTPUT``. A non-zero exit fails the step
(transiently: the retry policy decides). The process group is killed on timeout and when the
attempt stops owning the step (run cancelled, reconciler took over).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from engine.errors import StepFailed
from engine.models import LogStream

if TYPE_CHECKING:
    from engine.runtime.execute import StepCall

POLL_SECONDS = 0.2
CANCEL_CHECK_SECONDS = 0.5
KILL_GRACE_SECONDS = 3.0
# Never handed to scripts: the engine's own credentials and the secrets' source variables.
WITHHELD_ENV = ("SECRET_KEY", "DATABASE_URL", "BROKER_URL")
SHELLS = {
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"],
    "sh": ["sh", "-e", "-c"],
    "python": ["python3", "-c"],
}


def shell(call: StepCall) -> dict[str, Any]:
    script = call.with_.get("run")
    if not isinstance(script, str) or not script.strip():
        raise StepFailed("`run` must be a non-empty script", permanent=True)
    chosen = call.with_.get("shell") or "bash"
    argv = [*SHELLS.get(chosen, shlex.split(chosen)), script]
    cwd = call.with_.get("cwd") or None
    if cwd is not None and not Path(cwd).is_dir():
        raise StepFailed(f"cwd {cwd!r} is not a folder", permanent=True)
    with tempfile.TemporaryDirectory(prefix="flowyard-") as tmp:
        output_file = Path(tmp) / "output"
        output_file.touch()
        env = _environment(call, output_file)
        try:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: we can kill the whole tree
            )
        except FileNotFoundError as exc:
            raise StepFailed(f"cannot start {argv[0]!r}: {exc.strerror}", permanent=True) from None
        code = _supervise(process, call)
        published = _read_outputs(output_file)
    outputs = {**published, "exit_code": code}
    if code != 0:
        tail = call.log.tail(LogStream.STDERR).strip().splitlines()
        last = f": {tail[-1][:300]}" if tail else ""
        raise StepFailed(f"exit code {code}{last}", details=outputs)
    return outputs


def _environment(call: StepCall, output_file: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in WITHHELD_ENV and not k.startswith("FLOWYARD_SECRET_")
    }
    env.update(call.env)
    env.update({str(k): _text(v) for k, v in (call.with_.get("env") or {}).items()})
    env.update(
        FLOWYARD_OUTPUT=str(output_file),
        FLOWYARD_RUN_ID=str(call.run_id),
        FLOWYARD_STEP_ID=call.step.id,
        FLOWYARD_ATTEMPT=str(call.attempt),
    )
    if call.index is not None:
        env["FLOWYARD_INDEX"] = str(call.index)
    return env


def _supervise(process: subprocess.Popen[bytes], call: StepCall) -> int:
    """Wait for the process while streaming its output; kill it on timeout or cancel."""
    readers = [
        threading.Thread(target=_pump, args=(process.stdout, call, LogStream.STDOUT), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, call, LogStream.STDERR), daemon=True),
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + call.timeout if call.timeout else None
    next_check = time.monotonic() + CANCEL_CHECK_SECONDS
    try:
        while True:
            try:
                code = process.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            call.log.flush(every=1.0)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                _kill(process)
                raise StepFailed(f"timed out after {call.timeout:g}s")
            if now >= next_check:
                next_check = now + CANCEL_CHECK_SECONDS
                if call.cancelled():
                    _kill(process)
                    raise StepFailed(
                        "cancelled: the step no longer belongs to this attempt", permanent=True
                    )
    except BaseException:
        # Also on the broker's TimeLimitExceeded or a worker shutdown: never leave the tree.
        _kill(process)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=2)
    return code


def _pump(pipe: IO[bytes] | None, call: StepCall, stream: str) -> None:
    if pipe is None:
        return
    with pipe:
        for line in iter(pipe.readline, b""):
            call.log.write(line.decode(errors="replace"), stream)


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=KILL_GRACE_SECONDS)
    except ProcessLookupError:
        pass


def _read_outputs(path: Path) -> dict[str, Any]:
    text = path.read_text(errors="replace").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise StepFailed(f"$FLOWYARD_OUTPUT is not valid JSON: {exc}", permanent=True) from None
        if isinstance(value, dict):
            return value
    outputs: dict[str, Any] = {}
    for line in text.splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            outputs[key.strip()] = value
        elif line.strip():
            raise StepFailed(
                f"$FLOWYARD_OUTPUT: expected key=value, got {line[:80]!r}", permanent=True
            )
    return outputs


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
