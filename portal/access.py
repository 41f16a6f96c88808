"""Roles and what each may do. Every portal route names one :class:`Permission`."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operator"
    COMMUNICATIONS = "communications"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Permission(StrEnum):
    VIEW_REGISTER = "view_register"  # the register and the complaint page, read-only
    HANDLE_COMPLAINTS = "handle_complaints"  # reply, change status, reclassify
    VIEW_DEADLINES = "view_deadlines"
    VIEW_AUDIT = "view_audit"
    # Later parts of the portal: ratings (supervisor), broadcasts (communications).
    VIEW_RATINGS = "view_ratings"
    MANAGE_BROADCASTS = "manage_broadcasts"


_RULES: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset({Permission.VIEW_REGISTER, Permission.HANDLE_COMPLAINTS}),
    Role.COMMUNICATIONS: frozenset({Permission.VIEW_REGISTER, Permission.MANAGE_BROADCASTS}),
    Role.SUPERVISOR: frozenset({Permission.VIEW_REGISTER, Permission.VIEW_DEADLINES,
                                Permission.VIEW_AUDIT, Permission.VIEW_RATINGS}),
    Role.ADMIN: frozenset(Permission),
}


def allowed(role: str, permission: Permission) -> bool:
    """Whether ``role`` (possibly unknown, then nothing is allowed) has ``permission``."""
    try:
        return permission in _RULES[Role(role)]
    except ValueError:
        return False


def parse_role(raw: str) -> Role:
    """The role named ``raw``; ``ValueError`` listing the valid roles otherwise."""
    try:
        return Role(raw.strip().lower())
    except ValueError:
        raise ValueError(f"unknown role {raw!r}; one of: {', '.join(Role)}") from None
