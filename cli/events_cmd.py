"""`sleepwake events ...`: the catalogue as JSON Schema, AsyncAPI and a topic map."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from events.catalogue import PAYLOADS
from events.envelope import Envelope
from events.topology import BUILTIN, SYSTEM

app = typer.Typer(help="Inspect the event catalogue and the topic map.", no_args_is_help=True)


@app.command()
def schema(
    out: Annotated[Path, typer.Option(help="Folder for one <Type>.v<N>.json file per type.")] = (
        Path("schemas")
    ),
) -> None:
    """Write the JSON Schema of every event type (envelope with its typed payload)."""
    out.mkdir(parents=True, exist_ok=True)
    for payload in PAYLOADS:
        doc = Envelope[payload].model_json_schema()  # type: ignore[valid-type]
        (out / f"{payload.TYPE}.v{payload.VERSION}.json").write_text(json.dumps(doc, indent=2))
    typer.echo(f"wrote {len(PAYLOADS)} schemas to {out}/")


@app.command()
def topics() -> None:
    """Print which agent produces what, on which topic, and whom it reads."""
    for spec in SYSTEM:
        kinds = ", ".join(p.TYPE for p in spec.produces)
        typer.echo(f"{spec.topic:28} {spec.name:16} emits {kinds}")
        if spec.consumes:
            typer.echo(f"{'':28} {'':16} reads {', '.join(spec.consumes)}")


@app.command()
def asyncapi(
    agent: Annotated[str, typer.Argument(
        help="Agent name: a module under agents/ (e.g. pinger) or an installed plug-in agent.")],
    out: Annotated[Path, typer.Option(help="Output JSON file.")] = Path("asyncapi.json"),
) -> None:
    """Write the AsyncAPI document of one agent's FastStream app."""
    import importlib

    from agents.registry import pure_agent

    if agent in {spec.name for spec in BUILTIN}:
        app = importlib.import_module(f"agents.{agent}").app
    elif agent in {spec.name for spec in SYSTEM}:
        app = pure_agent(agent).app  # a plug-in: built from its spec and policy alone
    else:
        names = ", ".join(spec.name for spec in SYSTEM)
        typer.echo(f"error: no agent named {agent!r}; the system has {names}", err=True)
        raise typer.Exit(2)
    spec = app.schema.to_specification()
    out.write_text(spec.to_json())
    typer.echo(f"wrote {out}")
