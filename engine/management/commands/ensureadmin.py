"""`manage.py ensureadmin`: make sure someone can log in to a fresh installation."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the user 'admin' when no superuser exists, and print how to log in."

    def handle(self, *args, **options) -> None:
        users = get_user_model().objects
        password_file = Path(settings.VAR_DIR) / "admin-password.txt"
        if not users.filter(is_superuser=True).exists():
            password = os.environ.get("FLOWYARD_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            users.create_superuser("admin", email="", password=password)
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
            self.stdout.write(f"Created the superuser 'admin' with the password: {password}")
        where = f" (the password is in {password_file})" if password_file.exists() else ""
        self.stdout.write(f"Log in at http://127.0.0.1:8000/admin/ as admin{where}.")
