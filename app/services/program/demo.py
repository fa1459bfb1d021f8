"""A small demo network: an admin and affiliates several tiers deep, with known passwords."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.models import User
from app.services.accounts.accounts import create_user, find_user_by_email
from app.services.money.commissions import settle_sales
from app.services.money.sales import SaleReport, record_sale
from app.services.program.identity import program_identity

DEMO_PASSWORD = "demo-password-2026"
ADMIN_EMAIL = "admin@example.com"
# (username, referrer username): alice at the top, dave four tiers below her.
DEMO_AFFILIATES = (
    ("alice", None),
    ("bob", "alice"),
    ("erin", "alice"),
    ("carol", "bob"),
    ("frank", "erin"),
    ("dave", "carol"),
    ("grace", "carol"),
    ("heidi", "dave"),
)


def demo_email(username: str) -> str:
    return f"{username}@example.com"


def build_demo_network() -> list[User]:
    """Create the demo admin and affiliates that are missing. Idempotent; flushes only."""
    created = []
    by_name: dict[str, User] = {}
    if not find_user_by_email(ADMIN_EMAIL):
        created.append(
            create_user(username="admin", email=ADMIN_EMAIL, password=DEMO_PASSWORD, is_admin=True)
        )
    for username, referrer_name in DEMO_AFFILIATES:
        user = find_user_by_email(demo_email(username))
        if user is None:
            user = create_user(
                username=username,
                email=demo_email(username),
                password=DEMO_PASSWORD,
                referrer=by_name[referrer_name] if referrer_name else None,
                # As if they joined through the sign-up form, which requires the terms.
                terms_version=program_identity().terms_version,
            )
            created.append(user)
        by_name[username] = user
    return created


# (reference, buyer, amount, days ago): sales that show every state on the demo's commission
# pages; the older ones are past the hold period, so carol and bob can request a payout.
DEMO_SALES = (
    ("demo:dave", "dave", "120.00", 45),
    ("demo:heidi", "heidi", "80.00", 10),
    ("demo:grace", "grace", "200.00", 3),
    ("demo:grace:earlier", "grace", "900.00", 40),
)


def record_demo_sales() -> int:
    """The demo's sales, accrued (idempotent: fixed references). Flushes only."""
    sale_ids = []
    for reference, username, amount, days_ago in DEMO_SALES:
        buyer = find_user_by_email(demo_email(username))
        sale_ids.append(
            record_sale(
                SaleReport(
                    provider="manual",
                    external_id=reference,
                    amount=Decimal(amount),
                    currency="USD",
                    occurred_at=datetime.now(UTC) - timedelta(days=days_ago),
                    buyer_id=buyer.id,
                ),
                note="demo data",
            )
        )
    settle_sales(sale_ids)
    return len(sale_ids)
