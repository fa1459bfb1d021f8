"""``flask backup`` and ``flask backup verify`` with the real pg_dump and pg_restore: a backup
restores exactly; a truncated dump, or a restore that differs from the manifest, fails loudly;
the scratch database is always dropped; both runs are audited for health."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rq.cron import CronScheduler
from sqlalchemy import func, select, text

from app.extensions import db
from app.jobs.backups import register, run_backup_job
from app.jobs.queueing import get_redis
from app.models import AuditEntry, User
from app.services.ops.backups import last_runs
from tests.factories import make_chain, make_sale, make_user


@pytest.fixture
def backup(runner, tmp_path) -> Path:
    _root, buyer = make_chain(2)
    make_sale(buyer, "250.00", days_ago=3)
    result = runner.invoke(args=["backup", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (dump,) = tmp_path.glob("*.dump")
    return dump


def _scratch_databases() -> list[str]:
    name = db.session.scalar(text("SELECT current_database()"))
    return db.session.scalars(
        text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": f"{name}_verify_%"}
    ).all()


def test_a_backup_verifies_against_the_counts_taken_at_dump_time(runner, backup):
    manifest = json.loads(backup.with_suffix(".json").read_text())
    assert manifest["tables"]["users"] == 2 and manifest["tables"]["alembic_version"] == 1
    assert manifest["ledger_totals"]["accrual"]  # the sale accrued commissions
    assert backup.name.endswith("Z.dump") and backup.stat().st_size == manifest["size"]
    make_user()  # the live database moves on; the dump is compared with its own time
    db.session.commit()
    result = runner.invoke(args=["backup", "--dir", str(backup.parent), "verify"])
    assert result.exit_code == 0, result.output
    assert f"Backup verified: {backup}" in result.output
    assert _scratch_databases() == []
    runs = last_runs()
    assert runs["backup.created"].subject_id == backup.name
    assert runs["backup.verified"].details == {"result": "passed"}


def test_a_truncated_dump_fails_loudly(runner, backup):
    data = backup.read_bytes()
    backup.write_bytes(data[: len(data) // 2])
    result = runner.invoke(args=["backup", "verify", str(backup)])
    assert result.exit_code == 1
    assert "BACKUP VERIFICATION FAILED" in result.output
    assert f"the dump is {len(data) // 2} bytes, {len(data)} when written" in result.output
    assert "pg_restore failed" in result.output
    assert _scratch_databases() == []
    assert last_runs()["backup.verified"].details["result"] == "failed"


def test_a_restore_that_differs_from_the_manifest_fails(runner, backup):
    manifest = backup.with_suffix(".json")
    facts = json.loads(manifest.read_text())
    facts["tables"]["users"] += 1
    facts["ledger_totals"]["accrual"] = "0.01"
    manifest.write_text(json.dumps(facts))
    result = runner.invoke(args=["backup", "verify", str(backup)])
    assert result.exit_code == 1
    assert "table users: 3 rows at dump time, 2 restored" in result.output
    assert "ledger accrual: total 0.01 at dump time" in result.output
    assert _scratch_databases() == []


def test_without_pg_dump_on_path_the_error_says_what_to_install(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = runner.invoke(args=["backup", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "pg_dump is not on PATH" in result.output and "postgresql-client" in result.output
    assert list(tmp_path.glob("*")) == []
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_without_a_directory_backup_asks_for_one(runner):
    result = runner.invoke(args=["backup"])
    assert result.exit_code == 2 and "BACKUP_DIR" in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_the_scheduler_runs_the_backup_daily_only_with_a_directory(app, tmp_path):
    scheduler = CronScheduler(connection=get_redis())
    register(scheduler, "default", "")
    assert scheduler.get_jobs() == []
    register(scheduler, "default", str(tmp_path))
    (cron_job,) = scheduler.get_jobs()
    assert (cron_job.func, cron_job.cron) == (run_backup_job, "15 3 * * *")
    app.config["BACKUP_DIR"] = str(tmp_path)
    try:
        name = run_backup_job()
    finally:
        app.config["BACKUP_DIR"] = ""
    assert (tmp_path / name).is_file()
    assert last_runs()["backup.verified"].details == {"result": "passed"}
