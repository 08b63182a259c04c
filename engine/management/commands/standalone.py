"""`manage.py standalone`: the web server with an embedded worker, for the quick start."""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve Flowyard and run its steps in the same process (no broker needed)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000", help="address:port to serve on")

    def handle(self, *args, addr: str, **options) -> None:
        call_command("runserver", addr, use_reloader=False, use_threading=True)
