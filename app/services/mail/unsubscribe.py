"""Unsubscribing: the hook every non-account mail takes its link from.

The notifications work fills in ``unsubscribe_url`` (a signed one-click link that turns the
category off); until then it points at the account page's mail preferences.
"""

from __future__ import annotations

from app.models import User
from app.services.mail.rendering import absolute_url


def unsubscribe_url(user: User, category: str) -> str:
    """The link that stops mails of ``category`` to ``user``: shown in the mail's footer and
    sent as ``List-Unsubscribe`` (with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``,
    so it must accept a POST without a session or CSRF token once it is a real endpoint)."""
    return absolute_url("auth.account") + "#mail-preferences"
