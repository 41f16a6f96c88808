"""Who may act in the back-office group: Telegram user ids with a role."""

from __future__ import annotations

from enum import StrEnum

from domain.complaint import Status


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


# Reopening a finished complaint overrules an earlier decision: a supervisor's call.
FINAL = frozenset({Status.CLOSED, Status.REJECTED, Status.DUPLICATE})
SENIOR = frozenset({Role.SUPERVISOR, Role.ADMIN})


def parse_operators(text: str) -> dict[int, str]:
    """Parse ``TSUR_OPERATORS``: ``"123:operator,456:admin"`` (spaces and an empty string
    allowed; a bare id means ``operator``). Raises ``ValueError`` on a bad id or role."""
    found: dict[int, str] = {}
    for item in text.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        user, _, role = item.partition(":")
        try:
            user_id = int(user.strip())
        except ValueError:
            raise ValueError(f"TSUR_OPERATORS: not a Telegram user id: {user.strip()!r}") \
                from None
        role = role.strip().lower() or Role.OPERATOR.value
        if role not in Role.__members__.values():
            raise ValueError(f"TSUR_OPERATORS: unknown role {role!r} for {user_id}; "
                             f"expected one of {', '.join(Role)}")
        found[user_id] = role
    return found


def may_change(role: str, old: Status, new: Status) -> bool:
    """Whether ``role`` may move a complaint from ``old`` to ``new`` (legality of the
    transition itself is the domain's to check)."""
    if old in FINAL and new is Status.REOPENED:
        return role in SENIOR
    return role in Role.__members__.values()
