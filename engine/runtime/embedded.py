"""The embedded mode: a Dramatiq worker and a reconciler running as threads of this process.

Used by ``manage.py standalone``, by ``runworkflow`` without a broker, and by the tests. It
needs the StubBroker (settings configure it when BROKER_URL is unset). Delayed messages work:
the worker's delay-queue consumer holds them until their eta, checked every ``poll_ms``.
"""

from __future__ import annotations

import logging
import threading
import time

import dramatiq
from django.conf import settings
from django.db import close_old_connections, connection
from dramatiq.brokers.stub import StubBroker
from dramatiq.worker import _WorkerMiddleware

from engine.models import Run

logger = logging.getLogger("flowyard.runtime")

_process_booted = False
_boot_lock = threading.Lock()


class EmbeddedWorker:
    """Start with ``start()`` (or ``with EmbeddedWorker() as worker:``), stop with ``stop()``.

    Only one should run per process (Dramatiq's rule for workers).
    """

    def __init__(
        self,
        *,
        threads: int | None = None,
        reconcile_every: float | None = 10.0,
        poll_ms: int = 100,
    ) -> None:
        self.threads = threads or settings.FLOWYARD.get("EMBEDDED_WORKER_THREADS", 4)
        self.reconcile_every = reconcile_every
        self.poll_ms = poll_ms
        self.worker: dramatiq.Worker | None = None
        self._stop = threading.Event()
        self._reconciler: threading.Thread | None = None

    def start(self) -> EmbeddedWorker:
        import engine.runtime.actors  # noqa: F401  (declares the actors and the heartbeat)

        broker = dramatiq.get_broker()
        if not isinstance(broker, StubBroker):
            raise RuntimeError(
                "the embedded worker needs the in-process broker: unset BROKER_URL, or run "
                "`manage.py rundramatiq` against your broker instead"
            )
        _boot_process(broker)
        self.worker = dramatiq.Worker(
            broker, worker_threads=self.threads, worker_timeout=self.poll_ms
        )
        self.worker.start()
        if self.reconcile_every:
            self._stop.clear()
            self._reconciler = threading.Thread(
                target=self._reconcile_loop, name="flowyard-reconciler", daemon=True
            )
            self._reconciler.start()
        return self

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop the reconciler, then the worker (waiting up to ``timeout`` for running steps)."""
        self._stop.set()
        if self._reconciler is not None:
            self._reconciler.join(timeout=timeout)
            self._reconciler = None
        worker, self.worker = self.worker, None
        if worker is None:
            return
        worker.stop(timeout=int(timeout * 1000))
        broker = worker.broker
        # Worker.start() adds a middleware that outlives it; drop it so a later worker in this
        # process does not feed queues to a stopped one.
        broker.middleware[:] = [
            m
            for m in broker.middleware
            if not (isinstance(m, _WorkerMiddleware) and m.worker is worker)
        ]

    def __enter__(self) -> EmbeddedWorker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _reconcile_loop(self) -> None:
        from engine.runtime.reconcile import reconcile

        try:
            while not self._stop.wait(self.reconcile_every):
                try:
                    close_old_connections()
                    reconcile()
                except Exception:
                    logger.exception("reconciler pass failed")
        finally:
            connection.close()


def _boot_process(broker: dramatiq.Broker) -> None:
    """What the dramatiq CLI does once per worker process (starts TimeLimit's timer thread)."""
    global _process_booted
    with _boot_lock:
        if not _process_booted:
            broker.emit_after("process_boot")
            _process_booted = True


def run_wait(run: Run | int, *, timeout: float = 60.0, poll: float = 0.05) -> Run:
    """Block until the run has finished and return it fresh from the database.

    Raises TimeoutError naming the run's status and its unfinished steps.
    """
    run_id = run if isinstance(run, int) else run.pk
    deadline = time.monotonic() + timeout
    while True:
        current = Run.objects.get(pk=run_id)
        if current.is_finished:
            return current
        if time.monotonic() > deadline:
            busy = current.steps.exclude(status__in=("succeeded", "failed", "skipped", "cancelled"))
            names = ", ".join(f"{s.label}={s.status}" for s in busy[:10])
            raise TimeoutError(f"run {run_id} still {current.status} after {timeout}s: {names}")
        time.sleep(poll)
