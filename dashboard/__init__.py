"""`sleepwake ui`: a live dashboard of a run, read from a projection like any other reader.

- `dashboard.data`: SQL over the projector's tables into plain records (no Dash, no plotly);
- `dashboard.figures`: records into plotly figures (pure);
- `dashboard.source`: where the projection comes from: the dashboard's own in-memory
  projection of the log (`--bootstrap`), or a finished run's file opened read-only (`--db`);
- `dashboard.app`: the Dash layout and its refresh callback;
- `dashboard.browser`: headless Chromium, to check the page and take its screenshot.

Layering: this package may import projections, runtime, events and agents.config; nothing
imports it but the cli.
"""
