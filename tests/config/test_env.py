"""Settings read from the environment fail loudly, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_broker_url, env_database, env_int
from tests.conftest import REPO


def test_a_boolean_accepts_the_usual_spellings(monkeypatch):
    monkeypatch.setenv("DEBUG", "yes")
    assert env_bool("DEBUG") is True
    monkeypatch.setenv("DEBUG", "0")
    assert env_bool("DEBUG") is False


def test_a_bad_boolean_names_the_variable(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match=r"DEBUG='maybe' is not a boolean"):
        env_bool("DEBUG")


def test_a_bad_number_names_the_variable(monkeypatch):
    monkeypatch.setenv("FLOWYARD_MAX_OUTPUT_BYTES", "1MB")
    with pytest.raises(ImproperlyConfigured, match="FLOWYARD_MAX_OUTPUT_BYTES='1MB'"):
        env_int("FLOWYARD_MAX_OUTPUT_BYTES", 1)


def test_a_broker_url_must_be_amqp_or_redis(monkeypatch):
    monkeypatch.setenv("BROKER_URL", "kafka://localhost")
    with pytest.raises(ImproperlyConfigured, match=r"BROKER_URL='kafka://localhost'.*amqp://"):
        env_broker_url("BROKER_URL")
    monkeypatch.setenv("BROKER_URL", "")
    assert env_broker_url("BROKER_URL") is None


def test_a_database_url_is_parsed_or_rejected(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db:5432/flowyard")
    assert env_database("DATABASE_URL", "")["ENGINE"] == "django.db.backends.postgresql"
    monkeypatch.setenv("DATABASE_URL", "nonsense://x")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL='nonsense://x'"):
        env_database("DATABASE_URL", "")


def start_django(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "BROKER_URL"}}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_up_stops_without_a_secret_key_in_production():
    result = start_django(DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_start_up_stops_on_a_bad_broker_url():
    result = start_django(DEBUG="true", BROKER_URL="http://nope")
    assert result.returncode != 0
    assert "BROKER_URL='http://nope'" in result.stderr
