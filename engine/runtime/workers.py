"""Worker identity and heartbeats: a Dramatiq middleware refreshes a WorkerHeartbeat row."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

import dramatiq
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

logger = logging.getLogger("flowyard.runtime")

_identity: tuple[int, str] | None = None


def worker_id() -> str:
    """``host:pid:random`` of this process; recomputed after a fork."""
    global _identity
    pid = os.getpid()
    if _identity is None or _identity[0] != pid:
        _identity = (pid, f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}")
    return _identity[1]


def heartbeat_seconds() -> float:
    return float(settings.FLOWYARD.get("HEARTBEAT_SECONDS", 5))


def heartbeat_beat() -> None:
    """Record that this worker process is alive now."""
    from engine.models import WorkerHeartbeat

    now = timezone.now()
    updated = WorkerHeartbeat.objects.filter(worker_id=worker_id()).update(last_seen_at=now)
    if not updated:
        WorkerHeartbeat.objects.update_or_create(
            worker_id=worker_id(),
            defaults={
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "started_at": now,
                "last_seen_at": now,
            },
        )


def heartbeat_stop() -> None:
    from engine.models import WorkerHeartbeat

    WorkerHeartbeat.objects.filter(worker_id=worker_id()).delete()


class HeartbeatMiddleware(dramatiq.Middleware):
    """Keeps this process's WorkerHeartbeat fresh while a worker runs in it.

    The reconciler treats steps running on a worker whose heartbeat is stale as lost.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="flowyard-heartbeat", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        try:
            while True:
                try:
                    close_old_connections()
                    heartbeat_beat()
                except Exception:
                    logger.exception("heartbeat failed")
                if self._stop.wait(heartbeat_seconds()):
                    break
            try:
                heartbeat_stop()
            except Exception:
                logger.exception("could not remove the heartbeat row")
        finally:
            connection.close()


def install_heartbeats(broker: dramatiq.Broker) -> None:
    """Add the heartbeat middleware to ``broker`` once (idempotent)."""
    if not any(isinstance(m, HeartbeatMiddleware) for m in broker.middleware):
        broker.add_middleware(HeartbeatMiddleware())
