"""When a cycle's evidence is complete at a consumer: the grader's closing count.

The grader closes cycle c with `CycleGraded(c, grades=n)` once every answer of c is graded
(shadow answers too). Grades travel keyed by query on several partitions, so the closing
event can overtake some of them: a consumer holds cycle c complete only when it has folded
the closing event, n grades of c and the cycle's queries (whose embeddings the evidence
needs; they come from another topic and may be late too). A decision about cycle c uses the
evidence of cycles < c and waits until they are complete — in every mode, so no decision
sees a label of its own cycle, and every decision is a function of the log, whatever the
interleaving.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType

Counts = tuple[int, int]  # (grades, queries)


@dataclass(frozen=True)
class Closure:
    """Grades and queries counted and announced per open cycle; every cycle ≤ `through` is
    complete."""

    through: int = -1
    announced: MappingProxyType[int, Counts] = field(default_factory=lambda: MappingProxyType({}))
    counted: MappingProxyType[int, Counts] = field(default_factory=lambda: MappingProxyType({}))

    def ready(self, cycle: int) -> bool:
        """May a decision about `cycle` be taken (the evidence of every earlier cycle in)?"""
        return self.through >= cycle - 1

    def with_grade(self, cycle: int) -> Closure:
        return self._count(cycle, (1, 0))

    def with_query(self, cycle: int) -> Closure:
        return self._count(cycle, (0, 1))

    def with_closed(self, cycle: int, grades: int, queries: int) -> Closure:
        if cycle <= self.through:
            return self
        announced = {**self.announced, cycle: (grades, queries)}
        return replace(self, announced=MappingProxyType(announced))._advanced()

    def _count(self, cycle: int, add: Counts) -> Closure:
        if cycle <= self.through:
            return self
        g, q = self.counted.get(cycle, (0, 0))
        counted = {**self.counted, cycle: (g + add[0], q + add[1])}
        return replace(self, counted=MappingProxyType(counted))._advanced()

    def _advanced(self) -> Closure:
        through = self.through
        while (want := self.announced.get(through + 1)) is not None:
            got = self.counted.get(through + 1, (0, 0))
            if got[0] < want[0] or got[1] < want[1]:
                break
            through += 1
        if through == self.through:
            return self
        keep = lambda m: MappingProxyType({c: v for c, v in m.items() if c > through})  # noqa: E731
        return Closure(through, keep(self.announced), keep(self.counted))
