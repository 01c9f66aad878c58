"""The Dash app: a layout of four charts and two tables, refreshed by one callback.

Each refresh reads one snapshot of the projection (`dashboard.source`) and redraws only when
the projection has grown or the gap map's cycle was changed. The per-cycle numbers are
also a plain table (`#cycle-table`) and JSON (`GET /api/summary`), so they can be read
exactly, by a person, a script or a test.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import dash
from dash import Input, Output, State, dcc, html
from flask import Response, jsonify

from dashboard import data, figures
from dashboard.source import Source, SourceError

GRAPHS = ("metrics", "states", "gap-map", "training")
CELL = {"padding": "2px 8px", "borderBottom": "1px solid #eee", "textAlign": "right"}
HEAD = {**CELL, "borderBottom": "2px solid #ccc", "fontWeight": "600"}
PANEL = {"background": "white", "borderRadius": "6px", "padding": "6px",
         "boxShadow": "0 1px 3px rgba(0,0,0,0.12)", "minWidth": "0"}
GRID = {"display": "grid", "gridTemplateColumns": "1fr 1fr", "gap": "12px",
        "marginBottom": "12px"}


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def cycle_table(rows: list[data.CycleRow]) -> list[Any]:
    """Per cycle, the numbers the charts draw (latest cycle first)."""
    head = ("cycle", "queries", "graded", "accuracy", "escalation rate", "cost/query",
            "gap mass", "asleep or on canary")
    body = [html.Tr([html.Td(str(r.cycle), style=CELL), html.Td(str(r.queries), style=CELL),
                     html.Td(str(r.graded), style=CELL), html.Td(_fmt(r.accuracy), style=CELL),
                     html.Td(_fmt(r.escalation_rate), style=CELL),
                     html.Td(_fmt(r.cost_per_query), style=CELL),
                     html.Td(_fmt(r.gap_mass), style=CELL),
                     html.Td(r.away, style={**CELL, "textAlign": "left"})],
                    id=f"cycle-{r.cycle}")
            for r in reversed(rows)]
    return [html.Thead(html.Tr([html.Th(h, style=HEAD) for h in head])), html.Tbody(body)]


def dead_letter_table(rows: list[data.DeadLetterRow], count: int) -> list[Any]:
    if not count:
        return [html.P("No dead letters: every record so far became an event.",
                       id="dead-letter-count", style={"color": "#2a7a2a"})]
    head = ("consumer", "topic", "partition", "offset", "reason", "detail")
    body = [html.Tr([html.Td(r.consumer, style=CELL), html.Td(r.topic, style=CELL),
                     html.Td(str(r.partition), style=CELL),
                     html.Td("-" if r.offset is None else str(r.offset), style=CELL),
                     html.Td(r.reason, style=CELL),
                     html.Td(r.detail[:160], style={**CELL, "textAlign": "left"})])
            for r in rows]
    shown = f" (the last {len(rows)} shown)" if count > len(rows) else ""
    return [html.P(f"{_count(count, 'dead letter')}{shown}", id="dead-letter-count",
                   style={"color": "#b03030", "fontWeight": "600"}),
            html.Table([html.Thead(html.Tr([html.Th(h, style=HEAD) for h in head])),
                        html.Tbody(body)], style={"borderCollapse": "collapse",
                                                   "fontSize": "12px"})]


def status_line(source: Source, snap: data.Snapshot) -> str:
    done = snap.cycles[-1].cycle if snap.cycles else None
    cycles = "no cycle yet" if done is None else f"cycles 0 to {done}"
    return (f"{source.label} · {snap.events:,} events · {cycles} · "
            f"{_count(len(snap.episodes), 'sleep episode')} · "
            f"{_count(snap.dead_letter_count, 'dead letter')} · read {time.strftime('%H:%M:%S')}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def layout(source: Source, interval_ms: int) -> html.Div:
    def graph(name: str) -> dcc.Graph:
        return dcc.Graph(id=name, figure=figures.empty("", "loading…"),
                         config={"displaylogo": False})

    return html.Div([
        html.Div([
            html.H2("sleepwake", style={"margin": "0 12px 0 0", "display": "inline-block"}),
            html.Span(source.label, id="status", style={"color": "#555"}),
        ], style={"marginBottom": "10px"}),
        html.Div([html.Div(graph("metrics"), style=PANEL),
                  html.Div(graph("states"), style=PANEL)], style=GRID),
        html.Div([
            html.Div([
                html.Div([html.Span("gap map of cycle ", style={"fontSize": "13px"}),
                          dcc.Dropdown(id="gap-cycle", options=[], value=None,
                                       placeholder="latest", clearable=True,
                                       style={"width": "130px", "display": "inline-block",
                                              "verticalAlign": "middle"})]),
                graph("gap-map")], style=PANEL),
            html.Div(graph("training"), style=PANEL)], style=GRID),
        html.Div([
            html.Div([html.H4("Per cycle", style={"margin": "4px"}),
                      html.Table(id="cycle-table", style={"borderCollapse": "collapse",
                                                          "fontSize": "13px"})],
                     style={**PANEL, "maxHeight": "420px", "overflowY": "auto"}),
            html.Div([html.H4("Dead letters", style={"margin": "4px"}),
                      html.Div(id="dead-letters")],
                     style={**PANEL, "maxHeight": "420px", "overflowY": "auto"})], style=GRID),
        dcc.Interval(id="tick", interval=interval_ms),
        dcc.Store(id="seen"),
    ], style={"fontFamily": "system-ui, sans-serif", "background": "#f4f5f7",
              "padding": "12px 16px"})


def make_app(source: Source, interval_ms: int = 2000) -> dash.Dash:
    """The dashboard over a source; `app.server` is its Flask app."""
    app = dash.Dash(__name__, title="sleepwake", update_title="")
    app.layout = layout(source, interval_ms)

    @app.callback(
        Output("status", "children"), Output("seen", "data"),
        *(Output(g, "figure") for g in GRAPHS),
        Output("cycle-table", "children"), Output("dead-letters", "children"),
        Output("gap-cycle", "options"),
        Input("tick", "n_intervals"), Input("gap-cycle", "value"), State("seen", "data"),
    )
    def refresh(_: int | None, gap_cycle: int | None, seen: list[Any] | None) -> tuple[Any, ...]:
        try:
            snap = source.snapshot()
        except SourceError as exc:
            return (f"{source.label} · {exc}", *(dash.no_update,) * 8)
        key = [*snap.key, gap_cycle]
        if seen == key:  # nothing new: keep the charts (and the reader's zoom) as they are
            return (status_line(source, snap), *(dash.no_update,) * 8)
        return (
            status_line(source, snap), key,
            figures.metrics(snap.cycles, snap.episodes),
            figures.states(snap.states, snap.canaries),
            figures.gap_map(snap.cells, gap_cycle),
            figures.training(snap.curves, snap.episodes),
            cycle_table(snap.cycles),
            dead_letter_table(snap.dead_letters, snap.dead_letter_count),
            [{"label": str(c), "value": c} for c in sorted({c.cycle for c in snap.cells})],
        )

    @app.server.get("/api/summary")
    def api_summary() -> Response | tuple[Response, int]:
        try:
            snap = source.snapshot()
        except SourceError as exc:
            return jsonify({"error": str(exc)}), 503
        return jsonify({"source": source.label, **data.summary(snap)})

    return app


def serve(source: Source, host: str = "127.0.0.1", port: int = 8050,
          interval_ms: int = 2000, quiet: bool = True) -> None:
    """Serve the dashboard until Ctrl-C (Flask's threaded server: a local tool)."""
    if quiet:  # not a line per refresh
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    make_app(source, interval_ms).run(host=host, port=port, debug=False)
