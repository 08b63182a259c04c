"""`manage.py standalone`: the web server with an embedded worker, for the quick start."""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Serve Flowyard and run its steps in the same process (no broker needed)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000", help="address:port to serve on")
        parser.add_argument(
            "--threads",
            type=int,
            default=None,
            help="worker threads (default: FLOWYARD_EMBEDDED_WORKER_THREADS)",
        )

    def handle(self, *args, addr: str, threads: int | None = None, **options) -> None:
        from engine.runtime.embedded import EmbeddedWorker

        if settings.BROKER_URL is not None:
            raise CommandError(
                "BROKER_URL is set: run `manage.py rundramatiq` for the workers and "
                "`manage.py runserver` for the web instead"
            )
        worker = EmbeddedWorker(threads=threads).start()
        self.stdout.write(
            f"Embedded worker: {worker.threads} threads, reconciler every "
            f"{worker.reconcile_every:g}s"
        )
        try:
            call_command("runserver", addr, use_reloader=False, use_threading=True)
        finally:
            worker.stop()
