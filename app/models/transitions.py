"""Status transition tables: every status change of a model goes through one of these."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class InvalidTransition(ValueError):
    """Raised when a status change is not in the model's transition table."""


class Transitions:
    """An explicit table of allowed ``old -> new`` status changes for one model."""

    def __init__(self, model: str, allowed: Mapping[str, frozenset[str]]) -> None:
        self.model = model
        self.allowed = dict(allowed)
        self.statuses = frozenset(allowed)

    def can(self, old: str, new: str) -> bool:
        return new in self.allowed.get(old, frozenset())

    def sources_of(self, new: str) -> list[str]:
        """The statuses that may change to ``new``: for set-based SQL updates, which must
        follow the table as ``transition_to`` does."""
        return sorted(old for old, targets in self.allowed.items() if new in targets)

    def check(self, old: str, new: str) -> None:
        """Refuse anything not in the table, with a message an admin can act on."""
        if new not in self.statuses:
            raise InvalidTransition(f"{self.model}: unknown status {new!r}")
        if not self.can(old, new):
            allowed = ", ".join(sorted(self.allowed.get(old, ()))) or "none (final status)"
            raise InvalidTransition(
                f"{self.model}: cannot go from {old!r} to {new!r}; allowed from {old!r}: {allowed}"
            )


class HasStatus:
    """A model whose ``status`` only changes through its class's ``TRANSITIONS`` table."""

    TRANSITIONS: ClassVar[Transitions]
    status: str

    def transition_to(self, new_status: str) -> None:
        self.TRANSITIONS.check(self.status, new_status)
        self.status = new_status


def sql_in(values: frozenset[str]) -> str:
    """The statuses as a SQL ``IN`` list for a CHECK constraint (values are our own literals)."""
    return ", ".join(f"'{v}'" for v in sorted(values))
