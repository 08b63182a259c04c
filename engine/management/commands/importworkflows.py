"""`manage.py importworkflows [DIR]`: store every valid workflow file as a version."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from engine.errors import WorkflowInvalid
from engine.management.commands.validateworkflow import read_text, workflow_files
from engine.services import workflow_publish


class Command(BaseCommand):
    help = "Import workflow files; valid ones are stored even when others are invalid (exit 1)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "paths", nargs="*", metavar="DIR", help="default: the workflows/ folder"
        )

    def handle(self, *args, paths: list[str], **options) -> None:
        files = workflow_files(paths or [str(settings.FLOWYARD["WORKFLOWS_DIR"])])
        failed = 0
        for path in files:
            try:
                published = workflow_publish(source=read_text(path), filename=str(path))
            except WorkflowInvalid as exc:
                failed += 1
                self.stderr.write(f"{path}: invalid")
                for problem in exc.problems:
                    self.stderr.write(f"  {problem}")
                continue
            version = published.version
            state = "new version" if published.created else "unchanged"
            self.stdout.write(f"{path}: {version.workflow.name} v{version.number} ({state})")
        self.stdout.write(f"{len(files) - failed} imported, {failed} invalid")
        if failed:
            raise SystemExit(1)
