"""The dashboard's charts: records of `dashboard.data` in, plotly figures out (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.data import CanaryStep, Cell, Curve, CycleRow, Episode, MemberState, pca_2d

#: One colour per member state, used by the timeline and the episode shading alike.
STATE_COLOURS = {"WORKING": "#9ccc9c", "SLEEPING": "#3b6fb6", "CANARY": "#f0a030"}
CANARY_SYMBOLS = {"CanaryStarted": "triangle-up", "TrafficShifted": "circle",
                  "Promoted": "star", "RolledBack": "x"}
HEIGHT = 330


def _layout(fig: go.Figure, title: str, **kwargs: object) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 15}, "x": 0.01}, template="plotly_white",
        height=HEIGHT, margin={"l": 55, "r": 20, "t": 45, "b": 40},
        legend={"orientation": "h", "y": -0.18, "x": 0}, uirevision=title, **kwargs,
    )
    return fig


def empty(title: str, note: str) -> go.Figure:
    """A titled figure that says why it has nothing to show yet."""
    fig = go.Figure()
    fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 14, "color": "#888"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title)


def metrics(rows: Sequence[CycleRow], episodes: Sequence[Episode]) -> go.Figure:
    """Accuracy, escalation rate, cost per query and gap mass per cycle; episodes shaded
    (blue: a member asleep, orange: its new version on canary)."""
    title = "Per cycle: accuracy, escalation, cost per query, gap mass"
    if not rows:
        return empty(title, "no cycle graded yet")
    x = [r.cycle for r in rows]
    fig = go.Figure()
    for name, values, dash in (
        ("accuracy", [r.accuracy for r in rows], "solid"),
        ("escalation rate", [r.escalation_rate for r in rows], "solid"),
        ("cost / query", [r.cost_per_query for r in rows], "solid"),
        ("gap mass", [r.gap_mass for r in rows], "dot"),
    ):
        if any(v is not None for v in values):
            fig.add_trace(go.Scatter(x=x, y=values, name=name, mode="lines+markers",
                                     line={"dash": dash}, marker={"size": 5}))
    last = max(x)
    for e in episodes:
        due = e.due_cycle if e.due_cycle is not None else last
        fig.add_vrect(x0=e.opened + 0.5, x1=min(due, last) + 0.5, line_width=0, layer="below",
                      fillcolor=STATE_COLOURS["SLEEPING"], opacity=0.12)
        end = min(e.closed if e.closed is not None else last, last)
        if e.outcome == "completed" and e.due_cycle is not None and e.due_cycle < end:
            fig.add_vrect(x0=e.due_cycle + 0.5, x1=end + 0.5, line_width=0,
                          layer="below", fillcolor=STATE_COLOURS["CANARY"], opacity=0.12)
    fig.update_xaxes(title_text="cycle", dtick=1 if last < 20 else None)
    return _layout(fig, title)


def states(rows: Sequence[MemberState], canaries: Sequence[CanaryStep]) -> go.Figure:
    """Each member's state per served cycle (the control phase of cycle c sets cycle c + 1),
    with the canary's steps marked on its row (share in the hover)."""
    title = "Members: working, asleep, on canary"
    if not rows:
        return empty(title, "no control phase yet")
    members = sorted({r.model_id for r in rows})
    fig = go.Figure()
    for state, colour in STATE_COLOURS.items():
        held = [r for r in rows if r.state == state]
        if not held:
            continue
        fig.add_trace(go.Bar(
            orientation="h", y=[r.model_id for r in held], x=[1.0] * len(held),
            base=[r.cycle + 0.5 for r in held], name=state.lower(), marker_color=colour,
            marker_line={"width": 1, "color": "white"},
            customdata=[[r.cycle + 1, r.version] for r in held],
            hovertemplate="%{y}: " + state.lower()
            + " in cycle %{customdata[0]} (version %{customdata[1]})<extra></extra>",
        ))
    for step, symbol in CANARY_SYMBOLS.items():
        mine = [c for c in canaries if c.step == step]
        if not mine:
            continue
        fig.add_trace(go.Scatter(
            x=[c.cycle + 1 for c in mine], y=[c.model_id for c in mine], mode="markers",
            name=_words(step), marker={"symbol": symbol, "size": 11, "color": "#222",
                                       "line": {"width": 1, "color": "white"}},
            customdata=[[c.envelope_id, c.version, _pct(c.share), (c.reason or "")[:120]]
                        for c in mine],
            hovertemplate="%{customdata[0]} %{y} v%{customdata[1]}: " + _words(step)
            + ", share %{customdata[2]}<br>%{customdata[3]}<extra></extra>",
        ))
    fig.update_yaxes(categoryorder="array", categoryarray=members[::-1])
    fig.update_xaxes(title_text="cycle served", dtick=1 if len(rows) < 20 * len(members)
                     else None)
    return _layout(fig, title, barmode="overlay", bargap=0.25)


def gap_map(cells: Sequence[Cell], cycle: int | None) -> go.Figure:
    """The cells of one cycle's gap map, at their centroids projected to 2-D.

    The projection is fitted on the centroids of every cycle so that the axes, and a cell
    that moves little, stay put from cycle to cycle. Colour: the gap G; size: demand."""
    if cycle is None:
        cycle = max((c.cycle for c in cells), default=None)
    title = "Gap map" + ("" if cycle is None else f", cycle {cycle}") + " (cells coloured by G)"
    if cycle is None:
        return empty(title, "no gap map yet")
    plane = pca_2d(np.stack([c.centroid for c in cells]))
    shown = [i for i, c in enumerate(cells) if c.cycle == cycle]
    if not shown:
        return empty(title, f"no cells in cycle {cycle}")
    top = max(max(c.gap for c in cells), 1e-6)
    pad = 0.12 * max(float(np.ptp(plane.xy)), 1e-6)  # room for the labels above the points
    fig = go.Figure(go.Scatter(
        x=plane.xy[shown, 0], y=plane.xy[shown, 1], mode="markers+text",
        text=[cells[i].cell_id for i in shown], textposition="top center",
        marker={"color": [cells[i].gap for i in shown], "colorscale": "YlOrRd", "cmin": 0,
                "cmax": top, "size": [10 + 40 * math.sqrt(cells[i].demand) for i in shown],
                "line": {"width": 1, "color": "#555"},
                "colorbar": {"title": {"text": "G"}, "thickness": 12}},
        customdata=[[cells[i].tier, cells[i].size, cells[i].demand, cells[i].cover,
                     cells[i].solvable_up, cells[i].gap] for i in shown],
        hovertemplate="%{text} (tier %{customdata[0]}): %{customdata[1]} queries, demand "
        "%{customdata[2]:.2f}<br>cover %{customdata[3]:.2f}, solvable up %{customdata[4]:.2f}"
        ", G %{customdata[5]:.3f}<extra></extra>",
        showlegend=False,
    ))
    fig.update_xaxes(title_text=f"PC1 ({plane.explained[0]:.0%})", zeroline=False,
                     range=[plane.xy[:, 0].min() - pad, plane.xy[:, 0].max() + pad])
    fig.update_yaxes(title_text=f"PC2 ({plane.explained[1]:.0%})", zeroline=False,
                     range=[plane.xy[:, 1].min() - pad, plane.xy[:, 1].max() + 2 * pad])
    return _layout(fig, title)


def training(curves: Sequence[Curve], episodes: Sequence[Episode]) -> go.Figure:
    """Each training run's loss against its step (the trainer's heartbeats)."""
    title = "Sleep training: loss per step"
    if not curves:
        return empty(title, "nobody has trained yet")
    who = {e.envelope_id: e for e in episodes}
    fig = go.Figure()
    for c in curves:
        e = who.get(c.envelope_id)
        name = c.envelope_id + (f" · {e.model_id} (slept at {e.opened})" if e else "")
        fig.add_trace(go.Scatter(x=c.steps, y=c.losses, name=name, mode="lines+markers",
                                 marker={"size": 4},
                                 hovertemplate=name + ": step %{x} of " + str(c.total)
                                 + ", loss %{y:.4g}<extra></extra>"))
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="KD loss")
    return _layout(fig, title, showlegend=True)  # names the episode even when it is alone


def _words(step: str) -> str:
    """CanaryStarted -> canary started."""
    return "".join(" " + ch.lower() if ch.isupper() else ch for ch in step).strip()


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"
