"""`sleepwake compare` (and through it `sleepwake run`) end to end over the real embedded
broker, on the tiny zoo: each run prints what its projection says, writes its report
directory and audits clean; the comparison's table says what the runs' projections say; and a
second call runs only what is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from agents.config import MetaSettings, SleepSettings, SystemConfig, TrafficConfig
from cli.arms import ARMS, BY_NAME
from cli.audit import audit
from cli.evidence import _settles, interval, read_figures

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
SLEEPWAKE = [sys.executable, "-m", "cli.main"]
METRICS = ("SELECT cycle, queries, accuracy, escalation_rate, router_cost_per_query, "
           "cost_per_query, cost_with_shadow FROM cycle_metrics ORDER BY cycle")


def compare(out: Path, config: Path, arms: str, seeds: str) -> str:
    done = subprocess.run([*SLEEPWAKE, "compare", "--config", str(config), "--out", str(out),
                           "--arms", arms, "--seeds", seeds, "--jobs", "2",
                           "--drift", "harder@1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def rows_of(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(METRICS).fetchall()
    finally:
        con.close()


def test_compare_reports_what_the_projections_say_and_resumes(tiny_zoo: Path,
                                                              tmp_path: Path) -> None:
    base = SystemConfig(zoo=tiny_zoo, meta=MetaSettings(prior_gain=0.5),
                        traffic=TrafficConfig(cycles=2, queries_per_cycle=12, shadow=0.25),
                        sleep=SleepSettings(enabled=False))
    (tmp_path / "base.json").write_text(base.model_dump_json())
    out = tmp_path / "cmp"
    compare(out, tmp_path / "base.json", "cheapest-only", "0,1")
    first = (out / "cheapest-only" / "seed-0" / "report.md").stat().st_mtime_ns
    printed = compare(out, tmp_path / "base.json", "cheapest-only", "0,1")  # resumes: no run
    assert (out / "cheapest-only" / "seed-0" / "report.md").stat().st_mtime_ns == first  # kept
    assert "2 of 2 runs already done" in printed

    # one run as `sleepwake run` shows it: its printed table, report directory and audit
    run = out / "cheapest-only" / "seed-1"
    rows = rows_of(run / "run.duckdb")
    assert len(rows) == base.traffic.cycles
    table = [line.strip("|").split("|") for line in (run / "run.log").read_text().splitlines()
             if line.startswith("| ") and line[2].isdigit()]
    for cells, (cycle, n, acc, esc, router, cost, shadowed) in zip(table, rows, strict=True):
        assert [c.strip() for c in cells][:7] == [
            str(cycle), str(n), f"{acc:.3f}", f"{esc:.3f}", f"{router:.2e}", f"{cost:.3f}",
            f"{shadowed:.3f}"]
        assert router > 0  # the router's embedding is counted
        assert esc == 0  # cheapest-only never escalates
    assert (run / "cycles.png").stat().st_size > 10_000
    assert f"| {rows[-1][0]} | {rows[-1][2]:.3f} |" in (run / "report.md").read_text()
    checked = audit(run / "run.duckdb")  # configured from the log alone
    assert checked.ok, checked.divergences[:5]

    # the comparison: each cell is the interval over the seeds' projections
    report = (out / "report.md").read_text()
    assert (out / "frontier.png").stat().st_size > 10_000
    for arm in ("cheapest-only",):
        runs = [rows_of(out / arm / f"seed-{s}" / "run.duckdb") for s in (0, 1)]
        row = next(line for line in report.splitlines() if line.startswith(f"| {arm} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == "2"  # seeds
        for column, index in ((2, 2), (3, 3), (4, 5)):  # accuracy, escalation, serving cost
            means = [sum(r[index] for r in rs) / len(rs) for rs in runs]
            assert cells[column] == str(interval(means))
        recovery = [_settles([r[5] for r in rs], sum(r[5] for r in rs[-5:]) / len(rs[-5:]), 1) - 1
                    for rs in runs]  # the drift's first cycle is 1
        assert cells[-1] == str(interval([float(v) for v in recovery]))
        assert BY_NAME[arm].stands_for in report
    assert "need both the always-top and the cheapest-only arms" in report

    from typer.testing import CliRunner

    from cli.main import app

    partial = CliRunner().invoke(app, ["compare", "--config", str(tmp_path / "base.json"),
                                       "--out", str(out), "--arms", "cheapest-only,always-top",
                                       "--seeds", "0,1", "--report-only"])
    assert partial.exit_code == 0, partial.output
    assert not (out / "always-top").exists()  # nothing was run
    assert "always-top seed 0, always-top seed 1" in (out / "report.md").read_text()


def test_every_arm_is_a_valid_configuration_differing_where_it_says() -> None:
    base = SystemConfig()
    configs = {arm.name: arm.config(base, seed=4) for arm in ARMS}
    assert all(c.traffic.seed == 4 for c in configs.values())
    assert configs["sleep-wake"] == base.model_copy(update={"traffic": configs["static"].traffic})
    assert configs["static"].sleep.min_gap_mass > 1e6 and configs["static"].sleep.enabled
    assert configs["cascade"].selector.route == "cheapest"
    assert configs["cascade"].meta.rule == "confidence"
    assert configs["always-top"].selector.route == "top"
    assert configs["uniform"].sleep.examples == "uniform"
    assert configs["random-sleeper"].sleep.sleeper == "random"
    assert configs["distil-escalations"].sleep.examples == "escalated"
    assert configs["oracle"].traffic.shadow == 1.0 and configs["oracle"].meta.rule == "never"


def test_intervals_use_student_t() -> None:
    assert str(interval([1.0, 2.0, 3.0])) == "2.000 ± 2.484"  # 4.303 · 1 / √3
    assert interval([0.5]).half is None


def test_unknown_arms_and_bad_seeds_fail_naming_the_fix(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    for args, says in ((["--arms", "nope"], "the arms are sleep-wake"),
                       (["--seeds", "a,b"], "comma-separated integers")):
        done = CliRunner().invoke(app, ["compare", "--out", str(tmp_path), *args])
        assert done.exit_code == 2 and says in done.output


def test_a_drift_changes_the_stream_from_its_cycle_and_bad_ones_are_refused(tmp_path: Path
                                                                            ) -> None:
    from typer.testing import CliRunner

    from agents.config import DriftSettings
    from agents.registry import world_of
    from cli.main import app

    new = world_of(TrafficConfig(drift=DriftSettings(at_cycle=3, to="new-family")))
    assert all(q.family != "gcd" for c in range(3) for q in new.queries(c, 64))
    assert sum(q.family == "gcd" for q in new.queries(3, 64)) > 10
    harder = world_of(TrafficConfig(drift=DriftSettings(at_cycle=2, to="harder")))
    share = [sum(q.level != "easy" for q in harder.queries(c, 200)) / 200 for c in (1, 2)]
    assert share[0] < 0.4 < 0.6 < share[1]  # 30 % before, 80 % after, of non-easy queries
    done = CliRunner().invoke(app, ["compare", "--out", str(tmp_path), "--drift", "later@x"])
    assert done.exit_code == 2 and "new-family@K or harder@K" in done.output


def test_the_oracle_counts_the_cheapest_right_answer_of_each_query(tmp_path: Path) -> None:
    import json

    db = tmp_path / "oracle.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE events (type VARCHAR, data JSON)")
    con.execute("CREATE TABLE cycle_metrics (cycle INT, queries INT, accuracy DOUBLE, "
                "escalation_rate DOUBLE, cost_per_query DOUBLE, confidence_variance DOUBLE)")
    con.execute("CREATE TABLE gap_maps (cycle INT, tier INT, gap_mass DOUBLE)")
    con.execute("CREATE TABLE training_runs (train_flops DOUBLE)")
    answers = [("q1", 0, True, 0.5), ("q1", 0, True, 0.4), ("q1", 1, True, 1.0),  # cheapest right
               ("q2", 0, False, 0.5), ("q2", 1, True, 1.1),  # only the top is right
               ("q3", 0, False, 0.5), ("q3", 1, False, 0.9)]  # nobody: the top's answer
    for q, tier, ok, cost in answers:
        con.execute("INSERT INTO events VALUES ('ResponseGraded', ?)", [json.dumps(
            {"cycle": 0, "query_id": q, "tier": tier, "success": ok, "cost_norm": cost})])
    con.execute("INSERT INTO cycle_metrics VALUES (0, 3, 0.1, 0.0, 0.5, 0.01)")
    con.close()
    oracle = read_figures(db, "oracle", 0, 1.0)
    assert oracle.accuracy == pytest.approx(2 / 3)
    assert oracle.serving == pytest.approx((0.4 + 1.1 + 0.9) / 3)
    assert oracle.escalation == 0.0
    assert read_figures(db, "cheapest-only", 0, 1.0).serving == 0.5  # other arms: as served


def test_a_failed_run_does_not_stop_the_others(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import compare

    ran: list[str] = []

    def run_one(p: compare.Planned, base: SystemConfig, timeout: float) -> None:
        ran.append(f"{p.arm.name}/{p.seed}")
        if p.seed == 0:
            raise compare.RunFailed(f"{p.arm.name} seed 0 failed")
        (p.folder).mkdir(parents=True)
        (p.folder / "report.md").write_text("done")

    monkeypatch.setattr(compare, "run_one", run_one)
    runs = compare.plan([BY_NAME["static"], BY_NAME["always-top"]], [0, 1], tmp_path)
    with pytest.raises(compare.RunFailed, match="2 of 4 runs failed") as failed:
        compare.run_all(runs, SystemConfig(), jobs=1, timeout=1)
    assert sorted(ran) == ["always-top/0", "always-top/1", "static/0", "static/1"]
    assert "static seed 0 failed" in str(failed.value)
    assert [p.done for p in runs] == [False, True, False, True]


def test_a_run_that_never_settles_is_censored_at_its_end_not_left_out() -> None:
    settled = [1.0, 0.9, 0.8, 0.8, 0.8, 0.8]
    assert _settles(settled, 0.8, 0) == 2
    wobbling = [0.8, 0.8, 0.8, 0.8, 0.8, 1.2]  # its last cycle is far from the final mean
    assert _settles(wobbling, sum(wobbling[-5:]) / 5, 0) == len(wobbling)


def test_apgr_and_cost_at_quality_read_the_step_curve() -> None:
    from cli.frontier import apgr, cost_at_quality

    low, top = (0.5, 0.4), (1.0, 1.0)  # cheapest-only and always-top: (cost, accuracy)
    # one point at cost 0.75 recovering half the gap: PGR 0.5 over the upper half of the range
    assert apgr([(0.75, 0.7)], low, top) == pytest.approx(0.25)
    # a cheaper, worse point adds its PGR only below the better one's cost
    assert apgr([(0.75, 0.7), (0.6, 0.55)], low, top) == pytest.approx(
        (0.25 * 0.15 + 0.5 * 0.25) / 0.5)
    # a dearer point that is worse adds nothing: the best PGR reached so far holds
    assert apgr([(0.75, 0.7), (0.9, 0.6)], low, top) == pytest.approx(0.25)
    # points outside the range are clipped to it; always-top itself recovers nothing
    assert apgr([(0.2, 1.0)], low, top) == pytest.approx(1.0)
    assert apgr([top], low, top) == 0.0
    with pytest.raises(ValueError, match="more than cheapest-only"):
        apgr([top], (1.0, 0.4), top)
    assert cost_at_quality([(0.75, 0.7), (0.9, 0.96), (0.95, 0.99)], 0.95) == 0.9
    assert cost_at_quality([(0.75, 0.7)], 0.95) is None


def test_sweep_points_are_their_router_at_another_delta(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.arms import SWEEP
    from cli.main import app

    base = SystemConfig()
    for arm in SWEEP:
        assert arm.family in BY_NAME and arm.name.startswith(f"{arm.family}@delta=")
        got, router = arm.config(base, 1), BY_NAME[arm.family].config(base, 1)
        assert got.meta.delta != router.meta.delta
        assert got.model_copy(update={"meta": router.meta}) == router
    listed = CliRunner().invoke(app, ["compare", "--list"])
    assert listed.exit_code == 0 and all(arm.name in listed.output for arm in SWEEP)


def test_the_routing_summary_gives_apgr_per_router_over_its_sweep_points() -> None:
    from cli.compare_report import by_arm, routing_summary
    from cli.evidence import RunFigures

    def run(arm: str, seed: int, cost: float, acc: float) -> RunFigures:
        return RunFigures(arm=arm, seed=seed, cycles=1, accuracy=acc, escalation=0.0,
                          serving=cost, training=0.0, conf_variance=0.0, gap_mass_initial=None,
                          gap_mass_final=None, initial={}, final={}, settles_by=0, per_cycle={})

    runs = [run(arm, seed, cost, acc) for seed in (0, 1) for arm, cost, acc in (
        ("cheapest-only", 0.5, 0.4), ("always-top", 1.0, 1.0), ("static", 0.75, 0.7),
        ("static@delta=0.3", 0.6, 0.55))]
    routers = routing_summary(by_arm(runs)).split("| router |")[1]  # the per-router table

    def cells(name: str) -> list[str]:
        row = next(line for line in routers.splitlines() if line.startswith(f"| {name} |"))
        return [c.strip() for c in row.strip("|").split("|")]

    # (0.25 · 0.15 + 0.5 · 0.25) / 0.5 on each seed
    assert cells("static") == ["static", "2", "0.325 ± 0.000", "reached in 0 of 2 seeds"]
    assert cells("always-top") == ["always-top", "1", "0.000 ± 0.000", "1.000 ± 0.000"]
    assert "static@delta" not in routers
