"""`sleepwake zoo`: rebuild the model zoo and print its held-out table."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(help="Build and inspect the local model zoo.", no_args_is_help=True)
console = Console()


@app.command()
def build(
    force: bool = typer.Option(False, help="Retrain every member even if its cache is valid."),
    root: Path | None = typer.Option(  # noqa: B008 (typer's idiom)
        None, help="Directory for the zoo (default: package data)."
    ),
    jobs: int = typer.Option(2, help="Members trained at once (one process and thread each)."),
) -> None:
    """Pretrain every member whose cached weights are missing or stale; report the time."""
    from modelcore.zoo import WEIGHTS_DIR, MemberSpec, build_zoo

    def report(spec: MemberSpec, seconds: float, trained: bool) -> None:
        what = "trained" if trained else "cached"
        console.print(f"{spec.name}: {what} in {seconds:.1f}s")

    t0 = time.perf_counter()
    build_zoo(root=root or WEIGHTS_DIR, force=force, jobs=jobs, on_member=report)
    console.print(f"zoo ready in {time.perf_counter() - t0:.1f}s")


@app.command()
def report(
    n: int = typer.Option(200, help="Held-out tasks per family x level."),
    seed: int = typer.Option(0, help="Seed of the held-out draw."),
) -> None:
    """Print the held-out accuracy table of the shipped zoo (markdown)."""
    from modelcore.zoo_table import zoo_table

    typer.echo(zoo_table(n=n, seed=seed))  # plain: rich would wrap the markdown rows
