"""Projection views as SQL over each batch of new events (the `new_events` table).

Every view is order-insensitive across partitions (aggregates and upserts keyed by subject),
so a replay from Kafka, whose partitions interleave differently each time, and a replay
from the archive build identical tables. Add a view by adding a `View` to `VIEWS`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class View:
    name: str
    ddl: str
    apply: tuple[str, ...]


RALLIES = View(
    "rallies",
    """CREATE TABLE IF NOT EXISTS rallies (
        rally VARCHAR PRIMARY KEY, lim INTEGER, pings INTEGER, pongs INTEGER,
        last_ping INTEGER, last_pong INTEGER)""",
    ("""INSERT INTO rallies
        SELECT subject, max(CAST(data->>'limit' AS INTEGER)),
               count(*) FILTER (type = 'Ping'), count(*) FILTER (type = 'Pong'),
               max(CAST(data->>'n' AS INTEGER)) FILTER (type = 'Ping'),
               max(CAST(data->>'n' AS INTEGER)) FILTER (type = 'Pong')
        FROM new_events WHERE type IN ('Ping', 'Pong') GROUP BY subject
        ON CONFLICT (rally) DO UPDATE SET
            lim = greatest(rallies.lim, excluded.lim),
            pings = rallies.pings + excluded.pings,
            pongs = rallies.pongs + excluded.pongs,
            last_ping = greatest(rallies.last_ping, excluded.last_ping),
            last_pong = greatest(rallies.last_pong, excluded.last_pong)""",),
)

EVENT_COUNTS = View(
    "event_counts",
    """CREATE TABLE IF NOT EXISTS event_counts (
        type VARCHAR, cycle INTEGER, n BIGINT, PRIMARY KEY (type, cycle))""",
    ("""INSERT INTO event_counts
        SELECT type, coalesce(cycle, -1), count(*) FROM new_events GROUP BY ALL
        ON CONFLICT (type, cycle) DO UPDATE SET n = event_counts.n + excluded.n""",),
)

VIEWS: tuple[View, ...] = (EVENT_COUNTS, RALLIES)
