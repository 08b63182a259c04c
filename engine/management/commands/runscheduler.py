"""`manage.py runscheduler`: the process that recovers lost work, every few seconds."""

from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

logger = logging.getLogger("flowyard.scheduler")


class Command(BaseCommand):
    help = "Run the reconciler periodically (safe to run in several processes at once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--every",
            type=float,
            default=settings.FLOWYARD["RECONCILE_EVERY_SECONDS"],
            help="seconds between passes (default: FLOWYARD_RECONCILE_EVERY_SECONDS or 5)",
        )
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, *args, every: float, once: bool, **options) -> None:
        import engine.runtime.actors  # noqa: F401  (declares the actors the reconciler sends to)
        from engine.runtime.reconcile import reconcile

        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"Reconciling every {every:g}s")
        while not stop.is_set():
            close_old_connections()
            try:
                done = reconcile()
            except Exception:  # a failed pass must not end the process; the next one retries
                logger.exception("reconcile pass failed")
            else:
                if done.total:
                    logger.info("reconciled: %s", done)
            if once:
                break
            stop.wait(every)
