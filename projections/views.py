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



def _serving(name: str, columns: str, key: str, source_type: str, select: str) -> View:
    """A table of one serving event type, keyed so that a redelivered event adds nothing."""
    return View(
        name,
        f"CREATE TABLE IF NOT EXISTS {name} ({columns}, PRIMARY KEY ({key}))",
        (f"INSERT INTO {name} SELECT {select} FROM new_events "
         f"WHERE type IN ('{source_type}') ON CONFLICT DO NOTHING",),
    )


Q_RECEIVED = _serving(
    "q_received",
    "query_id VARCHAR, cycle INTEGER, text VARCHAR, family VARCHAR, level VARCHAR, "
    "shadow BOOLEAN, router_cost DOUBLE",
    "query_id", "QueryReceived",
    "data->>'query_id', CAST(data->>'cycle' AS INTEGER), data->>'text', "
    "data->'task'->>'family', data->'task'->>'level', "
    "CAST(data->>'shadow' AS BOOLEAN), coalesce(CAST(data->>'router_cost' AS DOUBLE), 0)",
)
Q_ROUTES = _serving(
    "q_routes",
    "query_id VARCHAR, model_id VARCHAR, tier INTEGER, explored BOOLEAN, shadow BOOLEAN",
    "query_id, model_id", "QueryRouted",
    "data->>'query_id', data->>'model_id', CAST(data->>'tier' AS INTEGER), "
    "CAST(data->>'explored' AS BOOLEAN), CAST(data->>'shadow' AS BOOLEAN)",
)
Q_ANSWERS = _serving(
    "q_answers",
    "query_id VARCHAR, model_id VARCHAR, tier INTEGER, answer VARCHAR, confidence DOUBLE, "
    "cost_norm DOUBLE, cost_flops DOUBLE, shadow BOOLEAN",
    "query_id, model_id, shadow", "ResponseGenerated",
    "data->>'query_id', data->>'model_id', CAST(data->>'tier' AS INTEGER), data->>'answer', "
    "CAST(data->>'confidence' AS DOUBLE), CAST(data->>'cost_norm' AS DOUBLE), "
    "CAST(data->>'cost_flops' AS DOUBLE), CAST(data->>'shadow' AS BOOLEAN)",
)
def _verdicts(name: str, key: str, source_type: str, verdict: str) -> View:
    """Accepted and Escalated share their numbers (p_success, evi, θ)."""
    return _serving(
        name, "query_id VARCHAR, model_id VARCHAR, tier INTEGER, verdict VARCHAR, "
        "p_success DOUBLE, evi DOUBLE, theta DOUBLE", key, source_type,
        f"data->>'query_id', data->>'model_id', CAST(data->>'tier' AS INTEGER), '{verdict}', "
        "CAST(data->>'p_success' AS DOUBLE), CAST(data->>'evi' AS DOUBLE), "
        "CAST(data->>'theta' AS DOUBLE)",
    )


Q_ACCEPTED = _verdicts("q_accepted", "query_id", "Accepted", "accept")
Q_ESCALATED = _verdicts("q_escalated", "query_id, model_id", "Escalated", "escalate")
Q_GRADES = _serving(
    "q_grades",
    "query_id VARCHAR, model_id VARCHAR, final BOOLEAN, shadow BOOLEAN, quality DOUBLE, "
    "success BOOLEAN, method VARCHAR",
    "query_id, model_id, final, shadow", "ResponseGraded",
    "data->>'query_id', data->>'model_id', CAST(data->>'final' AS BOOLEAN), "
    "CAST(data->>'shadow' AS BOOLEAN), CAST(data->>'quality' AS DOUBLE), "
    "CAST(data->>'success' AS BOOLEAN), data->>'method'",
)

# The sleep half: gap history, envelopes, training runs, canary steps, member states.
GAP_CELLS = View(
    "gap_cells",
    """CREATE TABLE IF NOT EXISTS gap_cells (
        cycle INTEGER, tier INTEGER, cell_id VARCHAR, size INTEGER, demand DOUBLE,
        cover DOUBLE, solvable_up DOUBLE, gap DOUBLE, radius DOUBLE, centroid VARCHAR,
        PRIMARY KEY (cycle, tier, cell_id))""",
    ("""INSERT INTO gap_cells
        SELECT CAST(data->>'cycle' AS INTEGER), CAST(data->>'tier' AS INTEGER),
               c->>'cell_id', CAST(c->>'size' AS INTEGER), CAST(c->>'demand' AS DOUBLE),
               CAST(c->>'cover' AS DOUBLE), CAST(c->>'solvable_up' AS DOUBLE),
               CAST(c->>'gap' AS DOUBLE), CAST(c->>'radius' AS DOUBLE), c->>'centroid'
        FROM (SELECT data, unnest(CAST(data->'cells' AS JSON[])) AS c FROM new_events
              WHERE type = 'GapIndexUpdated')
        ON CONFLICT DO NOTHING""",),
)
GAP_MAPS = _serving(
    "gap_maps",
    "cycle INTEGER, tier INTEGER, gap_mass DOUBLE, cells INTEGER, window_size INTEGER, "
    "noise DOUBLE, ari DOUBLE, hardness JSON",
    "cycle, tier", "GapIndexUpdated",
    "CAST(data->>'cycle' AS INTEGER), CAST(data->>'tier' AS INTEGER), "
    "CAST(data->>'gap_mass' AS DOUBLE), json_array_length(data->'cells'), "
    "CAST(data->>'window' AS INTEGER), CAST(data->>'noise' AS DOUBLE), "
    "CAST(data->>'ari' AS DOUBLE), data->'hardness'",
)
ENVELOPES = View(
    "envelopes",
    """CREATE TABLE IF NOT EXISTS envelopes (
        envelope_id VARCHAR PRIMARY KEY, tier INTEGER, opened INTEGER, closed INTEGER,
        reason VARCHAR, train_reserved DOUBLE, infer_reserved DOUBLE, model_id VARCHAR,
        due_cycle INTEGER, step_budget INTEGER, hardness DOUBLE, target_cells JSON)""",
    ("""INSERT INTO envelopes (envelope_id, tier, opened, train_reserved, infer_reserved)
        SELECT data->>'envelope_id', CAST(data->>'tier' AS INTEGER),
               CAST(data->>'cycle' AS INTEGER), CAST(data->>'train_reserved' AS DOUBLE),
               CAST(data->>'infer_reserved' AS DOUBLE)
        FROM new_events WHERE type = 'EnvelopeOpened'
        ON CONFLICT DO UPDATE SET tier = excluded.tier, opened = excluded.opened,
            train_reserved = excluded.train_reserved, infer_reserved = excluded.infer_reserved""",
     """INSERT INTO envelopes (envelope_id, model_id, due_cycle, step_budget, hardness,
                              target_cells)
        SELECT data->>'envelope_id', data->>'model_id', CAST(data->>'due_cycle' AS INTEGER),
               CAST(data->>'step_budget' AS INTEGER), CAST(data->>'hardness' AS DOUBLE),
               data->'target_cells'
        FROM new_events WHERE type = 'SleepStarted'
        ON CONFLICT DO UPDATE SET model_id = excluded.model_id,
            due_cycle = excluded.due_cycle, step_budget = excluded.step_budget,
            hardness = excluded.hardness, target_cells = excluded.target_cells""",
     """INSERT INTO envelopes (envelope_id, closed, reason)
        SELECT data->>'envelope_id', CAST(data->>'cycle' AS INTEGER), data->>'reason'
        FROM new_events WHERE type = 'EnvelopeClosed'
        ON CONFLICT DO UPDATE SET closed = excluded.closed, reason = excluded.reason"""),
)
TRAINING_RUNS = View(
    "training_runs",
    """CREATE TABLE IF NOT EXISTS training_runs (
        envelope_id VARCHAR PRIMARY KEY, model_id VARCHAR, due_cycle INTEGER, outcome VARCHAR,
        version INTEGER, steps INTEGER, train_flops DOUBLE, examples INTEGER, adapter VARCHAR,
        curve JSON, gate JSON, reason VARCHAR)""",
    ("""INSERT INTO training_runs
        SELECT data->>'envelope_id', data->>'model_id', CAST(data->>'cycle' AS INTEGER),
               CASE type WHEN 'TrainingCompleted' THEN 'completed' ELSE 'failed' END,
               CAST(data->>'version' AS INTEGER), CAST(data->>'steps' AS INTEGER),
               CAST(data->>'train_flops' AS DOUBLE), CAST(data->>'examples' AS INTEGER),
               data->'adapters'->0->>'sha256', data->'curve', data->'gate', data->>'reason'
        FROM new_events WHERE type IN ('TrainingCompleted', 'TrainingFailed')
        ON CONFLICT DO NOTHING""",),
)
TRAINING_PROGRESS = _serving(
    "training_progress", "envelope_id VARCHAR, step INTEGER, steps INTEGER, loss DOUBLE",
    "envelope_id, step", "TrainingProgress",
    "data->>'envelope_id', CAST(data->>'step' AS INTEGER), CAST(data->>'steps' AS INTEGER), "
    "CAST(data->>'loss' AS DOUBLE)",
)
CANARY_STEPS = _serving(
    "canary_steps",
    "envelope_id VARCHAR, cycle INTEGER, model_id VARCHAR, version INTEGER, step VARCHAR, "
    "share DOUBLE, target_delta DOUBLE, outside_delta DOUBLE, reason VARCHAR",
    "envelope_id, cycle", "CanaryStarted', 'TrafficShifted', 'Promoted', 'RolledBack",
    "data->>'envelope_id', CAST(data->>'cycle' AS INTEGER), data->>'model_id', "
    "CAST(data->>'version' AS INTEGER), type, CAST(data->>'share' AS DOUBLE), "
    "coalesce(CAST(data->>'target_delta' AS DOUBLE), CAST(data->>'gate_target_delta' AS DOUBLE)), "
    "coalesce(CAST(data->>'outside_delta' AS DOUBLE), "
    "CAST(data->>'gate_outside_delta' AS DOUBLE)), data->>'reason'",
)
MEMBER_STATES = View(
    "member_states",
    """CREATE TABLE IF NOT EXISTS member_states (
        cycle INTEGER, model_id VARCHAR, state VARCHAR, version INTEGER, adapter VARCHAR,
        PRIMARY KEY (cycle, model_id))""",
    ("""INSERT INTO member_states
        SELECT CAST(e.data->>'cycle' AS INTEGER), m.key, m.value->>'state',
               CAST(m.value->>'version' AS INTEGER), m.value->'adapter'->>'sha256'
        FROM new_events e, json_each(e.data->'members') m
        WHERE e.type = 'ControlPhaseCompleted'
        ON CONFLICT DO NOTHING""",),
)
CONTROL_BUDGET = _serving(
    "control_budget", "cycle INTEGER, budget_total DOUBLE, train_used DOUBLE, "
    "infer_reserved DOUBLE, canaries INTEGER", "cycle", "ControlPhaseCompleted",
    "CAST(data->>'cycle' AS INTEGER), CAST(data->>'budget_total' AS DOUBLE), "
    "CAST(data->>'train_used' AS DOUBLE), CAST(data->>'infer_reserved' AS DOUBLE), "
    "json_array_length(data->'canaries')",
)

#: Derived views (SQL VIEWs over the tables above: always consistent, never written).
DERIVED = (
    """CREATE OR REPLACE VIEW queries AS
    SELECT r.query_id, r.cycle, r.text, r.family, r.level, r.shadow,
           route.model_id AS routed_to, route.explored,
           (SELECT list(e.model_id ORDER BY e.tier) FROM q_escalated e
             WHERE e.query_id = r.query_id) AS escalated_from,
           a.model_id AS final_model, a.tier AS final_tier, ans.answer AS final_answer,
           g.quality, g.success, a.p_success,
           r.router_cost::DECIMAL(38, 12) AS router_cost,
           (SELECT sum(x.cost_norm::DECIMAL(38, 12)) FROM q_answers x
             WHERE x.query_id = r.query_id AND NOT x.shadow) AS model_cost,
           (SELECT sum(x.cost_norm::DECIMAL(38, 12)) FROM q_answers x
             WHERE x.query_id = r.query_id AND NOT x.shadow)
             + r.router_cost::DECIMAL(38, 12) AS cost,
           (SELECT coalesce(sum(x.cost_norm::DECIMAL(38, 12)), 0) FROM q_answers x
             WHERE x.query_id = r.query_id AND x.shadow) AS shadow_cost,
           ans.confidence::DECIMAL(38, 12) AS confidence
    FROM q_received r
    LEFT JOIN q_routes route ON route.query_id = r.query_id AND NOT route.shadow
    LEFT JOIN q_accepted a ON a.query_id = r.query_id
    LEFT JOIN q_answers ans
           ON ans.query_id = r.query_id AND ans.model_id = a.model_id AND NOT ans.shadow
    LEFT JOIN q_grades g ON g.query_id = r.query_id AND g.final""",
    # Sums in exact decimals, so a metric is bit-identical whatever order DuckDB stored
    # the rows in (a live run, a Kafka replay and an archive replay store them differently).
    """CREATE OR REPLACE VIEW cycle_metrics AS
    SELECT cycle, count(*) AS queries, count(success) AS graded,
           (sum(CAST(success AS INTEGER)) / count(success))::DOUBLE AS accuracy,
           (sum(CAST(len(coalesce(escalated_from, [])) > 0 AS INTEGER)) / count(*))::DOUBLE
               AS escalation_rate,
           (sum(router_cost) / count(cost))::DOUBLE AS router_cost_per_query,
           (sum(cost) / count(cost))::DOUBLE AS cost_per_query,
           (sum(cost + shadow_cost) / count(cost))::DOUBLE AS cost_with_shadow,
           ((sum(confidence * confidence) - sum(confidence) * sum(confidence)
               / count(confidence)) / nullif(count(confidence) - 1, 0))::DOUBLE
               AS confidence_variance
    FROM queries GROUP BY cycle ORDER BY cycle""",
)

VIEWS: tuple[View, ...] = (
    EVENT_COUNTS, RALLIES, Q_RECEIVED, Q_ROUTES, Q_ANSWERS, Q_ACCEPTED, Q_ESCALATED, Q_GRADES,
    GAP_CELLS, GAP_MAPS, ENVELOPES, TRAINING_RUNS, TRAINING_PROGRESS, CANARY_STEPS,
    MEMBER_STATES, CONTROL_BUDGET,
)
