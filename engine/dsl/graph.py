"""The dependency graph of a workflow's steps: edges from `needs` and `${{ steps.<id> }}`.

Pure functions over step ids; the compiler turns what they find into Problems.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def find_cycles(order: Sequence[str], edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of steps, as ``[a, b, …, a]``.

    ``order`` is the file order; each cycle starts at its earliest step, so the messages do not
    change from one compile to the next. Iterative (Tarjan), so 5,000 chained steps are fine.
    A step that depends on itself is not reported here (the compiler words that one).
    """
    position = {node: i for i, node in enumerate(order)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for start in order:
        if start in index:
            continue
        work = [(start, iter(edges.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in position:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, ()))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
    cycles = [_cycle_in(set(group), edges, position) for group in groups]
    return sorted(cycles, key=lambda cycle: position[cycle[0]])


def _cycle_in(
    group: set[str], edges: Mapping[str, Sequence[str]], position: Mapping[str, int]
) -> list[str]:
    """A shortest cycle through the earliest step of a strongly connected group (BFS)."""
    start = min(group, key=position.__getitem__)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(
                (c for c in edges.get(node, ()) if c in group), key=position.__getitem__
            ):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    return [start, start]  # unreachable for a strongly connected group of two or more
