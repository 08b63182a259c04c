"""The embedded mode on SQLite: the hot path's portable statements, in a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SCRIPT = """
from engine.runtime.embedded import EmbeddedWorker, run_wait
from engine.services import run_start, workflow_publish

source = '''name: smoke
steps:
  a: {uses: noop, with: {x: 1}}
  each:
    for_each: [1, 2, 3]
    if: item != 2
    max_parallel: 2
    uses: noop
    with: {n: '${{ item }}'}
  b:
    uses: noop
    needs: [a, each]
    with: {y: '${{ steps.a.outputs.x + 1 }}', n: '${{ steps.each.outputs | length }}'}
finally:
  f: {uses: noop, with: {s: '${{ steps.b.status }}'}}
'''
with EmbeddedWorker(threads=2, reconcile_every=None, poll_ms=20):
    run = run_start(version=workflow_publish(source=source).version, inputs={})
    run = run_wait(run, timeout=30)
steps = {s.step_id: s.outputs for s in run.steps.filter(index__isnull=True)}
print("RESULT", run.status, steps["each"], steps["b"], steps["f"])
"""


def test_a_workflow_runs_on_the_embedded_worker_with_sqlite(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'flowyard.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "sqlite-smoke-test",
    }
    env.pop("BROKER_URL", None)
    manage = [sys.executable, str(REPO / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=REPO, env=env, check=True, timeout=120)
    done = subprocess.run(
        [*manage, "shell", "-c", SCRIPT],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        "RESULT succeeded [{'n': 1}, None, {'n': 3}] {'y': 2, 'n': 3} {'s': 'succeeded'}"
        in done.stdout
    )
