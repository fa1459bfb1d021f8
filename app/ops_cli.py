"""Operations commands: ``flask backup`` (pg_dump into the backup directory) and
``flask backup verify [FILE]`` (restore into a scratch database and compare)."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app

from app.extensions import db
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
        backup = create_backup(current_app.config["SQLALCHEMY_DATABASE_URI"], _directory(directory))
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
    result = verify_backup(current_app.config["SQLALCHEMY_DATABASE_URI"], file)
    db.session.commit()
    if result.passed:
        click.echo(f"Backup verified: {file} restores {result.tables_checked} tables exactly.")
        return
    click.echo(f"BACKUP VERIFICATION FAILED: {file}", err=True)
    for problem in result.problems:
        click.echo(f"  - {problem}", err=True)
    raise click.exceptions.Exit(1)
