"""How a query becomes model input text: light enough for any agent (no torch), so that
costing a query does not load a model library."""

from __future__ import annotations

TEMPLATE = "{query}="


def render(query: str, template: str = TEMPLATE) -> str:
    return template.format(query=query)
