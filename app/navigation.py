"""The navigation bar: which links an anonymous visitor, an affiliate and an admin see."""

from __future__ import annotations

from flask import Flask, current_app
from flask_login import current_user

from app.services.program.identity import program_identity, program_name
from app.services.program.terms import needs_acceptance

# (endpoint, label, audience). Links whose blueprint is not registered are left out.
NAV = (
    ("main.home", "Home", "anonymous"),
    ("portal.dashboard", "Dashboard", "affiliate"),
    ("portal.link", "My link", "affiliate"),
    ("tree.network", "Network", "affiliate"),
    ("portal.commissions", "Commissions", "affiliate"),
    ("payouts.index", "Payouts", "affiliate"),
    ("admin.index", "Admin", "admin"),
    ("admin.reports", "Reports", "admin"),
    ("admin.health", "Health", "admin"),
)


def nav_items() -> list[tuple[str, str]]:
    if not current_user.is_authenticated:
        audiences = {"anonymous"}
    elif current_user.is_admin:
        audiences = {"affiliate", "admin"}
    else:
        audiences = {"affiliate"}
    return [
        (endpoint, label)
        for endpoint, label, audience in NAV
        if audience in audiences and endpoint in current_app.view_functions
    ]


def init_app(app: Flask) -> None:
    app.context_processor(
        lambda: {
            "nav_items": nav_items,
            "program_name": program_name,
            "program_identity": program_identity,
            "terms_to_accept": lambda: needs_acceptance(current_user),
        }
    )
