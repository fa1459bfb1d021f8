"""Operations commands: ``flask backup`` (pg_dump into the backup directory),
``flask backup verify [FILE]`` (restore into a scratch database and compare) and
``flask archive --older-than 180d`` (old rows into the archive tables) and
``flask ledger verify [--fix]`` (the running totals against the ledger entries)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from flask import current_app

from app.config import direct_database_url
from app.extensions import db
from app.services.money import commission_rollups
from app.services.money.ledger_totals import differences, repair
from app.services.ops import audit
from app.services.ops.archive import MOVES, archive_batch
from app.services.ops.backups import BackupError, create_backup, newest_dump, verify_backup


def _directory(given: Path | None) -> Path:
    directory = given or (Path(d) if (d := current_app.config.get("BACKUP_DIR")) else None)
    if directory is None:
        raise click.UsageError("Give --dir or set BACKUP_DIR: where backups are written.")
    return directory


@click.group("backup", invoke_without_command=True)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="The backup directory (default: BACKUP_DIR).",
)
@click.pass_context
def backup_command(ctx: click.Context, directory: Path | None) -> None:
    """Dump the database (pg_dump, custom format) into the backup directory, with a manifest
    of its row counts and ledger totals beside it."""
    ctx.obj = directory
    if ctx.invoked_subcommand is not None:
        return
    try:
        backup = create_backup(direct_database_url(current_app.config), _directory(directory))
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    tables = len(backup.contents.tables)
    click.echo(f"Backup written: {backup.dump} ({backup.size:,} bytes, {tables} tables).")


@backup_command.command("verify")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def verify_command(directory: Path | None, file: Path | None) -> None:
    """Restore FILE (default: the newest dump in the backup directory) into a scratch
    database, compare every table's row count and the ledger totals with its manifest, drop
    the scratch database. Exits non-zero on any difference."""
    if file is None:
        file = newest_dump(_directory(directory))
        if file is None:
            raise click.ClickException("No backup to verify: the directory holds no dump.")
    result = verify_backup(direct_database_url(current_app.config), file)
    db.session.commit()
    if result.passed:
        click.echo(f"Backup verified: {file} restores {result.tables_checked} tables exactly.")
        return
    click.echo(f"BACKUP VERIFICATION FAILED: {file}", err=True)
    for problem in result.problems:
        click.echo(f"  - {problem}", err=True)
    raise click.exceptions.Exit(1)


def _age(_ctx: click.Context, _param: click.Parameter, raw: str) -> timedelta:
    if not (match := re.fullmatch(r"(\d{1,5})d", raw.strip())) or int(match[1]) < 1:
        raise click.BadParameter("a number of days, like 180d")
    return timedelta(days=int(match[1]))


@click.command("archive")
@click.option(
    "--older-than",
    "age",
    required=True,
    callback=_age,
    help="How old a row must be, in days (180d): processed provider events by their "
    "processing time, referral clicks by their time.",
)
@click.option("--batch-size", type=click.IntRange(min=1, max=100_000), default=5_000)
def archive_command(age: timedelta, batch_size: int) -> None:
    """Move processed provider events and old referral clicks into their archive tables, in
    batches (one transaction each); safe to interrupt and to run again. Audited."""
    cutoff = datetime.now(UTC) - age
    totals = {}
    for table in MOVES:
        totals[table] = batches = 0
        while (batch := archive_batch(table, cutoff, batch_size)).moved:
            db.session.commit()
            totals[table] += batch.moved
            batches += 1
        db.session.rollback()
        click.echo(f"{table}: {totals[table]:,} rows archived in {batches} batches.")
    audit.record("archive.ran", cutoff=cutoff.isoformat(), **totals)
    db.session.commit()


@click.group("ledger")
def ledger_command() -> None:
    """The ledger's running totals."""


@ledger_command.command("verify")
@click.option("--fix", is_flag=True, help="Set what differs to the recount.")
def ledger_verify_command(fix: bool) -> None:
    """Recount every user's balances from the ledger entries, and the earnings rollups from
    the commissions, and compare them with the running totals pages read. Exits non-zero on
    a difference, unless ``--fix`` repaired it (audited)."""
    users = differences()
    rollups = commission_rollups.differences()
    if not users and not rollups:
        db.session.commit()
        click.echo("Ledger totals verified: every user's totals equal their entries.")
        click.echo("Earnings rollups verified: every row equals a recount of the commissions.")
        return
    if not fix:
        db.session.rollback()
        if users:
            click.echo(f"LEDGER TOTALS DIFFER for {len(users)} users:", err=True)
            for user_id in users:
                click.echo(f"  - {user_id}", err=True)
        if rollups:
            keys = sorted({row.user_id for row in rollups})
            click.echo(f"EARNINGS ROLLUPS DIFFER for {len(keys)} users:", err=True)
            for user_id in keys:
                click.echo(f"  - {user_id}", err=True)
        click.echo("Run `flask ledger verify --fix` to set them to the recount.", err=True)
        raise click.exceptions.Exit(1)
    for fixed in repair(users):
        click.echo(
            f"Repaired {fixed.user_id}: total {fixed.total_before} -> {fixed.total_after}, "
            f"paid {fixed.paid_before} -> {fixed.paid_after}"
        )
    if rollups:
        commission_rollups.rebuild_all()
        audit.record("rollups.rebuilt", rows_differing=len(rollups))
        click.echo(f"Earnings rollups rebuilt ({len(rollups)} rows differed).")
    db.session.commit()
    if users:
        click.echo(f"Ledger totals repaired for {len(users)} users.")
