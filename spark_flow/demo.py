"""`spark-flow demo`: the toolkit's behaviour on small generated data, start to finish.

Each pattern issue adds its step: an idempotent Delta write and its replay; the devices loader
(Local Sequencer, readiness marker) and the aggregator waiting for that marker; a Parallel Split
whose failed branch is rerun; an Exclusive Choice routing by date; a fan-in over a day of
hourly visits with two hours missing, aligned (refused) and unaligned (with completeness); a
7-day concurrent backfill of the loader and its resume; a sequential backfill of visits trends;
the split on a stream whose failed micro-batch is completed by a restart; the devices loaded
into PostgreSQL exactly once, when a server is configured and answers (`$SPARK_FLOW_POSTGRES_DSN`
or the profile's `[postgres]` table; otherwise the demo says in one line that it skipped it).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from spark_flow import delta
from spark_flow.errors import (
    InvalidArgumentError,
    MissingDependencyError,
    ParallelSplitError,
    PostgresConnectionError,
    TriggerRuleError,
)
from spark_flow.generate import DEVICE_SCHEMA, generate_devices, generate_visits
from spark_flow.isolation import ThreadIsolation
from spark_flow.jobs import load, policy
from spark_flow.runners import BackfillReport, ConcurrentRunner, daily, runner_for
from spark_flow.runners.state import RunState
from spark_flow.session import get_session

if TYPE_CHECKING:
    from spark_flow.postgres import PostgresSettings


def run_demo(workdir: Path, out: TextIO, *, rows: int = 50) -> None:
    """Run every demo step under `workdir` (emptied first) and narrate it to `out`."""
    shutil.rmtree(workdir, ignore_errors=True)
    source = generate_devices(workdir / "input", rows=rows, invalid_ratio=0.2)
    spark = get_session("spark-flow-demo")
    try:
        _idempotent_write(spark, source, str(workdir / "devices"), out)
        _loader_then_aggregator(spark, workdir, out)
        _split_with_a_failed_branch(spark, workdir, out, rows)
        _route_by_date(spark, workdir, out)
        _visits_fan_in(spark, workdir, out)
        _concurrent_backfill(spark, workdir, out)
        _sequential_backfill(spark, workdir, out)
        _stream_restarted(spark, workdir, out)
        _postgres_load(spark, workdir, out)
    finally:
        spark.stop()


def _idempotent_write(spark: Any, source: Path, table: str, out: TextIO) -> None:
    devices = spark.read.schema(DEVICE_SCHEMA).json(str(source))
    first = delta.write(devices, table, app_id="devices-loader-v1", txn_version=1)
    replay = delta.write(devices, table, app_id="devices-loader-v1", txn_version=1)
    rows_in_table = delta.read(spark, table).count()
    out.write(f"1. Idempotent Delta write -> {table}\n")
    out.write(
        f"   write  (app_id=devices-loader-v1, txn_version=1): committed={first.committed}, "
        f"table version {first.table_version}, {first.rows_written} rows\n"
    )
    out.write(
        f"   replay (app_id=devices-loader-v1, txn_version=1): committed={replay.committed}, "
        f"skipped: {replay.skipped_reason}\n"
    )
    out.write(f"   rows in the table: {rows_in_table} (not {2 * first.rows_written})\n")


def _loader_then_aggregator(spark: Any, workdir: Path, out: TextIO) -> None:
    loader, aggregator = load("devices_loader"), load("devices_aggregator")
    table, counts = str(workdir / "tables" / "devices"), str(workdir / "tables" / "counts")
    loader_args = ["--input", str(workdir / "input"), "--output", table, "--batch-id", "1"]
    loader_args += ["--checkpoint-dir", str(workdir / "checkpoints")]
    out.write("2. Local Sequencer + readiness marker: devices_loader, then devices_aggregator\n")
    out.write("   (the generated input has about 20% invalid rows, which the loader quarantines)\n")
    out.write("   " + loader.LOAD.describe().replace("\n", "\n   ") + "\n")
    for attempt in ("run", "rerun"):
        report = loader.run(spark, loader.parser().parse_args(loader_args)).as_dict()
        out.write(
            f"   loader {attempt}: committed={report['committed']}, "
            f"{report['rows_written']} rows written, table version {report['table_version']}"
            f"{'' if report['committed'] else ' (batch 1 already committed)'}\n"
        )
        _accounting(report, out)
    aggregator_args = ["--input", table, "--output", counts, "--wait-timeout", "5"]
    report = aggregator.run(spark, aggregator.parser().parse_args(aggregator_args)).as_dict()
    out.write(
        f"   aggregator: waited for the marker, read version {report['input_version']}, "
        f"wrote {report['rows_written']} (type, version) counts\n"
    )
    top = delta.read(spark, counts).orderBy("count", ascending=False).limit(3).collect()
    for row in top:
        out.write(f"     {row['type']:<8} {row['version']:<5} {row['count']}\n")


def _conflicting_table(spark: Any, path: Path) -> None:
    """A table where a branch writes, whose `full_name` is a number: that branch's write fails."""
    delta.write(spark.createDataFrame([(1,)], "full_name INT"), str(path))


def _accounting(report: dict[str, Any], out: TextIO) -> None:
    """Where the loader's input rows went, and what its quarantine received."""
    counts, quarantine = report["accounting"], report["quarantine"]
    if not quarantine["committed"]:
        out.write(f"     accounting: {counts['note']}\n")
        return
    rejected = counts["rows_rejected"]
    reasons = ", ".join(f"{reason} {n}" for reason, n in rejected.items())
    (written,) = counts["rows_written"].values()
    out.write(
        f"     accounting: {counts['rows_read']} rows read = {written} written "
        f"+ {sum(rejected.values())} rejected ({reasons})\n"
    )
    out.write(
        f"     quarantine: {quarantine['rows_written']} rows with their reason and raw line "
        f"-> {Path(quarantine['path']).name} inside the table\n"
    )


def _split_with_a_failed_branch(spark: Any, workdir: Path, out: TextIO, rows: int) -> None:
    splitter = load("devices_split_loader")
    raw, enriched = workdir / "tables" / "devices_raw", workdir / "tables" / "devices_enriched"
    _conflicting_table(spark, enriched)
    args = splitter.parser().parse_args(
        [
            *("--input", str(workdir / "input"), "--raw-output", str(raw)),
            *("--enriched-output", str(enriched), "--batch-id", "1"),
        ]
    )
    out.write("3. Parallel Split: one read of the input, raw and enriched branches\n")
    try:
        splitter.run(spark, args)
    except ParallelSplitError as failed:
        for branch in failed.report.branches:
            cause = f" ({branch.error})" if branch.error else ""
            out.write(
                f"   run 1, {branch.name:<8}: {branch.status}, {branch.rows_written} rows{cause}\n"
            )
    shutil.rmtree(enriched)
    out.write("   (the conflicting table is removed; rerun with the same --batch-id)\n")
    report = splitter.run(spark, args).as_dict()
    for branch in report["branches"]:
        out.write(
            f"   run 2, {branch['name']:<8}: {branch['status']}, {branch['rows_written']} rows\n"
        )
    counts = {table.name: delta.read(spark, str(table)).count() for table in (raw, enriched)}
    out.write(
        f"   input {rows} rows -> devices_raw {counts['devices_raw']}, "
        f"devices_enriched {counts['devices_enriched']} (each row once)\n"
    )


def _route_by_date(spark: Any, workdir: Path, out: TextIO) -> None:
    router = load("devices_output_router")
    out.write("4. Exclusive Choice: route by run date, migration on 2024-01-01\n")
    for run_date in ("2023-12-31", "2024-01-01"):
        args = router.parser().parse_args(
            [
                *("--input", str(workdir / "input"), "--output", str(workdir / "routed")),
                *("--route-by", "date", "--run-date", run_date, "--migration-date", "2024-01-01"),
            ]
        )
        report = router.run(spark, args).as_dict()
        out.write(
            f"   {run_date}: {report['output_type']} -> {report['output']} "
            f"({report['route']['reason']})\n"
        )


def _visits_fan_in(spark: Any, workdir: Path, out: TextIO) -> None:
    cube = load("visits_cube")
    visits = workdir / "visits"
    generate_visits(visits, date="2024-01-01", rows_per_hour=20, skip_hours=(3, 7))
    out.write(
        "5. Fan-in: a daily visits cube over 24 hourly partitions; hours 03 and 07 are late\n"
    )
    common = ["--input", str(visits), "--date", "2024-01-01"]
    common += ["--output", str(workdir / "tables" / "visits_cube")]
    try:
        cube.run(spark, cube.parser().parse_args([*common, "--mode", "aligned"]))
    except TriggerRuleError as refused:
        missing = ", ".join(name.rsplit("=", 1)[1] for name, _, _ in refused.not_succeeded)
        out.write(f"   aligned:   not run, hours {missing} missing (nothing written)\n")
    report = cube.run(spark, cube.parser().parse_args([*common, "--mode", "unaligned"])).as_dict()
    out.write(
        f"   unaligned: {report['rows_written']} cube rows, completeness "
        f"{report['completeness']:.3f} ({report['hours_present']}/24 hours), "
        f"is_approximate=true on every row; record in visits_cube/_spark_flow_completeness\n"
    )


def _concurrent_backfill(spark: Any, workdir: Path, out: TextIO) -> None:
    days, state = daily(date(2024, 1, 1), date(2024, 1, 7)), RunState(workdir / "state")
    for n, day in enumerate(days):
        generate_devices(workdir / "daily" / day.isoformat(), rows=10 + n, seed=n)
    argv = ["--input", str(workdir / "daily" / "{ds}"), "--output", str(workdir / "backfilled")]
    argv += ["--batch-id", "{ds_nodash}", "--checkpoint-dir", str(workdir / "checkpoints")]
    task = ThreadIsolation("devices_loader", argv, spark)
    out.write("6. Concurrent Runner: devices_loader backfilled over 7 days, 3 runs at a time\n")
    for attempt in ("backfill", "resume"):
        runner = ConcurrentRunner("devices_loader", state=state, max_active_runs=3)
        _summary(out, attempt, runner.backfill(days, task))
    rows = delta.read(spark, str(workdir / "backfilled")).count()
    out.write(f"   rows in the table: {rows} (each day once; history: spark-flow runs)\n")


def _sequential_backfill(spark: Any, workdir: Path, out: TextIO) -> None:
    days, state = daily(date(2024, 1, 2), date(2024, 1, 4)), RunState(workdir / "state")
    visits = workdir / "visits"
    for n, day in enumerate(days):
        generate_visits(visits, date=day.isoformat(), rows_per_hour=10 + 5 * n, seed=n)
    trends = str(workdir / "tables" / "visits_trends")
    argv = ["--input", str(visits), "--date", "{ds}", "--output", trends]
    declared = policy("visits_trends")
    out.write("7. Single Runner: visits_trends, sequential with depends_on_past\n")
    try:
        runner_for("visits_trends", state=state, policy=declared, max_active_runs=3)
    except InvalidArgumentError as refused:
        out.write(f"   max_active_runs=3 refused: {refused.problem}\n")
    runner = runner_for("visits_trends", state=state, policy=declared)
    _summary(out, "backfill", runner.backfill(days, ThreadIsolation("visits_trends", argv, spark)))
    top = delta.read(spark, trends).where(f"date = '{days[-1]}'").orderBy("page").first()
    if top is not None:
        out.write(
            f"   {days[-1]} {top['page']}: {top['visits']} visits, {top['previous_visits']} the "
            f"day before, change {top['change']:+d}\n"
        )


def _summary(out: TextIO, label: str, report: BackfillReport) -> None:
    statuses = ", ".join(f"{run.logical_date:%m-%d} {run.status}" for run in report.runs)
    out.write(f"   {label}: {statuses}\n")


def _stream_restarted(spark: Any, workdir: Path, out: TextIO) -> None:
    loader, incoming = load("devices_stream_loader"), workdir / "incoming"
    incoming.mkdir(parents=True)
    for n in range(3):
        shutil.move(generate_devices(workdir / f"landing-{n}", rows=10, seed=n),
                    incoming / f"devices-{n}.json")  # fmt: skip
    tables = workdir / "stream"
    tables.mkdir()
    blocked = tables / "enriched"
    _conflicting_table(spark, blocked)
    args = loader.parser().parse_args(
        [
            *("--input", str(incoming), "--raw-output", str(tables / "raw")),
            *("--enriched-output", str(blocked), "--checkpoint", str(workdir / "stream_ck")),
            *("--available-now", "--max-files-per-trigger", "1"),
        ]
    )
    out.write("8. Streaming Parallel Split: 3 files, one micro-batch each, enriched blocked\n")
    try:
        with _failure_expected(spark):
            loader.run(spark, args)
    except ParallelSplitError as stopped:
        statuses = ", ".join(f"{b.name} {b.status}" for b in stopped.report.branches)
        out.write(f"   query stopped in micro-batch {stopped.report.txn_version}: {statuses}\n")
    shutil.rmtree(blocked)
    report = loader.run(spark, args).as_dict()
    branches = report["branches"]
    out.write(
        f"   restarted: micro-batches {report['micro_batches']}, raw already done in "
        f"{branches['raw']['already_done']}\n"
    )
    counts = [delta.read(spark, str(table)).count() for table in (tables / "raw", blocked)]
    out.write(f"   rows: raw {counts[0]}, enriched {counts[1]} (30 in; each row once)\n")


POSTGRES_TABLE = "spark_flow_demo_devices"


def _postgres_load(spark: Any, workdir: Path, out: TextIO) -> None:
    """The devices router into PostgreSQL, run and replayed; one line when there is no server."""
    settings = _reachable_postgres(out)
    if settings is None:
        return
    from spark_flow.postgres import BATCHES_TABLE

    with settings.connect() as connection:  # the demo's table starts empty, like its folder
        connection.execute(f"DROP TABLE IF EXISTS {POSTGRES_TABLE}")
        if connection.execute(f"SELECT to_regclass('{BATCHES_TABLE}')").fetchone() != (None,):
            connection.execute(f"DELETE FROM {BATCHES_TABLE} WHERE target = %s", (POSTGRES_TABLE,))
    router = load("devices_output_router")
    args = router.parser().parse_args(
        [
            *("--input", str(workdir / "input"), "--output", POSTGRES_TABLE),
            *("--output-type", "postgres", "--batch-id", "1"),
        ]
    )
    out.write(f"9. PostgreSQL output: the devices load into {POSTGRES_TABLE} on "
              f"{settings.describe()}\n")  # fmt: skip
    for attempt in ("run", "replay"):
        report = router.run(spark, args).as_dict()
        out.write(
            f"   {attempt}: committed={report['committed']}, {report['rows_written']} rows"
            f"{'' if report['committed'] else ' (batch 1 already committed)'}\n"
        )
    with settings.connect() as connection:
        counted = connection.execute(f"SELECT count(*) FROM {POSTGRES_TABLE}").fetchone()
    out.write(f"   rows in the table: {counted[0] if counted else 0} (each row once)\n")


def _reachable_postgres(out: TextIO) -> PostgresSettings | None:
    """The configured server when it answers; else None, after one line saying why not."""
    try:
        from spark_flow.postgres import PostgresSettings

        settings = PostgresSettings.configured()
        settings.connect().close()
        return settings
    except PostgresConnectionError as failed:
        reason = f"no server answers at {failed.server}"
    except (MissingDependencyError, InvalidArgumentError) as failed:
        reason = str(failed)
    out.write(
        f"9. PostgreSQL output: skipped, {reason} (point $SPARK_FLOW_POSTGRES_DSN or the "
        "profile's [postgres] table at a server to see it)\n"
    )
    return None


@contextmanager
def _failure_expected(spark: Any) -> Iterator[None]:
    """Keep the stack traces of a failure the demo causes on purpose out of its narrative.

    A failed `foreachBatch` is logged twice with its whole traceback (py4j's callback server in
    Python, the stopped query in the JVM); the demo reports the failure itself.
    """
    callback = logging.getLogger("py4j.clientserver")
    level = callback.level
    callback.setLevel(logging.CRITICAL)
    spark.sparkContext.setLogLevel("OFF")
    try:
        yield
    finally:
        spark.sparkContext.setLogLevel("WARN")  # conf/log4j2.properties' root level
        callback.setLevel(level)


def run_flights_demo(workdir: Path, out: TextIO) -> None:
    """The hourly fan-in on real data: NYC flights of 2013-07-04, two hours arriving late."""
    shutil.rmtree(workdir, ignore_errors=True)
    cube = load("flights_hourly_cube")
    common = ["--partitions", str(workdir / "partitions"), "--dates", "2013-07-04"]
    common += ["--output", str(workdir / "flights_cube")]
    spark = get_session("spark-flow-demo-flights")
    try:
        out.write("Fan-in on NYC flights 2013-07-04: hourly partitions, hours 09 and 14 late\n")
        args = [*common, "--mode", "aligned", "--layout", "--drop-hours", "9,14"]
        try:
            cube.run(spark, cube.parser().parse_args(args))
        except TriggerRuleError as refused:
            missing = ", ".join(name.rsplit("=", 1)[1] for name, _, _ in refused.not_succeeded)
            out.write(f"   aligned:   not run, hours {missing} missing (nothing written)\n")
        report = cube.run(
            spark, cube.parser().parse_args([*common, "--mode", "unaligned"])
        ).as_dict()
        (day,) = report["dates"]
        out.write(
            f"   unaligned: {day['rows_written']} cube rows, completeness "
            f"{day['completeness']:.3f} ({day['hours_present']}/19 departure hours)\n"
        )
        worst = (
            delta.read(spark, str(workdir / "flights_cube"))
            .where("carrier IS NOT NULL AND origin IS NOT NULL AND flights >= 10")
            .orderBy("dep_delay_mean", ascending=False)
            .limit(3)
            .collect()
        )
        for row in worst:
            out.write(
                f"     {row['carrier']} from {row['origin']}: {row['flights']} flights, mean "
                f"departure delay {row['dep_delay_mean']:.1f} min\n"
            )
    finally:
        spark.stop()
