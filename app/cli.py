"""Flask CLI commands: ``flask seed``, ``flask create-admin``, ``flask demo``."""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.services.accounts import create_user, unique_violation
from app.services.demo import ADMIN_EMAIL, DEMO_AFFILIATES, DEMO_PASSWORD, build_demo_network
from app.services.program import seed_program_defaults


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
def demo_command() -> None:
    """Load the demo network (idempotent) and print its logins."""
    seed_program_defaults()
    created = build_demo_network()
    db.session.commit()
    click.echo(f"Demo network ready ({len(created)} users created).")
    click.echo(f"  admin:      {ADMIN_EMAIL} / {DEMO_PASSWORD}")
    names = ", ".join(name for name, _ in DEMO_AFFILIATES)
    click.echo(f"  affiliates: <name>@example.com / {DEMO_PASSWORD}  ({names})")


def init_app(app: Flask) -> None:
    for command in (seed_command, create_admin_command, demo_command):
        app.cli.add_command(command)
