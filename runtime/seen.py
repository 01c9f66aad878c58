"""The ids an agent has handled, bounded by log position: kept per cycle, not forever.

Duplicates come from redelivery (at most the batches not yet committed) and from producers
re-emitting derived ids; both are near the live edge of the log. So ids are kept for the
last `cycles` cycles (by the events' own correlation ids, never by arrival order), and ids of
events outside any cycle in a FIFO of bounded size. An older duplicate that slips through is
re-decided into the same derived ids, which the projector's archive dedupes.
"""

from __future__ import annotations

from collections import OrderedDict

from events.codec import AnyEnvelope
from events.envelope import cycle_of


class Seen:
    def __init__(self, cycles: int = 32, others: int = 100_000) -> None:
        self.cycles = cycles
        self.others = others
        self._by_cycle: dict[int, set[str]] = {}
        self._other: OrderedDict[str, None] = OrderedDict()
        self._newest = -1

    def __contains__(self, event: AnyEnvelope) -> bool:
        eid, cycle = str(event.id), cycle_of(event.correlationid)
        if cycle is None:
            return eid in self._other
        return eid in self._by_cycle.get(cycle, ())

    def __len__(self) -> int:
        return len(self._other) + sum(len(ids) for ids in self._by_cycle.values())

    def add(self, event: AnyEnvelope) -> None:
        eid, cycle = str(event.id), cycle_of(event.correlationid)
        if cycle is None:
            self._other[eid] = None
            while len(self._other) > self.others:
                self._other.popitem(last=False)
            return
        self._by_cycle.setdefault(cycle, set()).add(eid)
        if cycle > self._newest:
            self._newest = cycle
            for old in [c for c in self._by_cycle if c <= cycle - self.cycles]:
                del self._by_cycle[old]

    def discard(self, event: AnyEnvelope) -> None:
        eid, cycle = str(event.id), cycle_of(event.correlationid)
        if cycle is None:
            self._other.pop(eid, None)
        else:
            self._by_cycle.get(cycle, set()).discard(eid)
