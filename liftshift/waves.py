"""Waves: tables grouped so parents move before children, balanced by size."""

import graphlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Edge:
    """A foreign key seen as a dependency: child references parent."""

    child: str
    parent: str
    name: str
    nullable: bool


@dataclass(frozen=True)
class WavePlan:
    """Tables per wave (wave 1 first), and the cycles broken to order them."""

    waves: list[list[str]]
    broken: list[str] = field(default_factory=list)

    def wave_of(self, table: str) -> int:
        """The 1-based wave a table is in."""
        return next(i for i, tables in enumerate(self.waves, 1) if table in tables)


def plan_waves(sizes: dict[str, int], edges: list[Edge], max_wave_bytes: int | None) -> WavePlan:
    """Order tables into waves: every table after its parents; at most max_wave_bytes a wave.

    Self-references and references to tables outside `sizes` impose no order. A cycle is
    broken at one of its foreign keys (a nullable one first, as its rows can be linked up
    after both tables have moved) and reported.
    """
    kept = [e for e in edges if e.child != e.parent and e.child in sizes and e.parent in sizes]
    kept, broken = _break_cycles(sorted(sizes), kept)
    parents: dict[str, set[str]] = {t: set() for t in sizes}
    for e in kept:
        parents[e.child].add(e.parent)
    order = list(graphlib.TopologicalSorter(parents).static_order())
    return WavePlan(_assign(order, parents, sizes, max_wave_bytes), broken)


def _break_cycles(tables: list[str], edges: list[Edge]) -> tuple[list[Edge], list[str]]:
    """Drop one edge per cycle until the graph is acyclic; describe each drop."""
    broken: list[str] = []
    while True:
        graph: dict[str, set[str]] = {t: set() for t in tables}
        for e in edges:
            graph[e.child].add(e.parent)
        try:
            graphlib.TopologicalSorter(graph).prepare()
            return edges, broken
        except graphlib.CycleError as exc:
            cycle: list[str] = exc.args[1]
        # graphlib lists the cycle so that each table is a parent of the next one.
        members = {(child, parent) for parent, child in zip(cycle, cycle[1:], strict=False)}
        in_cycle = [e for e in edges if (e.child, e.parent) in members]
        victim = min(in_cycle, key=lambda e: (not e.nullable, e.child, e.parent, e.name))
        edges = [e for e in edges if e != victim]
        path = " → ".join(reversed(cycle))
        how = "nullable" if victim.nullable else "NOT NULL"
        broken.append(
            f"cycle {path}: broken at {victim.child}.{victim.name} → {victim.parent} ({how} foreign key); "
            f"{victim.child} may move before {victim.parent}"
        )


def _assign(
    order: list[str], parents: dict[str, set[str]], sizes: dict[str, int], limit: int | None
) -> list[list[str]]:
    """Put each table in the earliest wave after its parents' that has room for it."""
    waves: list[list[str]] = []
    load: list[int] = []
    placed: dict[str, int] = {}
    depth: dict[str, int] = {}
    for table in order:  # parents come first in a topological order
        depth[table] = 1 + max((depth[p] for p in parents[table]), default=-1)
    for table in sorted(order, key=lambda t: (depth[t], -sizes[t], t)):
        wave = 1 + max((placed[p] for p in parents[table]), default=0)
        while (
            wave <= len(waves)
            and limit is not None
            and load[wave - 1]
            and (load[wave - 1] + sizes[table] > limit)
        ):
            wave += 1
        while len(waves) < wave:
            waves.append([])
            load.append(0)
        waves[wave - 1].append(table)
        load[wave - 1] += sizes[table]
        placed[table] = wave
    return [sorted(w) for w in waves]
