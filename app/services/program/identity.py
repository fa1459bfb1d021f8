"""The program's identity as affiliates see it: its name (header, page titles, mails)."""

from __future__ import annotations

DEFAULT_PROGRAM_NAME = "Referral program"


def program_name() -> str:
    return DEFAULT_PROGRAM_NAME
