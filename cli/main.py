"""The `sleepwake` command line."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import events_cmd, logs, zoo
from cli.options import Bootstrap, Db, Partitions, Verbose

app = typer.Typer(
    help="sleepwake: event-sourced sleep-wake orchestration of language-model cohorts.\n\n"
    "Every command that needs Kafka starts an embedded broker on loopback unless "
    "--bootstrap (or SLEEPWAKE_BOOTSTRAP) names an external one.",
    no_args_is_help=True,
    rich_markup_mode="markdown",  # docstring lines join into paragraphs
)
app.add_typer(events_cmd.app, name="events")
app.add_typer(zoo.app, name="zoo")
topics_app = typer.Typer(help="Create the topics declared in events.topology.",
                         no_args_is_help=True)
app.add_typer(topics_app, name="topics")


@app.command()
def broker(
    port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (default: a free one).")] = (
        None
    ),
    create_topics: Annotated[bool, typer.Option(help="Create all topics once it is up.")] = True,
    partitions: Partitions = 3,
) -> None:
    """Start the embedded Kafka-protocol broker (tansu, memory storage) until Ctrl-C."""
    from runtime.admin import ensure_topics
    from runtime.embedded import EmbeddedBroker

    with EmbeddedBroker(port) as embedded:
        if create_topics:
            ensure_topics(embedded.bootstrap, partitions)
        typer.echo(f"bootstrap: {embedded.bootstrap}")
        typer.echo(f"export SLEEPWAKE_BOOTSTRAP={embedded.bootstrap}   # for other shells")
        stop = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # wait for them instead of dying
        signal.sigwait(stop)
    typer.echo("broker stopped")


@topics_app.command("create")
def topics_create(bootstrap: Bootstrap = None, partitions: Partitions = 3) -> None:
    """Create missing event and dead-letter topics (idempotent; infinite retention)."""
    from runtime.admin import ensure_topics

    if not bootstrap:
        raise typer.BadParameter("needs a running broker: pass --bootstrap host:port")
    created = ensure_topics(bootstrap, partitions)
    typer.echo(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else ""))


def checked_config(path: Path | None, cycles: int | None = None, queries: int | None = None
                   ) -> Any:
    """The run configuration (with --cycles / --queries applied), every installed plug-in's
    settings validated: a bad value stops the command here, with the field and the fix,
    before any agent starts."""
    from agents.config import ConfigError, load_config
    from agents.plugins import plugin_policies

    try:
        cfg = load_config(path)
        traffic = cfg.traffic.model_copy(update={
            k: v for k, v in {"cycles": cycles, "queries_per_cycle": queries}.items() if v})
        cfg = cfg.model_copy(update={"traffic": traffic})
        plugin_policies(cfg)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    return cfg


@app.command()
def run(
    out: Annotated[Path | None, typer.Option(
        "--out", help="Report directory: run.duckdb, report.md and cycles.png (default: "
        "`runs/run-<time>/`; with --db only, `<db name>-report/` beside the file).")] = None,
    db: Annotated[Path | None, typer.Option(
        "--db", help="Fresh DuckDB file for the run (default: `<out>/run.duckdb`).")] = None,
    config: Annotated[Path | None, typer.Option(
        envvar="SLEEPWAKE_CONFIG", help="JSON run configuration (see agents/config.py).")] = None,
    cycles: Annotated[int | None, typer.Option(min=1, help="Override traffic.cycles.")] = None,
    queries: Annotated[int | None, typer.Option(
        min=1, help="Override traffic.queries_per_cycle.")] = None,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 1800.0,
    no_sleep: Annotated[bool, typer.Option(
        "--no-sleep", help="Wake half only (sleep.enabled = false): no gap map either.")
    ] = False,
    no_training: Annotated[bool, typer.Option(
        "--no-training", help="Everything runs but nobody sleeps (no envelope opens): the "
        "baseline that isolates what sleep training does.")] = False,
    processes: Annotated[bool, typer.Option(
        "--processes", help="Every agent as its own OS process (faststream run), as in "
        "production; the same events as in-process. Agent logs go to `<out>/logs/`.")] = False,
    no_plugins: Annotated[bool, typer.Option(
        "--no-plugins", help="Do not run installed plug-in agents in this process (run them "
        "as their own processes: `faststream run <package>:app`).")] = False,
    resume: Annotated[Path | None, typer.Option(
        "--resume", help="Continue a stopped run (its report directory or DuckDB file) from "
        "its log, as configured when it started: its log is written back into the broker and "
        "every agent goes on from where it stood. A run can be resumed after a clean stop "
        "(Ctrl-C, or the end), not after a kill.")] = None,
    bootstrap: Bootstrap = None,
    verbose: Verbose = False,
) -> None:
    """Run the system end to end and report per cycle: broker, agents, projector, traffic.

    Starts the gateway, the selector, one worker per zoo member, the meta-selector, the
    grader, the four sleep agents (gap cartographer, envelope broker, sleeper trainer, canary
    judge), every installed plug-in agent (docs/extending.md) and the projector on the
    embedded broker (unless --bootstrap), serves the configured cycles of benchmark queries
    in lockstep and prints accuracy, escalation rate and cost per query (normalised so that
    always-top = 1.00) for each cycle. `sleepwake report --db FILE` then shows what the sleep
    half did.
    """
    from cli.fleet import serve_processes
    from cli.report import sleep_summary, write_report
    from cli.resume import NotResumable, record_stop, restore, run_file
    from cli.serve import render, serve
    from runtime.embedded import bootstrap_or_embedded

    logs.setup(verbose)
    if resume is not None:
        given = [name for name, value in (("--config", config), ("--cycles", cycles), (
            "--queries", queries), ("--no-sleep", no_sleep), ("--no-training", no_training), (
            "--db", db), ("--out", out)) if value]
        if given:
            typer.echo(f"error: --resume goes on as the run was configured (its log holds the "
                       f"configuration and its folder the report); drop {', '.join(given)}",
                       err=True)
            raise typer.Exit(2)
        try:
            db = run_file(resume)
        except NotResumable as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        out = db.parent
    else:
        cfg = checked_config(config, cycles, queries)
        if no_sleep or no_training:
            off = {"enabled": False} if no_sleep else {"min_gap_mass": 1e9}  # beyond any G sum
            cfg = cfg.model_copy(update={"sleep": cfg.sleep.model_copy(update=off)})
        if out is None:
            out = db.with_name(db.stem + "-report") if db else \
                Path("runs") / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
        db = db or out / "run.duckdb"
        db.parent.mkdir(parents=True, exist_ok=True)
        if db.exists():
            typer.echo(f"error: {db} exists; pass a new --db or --out (a run projects into a "
                       f"fresh file), or continue it with --resume {out}", err=True)
            raise typer.Exit(2)
    with bootstrap_or_embedded(bootstrap) as servers:
        if resume is not None:
            try:
                cfg = restore(servers, db)
            except NotResumable as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from exc
        try:
            report = asyncio.run(
                serve_processes(servers, db, cfg, timeout, out, plugins=not no_plugins)
                if processes else serve(servers, db, cfg, timeout, plugins=not no_plugins))
        except TimeoutError:
            saved = record_stop(servers, db)
            typer.echo(f"error: the run did not finish within --timeout {timeout:.0f}s (a "
                       "loaded machine, or a stalled agent: see the log above); " + (
                           f"go on with: sleepwake run --resume {out}" if saved else
                           f"what was projected is in {db}"), err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            saved = record_stop(servers, db)
            typer.echo(f"\nstopped: the agents are down and what they did is in {db}; " + (
                f"go on with: sleepwake run --resume {out}" if saved else
                "it cannot be resumed (the projector did not read the log to its end)")
                + f" (sleepwake report --db {db}; sleepwake audit --db {db} --until-cycle N "
                "for the cycles it holds)", err=True)
            raise typer.Exit(130) from None
        record_stop(servers, db)
    typer.echo(render(report))
    if cfg.sleep.enabled:
        typer.echo("\n" + sleep_summary(db, cfg))
    written = write_report(db, cfg, out, " ".join(["sleepwake", *sys.argv[1:]]))
    typer.echo(f"{report.events} events projected into {db} in {report.seconds:.1f}s "
               f"(seed {cfg.traffic.seed}); report: {written}; audit with: sleepwake audit "
               f"--db {db}")


@app.command()
def report(
    db: Annotated[Path, typer.Option("--db", help="The run's DuckDB file.", exists=True,
                                     dir_okay=False)],
    baseline: Annotated[Path | None, typer.Option(
        help="The same run without sleep (`sleepwake run --no-sleep`), to compare with.",
        exists=True, dir_okay=False)] = None,
    plot: Annotated[Path | None, typer.Option(help="Also draw the per-cycle PNG here.")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Also write a report directory here: report.md and cycles.png.")] = None,
) -> None:
    """What the sleep half did in a run: per cycle, per episode, and training cost against
    what it saved (units of one always-top query; break-even in queries)."""
    import duckdb

    from cli import report as r
    from cli.audit import run_config

    con = duckdb.connect(str(db), read_only=True)
    try:
        cfg = run_config(con)
    finally:
        con.close()
    run, base = r.read_run(db), r.read_run(baseline) if baseline else None
    typer.echo(r.cycle_table(run, base))
    typer.echo("\n" + r.sleep_summary(db, cfg, baseline))
    if plot:
        r.plot(run, base, plot)
        typer.echo(f"\nplot: {plot}")
    if out:
        typer.echo(f"\nreport: {r.write_report(db, cfg, out, ' '.join(sys.argv), baseline)}")


def parse_drift(text: str) -> Any:
    """`new-family@10` or `harder@10` as DriftSettings; a bad value exits naming the form."""
    from pydantic import ValidationError

    from agents.config import DriftSettings

    kind, _, cycle = text.partition("@")
    try:
        return DriftSettings(to=kind, at_cycle=int(cycle))
    except (ValueError, ValidationError) as exc:
        typer.echo(f"error: --drift takes new-family@K or harder@K with K >= 1, got {text!r}",
                   err=True)
        raise typer.Exit(2) from exc


@app.command()
def compare(
    out: Annotated[Path, typer.Option(help="Comparison directory: one folder per arm and "
                                      "seed, report.md, frontier.png, cycles.png.")] = (
        Path("runs/compare")),
    arms: Annotated[str, typer.Option(help="Comma-separated arms (default: all; see "
                                      "--list).")] = "",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    config: Annotated[Path | None, typer.Option(
        envvar="SLEEPWAKE_CONFIG", help="Base JSON configuration every arm starts from.")] = None,
    cycles: Annotated[int | None, typer.Option(min=1, help="Override traffic.cycles.")] = None,
    queries: Annotated[int | None, typer.Option(
        min=1, help="Override traffic.queries_per_cycle.")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Runs side by side (each takes about one "
                                      "core; a sleeping run's trainer takes another).")] = 1,
    timeout: Annotated[float, typer.Option(help="Give up on one run after this many "
                                           "seconds.")] = 3600.0,
    drift: Annotated[str | None, typer.Option(
        help="Change the traffic at a cycle for every arm: new-family@K (gcd joins at cycle K) "
        "or harder@K (20/40/40 levels from K); the report adds each arm's recovery time.")
    ] = None,
    sweep: Annotated[bool, typer.Option(
        "--sweep", help="Also run the sweep points: static routing and the cascade at three "
        "more δ each (δ sets θ_crit), for the report's APGR and cost at 95 % of always-top "
        "quality (see --list).")] = False,
    list_arms: Annotated[bool, typer.Option("--list", help="List the arms and exit.")] = False,
    report_only: Annotated[bool, typer.Option(
        "--report-only", help="Run nothing: report the runs already done in --out (the report "
        "names the missing ones).")] = False,
) -> None:
    """Run every arm on the same seeds and traffic and report means with 95 % intervals.

    Each (arm, seed) is a full `sleepwake run` in `<out>/<arm>/seed-<n>/` with its own report;
    a run already complete there is not run again, so an interrupted comparison continues
    where it stopped. The report puts the arms side by side (accuracy, escalation rate,
    serving, training and all-in cost per query, gap mass, confidence variance, the cycle
    each settles by), the routing summary (PGR; APGR and the cost at 95 % of always-top
    quality per router, over its --sweep points) and the source paper's claims beside what
    the sleep-wake arm measured.
    """
    from agents.cohort import cohort_from_zoo
    from agents.registry import unit_flops
    from cli.arms import ARMS, BY_NAME, SWEEP
    from cli.compare import RunFailed, plan, run_all
    from cli.compare_report import write_comparison
    from cli.evidence import read_figures

    if list_arms:
        for arm in ARMS:
            typer.echo(f"{arm.name:20} {arm.stands_for}")
        typer.echo("\nsweep points (--sweep):")
        for arm in SWEEP:
            typer.echo(f"{arm.name:20} {arm.stands_for}")
        return
    chosen = [a.strip() for a in arms.split(",") if a.strip()] or [a.name for a in ARMS]
    chosen += [a.name for a in SWEEP if sweep and a.name not in chosen]
    unknown = [a for a in chosen if a not in BY_NAME]
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        seed_list = []
    if unknown or not seed_list:
        problem = (f"unknown arm(s) {', '.join(unknown)}; the arms are "
                   f"{', '.join(BY_NAME)}") if unknown else \
            f"--seeds must be comma-separated integers, got {seeds!r}"
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)
    cfg = checked_config(config, cycles, queries)
    if drift:
        cfg = cfg.model_copy(update={"traffic": cfg.traffic.model_copy(
            update={"drift": parse_drift(drift)})})
    runs = plan([BY_NAME[a] for a in chosen], seed_list, out)
    done = sum(p.done for p in runs)
    typer.echo(f"{done} of {len(runs)} runs already done in {out}" + (
        "; reporting those" if report_only else f"; running the rest, {jobs} at a time"))
    missing = [f"{p.arm.name} seed {p.seed}" for p in runs if not p.done] if report_only else []
    runs = [p for p in runs if p.done] if report_only else runs
    if not runs:
        typer.echo(f"error: no finished run in {out} to report", err=True)
        raise typer.Exit(2)
    try:
        if not report_only:
            run_all(runs, cfg, jobs, timeout)
    except RunFailed as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        typer.echo("stopped; `sleepwake compare` with the same --out continues", err=True)
        raise typer.Exit(130) from None
    unit = unit_flops(cohort_from_zoo(cfg.zoo))
    drift_at = cfg.traffic.drift.at_cycle if cfg.traffic.drift else None
    figures = [read_figures(p.db, p.arm.name, p.seed, unit, drift_at) for p in runs]
    written = write_comparison(figures, out, " ".join(["sleepwake", *sys.argv[1:]]), missing)
    typer.echo(written.read_text())
    typer.echo(f"report: {written}")


@app.command()
def http(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8000,
    db: Db = Path("runs/http.duckdb"),
    config: Annotated[Path | None, typer.Option(
        envvar="SLEEPWAKE_CONFIG", help="JSON run configuration (see agents/config.py).")] = None,
    timeout: Annotated[float, typer.Option(
        min=0.1, help="Seconds a request may wait for its answer before a 504.")] = 120.0,
    max_body: Annotated[int, typer.Option(
        min=1, help="Largest request body in bytes (larger: 413).")] = 64 * 1024,
    max_prompt: Annotated[int, typer.Option(
        min=1, help="Longest prompt in characters (longer: 400).")] = 4096,
    bootstrap: Bootstrap = None,
    verbose: Verbose = False,
) -> None:
    """Serve the cohort behind an OpenAI-compatible API until Ctrl-C or SIGTERM.

    Point any OpenAI client at http://127.0.0.1:PORT/v1: POST /v1/chat/completions (also
    with stream: true) and GET /v1/models. The reply names the member that answered (`model`,
    `x-sleepwake-model`) and its normalised cost (`x-sleepwake-cost`). On SIGTERM it stops
    accepting, lets requests in flight finish (each within --timeout) and exits 0.
    """
    from agents.gateway.http_policy import Limits
    from cli.serve import serve_http
    from runtime.embedded import bootstrap_or_embedded

    logs.setup(verbose)
    cfg = checked_config(config)
    limits = Limits(max_body_bytes=max_body, max_prompt_chars=max_prompt, timeout=timeout)
    db.parent.mkdir(parents=True, exist_ok=True)
    with bootstrap_or_embedded(bootstrap) as servers:
        typer.echo(f"serving on http://127.0.0.1:{port}/v1 (broker {servers})")
        asyncio.run(serve_http(servers, db, cfg, port, limits=limits, signals=True))
    typer.echo("drained and stopped")


@app.command()
def proof(
    db: Db = Path("runs/proof.duckdb"),
    rallies: Annotated[int, typer.Option(min=1, help="Rallies to serve.")] = 200,
    limit: Annotated[int, typer.Option(min=1, help="Pings per rally.")] = 5,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 300.0,
    bootstrap: Bootstrap = None,
    verbose: Verbose = False,
) -> None:
    """Run the spine's proof flow: pinger/ponger rallies through the log, projected."""
    from cli.proof import prove
    from runtime.embedded import bootstrap_or_embedded

    logs.setup(verbose)
    db.parent.mkdir(parents=True, exist_ok=True)
    with bootstrap_or_embedded(bootstrap) as servers:
        report = asyncio.run(prove(servers, db, rallies, limit, timeout))
    typer.echo(
        f"{report.complete}/{report.rallies} rallies complete, {report.events} events projected "
        f"into {db} in {report.seconds:.1f}s"
    )
    if report.complete != report.rallies:
        raise typer.Exit(1)


@app.command()
def project(db: Db = Path("sleepwake.duckdb"), bootstrap: Bootstrap = None,
            verbose: Verbose = False) -> None:
    """Run the projector (the single DuckDB writer) until Ctrl-C."""
    from projections.projector import Projector
    from runtime.embedded import bootstrap_or_embedded

    logs.setup(verbose)
    with bootstrap_or_embedded(bootstrap) as servers:
        typer.echo(f"projecting {servers} into {db}")
        asyncio.run(Projector(db, bootstrap=servers).app.run())


@app.command()
def ui(
    db: Annotated[Path | None, typer.Option(
        "--db", help="A finished run's DuckDB file, opened read-only (a file a projector "
        "still writes is refused: follow that run with --bootstrap).")] = None,
    bootstrap: Annotated[str | None, typer.Option(
        "--bootstrap", help="host:port of the Kafka a run is using: follow it live with the "
        "dashboard's own in-memory projection.")] = None,
    host: Annotated[str, typer.Option(help="Address to serve the page on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve the page on.")] = 8050,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between refreshes.")] = 2.0,
    verbose: Verbose = False,
) -> None:
    """Live dashboard of a run at http://HOST:PORT: member states with sleep episodes and
    canaries, the gap map in 2-D coloured by G, accuracy, escalation and cost per cycle,
    training curves and dead letters.

    Two modes, exactly one of them:

    - `--bootstrap HOST:PORT` follows a running system: the dashboard subscribes to the log
    like any agent, with its own in-memory projection and its own consumer group, from the
    first event, and never opens a file a projector writes. Start a broker whose address you
    know, e.g. `sleepwake broker`, run `sleepwake run --bootstrap HOST:PORT`, then this.

    - `--db FILE` shows a finished run's projection (`sleepwake run --db FILE`), opened
    read-only at each refresh.
    """
    from dashboard.app import serve
    from dashboard.source import FileSource, LiveSource, Source, SourceError

    if (db is None) == (bootstrap is None):
        typer.echo("error: pass exactly one of --db FILE (a finished run) or --bootstrap "
                   "HOST:PORT (a live one)", err=True)
        raise typer.Exit(2)
    logs.setup(verbose)
    source: Source
    try:
        if db is not None:
            source = FileSource(db)
            source.check()
        else:
            assert bootstrap is not None
            source = LiveSource(bootstrap).start()
    except SourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"sleepwake ui: http://{host}:{port}/ showing the {source.label}")
    try:
        serve(source, host, port, int(interval * 1000), quiet=not verbose)
    finally:
        source.close()


@app.command()
def replay(
    out: Annotated[Path, typer.Option(help="Fresh DuckDB file to build (must not exist).")],
    source: Annotated[str, typer.Option(help="kafka: read the log from offset 0; "
                                              "archive: read another file's events table.")] = (
        "kafka"
    ),
    archive: Annotated[Path | None, typer.Option(help="Archive file for --source archive.")] = (
        None
    ),
    until_cycle: Annotated[int | None, typer.Option(help="Stop after cycle N.")] = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Rebuild every projection into a fresh file; --until-cycle N gives the state as of N."""
    from projections.replay import ReplayError, replay_from_archive, replay_from_kafka

    try:
        if source == "archive":
            if archive is None:
                raise ReplayError("--source archive needs --archive FILE")
            counts = replay_from_archive(archive, out, until_cycle)
        elif source == "kafka":
            if not bootstrap:
                raise ReplayError("--source kafka needs the broker that holds the log: "
                                  "--bootstrap host:port (the embedded one keeps no log)")
            counts = replay_from_kafka(bootstrap, out, until_cycle)
        else:
            raise ReplayError(f"--source must be kafka or archive, not {source!r}")
    except ReplayError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"replayed into {out}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


@app.command()
def audit(
    db: Db = Path("sleepwake.duckdb"),
    until_cycle: Annotated[int | None, typer.Option(help="Audit the prefix up to cycle N.")] = (
        None
    ),
    config: Annotated[Path | None, typer.Option(
        envvar="SLEEPWAKE_CONFIG", help="Override the configuration the run logged "
        "(RunConfigured) with this JSON file.")
    ] = None,
) -> None:
    """Re-run each pure agent's policy over the archived log; exit 1 on any divergence.

    Every agent is rebuilt from the configuration the run announced in its log; an agent
    that cannot be rebuilt (a zoo folder that is gone) is an error, never silently skipped.
    """
    from agents.config import ConfigError, load_config
    from cli.audit import AuditError
    from cli.audit import audit as run_audit

    if not db.exists():
        typer.echo(f"error: {db} not found: pass the projector's file with --db", err=True)
        raise typer.Exit(2)
    try:
        report = run_audit(db, until_cycle, load_config(config) if config else None)
    except (AuditError, ConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for agent, n in report.checked.items():
        typer.echo(f"{agent:16} {n} inputs re-decided")
    for divergence in report.divergences:
        typer.echo(f"DIVERGENCE {divergence}")
    typer.echo("audit: ok" if report.ok else f"audit: {len(report.divergences)} divergences")
    if not report.ok:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
