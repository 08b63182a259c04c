"""Fixtures of the end-to-end tests: real worker processes on RabbitMQ and Redis.

The suite's own process keeps the stub broker; workers, the reconciler and the CLI are
subprocesses bound to a real broker and to the pytest-django test database, so tests use
``transaction=True`` databases (rows must be committed for the subprocesses to see them).
Workers are shared by the tests of a module, and killed with their process group at its end;
the Flowyard queues are purged before and after, so one module's leftovers never reach another.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from engine.models import WorkerHeartbeat
from tests.e2e.harness import (
    AMQP_URL,
    REDIS_URL,
    Group,
    database_url,
    private_vhost,
    process_env,
    purge_broker,
    start_reconciler,
    start_worker,
    wait_until,
    worker_pids,
)


@dataclass
class Cluster:
    """Worker (and reconciler) processes on one broker, and the environment to reach them."""

    broker: str
    env: dict[str, str]
    logs: Path
    threads: int = 4
    workers: list[Group] = field(default_factory=list)
    reconciler: Group | None = None

    @property
    def worker(self) -> Group:
        return self.workers[-1]

    def start_worker(self) -> Group:
        """Start a worker process and wait until it sends heartbeats."""
        group = start_worker(self.env, self.logs, threads=self.threads)
        self.workers.append(group)

        def ready() -> bool:
            if not group.alive():
                raise AssertionError(f"the worker exited:\n{group.output()}")
            pids = set(worker_pids(group))
            return bool(pids) and WorkerHeartbeat.objects.filter(pid__in=pids).exists()

        wait_until(ready, timeout=60, what=f"a {self.broker} worker to start")
        return group

    def start_reconciler(self) -> Group:
        if self.reconciler is None or not self.reconciler.alive():
            self.reconciler = start_reconciler(self.env, self.logs)
        return self.reconciler

    def stop(self) -> None:
        for group in [*self.workers, *([self.reconciler] if self.reconciler else [])]:
            group.stop()
        self.workers.clear()
        self.reconciler = None


@pytest.fixture(scope="session")
def e2e_db_url(django_db_setup: None) -> str:
    """The URL of the pytest-django test database, for the subprocesses."""
    return database_url(connection.settings_dict)


@pytest.fixture(scope="session")
def broker_urls() -> Iterator[dict[str, str]]:
    """The test brokers; RabbitMQ in a vhost of this session's own when rabbitmqctl allows."""
    amqp, delete = private_vhost(AMQP_URL, "flowyard-test")
    try:
        yield {"rabbitmq": amqp, "redis": REDIS_URL}
    finally:
        delete()


@pytest.fixture(scope="session")
def e2e_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(os.environ.get("FLOWYARD_E2E_LOGS") or tmp_path_factory.mktemp("e2e-logs"))


@pytest.fixture(scope="module")
def clusters(
    request: pytest.FixtureRequest,
    e2e_db_url: str,
    e2e_logs: Path,
    broker_urls: dict[str, str],
    django_db_blocker: Any,
) -> Iterator[Callable[[str], Cluster]]:
    """``clusters("rabbitmq")``: the module's cluster on that broker, started on first use.

    A module sets ``WORKER_THREADS`` to change the worker's threads (default 4).
    """
    started: dict[str, Cluster] = {}
    threads = getattr(request.module, "WORKER_THREADS", 4)

    def get(broker: str) -> Cluster:
        if broker not in started:
            purge_broker(broker_urls[broker])
            env = process_env(e2e_db_url, broker_urls[broker])
            cluster = Cluster(broker, env, e2e_logs, threads=threads)
            started[broker] = cluster
            with django_db_blocker.unblock():
                cluster.start_worker()
        return started[broker]

    try:
        yield get
    finally:
        for cluster in started.values():
            cluster.stop()
            purge_broker(broker_urls[cluster.broker])


@pytest.fixture(params=["rabbitmq", "redis"])
def cluster(
    request: pytest.FixtureRequest, transactional_db: None, clusters: Callable[[str], Cluster]
) -> Cluster:
    """A running worker on each real broker in turn (the test runs once per broker)."""
    return clusters(request.param)


@pytest.fixture
def rabbitmq(transactional_db: None, clusters: Callable[[str], Cluster]) -> Cluster:
    return clusters("rabbitmq")


@pytest.fixture
def embedded_env(transactional_db: None, e2e_db_url: str) -> dict[str, str]:
    """The environment of a CLI process without a broker (the embedded worker)."""
    return process_env(e2e_db_url, None)
