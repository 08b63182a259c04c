"""Raw Dramatiq actors for the benchmark's baseline: no database, one Redis call each.

Completion is detected with a Redis INCR per message (about 0.1 ms), and the chain records
each message's start and finish times in a Redis list; Redis is not the broker here, only
the benchmark's scoreboard. Loaded by the benchmark's worker next to Flowyard's actors.
"""

from __future__ import annotations

import os
import threading
import time

import dramatiq
import redis

RAW_QUEUE = "bench.raw"
_local = threading.local()


def scoreboard() -> redis.Redis:
    """A Redis client per thread (the worker's threads must not share one connection)."""
    client = getattr(_local, "client", None)
    if client is None:
        url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
        client = _local.client = redis.Redis.from_url(url)
    return client


@dramatiq.actor(actor_name="bench_noop", queue_name=RAW_QUEUE)
def bench_noop(key: str, total: int) -> None:
    """Count one message; the last one records when it finished."""
    client = scoreboard()
    if client.incr(f"{key}:count") == total:
        client.set(f"{key}:done", repr(time.time()))


@dramatiq.actor(actor_name="bench_chain", queue_name=RAW_QUEUE)
def bench_chain(key: str, n: int, total: int) -> None:
    """Message ``n`` of a chain: record start and finish, then enqueue message ``n + 1``."""
    started = time.time()
    finished = time.time()
    if n + 1 < total:
        bench_chain.send(key, n + 1, total)
    client = scoreboard()
    client.rpush(f"{key}:hops", f"{n} {started!r} {finished!r}")
    if n + 1 == total:
        client.set(f"{key}:done", repr(finished))
