"""Options shared by several commands, so each is spelled and explained once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Bootstrap = Annotated[
    str | None,
    typer.Option(
        "--bootstrap", envvar="SLEEPWAKE_BOOTSTRAP",
        help="host:port of an external Kafka; without it an embedded broker is started.",
    ),
]
Partitions = Annotated[
    int, typer.Option("--partitions", envvar="SLEEPWAKE_PARTITIONS", min=1,
                      help="Partitions per topic when topics are created.")
]
Db = Annotated[
    Path, typer.Option("--db", envvar="SLEEPWAKE_DB", help="The projector's DuckDB file.")
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log every agent decision.")]
