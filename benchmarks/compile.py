"""How long the language core takes to load, validate and compile a 5,000-step workflow.

Run: ``python -m benchmarks.compile [--steps N] [--runs R] [--profile]``. The target is under
one second on a two-core machine. The first compile of a process also builds the cached
schema validator; it is timed apart ("first") and left out of best and median.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import time

from engine.dsl import compile_workflow
from engine.dsl.expressions.syntax import parse, scan

ACTIONS = ("shell", "http", "python", "noop")


def workflow_text(steps: int = 5000, *, seed: int = 7) -> str:
    """A valid workflow of ``steps`` steps: needs, fan-outs, conditions, references."""
    rng = random.Random(seed)
    lines = [
        "name: benchmark",
        "description: A generated workflow for timing the compiler",
        "labels: {team: platform, size: large}",
        "inputs:",
        "  day: {type: string, format: date, default: '2024-01-31'}",
        "  threshold: {type: number, default: 0.5, minimum: 0}",
        "env: {REPORT_DIR: /tmp/reports}",
        "on:",
        "  schedule:",
        "    - {cron: '0 3 * * *', timezone: Europe/London, inputs: {threshold: 0.7}}",
        "  webhook: true",
        "concurrency: {limit: 1, on_limit: queue}",
        "timeout: 2h",
        "defaults: {retry: {max_attempts: 3, delay: 5s, backoff: exponential}, timeout: 10m}",
        "steps:",
    ]
    for index in range(steps):
        earlier = [f"s{rng.randrange(index)}" for _ in range(rng.randint(0, 3))] if index else []
        needs, reads = earlier[:1], sorted(set(earlier[1:]))
        lines.append(f"  s{index}:")
        if needs:
            lines.append(f"    needs: [{needs[0]}]")
        ref = f"${{{{ steps.{reads[0]}.outputs.value }}}}" if reads else "${{ inputs.day }}"
        action = ACTIONS[index % len(ACTIONS)]
        lines.append(f"    uses: {action}")
        if action == "shell":
            lines.append(f'    with: {{run: "process --day {ref} --part {index}"}}')
        elif action == "http":
            lines.append(
                f"    with: {{method: POST, url: 'https://example.org/{index}', "
                f'json: "{ref}", timeout: 30s}}'
            )
        elif action == "python":
            lines.append(f'    with: {{function: reports.part, kwargs: {{source: "{ref}"}}}}')
        else:
            lines.append(f'    with: {{value: "{ref}", index: {index}}}')
        if len(reads) > 1:
            lines.append(f"    if: ${{{{ steps.{reads[1]}.outputs.rows > 0 }}}}")
        if index % 10 == 5:
            lines.append(f"    for_each: ${{{{ steps.s{index - 1}.outputs.items }}}}")
            lines.append("    max_parallel: 4")
            lines.append("    runs_on: {device: '${{ item.name }}'}")
        if index % 25 == 7:
            lines.append("    matrix: {size: [small, large], format: [pdf, html]}")
        if index % 5 == 0:
            lines.append("    retry: {max_attempts: 5, delay: 1s}")
            lines.append("    timeout: 15m")
            lines.append("    outputs: {value: '${{ result.value }}', rows: 1}")
    lines += [
        "finally:",
        "  tidy: {uses: shell, with: {run: 'rm -rf $REPORT_DIR'}}",
        f"outputs: {{last: '${{{{ steps.s{steps - 1}.outputs.value }}}}'}}",
    ]
    return "\n".join(lines) + "\n"


def _forget_expressions() -> None:
    # Each run compiles as if the expressions were new: the caches must not hide the cost.
    from engine.dsl import references

    references._cache.clear()
    parse.cache_clear()
    scan.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print the top functions")
    options = parser.parse_args()
    text = workflow_text(options.steps)
    start = time.perf_counter()
    plan = compile_workflow(text)
    first = time.perf_counter() - start
    assert len(plan.steps) == options.steps
    timings = []
    for _ in range(options.runs):
        _forget_expressions()
        start = time.perf_counter()
        compile_workflow(text)
        timings.append(time.perf_counter() - start)
    if options.profile:
        _forget_expressions()
        profile = cProfile.Profile()
        profile.runcall(compile_workflow, text)
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)
    print(
        f"compile {options.steps} steps: median {statistics.median(timings):.2f} s "
        f"(best {min(timings):.2f} s) over {options.runs} runs"
    )
    print(
        f"  ({len(text) / 1024:.0f} KiB of YAML; the first compile, which also builds the "
        f"cached validator, took {first:.2f} s)"
    )


if __name__ == "__main__":
    main()
