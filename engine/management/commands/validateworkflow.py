"""`manage.py validateworkflow PATH...`: check workflow files without storing anything."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from engine.dsl import validate_workflow
from engine.errors import Problem


class Command(BaseCommand):
    help = "Validate workflow files. Exit 0 when all are valid, 1 otherwise."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="workflow files or folders")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print problems as a JSON list"
        )

    def handle(self, *args, paths: list[str], as_json: bool = False, **options) -> None:
        problems: list[Problem] = []
        files = workflow_files(paths)
        for path in files:
            problems.extend(validate_workflow(read_text(path), filename=str(path)))
        if as_json:
            self.stdout.write(json.dumps([p.as_dict() for p in problems]))
        else:
            for problem in problems:
                self.stderr.write(str(problem))
            if not problems:
                self.stdout.write(f"{len(files)} file(s) valid")
        if problems:
            raise SystemExit(1)


def workflow_files(paths: list[str]) -> list[Path]:
    """Expand folders into their *.yaml / *.yml files; a missing path is a usage error."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml"}))
        elif path.is_file():
            files.append(path)
        else:
            raise CommandError(f"{raw}: no such file or folder")
    return files


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
