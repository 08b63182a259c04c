"""Runtime speed: raw Dramatiq against Flowyard on the same broker, worker and database.

    .venv/bin/python -m benchmarks.runtime [--threads 8] [--steps 2000] [--chain 500]
                                           [--fanout 10000] [--keep-db]

One worker process (`dramatiq` with Flowyard's actors and the raw baseline's, 8 threads) on
RabbitMQ, PostgreSQL in a scratch database (``flowyard_bench``: created, migrated, dropped at
the end) so real data is never touched. Measures:

1. no-op throughput: 2,000 raw messages vs a run of 2,000 parallel ``noop`` steps.
2. per-hop latency: a chain of 500 raw messages (each enqueues the next) vs a 500-step chain;
   a hop is "finish of n -> start of n+1" from recorded timestamps (the actor's own for raw,
   StepRun.finished_at / started_at for Flowyard).
3. a 10,000-instance for_each plus a fan-in step: wall time and the worker's memory growth
   (VmHWM after, reset before through /proc/PID/clear_refs, minus VmRSS before).

The raw side detects completion with a Redis INCR per message (Redis is only its scoreboard);
Flowyard's rows are its own record. Every figure is printed with its target and PASS/FAIL.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
RAW_TARGET_RATIO = 0.5
HOP_TARGET_MS = 3.0
RSS_TARGET_MB = 100.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--amqp", default=os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    )
    parser.add_argument(
        "--redis", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--db-name", default="flowyard_bench")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--chain", type=int, default=500)
    parser.add_argument("--fanout", type=int, default=10_000)
    parser.add_argument("--keep-db", action="store_true", help="leave flowyard_bench in place")
    parser.add_argument("--skip", nargs="*", default=[], choices=["noop", "chain", "fanout"])
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="record the worker with py-spy during each Flowyard measurement (collapsed stacks)",
    )
    return parser.parse_args()


# --- environment -------------------------------------------------------------------------------


def scratch_database(admin_url: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def private_vhost(base_url: str) -> tuple[str, str | None]:
    """A RabbitMQ vhost of the benchmark's own (rabbitmqctl), so no test session's workers take
    its messages, nor it theirs: (URL, vhost name), or (``base_url``, None) if not allowed."""
    name = f"flowyard-bench-{os.getpid()}"
    try:
        made = subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], capture_output=True)
    except OSError:
        return base_url, None
    if made.returncode != 0:
        return base_url, None
    user = unquote(urlsplit(base_url).username or "guest")
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", name, user, ".*", ".*", ".*"],
                   capture_output=True)  # fmt: skip
    return urlunsplit(urlsplit(base_url)._replace(path="/" + quote(name, safe=""))), name


def purge(amqp_url: str, queues: list[str]) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        for queue in queues:
            for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                channel = connection.channel()
                try:
                    channel.queue_purge(name)
                    channel.close()
                except pika.exceptions.ChannelClosedByBroker:
                    pass
    finally:
        connection.close()


def start_worker(threads: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    dramatiq_cli = Path(sys.executable).with_name("dramatiq")
    args = [str(dramatiq_cli), "--processes", "1", "--threads", str(threads),
            "django_dramatiq.setup", "django_dramatiq.tasks", "engine.runtime.actors",
            "benchmarks.raw_actors"]  # fmt: skip
    return subprocess.Popen(
        args, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def worker_child(master: int) -> int:
    """The worker process (the dramatiq master's child), found through /proc."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                return int(entry.name)
    raise RuntimeError(f"no worker process under {master}")


def memory_kb(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux >= 4.0); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, poll: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(poll)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --- workloads -------------------------------------------------------------------------------


def parallel_yaml(n: int) -> str:
    lines = ["name: bench-parallel", "steps:"]
    lines += [f"  s{i}: {{uses: noop}}" for i in range(n)]
    return "\n".join(lines) + "\n"


def chain_yaml(n: int) -> str:
    lines = ["name: bench-chain", "steps:", "  s0: {uses: noop}"]
    lines += [f"  s{i}: {{uses: noop, needs: [s{i - 1}]}}" for i in range(1, n)]
    return "\n".join(lines) + "\n"


def fanout_yaml(n: int) -> str:
    return (
        "name: bench-fanout\n"
        "steps:\n"
        "  each:\n"
        f"    for_each: ${{{{ range({n}) | list }}}}\n"
        "    uses: noop\n"
        "    with: {i: '${{ item }}'}\n"
        "  gather:\n"
        "    uses: noop\n"
        "    with: {count: '${{ steps.each.outputs | length }}'}\n"
    )


class Profiler:
    """py-spy recording the worker process while a measurement runs (``--profile DIR``)."""

    def __init__(self, directory: str | None, pid: int) -> None:
        self.directory = Path(directory) if directory else None
        self.pid = pid
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, name: str) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        spy = Path(sys.executable).with_name("py-spy")
        out = self.directory / f"{name}.txt"
        self.proc = subprocess.Popen(
            [str(spy), "record", "--pid", str(self.pid), "--format", "raw", "--rate", "250",
             "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1)  # py-spy attaches

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(2)
            self.proc.wait(timeout=30)
            self.proc = None


PROFILER: Profiler | None = None


def flowyard_run(source: str, *, timeout: float, profile: str = "") -> tuple[float, Any]:
    """Store ``source``, start a run, wait for its end: (seconds from start to finish, run)."""
    from engine.models import Run, RunStatus
    from engine.services import run_start, workflow_publish

    version = workflow_publish(source=source).version
    if profile and PROFILER is not None:
        PROFILER.start(profile)
    began = time.time()
    run = run_start(version=version, inputs={})
    done = wait_for(
        lambda: Run.objects.filter(pk=run.pk, status__in=RunStatus.finished()).first(),
        timeout=timeout,
        what=f"run {run.pk}",
        poll=0.01,
    )
    if profile and PROFILER is not None:
        PROFILER.stop()
    if done.status != RunStatus.SUCCEEDED:
        raise SystemExit(f"run {run.pk} {done.status}: {done.error}")
    return done.finished_at.timestamp() - began, done


def raw_throughput(n: int, scoreboard: Any) -> float:
    from benchmarks.raw_actors import bench_noop

    key = f"bench:{uuid.uuid4().hex}"
    began = time.time()
    for _ in range(n):
        bench_noop.send(key, n)
    done = wait_for(lambda: scoreboard.get(f"{key}:done"), timeout=300, what="raw messages")
    scoreboard.delete(f"{key}:count", f"{key}:done")
    return n / (float(done) - began)


def raw_hops(n: int, scoreboard: Any) -> list[float]:
    from benchmarks.raw_actors import bench_chain

    key = f"bench:{uuid.uuid4().hex}"
    bench_chain.send(key, 0, n)
    wait_for(lambda: scoreboard.get(f"{key}:done"), timeout=300, what="the raw chain")
    records = {}
    for item in scoreboard.lrange(f"{key}:hops", 0, -1):
        index, started, finished = item.decode().split()
        records[int(index)] = (float(started), float(finished))
    scoreboard.delete(f"{key}:hops", f"{key}:done")
    return [(records[i + 1][0] - records[i][1]) * 1000 for i in range(n - 1)]


def flowyard_hops(run: Any) -> list[float]:
    from engine.models import StepRun

    rows = dict(
        (int(step_id[1:]), (started, finished))
        for step_id, started, finished in StepRun.objects.filter(run=run).values_list(
            "step_id", "started_at", "finished_at"
        )
    )
    return [(rows[i + 1][0] - rows[i][1]).total_seconds() * 1000 for i in range(len(rows) - 1)]


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    db_url = f"{args.postgres}/{args.db_name}"
    amqp, vhost = private_vhost(args.amqp)
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        BROKER_URL=amqp,
        BENCH_REDIS_URL=args.redis,
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=env.get("SECRET_KEY") or "benchmark-only-secret-key",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO),
    )
    os.environ.update(env)
    scratch_database(args.postgres, args.db_name)
    import django

    sys.path.insert(0, str(REPO))
    django.setup()
    import redis
    from django.core.management import call_command

    import benchmarks.raw_actors  # noqa: F401  (declares the raw actors on the broker)
    import engine.runtime.actors  # noqa: F401
    from engine.models import WorkerHeartbeat

    call_command("migrate", verbosity=0)
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # "no queue" while purging is fine
    purge(amqp, ["flowyard.default", "flowyard.control", "bench.raw"])
    scoreboard = redis.Redis.from_url(args.redis)
    log = Path(os.environ.get("BENCH_WORKER_LOG", "/tmp/flowyard-bench-worker.log"))
    worker = start_worker(args.threads, env, log)
    results: list[bool] = []
    try:
        wait_for(WorkerHeartbeat.objects.exists, timeout=60, what="the worker", poll=0.2)
        pid = worker_child(worker.pid)
        global PROFILER
        PROFILER = Profiler(args.profile, pid)
        print(
            f"setup: RabbitMQ {amqp.split('@')[-1]}, one worker process (pid {pid}) with "
            f"{args.threads} threads, PostgreSQL {args.db_name}; raw completion: Redis INCR"
        )
        # Warm up both paths (imports, connections, plan caches) outside the measurements.
        raw_throughput(200, scoreboard)
        flowyard_run(parallel_yaml(50), timeout=60)

        if "noop" not in args.skip:
            raw = raw_throughput(args.steps, scoreboard)
            seconds, _ = flowyard_run(parallel_yaml(args.steps), timeout=600, profile="noop")
            flow = args.steps / seconds
            ok = flow >= RAW_TARGET_RATIO * raw
            results.append(ok)
            print(
                f"noop throughput ({args.steps} parallel): raw {raw:.0f} msg/s, flowyard "
                f"{flow:.0f} steps/s, ratio {flow / raw:.2f} (target ≥ {RAW_TARGET_RATIO}) "
                f"{verdict(ok)}"
            )

        if "chain" not in args.skip:
            raw_ms = raw_hops(args.chain, scoreboard)
            _, run = flowyard_run(chain_yaml(args.chain), timeout=600, profile="chain")
            flow_ms = flowyard_hops(run)
            median = statistics.median(flow_ms)
            ok = median <= HOP_TARGET_MS
            results.append(ok)
            p90 = statistics.quantiles(flow_ms, n=10)[-1]
            raw_p90 = statistics.quantiles(raw_ms, n=10)[-1]
            raw_median = statistics.median(raw_ms)
            print(
                f"chain hop latency ({args.chain} steps): raw median {raw_median:.2f}"
                f" ms (p90 {raw_p90:.2f}), flowyard median {median:.2f} ms (p90 {p90:.2f}) "
                f"(target ≤ {HOP_TARGET_MS:g} ms) {verdict(ok)}"
            )

        if "fanout" not in args.skip:
            before = memory_kb(pid)
            reset = reset_peak(pid)
            seconds, run = flowyard_run(fanout_yaml(args.fanout), timeout=1800, profile="fanout")
            after = memory_kb(pid)
            growth = max(after["VmHWM"] - before["VmRSS"], 0) / 1024
            ok = growth < RSS_TARGET_MB
            results.append(ok)
            gathered = run.steps.get(step_id="gather").outputs
            print(
                f"fan-out {args.fanout} instances + fan-in: {seconds:.1f} s "
                f"({args.fanout / seconds:.0f} instances/s, gather saw {gathered['count']}); "
                f"worker RSS {before['VmRSS'] / 1024:.0f} MB before, peak "
                f"{after['VmHWM'] / 1024:.0f} MB after{'' if reset else ' (peak not reset)'}, "
                f"growth {growth:.0f} MB (target < {RSS_TARGET_MB:g} MB) {verdict(ok)}"
            )
    finally:
        try:
            os.killpg(worker.pid, 15)
            worker.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(worker.pid, 9)
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            scratch_database(args.postgres, args.db_name, drop_only=True)
        if vhost:
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)
    print(f"overall: {sum(results)}/{len(results)} targets met")


if __name__ == "__main__":
    main()
