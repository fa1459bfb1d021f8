"""Flask CLI commands: ``flask seed``, ``flask create-admin``, ``flask demo``,
``flask rotate-keys`` (and the operations commands of ``app/ops_cli.py``)."""

from __future__ import annotations

import time

import click
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app import crypto
from app.extensions import db
from app.ops_cli import archive_command, backup_command, ledger_command
from app.services.accounts.accounts import create_user, find_user_by_email, unique_violation
from app.services.accounts.emails import normalize_email
from app.services.network.network_generator import AlreadyGenerated, generate_network
from app.services.ops import audit
from app.services.payouts.payout_accounts import rotate_payee_details
from app.services.program.demo import (
    ADMIN_EMAIL,
    DEMO_AFFILIATES,
    DEMO_PASSWORD,
    build_demo_network,
    demo_email,
    record_demo_sales,
)
from app.services.program.program import seed_program_defaults


@click.command("seed")
def seed_command() -> None:
    """Insert the default program settings and MLM tiers where missing."""
    seed_program_defaults()
    db.session.commit()
    click.echo("Program settings and MLM tiers are in place.")


@click.command("create-admin")
@click.option("--email", required=True)
@click.option("--username", required=True)
@click.password_option(help="Prompted for (twice) when not given.")
def create_admin_command(email: str, username: str, password: str) -> None:
    """Create an admin account."""
    if normalize_email(email) is None:
        raise click.BadParameter("not a valid email address", param_hint="--email")
    try:
        user = create_user(username=username, email=email, password=password, is_admin=True)
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        problem = unique_violation(exc)
        if problem is None:
            raise
        raise click.ClickException(f"{problem[0]}: {problem[1]}") from exc
    click.echo(f"Admin {user.username} <{user.email}> created.")


@click.command("demo")
@click.option(
    "--users",
    type=click.IntRange(min=1, max=10_000_000),
    help="Also generate a network of this many users below alice (once per database).",
)
def demo_command(users: int | None) -> None:
    """Load the demo network (idempotent) and print its logins."""
    seed_program_defaults()
    created = build_demo_network()
    db.session.flush()
    record_demo_sales()
    db.session.commit()
    click.echo(f"Demo network ready ({len(created)} users created, demo sales accrued).")
    click.echo(f"  admin:      {ADMIN_EMAIL} / {DEMO_PASSWORD}")
    names = ", ".join(name for name, _ in DEMO_AFFILIATES)
    click.echo(f"  affiliates: <name>@example.com / {DEMO_PASSWORD}  ({names})")
    if users:
        _generate(users)


def _generate(users: int) -> None:
    started = time.perf_counter()
    try:
        network = generate_network(users, attach_to=find_user_by_email(demo_email("alice")))
    except AlreadyGenerated as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    click.echo(
        f"Generated {network.users:,} users and {network.referrals:,} referral rows below alice "
        f"in {time.perf_counter() - started:.0f} s: depth up to {network.max_depth}, "
        f"largest fan-out {network.largest_fan_out:,}. Their password is the demo password."
    )


@click.command("rotate-keys")
@click.option("--batch-size", type=click.IntRange(min=1, max=10_000), default=500)
def rotate_keys_command(batch_size: int) -> None:
    """Re-encrypt every payee details token with the newest key of FERNET_KEYS.

    One transaction per batch; safe to run again (rows already on the newest key are left
    alone). Afterwards the older keys can be removed from FERNET_KEYS.
    """
    if not crypto.is_configured():
        raise click.ClickException("FERNET_KEYS is not set: there is no key to rotate to.")
    rotated = current = 0
    unreadable: list[str] = []
    after = ""
    while True:
        batch = rotate_payee_details(after, batch_size)
        db.session.commit()
        if batch.last_id is None:
            break
        after = batch.last_id
        rotated, current = rotated + batch.rotated, current + batch.current
        unreadable.extend(batch.unreadable)
    audit.record(
        "payout_accounts.keys_rotated",
        rotated=rotated,
        already_current=current,
        unreadable=len(unreadable),
    )
    db.session.commit()
    click.echo(f"Re-encrypted {rotated} payee details; {current} already used the newest key.")
    if unreadable:
        shown = ", ".join(unreadable[:20]) + (", …" if len(unreadable) > 20 else "")
        raise click.ClickException(
            f"{len(unreadable)} payout accounts have details no key in FERNET_KEYS reads "
            f"(add the key they were written with and run again): {shown}"
        )


def init_app(app: Flask) -> None:
    commands = (seed_command, create_admin_command, demo_command, rotate_keys_command)
    for command in (*commands, backup_command, archive_command, ledger_command):
        app.cli.add_command(command)
