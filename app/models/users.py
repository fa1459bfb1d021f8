"""Users: affiliates and admins. Each user is referred at most once, never by themselves."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    false,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import ID_LENGTH, Base, IdMixin, TimestampMixin

if TYPE_CHECKING:
    from app.models.commissions import Commission
    from app.models.payouts import Payout
    from app.models.referrals import Referral


SESSION_TOKEN_DEFAULT = text("replace(gen_random_uuid()::text, '-', '')")


class User(UserMixin, IdMixin, TimestampMixin, Base):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(40))
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    referral_code: Mapped[str] = mapped_column(String(16), unique=True)
    referred_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="RESTRICT")
    )
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    # A suspended affiliate earns nothing from new sales.
    is_suspended: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    # HMAC of the IP the account was created from, for the same-IP fraud signal.
    signup_ip_hash: Mapped[str | None] = mapped_column(String(64))
    # Part of every session and remember-me cookie; rotating it ends them all (see
    # app/services/accounts/sessions.py). The default covers rows written outside the ORM (COPY).
    session_token: Mapped[str] = mapped_column(String(64), server_default=SESSION_TOKEN_DEFAULT)
    # The program terms this user accepted last, and when. Both empty for accounts made
    # before terms existed and for admins made from the command line; registration always
    # sets them (app/services/program/terms.py).
    terms_version: Mapped[int | None] = mapped_column(
        ForeignKey("program_terms.version", ondelete="RESTRICT")
    )
    terms_accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the affiliate said they copied their link (the first-session checklist).
    link_copied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    referrer: Mapped[User | None] = relationship(remote_side="User.id", back_populates="referrals")
    referrals: Mapped[list[User]] = relationship(back_populates="referrer")
    referrals_given: Mapped[list[Referral]] = relationship(
        foreign_keys="Referral.referrer_id", back_populates="referrer"
    )
    referrals_received: Mapped[list[Referral]] = relationship(
        foreign_keys="Referral.referred_user_id", back_populates="referred_user"
    )
    commissions: Mapped[list[Commission]] = relationship(back_populates="user")
    payouts: Mapped[list[Payout]] = relationship(
        back_populates="user", foreign_keys="Payout.user_id"
    )

    __table_args__ = (
        CheckConstraint("referred_by <> id", name="not_self_referred"),
        CheckConstraint("email = btrim(email) AND email LIKE '%_@_%'", name="email_shape"),
        CheckConstraint("length(btrim(username)) > 0", name="username_present"),
        CheckConstraint(
            "(terms_version IS NULL) = (terms_accepted_at IS NULL)", name="terms_accepted_together"
        ),
        # Domains are stored IDNA-encoded (app/services/accounts/emails.py), so the unique index on
        # lower(email) sees one spelling per mailbox.
        CheckConstraint("email ~ '@[[:ascii:]]+$'", name="email_ascii_domain"),
        # Case-insensitive uniqueness; also the index that login looks emails up by.
        Index("uq_users_email_lower", func.lower(email), unique=True),
        Index("uq_users_username_lower", func.lower(username), unique=True),
        # Children of a node in join order: the tree's keyset pages.
        Index("ix_users_referred_by_created_at", referred_by, "created_at", "id"),
        # Username prefix search (LIKE 'abc%') whatever the database's collation.
        Index(
            "ix_users_username_pattern",
            func.lower(username).label("username_pattern"),
            postgresql_ops={"username_pattern": "text_pattern_ops"},
        ),
    )

    # When this session signed in (epoch seconds); set at sign-in and by the user loader.
    signed_in_at = None

    def get_id(self) -> str:
        """Flask-Login's alternative id, what the session and remember-me cookie hold:
        ``<id>:<session token>:<signed-in time>`` (checked by ``services.sessions``)."""
        return f"{self.id}:{self.session_token}:{self.signed_in_at}"

    def __repr__(self) -> str:
        return f"<User {self.username} {self.id}>"
