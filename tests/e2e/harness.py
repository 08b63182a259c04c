"""Processes of the end-to-end tests: workers, a reconciler and the CLI, on real brokers.

Every process gets the environment of ``process_env``: the pytest-django test database and a
broker URL. Workers and the reconciler run in their own session (process group), so a test can
kill -9 a worker with everything it started, and teardown never leaves one behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[2]
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUES = ("flowyard.default", "flowyard.control")
# The production defaults (a heartbeat every 5 s, a worker stale after 30 s) would make the
# crash test wait half a minute; the processes the tests start beat and give up faster.
FAST_RECOVERY = {
    "FLOWYARD_HEARTBEAT_SECONDS": "0.5",
    "FLOWYARD_WORKER_STALE_SECONDS": "3",
    "FLOWYARD_RECONCILE_GRACE_SECONDS": "1",
    "FLOWYARD_RECONCILE_QUEUED_SECONDS": "60",
}


def private_vhost(base_url: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """A RabbitMQ vhost of our own (made with rabbitmqctl), so no other session's workers ever
    see our messages: (its URL, a function deleting it). Falls back to ``base_url`` where
    rabbitmqctl is missing or not allowed (then the purges are the only isolation)."""
    name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def ctl(*args: str) -> bool:
        try:
            done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    user = unquote(urlsplit(base_url).username or "guest")
    if not shutil.which("rabbitmqctl") or not ctl("add_vhost", name):
        return base_url, lambda: None
    ctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    url = urlunsplit(urlsplit(base_url)._replace(path="/" + quote(name, safe="")))
    return url, lambda: ctl("delete_vhost", name) and None


def database_url(settings_dict: dict[str, Any]) -> str:
    """A postgres:// URL for a Django database settings dict (the test database's)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


def process_env(db_url: str, broker_url: str | None) -> dict[str, str]:
    """The environment of a process under test: this one's, the test database, a broker."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=env.get("SECRET_KEY") or "insecure-key-for-tests-only",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
        **FAST_RECOVERY,
    )
    env.pop("BROKER_URL", None)
    if broker_url:
        env["BROKER_URL"] = broker_url
    return env


class Group:
    """A subprocess started in its own session, with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group (the worker's children too)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self, *, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; always reaps the group."""
        if self.alive():
            self.kill(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        self.kill(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self._log.close()

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]


def start_worker(env: dict[str, str], log_dir: Path, *, threads: int = 4) -> Group:
    """``manage.py rundramatiq`` with one worker process of ``threads`` threads."""
    args = [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads",
            str(threads), "--worker-shutdown-timeout", "5000"]  # fmt: skip
    return Group("worker", args, env, log_dir)


def start_reconciler(env: dict[str, str], log_dir: Path, *, every: float = 0.5) -> Group:
    args = [sys.executable, "manage.py", "runscheduler", "--every", str(every)]
    return Group("reconciler", args, env, log_dir)


def wait_until(check: Callable[[], Any], *, timeout: float, what: str, poll: float = 0.1) -> Any:
    """Call ``check`` until it returns something truthy; raise AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


def worker_pids(group: Group) -> list[int]:
    """The worker processes (children of the dramatiq master) in ``group``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == group.pid:
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        ppid, pgid = int(fields[1]), int(fields[2])
        if ppid == group.pid and pgid == group.pid:
            pids.append(int(entry.name))
    return pids


def cli(
    args: list[str], env: dict[str, str], *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py ARGS`` to its end and return its exit status and output."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def runworkflow_json(
    args: list[str], env: dict[str, str], *, timeout: float = 120
) -> tuple[int, dict[str, Any]]:
    """``runworkflow --json ARGS``: the exit status and the printed object."""
    done = cli(["runworkflow", "--json", *args], env, timeout=timeout)
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise AssertionError(
            f"runworkflow printed no JSON (exit {done.returncode})\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        ) from None
    return done.returncode, report


def django_shell(code: str, env: dict[str, str], *, timeout: float = 60) -> str:
    """Run Python ``code`` in a Django process bound to the test broker; its stdout."""
    done = cli(["shell", "--no-imports", "-c", code], env, timeout=timeout)
    assert done.returncode == 0, f"shell failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def purge_broker(url: str) -> None:
    """Drop every Flowyard message left on a test broker (its queues, delay and dead letters)."""
    if url.startswith("amqp"):
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            for queue in QUEUES:
                for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                    channel = connection.channel()
                    try:
                        channel.queue_purge(name)
                        channel.close()
                    except pika.exceptions.ChannelClosedByBroker:
                        pass  # not declared yet: nothing to purge
        finally:
            connection.close()
    else:
        import redis

        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter("dramatiq:*flowyard*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
